"""docker/: no Docker engine runs here, so check what can be checked without one."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
ENTRYPOINT = (ROOT / "docker" / "entrypoint.sh").read_text()


def test_compose_runs_every_part_of_the_stack_with_health_checks():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "stream", "worker", "beat"}
    for name in ("postgres", "redis", "web", "stream", "worker"):
        assert "healthcheck" in services[name], name
    for name in ("web", "stream", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_demands_secrets_instead_of_defaulting_them():
    text = (ROOT / "docker" / "compose.yaml").read_text()
    assert "${SECRET_KEY:?" in text
    assert "${POSTGRES_PASSWORD:?" in text


def test_entrypoint_runs_the_commands_the_stack_test_runs():
    """The stack test (bench/stack.py) starts the same programs the containers do."""
    stack = (ROOT / "bench" / "stack.py").read_text()
    for program in (
        "gunicorn config.wsgi:application",
        "uvicorn config.asgi:application",
        "celery -A config worker",
        "celery -A config beat",
        "python manage.py migrate",
    ):
        assert program in ENTRYPOINT, program
    assert '"config.wsgi:application"' in stack
    assert '"config.asgi:application"' in stack
    assert all(f'"{role}"' in stack for role in ("worker", "beat"))


def test_image_runs_as_a_non_root_user_from_a_slim_base():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE)
    assert "pip install ." in dockerfile
