"""Settings for benchmarks: the project's, served with bench.urls (the API plus a baseline)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
