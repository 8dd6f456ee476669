"""Tests of the published-register readers."""
