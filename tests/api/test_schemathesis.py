"""schemathesis against the live API (gunicorn on PostgreSQL): no 500, no response off-schema."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "schemathesis.sh"

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]


@pytest.fixture
def database_url():
    """A fresh database on the test server, so the fuzzer's writes touch no other test."""
    url = os.environ["DATABASE_URL"]
    name = f"schemathesis_{uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_schemathesis_finds_no_server_error_and_no_response_off_schema(database_url):
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=540, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert output.count("== schemathesis as ") == 2
    assert "passed" in output
