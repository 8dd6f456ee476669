"""Real `celery worker` processes on the test's own Redis keep every read model current."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection, transaction

from tests.projections.builders import deal_with_events, make_organisations, note
from tracker.deals import services
from tracker.deals.reducer import deal_to_json
from tracker.deals.replay import state as replay_state
from tracker.eventstore.models import Stream
from tracker.projections import projector
from tracker.projections.models import DealState
from tracker.projections.tasks import sweep_projections

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]
ROOT = Path(__file__).resolve().parents[2]
PROJECTED = re.compile(r"deal (\S+) projected at version (\d+)")


def wait_until_projected(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if projector.projection_lag() == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"projection lag still {projector.projection_lag()} after {timeout}s")


def assert_every_projection_equals_replay() -> None:
    versions = dict(Stream.objects.values_list("id", "version"))
    rows = {row.deal_id: row for row in DealState.objects.all()}
    assert set(rows) == set(versions)
    for deal_id, version in versions.items():
        assert rows[deal_id].version == version
        assert rows[deal_id].state == deal_to_json(replay_state(deal_id).state)


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
    one, two = workers("one"), workers("two")
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(200))
    append_notes(list(versions), 1, versions)
    wait_until_projected()
    assert_every_projection_equals_replay()
    projected = Counter(match for w in (one, two) for match in PROJECTED.findall(w.log()))
    doubled = [key for key, count in projected.items() if count > 1]
    assert doubled == []
    per_worker = [len(PROJECTED.findall(w.log())) for w in (one, two)]
    assert all(count > 0 for count in per_worker), per_worker


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing_after_restart(workers):
    worker = workers("victim")
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(60))
    deal_ids = list(versions)
    killer = threading.Timer(0.5, worker.kill)
    killer.start()
    append_notes(deal_ids, 3, versions)
    killer.join()
    assert worker.process.poll() is not None
    append_notes(deal_ids, 1, versions)
    worker.start()
    sweep_projections()
    wait_until_projected()
    assert_every_projection_equals_replay()


def test_appends_succeed_while_redis_is_down_and_projections_catch_up_by_themselves(workers):
    workers("beat", beat=True)
    orgs = make_organisations()
    versions = dict(deal_with_events(orgs, notes=0) for _ in range(10))
    wait_until_projected()
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


def test_nothing_is_projected_for_a_transaction_that_rolls_back(workers):
    workers("w")
    deal_id, version = deal_with_events(make_organisations(), notes=0)
    wait_until_projected()

    def record_then_fail():
        with transaction.atomic():
            services.record_event(
                deal_id=deal_id,
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
    time.sleep(1)
    assert DealState.objects.get(deal_id=deal_id).version == version
    assert projector.projection_lag() == 0
