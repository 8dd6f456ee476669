"""Real `celery worker` processes on the test's own Redis keep every read model current."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction

from tests.projections.builders import (
    another_connection,
    deal_with_events,
    make_organisations,
    note,
)
from tests.projections.conftest import WorkerProcess
from tracker.deals import services
from tracker.deals.reducer import deal_json
from tracker.deals.replay import state as replay_state
from tracker.eventstore.models import Stream
from tracker.projections import projector
from tracker.projections.models import DealState

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]
ROOT = Path(__file__).resolve().parents[2]
# tracker/projections/tasks.py logs each batch as "N deal(s) projected: id@version ...".
PROJECTED = re.compile(r"\b([0-9a-f]{8}-[0-9a-f-]{27})@(\d+)\b")


def wait_until_projected(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if projector.projection_lag() == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"projection lag still {projector.projection_lag()} after {timeout}s")


@contextlib.contextmanager
def read_models_held() -> Iterator[Callable[[int], list[int]]]:
    """Hold a SHARE lock on the read-model table from another connection.

    A projector then locks its deal's row, reads and folds the stream, and waits to write it.
    Yields a function that waits until `count` projections wait so and returns their backends.
    """
    holder = another_connection()
    try:
        holder.execute(f'LOCK TABLE "{DealState._meta.db_table}" IN SHARE MODE')

        def blocked_projections(count: int, timeout: float = 120) -> list[int]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                pids = waiting_on_read_models()
                if len(pids) >= count:
                    return pids
                time.sleep(0.1)
            raise AssertionError(
                f"{len(waiting_on_read_models())} projections waiting, not {count}"
            )

        yield blocked_projections
    finally:
        holder.rollback()
        holder.close()


def waiting_on_read_models() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
            [DealState._meta.db_table],
        )
        return [pid for (pid,) in cursor.fetchall()]


def wait_until_gone(backends: list[int], timeout: float = 60) -> None:
    """Wait until the server has ended these backends (their clients were killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [backends])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"backends {backends} still there after {timeout}s")


def assert_nothing_projected_twice(*processes: WorkerProcess) -> None:
    projected = Counter(match for w in processes for match in PROJECTED.findall(w.log()))
    assert [key for key, count in projected.items() if count > 1] == []


def assert_every_projection_equals_replay() -> None:
    versions = dict(Stream.objects.values_list("id", "version"))
    rows = {row.deal_id: row for row in DealState.objects.all()}
    assert set(rows) == set(versions)
    for deal_id, version in versions.items():
        assert rows[deal_id].version == version
        assert rows[deal_id].state == deal_json(replay_state(deal_id).state)


def append_notes(deal_ids: list, rounds: int, first_versions: dict) -> None:
    """Append `rounds` notes to each deal, reading nothing: the caller tracks versions."""
    for n in range(rounds):
        for deal_id in deal_ids:
            first_versions[deal_id] = services.record_event(
                deal_id=deal_id,
                event_type="NoteAdded",
                data={"text": f"note {n}"},
                occurred=note().occurred,
                source=note().source,
                expected_version=first_versions[deal_id],
                actor="test",
            ).version


def run_threads(target, chunks) -> None:
    errors = []

    def run(chunk):
        try:
            target(chunk)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []


def test_appends_from_four_threads_to_fifty_deals_are_all_projected(workers):
    workers("w1")
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(50))
    deal_ids = list(versions)
    chunks = [deal_ids[i::4] for i in range(4)]
    run_threads(lambda chunk: append_notes(chunk, 3, versions), chunks)
    wait_until_projected()
    assert_every_projection_equals_replay()


def test_two_workers_project_two_hundred_deals_without_lost_or_doubled_work(workers):
    one, two = workers("one"), workers("two", beat=False)
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(200))
    append_notes(list(versions), 1, versions)
    wait_until_projected()
    assert_every_projection_equals_replay()
    assert_nothing_projected_twice(one, two)
    per_worker = [len(PROJECTED.findall(w.log())) for w in (one, two)]
    assert all(count > 0 for count in per_worker), per_worker


def test_a_worker_killed_while_projecting_is_healed_by_the_next_workers_sweep(workers):
    """SIGKILL a worker, beat and all, while both its pool processes are half-way through a
    projection; append nothing after. The tasks it held stay unacknowledged in Redis (until the
    visibility timeout, an hour away), so the next worker's beat sweep is what heals them."""
    victim = workers("victim")
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(20))
    wait_until_projected()
    with read_models_held() as blocked_projections:
        append_notes(list(versions), 1, versions)
        killed_backends = blocked_projections(2)
        victim.kill()
    wait_until_gone(killed_backends)
    assert projector.projection_lag() == 20

    successor = workers("successor")
    wait_until_projected()
    assert_every_projection_equals_replay()
    assert_nothing_projected_twice(victim, successor)


def test_tasks_of_killed_pool_processes_are_redelivered_without_any_sweep(workers):
    """SIGKILL the pool processes while each is half-way through a projection; the worker's
    main process puts their tasks back on the queue (acks_late, reject_on_worker_lost), and its
    new pool processes project them. No beat runs, and nothing is appended after the kill."""
    worker = workers("w", beat=False)
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(20))
    wait_until_projected()
    with read_models_held() as blocked_projections:
        append_notes(list(versions), 1, versions)
        blocked_projections(2)
        worker.kill_children()
    wait_until_projected()
    assert_every_projection_equals_replay()
    assert worker.process.poll() is None
    # The main process logs each lost pool process when it reaps it, which may come after the
    # redelivered tasks have run: wait for both lines, then count them.
    lost = re.compile(r"WorkerLostError\(.Worker exited prematurely: signal 9")
    deadline = time.monotonic() + 60
    while len(lost.findall(worker.log())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(lost.findall(worker.log())) == 2
    assert_nothing_projected_twice(worker)


def test_appends_succeed_while_redis_is_down_and_projections_catch_up_by_themselves(workers):
    worker = workers("w")
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(10))
    wait_until_projected()
    # Idle first: a worker holding an unacknowledged message (a task running, or a retry
    # waiting for its countdown) when the broker goes away can die restoring it, a kombu bug
    # (celery/kombu#970 and kin); in production its supervisor restarts it (compose:
    # `restart: unless-stopped`), which this test does not model.
    worker.wait_until_idle()
    services_dir = os.environ["SERVICES_DIR"]
    subprocess.run([ROOT / "scripts/services.sh", "stop-redis", services_dir], check=True)
    try:
        started = time.monotonic()
        append_notes(list(versions), 2, versions)
        assert time.monotonic() - started < 60
        assert projector.projection_lag() == 20
    finally:
        subprocess.run([ROOT / "scripts/services.sh", "start-redis", services_dir], check=True)
    wait_until_projected()
    assert_every_projection_equals_replay()


def test_a_transaction_that_rolls_back_dispatches_nothing(workers):
    """The deal opened in a transaction that rolls back never reaches the worker, not even as
    a task that would find nothing to do; the deal appended to stays as it was."""
    worker = workers("w")
    orgs = make_organisations()
    kept, version = deal_with_events(orgs, notes=0)
    wait_until_projected()
    undone = []

    def record_then_fail():
        with transaction.atomic():
            undone.append(deal_with_events(orgs, notes=1)[0])
            services.record_event(
                deal_id=kept,
                event_type="NoteAdded",
                data={"text": "never"},
                occurred=note().occurred,
                source=note().source,
                expected_version=version,
                actor="test",
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        record_then_fail()
    # Published after anything the rollback could have sent, so received after it too.
    marker, _ = deal_with_events(orgs, notes=0)
    wait_until_projected()
    worker.wait_until_idle()
    assert (str(marker), "1") in PROJECTED.findall(worker.log())
    assert str(undone[0]) not in worker.log()
    assert Stream.objects.filter(id=undone[0]).exists() is False
    assert DealState.objects.get(deal_id=kept).version == version
    assert_every_projection_equals_replay()
