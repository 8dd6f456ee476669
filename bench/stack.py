"""The production stack as real processes: PostgreSQL, Redis, gunicorn, Celery worker, beat.

Used by tests/e2e and bench/load.py.

Each stack has its own PostgreSQL and Redis (scripts/services.sh in a temporary directory), so
a test may stop and restart them without touching the database the rest of the suite uses.
Its PostgreSQL is durable (fsync, synchronous_commit and full_page_writes on), as in production.
With `replica=True` it has a hot-standby replica too, which every process is given as
DATABASE_REPLICA_URL, and which `stop_replica()` and `start_replica()` take down and bring back.
The commands are those docker/entrypoint.sh runs in the containers.

Any number of web and worker processes run side by side: `start("web-2")` is a second gunicorn
on a port of its own (`base_of("web-2")`), `start("worker-2")` a second Celery worker with a
node name of its own. `start("web")` is the one at `base`.

`attempt()` makes one HTTP request and says what became of it, including the answers that
never came (a refused or reset connection, a timeout); `Stack.request()` raises on those.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "scripts" / "services.sh"
BIN = Path(sys.executable).parent
# The suite's own services: a stack has its own, and must not reach the suite's by inheritance.
SERVICE_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_REPLICA_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "CACHE_URL",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Reply:
    """What one request got: an HTTP status and body, or no answer (`failure` says which)."""

    status: int | None
    body: Any = None
    failure: str | None = None
    """`connection_error` (refused, reset, closed early, a malformed answer) or `timeout`."""
    detail: str = ""


def attempt(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """Make one request on a new connection; never raises for what the network or server did."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            try:
                return Reply(error.code, _json(error.read()))
            finally:
                error.close()
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        failure = "timeout" if isinstance(reason, TimeoutError) else "connection_error"
        return Reply(None, failure=failure, detail=f"{type(reason).__name__}: {reason}")


class Stack:
    def __init__(self, directory: Path, *, durable: bool = True, replica: bool = False) -> None:
        self.dir = directory
        self.logs = directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        # Not under pytest's tmp_path: that is private to root, and PostgreSQL runs as an
        # unprivileged user who must reach its data directory.
        self.services = Path(tempfile.mkdtemp(prefix="dealtracker-stack-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.web_ports = {"web": self.port}
        # Server-sent events come from an ASGI process of their own (docker/entrypoint.sh).
        self.stream_port = free_port()
        self.stream_base = f"http://127.0.0.1:{self.stream_port}"
        self.mode = "--durable" if durable else "--fast"
        self.replica = replica
        self.replica_port: int | None = None

    # --- services ----------------------------------------------------------------------

    def start_services(self) -> None:
        options = [self.mode, "--replica"] if self.replica else [self.mode]
        subprocess.run([SERVICES, "start", self.services, *options], check=True)
        values = {}
        for line in (self.services / "env").read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
        self.replica_port = int(values["REPLICA_PORT"]) if self.replica else None
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES},
            **({"DATABASE_REPLICA_URL": values["DATABASE_REPLICA_URL"]} if self.replica else {}),
            "DATABASE_URL": values["DATABASE_URL"],
            "CELERY_BROKER_URL": values["CELERY_BROKER_URL"],
            "REDIS_URL": values["REDIS_URL"],
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": "stack-test-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "PROJECTION_SWEEP_SECONDS": "1",
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_ANON": "1000000/min",
        }

    def durability(self) -> dict[str, str]:
        """The settings that make a commit durable, as the running PostgreSQL reports them."""
        names = ("fsync", "synchronous_commit", "full_page_writes", "server_version")
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}

    def service(self, action: str) -> None:
        subprocess.run([SERVICES, action, self.services], check=True)

    def stop_replica(self) -> None:
        """Stop the standby (a fast shutdown: its sessions are ended, as in a failover)."""
        self.service("stop-replica")

    def start_replica(self) -> None:
        """Start the standby again; returns once it has replayed the primary's WAL as of now."""
        self.service("start-replica")

    def restart_replica(self, down_for: float = 0) -> None:
        self.stop_replica()
        time.sleep(down_for)
        self.start_replica()

    def replica_url(self) -> str:
        """The replica's own address, with the stack's database: for reading its statistics."""
        database = self.env["DATABASE_URL"].rsplit("/", 1)[1]
        return f"{self.env['DATABASE_REPLICA_URL']}/{database}"

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

    # --- application processes ---------------------------------------------------------

    def start(self, name: str) -> None:
        """Start a process: `web`, `stream`, `worker`, `beat`, or another web or worker named
        `web-<n>` or `worker-<n>`; returns once it answers (a worker: once it is ready)."""
        kind = name.partition("-")[0]
        if kind == "web":
            self.web_ports.setdefault(name, free_port())
        commands = {
            "web": [
                BIN / "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.web_ports.get(name, self.port)}",
                "--workers",
                "2",
                "--timeout",
                "60",
            ],
            "stream": [
                BIN / "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.stream_port),
                "--timeout-graceful-shutdown",
                "3",
                "--no-access-log",
            ],
            "worker": [
                BIN / "celery",
                "-A",
                "config",
                "worker",
                f"--hostname={name}@%h",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [
                BIN / "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                f"--schedule={self.dir / 'celerybeat-schedule'}",
            ],
        }
        log = (self.logs / f"{name}.log").open("ab")
        # Under ASGI each request runs in a thread of its own: a connection kept after it
        # would be left behind by it.
        env = {**self.env, "CONN_MAX_AGE": "0"} if kind == "stream" else self.env
        self.processes[name] = subprocess.Popen(
            commands[kind],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        if kind == "web":
            base = self.base_of(name)
            self.wait_for(lambda: self.get("/health/", base=base)[0] in (200, 503), what=name)
        if kind == "stream":
            self.wait_for(
                lambda: (
                    attempt(self.stream_base, "GET", "/health/", timeout=5).status in (200, 503)
                ),
                what="uvicorn",
            )
        if kind == "worker":
            ready = self.log(name).count(" ready.") + 1
            self.wait_for(lambda: self.log(name).count(" ready.") >= ready, what=name)

    def base_of(self, name: str) -> str:
        """The address of the web process `name`."""
        return f"http://127.0.0.1:{self.web_ports[name]}"

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for name, process in list(self.processes.items()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(name)
        self.processes.clear()
        subprocess.run([SERVICES, "stop", self.services], check=False)
        shutil.rmtree(self.services, ignore_errors=True)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- HTTP ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        base: str | None = None,
    ) -> tuple[int, Any]:
        """The status and body of one request (to `base`, or the first web process); raises
        ConnectionError when no answer came."""
        reply = attempt(base or self.base, method, path, body, token=token, headers=headers)
        if reply.status is None:
            raise ConnectionError(f"{method} {path}: {reply.failure} ({reply.detail})")
        return reply.status, reply.body

    def get(self, path: str, token: str | None = None, base: str | None = None) -> tuple[int, Any]:
        """Like `request`, with 0 for no answer: for polling a server that may not be up."""
        reply = attempt(base or self.base, "GET", path, token=token)
        return (reply.status or 0), reply.body

    def wait_for(self, condition, *, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout}s:\n{self.dump_logs()}")

    def dump_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in self.logs.glob("*.log")
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")
