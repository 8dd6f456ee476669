"""Readers of published registers (SIPRI's trade register): pure parsers, no Django."""
