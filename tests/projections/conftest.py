"""Real Celery worker processes on the Redis that `make test` started, for projection tests.

Each worker runs what production runs: a `celery worker` with beat (in production a separate
`beat` process), whose sweep every second heals a dispatch that was lost. A test that means to
prove something without the sweep starts its worker with `beat=False`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from django.db import connection, transaction

from config.celery import app as celery_app
from tracker.deals.signals import events_recorded
from tracker.projections import pending

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "celery"
PROJECTING = r"tracker\.projections\.tasks\.project_(?:deals?|behind|pending)"
RECEIVED = re.compile(rf"Task {PROJECTING}\[[^\]]+\] received")
RAN = re.compile(rf"tracker\.tasks \[[^\]]*\] {PROJECTING} [A-Z]+")


class WorkerProcess:
    """A `celery worker` (with an embedded beat unless `beat=False`) on the test database."""

    def __init__(self, name: str, log_dir: Path, *, beat: bool = True) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.beat = beat
        self.schedule = log_dir / f"{name}-beat-schedule"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": (f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
            "PROJECTION_SWEEP_SECONDS": "1",
            # The tests read the worker's log lines as text.
            "LOG_FORMAT": "text",
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
        """SIGKILL the main process and its children (pool processes and beat) at once."""
        assert self.process is not None
        for pid in [*self.children(), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def kill_children(self) -> list[int]:
        """SIGKILL the main process's children and wait until they are dead; it stays up."""
        pids = self.children()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pool processes {pids} outlived SIGKILL")
            time.sleep(0.05)
        return pids

    def children(self) -> list[int]:
        assert self.process is not None
        result = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(line) for line in result.stdout.split()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_until_idle(self, timeout: float = 90) -> None:
        """Wait until every projection task this worker received has run (or been retried)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if len(RECEIVED.findall(log)) == len(RAN.findall(log)):
                return
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} still busy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _alive(pid: int) -> bool:
    """True while `pid` runs; a killed child its parent has not reaped yet is a zombie: dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until_dispatch_reaches_the_broker(timeout: float = 60) -> None:
    """Send a dispatch for a deal that does not exist until one lands in Redis, then purge.

    After a broker failure this process's dispatcher stops publishing for a few seconds
    (tracker/projections/dispatch.py); production loses nothing by it because the beat sweep
    heals, but a test that starts inside that pause would find its first dispatches dropped.
    Going through `events_recorded`, the signal the deal services send, reads no private state.
    """
    deadline = time.monotonic() + timeout
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        while True:
            forget_waiting_deals()
            channel.queue_purge(QUEUE)
            with transaction.atomic():
                events_recorded.send(sender=None, deal_id=uuid4(), version=1, events=[])
            landed_by = time.monotonic() + 1
            while time.monotonic() < landed_by:
                if channel.queue_declare(QUEUE).message_count:
                    channel.queue_purge(QUEUE)
                    forget_waiting_deals()
                    return
                time.sleep(0.02)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no dispatch reached the broker in {timeout}s")


def forget_waiting_deals() -> None:
    """Empty the waiting deals and the scheduled mark an earlier test left in Redis."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete(pending.PENDING, pending.SCHEDULED)


@pytest.fixture
def dispatch_to_broker(transactional_db: None) -> Iterator[None]:
    """Send tasks to Redis instead of running them in-process, from an empty queue and with a
    dispatcher that publishes, whatever an earlier test did to the broker."""
    celery_app.conf.task_always_eager = False
    try:
        wait_until_dispatch_reaches_the_broker()
        yield
    finally:
        celery_app.conf.task_always_eager = True


@pytest.fixture
def workers(tmp_path: Path, dispatch_to_broker: None) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str, *, beat: bool = True) -> WorkerProcess:
        worker = WorkerProcess(name, tmp_path, beat=beat)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()
