"""Real servers for races through HTTP: the embedded default and the PostgreSQL stack.

`embedded` is what `make demo` runs: `runserver` (threaded) on a SQLite file, tasks eager; it
serves the event streams too, polling. `postgres` is what production runs: gunicorn with two
processes, uvicorn for the event streams (`stream_base`), a Celery worker and beat, on a fresh
database of the suite's PostgreSQL and a Redis database of its own, so that no queue is shared
with the worker tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from bench.stack import SERVICE_VARIABLES, attempt, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Server:
    """A web server (and, on PostgreSQL, its workers) started in `directory`; stop() ends all."""

    def __init__(self, directory: Path, mode: str) -> None:
        self.dir = directory
        self.mode = mode
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stream_base = self.base
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            LOG_LEVEL="WARNING",
            API_THROTTLE_USER="1000000/min",
            API_THROTTLE_ANON="1000000/min",
        )
        self.database: str | None = None
        if mode == "embedded":
            self.env["DATABASE_URL"] = f"sqlite:///{directory / 'embedded.sqlite3'}"
        else:
            self.database = f"races_{uuid4().hex[:12]}"
            server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
            broker = os.environ["CELERY_BROKER_URL"].rsplit("/", 1)[0]
            self.env.update(
                DATABASE_URL=f"{server}/{self.database}",
                CELERY_BROKER_URL=f"{broker}/7",
                REDIS_URL=f"{broker}/8",
                DEBUG="0",
                SECRET_KEY="races-" + "x" * 50,
                ALLOWED_HOSTS="127.0.0.1",
                SECURE_SSL_REDIRECT="0",
                PROJECTION_SWEEP_SECONDS="1",
            )
            _create_database(os.environ["DATABASE_URL"], self.database)

    def start(self) -> None:
        self.manage("migrate", "--no-input", "-v0")
        self.editor = self.manage("create_api_user", "editor", "--role", "editor").strip()
        if self.mode == "embedded":
            self._spawn(
                "web",
                [
                    BIN / "python",
                    "manage.py",
                    "runserver",
                    "--noreload",
                    f"127.0.0.1:{self.port}",
                ],
            )
        else:
            self._spawn(
                "web",
                [
                    BIN / "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                ],
            )
            stream_port = free_port()
            self.stream_base = f"http://127.0.0.1:{stream_port}"
            self._spawn(
                "stream",
                [
                    *(BIN / "uvicorn", "config.asgi:application", "--host", "127.0.0.1"),
                    *("--port", str(stream_port), "--timeout-graceful-shutdown", "3"),
                ],
                # Under ASGI each request runs in a thread of its own: a connection kept after
                # it would be left behind by it.
                env={"CONN_MAX_AGE": "0"},
            )
            self._spawn(
                "worker",
                [
                    *(BIN / "celery", "-A", "config", "worker", "--concurrency=2"),
                    *("--without-gossip", "--without-mingle", "--loglevel=WARNING"),
                ],
            )
            self._spawn(
                "beat",
                [
                    *(BIN / "celery", "-A", "config", "beat", "--loglevel=WARNING"),
                    f"--schedule={self.dir / 'celerybeat-schedule'}",
                ],
            )
        self.wait_for(lambda: self.status("/health/") in (200, 503), what="the web server")
        self.wait_for(
            lambda: attempt(self.stream_base, "GET", "/health/", timeout=5).status in (200, 503),
            what="the stream server",
        )

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()
        if self.database:
            _drop_database(os.environ["DATABASE_URL"], self.database)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [BIN / "python", "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-4000:]}" for name in self.processes)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Status and decoded body. A refused connection or a timeout fails the test: no race
        test may count a lost answer as anything else."""
        reply = attempt(
            self.base, method, path, body, token=self.editor, headers=headers, timeout=60
        )
        assert reply.failure is None, f"{method} {path}: {reply.failure}\n{self.logs()}"
        return reply.status, reply.body

    def status(self, path: str) -> int:
        return attempt(self.base, "GET", path, timeout=5).status or 0

    def wait_for(self, condition, *, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout}s:\n{self.logs()}")

    def _spawn(self, name: str, command: list, env: dict[str, str] | None = None) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _admin_connection(url: str):
    import psycopg

    server = url.rsplit("/", 1)[0]
    return psycopg.connect(f"{server}/postgres", autocommit=True)


def _create_database(url: str, name: str) -> None:
    with _admin_connection(url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def _drop_database(url: str, name: str) -> None:
    with _admin_connection(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
