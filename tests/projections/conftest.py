"""Real Celery worker processes on the Redis that `make test` started, for projection tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A `celery worker` (optionally with an embedded beat) on the test database."""

    def __init__(self, name: str, log_dir: Path, *, beat: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.beat = beat
        self.schedule = log_dir / f"{name}-beat-schedule"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": (f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
            "PROJECTION_SWEEP_SECONDS": "1",
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            f"--hostname={self.name}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if self.beat:
            command += ["--beat", f"--schedule={self.schedule}"]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            if " ready." in self.log()[offset:]:
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.name} did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children."""
        assert self.process is not None
        for pid in [*_children(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _children(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in result.stdout.split()]


@pytest.fixture
def dispatch_to_broker() -> Iterator[None]:
    """Send tasks to Redis instead of running them in-process, and start from an empty queue."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def workers(tmp_path: Path, dispatch_to_broker: None) -> Iterator[callable]:
    started: list[WorkerProcess] = []

    def start(name: str, *, beat: bool = False) -> WorkerProcess:
        worker = WorkerProcess(name, tmp_path, beat=beat)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
