"""Test settings: the project's settings plus a second, SQLite database for backend contracts."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["sqlite"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
