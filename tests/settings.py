"""Test settings: the project's settings plus a second, SQLite database for backend contracts."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["sqlite"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tasks run in-process unless a test sends them to the real worker it starts
# (tests/projections/conftest.py); the suite does not depend on a worker being there.
CELERY_TASK_ALWAYS_EAGER = True
