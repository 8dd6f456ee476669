"""Settings read from the environment: typed values, defaults, and an empty variable as unset.

Each case imports `config.settings` in a fresh interpreter with only the variables it names
(plus PATH), as a deployment would start it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASES",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "DEAL_FUTURE_TOLERANCE_DAYS",
    "PROJECTION_SWEEP_SECONDS",
    "LOG_FORMAT",
    "ADMIN_LOGIN_MAX_FAILURES",
    "ADMIN_LOGIN_WINDOW_SECONDS",
)
SHOW = f"""
import json
from config import settings
names = {NAMES!r}
found = {{name: getattr(settings, name, None) for name in names}}
found["CACHE_LOCATION"] = settings.CACHES["default"].get("LOCATION")
found["TOKEN_TTL_DAYS"] = settings.REST_KNOX["TOKEN_TTL"] and settings.REST_KNOX["TOKEN_TTL"].days
found["THROTTLE_RATES"] = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
found["LOG_LEVEL"] = settings.LOGGING["root"]["level"]
print(json.dumps(found, default=str))
"""
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "s" * 50}


def run_settings(**variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_with(**variables: str) -> dict[str, Any]:
    result = run_settings(**variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_nothing_set_the_project_runs_embedded():
    found = settings_with()

    assert found["DEBUG"] is True
    assert found["SECRET_KEY"].startswith("django-insecure-")
    assert found["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "testserver"]
    assert found["CSRF_TRUSTED_ORIGINS"] == []
    database = found["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(ROOT / "db.sqlite3")
    assert "CONN_MAX_AGE" not in database
    assert database["OPTIONS"] == {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    assert found["CELERY_BROKER_URL"] == ""
    assert found["CELERY_TASK_ALWAYS_EAGER"] is True
    assert found["CACHE_LOCATION"] is None
    assert found["LOG_FORMAT"] == "text"
    assert found["LOG_LEVEL"] == "INFO"
    assert found["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 1048576
    assert found["DEAL_FUTURE_TOLERANCE_DAYS"] == 1
    assert found["PROJECTION_SWEEP_SECONDS"] == 5.0
    assert found["TOKEN_TTL_DAYS"] == 90
    assert found["THROTTLE_RATES"] == {"anon": "300/min", "user": "3000/min"}
    assert (found["ADMIN_LOGIN_MAX_FAILURES"], found["ADMIN_LOGIN_WINDOW_SECONDS"]) == (5, 900)


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " on "])
def test_debug_is_on_for_a_true_word(value: str):
    assert settings_with(DEBUG=value)["DEBUG"] is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off", "nonsense"])
def test_debug_is_off_for_any_other_word(value: str):
    assert settings_with(DEBUG=value, SECRET_KEY="s" * 50)["DEBUG"] is False


def test_production_defaults_follow_debug_off():
    found = settings_with(**PRODUCTION)

    assert found["LOG_FORMAT"] == "json"
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] == 31536000


def test_ssl_redirect_can_be_turned_off_and_an_empty_value_keeps_it_on():
    assert settings_with(**PRODUCTION, SECURE_SSL_REDIRECT="0")["SECURE_SSL_REDIRECT"] is False
    assert settings_with(**PRODUCTION, SECURE_SSL_REDIRECT="")["SECURE_SSL_REDIRECT"] is True


def test_lists_are_comma_separated_with_spaces_and_empty_items_dropped():
    found = settings_with(
        ALLOWED_HOSTS=" deals.example.org, api.example.org,,",
        CSRF_TRUSTED_ORIGINS="https://deals.example.org",
    )

    assert found["ALLOWED_HOSTS"] == ["deals.example.org", "api.example.org"]
    assert found["CSRF_TRUSTED_ORIGINS"] == ["https://deals.example.org"]


def test_empty_variables_count_as_unset():
    found = settings_with(
        DEBUG="",
        SECRET_KEY="",
        DATABASE_URL="",
        CONN_MAX_AGE="",
        ALLOWED_HOSTS="",
        CELERY_BROKER_URL="",
        CACHE_URL="",
        MAX_BODY_BYTES="",
    )

    assert found["DEBUG"] is True
    assert found["SECRET_KEY"].startswith("django-insecure-")
    assert found["DATABASES"]["default"]["NAME"] == str(ROOT / "db.sqlite3")
    assert found["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "testserver"]
    assert found["CELERY_TASK_ALWAYS_EAGER"] is True
    assert found["CACHE_LOCATION"] is None
    assert found["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 1048576


@pytest.mark.parametrize("secret_key", [None, ""])
def test_debug_off_refuses_to_start_without_a_secret_key(secret_key: str | None):
    variables = {"DEBUG": "0"} if secret_key is None else {"DEBUG": "0", "SECRET_KEY": secret_key}
    result = run_settings(**variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_a_secret_key_starting_with_a_dollar_is_taken_as_it_is():
    # django-environ would read "$HOME" as the value of HOME.
    found = settings_with(**{**PRODUCTION, "SECRET_KEY": "$HOME-and-more", "HOME": "/root"})

    assert found["SECRET_KEY"] == "$HOME-and-more"


def test_a_postgresql_url_keeps_connections_with_health_checks():
    found = settings_with(
        DATABASE_URL="postgres://deals:p%40ss@db.example.org:5433/ledger?sslmode=require",
        CONN_MAX_AGE="30",
    )
    database = found["DATABASES"]["default"]

    assert {key: database[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST")} == {
        "ENGINE": "config.postgresql",
        "NAME": "ledger",
        "USER": "deals",
        "PASSWORD": "p@ss",
        "HOST": "db.example.org",
    }
    assert database["PORT"] == 5433
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert database["CONN_MAX_AGE"] == 30
    assert database["CONN_HEALTH_CHECKS"] is True


def test_a_postgresql_url_reuses_connections_for_a_minute_by_default():
    database = settings_with(DATABASE_URL="postgres://postgres@127.0.0.1:5432/dealtracker")[
        "DATABASES"
    ]["default"]

    assert (database["NAME"], database["PORT"]) == ("dealtracker", 5432)
    assert database["CONN_MAX_AGE"] == 60


def test_a_sqlite_url_names_its_file_and_keeps_the_concurrency_options(tmp_path: Path):
    database = settings_with(DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")[
        "DATABASES"
    ]["default"]

    assert database["NAME"] == str(tmp_path / "embedded.sqlite3")
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "CONN_MAX_AGE" not in database


def test_a_broker_turns_eager_tasks_off_and_redis_backs_the_cache():
    found = settings_with(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0", REDIS_URL="redis://127.0.0.1:6379/1"
    )

    assert found["CELERY_TASK_ALWAYS_EAGER"] is False
    assert found["CACHE_LOCATION"] == "redis://127.0.0.1:6379/1"
    assert (
        settings_with(CACHE_URL="redis://c:6379/2", REDIS_URL="redis://r:6379/3")["CACHE_LOCATION"]
        == "redis://c:6379/2"
    )


def test_numbers_are_read_as_numbers():
    found = settings_with(
        **PRODUCTION,
        SECURE_HSTS_SECONDS="60",
        MAX_BODY_BYTES="2048",
        DEAL_FUTURE_TOLERANCE_DAYS="3",
        PROJECTION_SWEEP_SECONDS="2.5",
        API_TOKEN_TTL_DAYS="7",
        ADMIN_LOGIN_MAX_FAILURES="3",
        ADMIN_LOGIN_WINDOW_SECONDS="60",
        API_THROTTLE_ANON="10/min",
        LOG_FORMAT="text",
        LOG_LEVEL="WARNING",
    )

    assert found["SECURE_HSTS_SECONDS"] == 60
    assert found["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 2048
    assert found["DEAL_FUTURE_TOLERANCE_DAYS"] == 3
    assert found["PROJECTION_SWEEP_SECONDS"] == 2.5
    assert found["TOKEN_TTL_DAYS"] == 7
    assert (found["ADMIN_LOGIN_MAX_FAILURES"], found["ADMIN_LOGIN_WINDOW_SECONDS"]) == (3, 60)
    assert found["THROTTLE_RATES"] == {"anon": "10/min", "user": "3000/min"}
    assert (found["LOG_FORMAT"], found["LOG_LEVEL"]) == ("text", "WARNING")


def test_a_token_lifetime_of_zero_days_never_expires():
    assert settings_with(API_TOKEN_TTL_DAYS="0")["TOKEN_TTL_DAYS"] is None


def test_a_number_that_is_not_one_stops_the_start():
    result = run_settings(MAX_BODY_BYTES="a lot")

    assert result.returncode != 0
    assert "ValueError" in result.stderr
