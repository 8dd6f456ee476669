"""`project_deals` retries the deals another worker holds and a database error (Celery's
`autoretry_for` with backoff), a bounded number of times, in-process and on a real worker;
`project_behind` and the sweep catch up every deal that is behind, in batches."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from celery.exceptions import Retry
from django.db import ProgrammingError

from tracker.deals.replay import state as replay_state
from tracker.eventstore.models import Stream
from tracker.projections import pending, projector
from tracker.projections.models import DealState
from tracker.projections.tasks import (
    MAX_RETRIES,
    project_behind,
    project_deal,
    project_deals,
    project_pending,
    sweep_projections,
)

from .builders import another_connection, deal_with_events, make_organisations, read_models_missing
from .conftest import WorkerProcess, forget_waiting_deals

pytestmark = pytest.mark.django_db(transaction=True)
TABLE = DealState._meta.db_table
# The line config/celery.py logs after each run of a task.
RETRIED = re.compile(r"tracker\.projections\.tasks\.project_(?:deals|pending) RETRY")


@contextlib.contextmanager
def row_held(deal_id: UUID) -> Iterator[None]:
    """Lock the deal's read-model row from another connection, as a worker projecting it does."""
    holder = another_connection()
    try:
        locked = holder.execute(
            f'SELECT deal_id FROM "{TABLE}" WHERE deal_id = %s FOR UPDATE', [deal_id]
        ).fetchall()
        assert len(locked) == 1
        yield
    finally:
        holder.rollback()
        holder.close()


def put_behind(deal_id: UUID) -> None:
    DealState.objects.filter(deal_id=deal_id).update(version=0, state=None)


def assert_projected(deal_id: UUID) -> None:
    """The read model is at the stream's version (test_projector checks it equals replay)."""
    row = DealState.objects.get(deal_id=deal_id)
    assert row.version == Stream.objects.get(id=deal_id).version
    assert row.state["title"] == replay_state(deal_id).state.title


def wait_for(pattern: re.Pattern[str], worker: WorkerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pattern.search(worker.log()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no {pattern.pattern!r} in {timeout}s:\n{worker.log()}")


def wait_until_projected(deal_id: UUID, timeout: float = 60) -> None:
    version = Stream.objects.get(id=deal_id).version
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if DealState.objects.filter(deal_id=deal_id, version=version).exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"deal {deal_id} not projected at version {version} in {timeout}s")


class TestInProcess:
    """Eager runs (tests, and the embedded mode's sweep): a retry is raised to the caller as
    Celery's `Retry`, carrying the error and the countdown a worker would wait."""

    def test_projects_a_deal_behind_and_a_second_run_finds_it_current(self):
        deal_id, _ = deal_with_events(make_organisations(), notes=2)
        put_behind(deal_id)

        first = project_deals.apply(args=[[str(deal_id)]])
        second = project_deals.apply(args=[[str(deal_id)]])

        assert (first.get(), second.get()) == ({"projected": 1}, {"current": 1})
        assert_projected(deal_id)

    @pytest.mark.parametrize("retries", range(MAX_RETRIES))
    def test_a_database_error_is_retried_after_an_exponential_jittered_wait(self, retries):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)
        put_behind(deal_id)

        with read_models_missing(), pytest.raises(Retry) as retry:
            project_deals.apply(args=[[str(deal_id)]], retries=retries)

        assert isinstance(retry.value.exc, ProgrammingError)
        assert 0 <= retry.value.when <= 2**retries
        assert project_deals.apply(args=[[str(deal_id)]]).get() == {"projected": 1}
        assert_projected(deal_id)

    def test_the_waits_after_database_errors_are_spread_by_jitter(self):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)
        waits = []

        with read_models_missing():
            for _ in range(30):
                with pytest.raises(Retry) as retry:
                    project_deals.apply(args=[[str(deal_id)]], retries=3)
                waits.append(retry.value.when)

        assert all(0 <= wait <= 8 for wait in waits), waits
        assert len(set(waits)) > 1, waits

    def test_a_database_error_is_raised_when_the_retries_run_out(self):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)
        put_behind(deal_id)

        with read_models_missing(), pytest.raises(ProgrammingError, match="does not exist"):
            project_deals.apply(args=[[str(deal_id)]], retries=MAX_RETRIES)

    @pytest.mark.postgres
    def test_a_deal_another_worker_holds_is_retried_not_failed(self):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)
        put_behind(deal_id)

        with row_held(deal_id):
            with pytest.raises(Retry) as first:
                project_deals.apply(args=[[str(deal_id)]])
            with pytest.raises(Retry) as third:
                project_deals.apply(args=[[str(deal_id)]], retries=2)
            # Then it leaves the deal to its holder and the sweep, with no error.
            given_up = project_deals.apply(args=[[str(deal_id)]], retries=MAX_RETRIES)
            assert given_up.successful()
            assert given_up.get() == {"busy": 1}

        assert (first.value.exc, first.value.when) == (None, pytest.approx(0.2))
        assert (third.value.exc, third.value.when) == (None, pytest.approx(0.6))
        assert DealState.objects.get(deal_id=deal_id).version == 0
        assert project_deals.apply(args=[[str(deal_id)]]).get() == {"projected": 1}
        assert_projected(deal_id)

    @pytest.mark.postgres
    def test_a_batch_projects_the_free_deals_and_retries_only_the_held_one(self):
        orgs = make_organisations()
        free, held = (deal_with_events(orgs, notes=1)[0] for _ in range(2))
        put_behind(free)
        put_behind(held)

        with row_held(held), pytest.raises(Retry) as retry:
            project_deals.apply(args=[[str(free), str(held)]])

        assert retry.value.sig.args == ([str(held)],)
        assert_projected(free)
        assert DealState.objects.get(deal_id=held).version == 0

    def test_the_old_one_deal_task_still_projects(self):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)
        put_behind(deal_id)
        assert project_deal.apply(args=[str(deal_id)]).get() == "projected"
        assert_projected(deal_id)


class TestCatchingUp:
    """Five deals behind, in batches of two, so that catching up takes several batches."""

    @pytest.fixture
    def deals(self, monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
        monkeypatch.setattr(projector, "BATCH", 2)
        orgs = make_organisations()
        deals = [deal_with_events(orgs, notes=1)[0] for _ in range(5)]
        for deal_id in deals:
            put_behind(deal_id)
        return deals

    @pytest.mark.postgres
    def test_project_behind_skips_the_deals_another_worker_holds(self, deals):
        with row_held(deals[0]):
            assert project_behind.apply().get() == 4
            assert DealState.objects.get(deal_id=deals[0]).version == 0

        assert project_behind.apply().get() == 1
        for deal_id in deals:
            assert_projected(deal_id)

    def test_the_sweep_catches_up_every_deal_that_is_behind(self, deals):
        assert sweep_projections.apply().get() == 5

        for deal_id in deals:
            assert_projected(deal_id)
        assert projector.projection_lag() == 0


@pytest.mark.postgres
@pytest.mark.redis
class TestWaitingDeals:
    """`project_pending` on the deals waiting in Redis, run in-process."""

    @pytest.fixture(autouse=True)
    def _empty(self):
        forget_waiting_deals()
        yield
        forget_waiting_deals()

    def test_projects_the_waiting_deals_and_forgets_them(self):
        orgs = make_organisations()
        deals = {
            deal_id: version for deal_id, version in (deal_with_events(orgs) for _ in range(3))
        }
        for deal_id in deals:
            put_behind(deal_id)
        pending.mark({str(deal_id): version for deal_id, version in deals.items()})

        assert project_pending.apply().get() == 3

        for deal_id in deals:
            assert_projected(deal_id)
        assert pending.waiting() == 0

    def test_an_entry_is_kept_until_a_projection_reaches_its_version(self):
        deal_id = uuid4()
        # Two appends' dispatches, the later arriving first: the entry keeps the higher one.
        pending.mark({str(deal_id): 5})
        pending.mark({str(deal_id): 4})

        # A projection that read the stream before the fifth event committed settles nothing.
        assert pending.done({deal_id: 4}) == 0
        assert pending.waiting() == 1
        assert pending.done({deal_id: 5}) == 1
        assert pending.waiting() == 0

    def test_a_deal_another_worker_holds_stays_waiting_and_is_retried(self):
        deal_id, version = deal_with_events(make_organisations())
        put_behind(deal_id)
        pending.mark({str(deal_id): version})

        with row_held(deal_id), pytest.raises(Retry) as retry:
            project_pending.apply()

        assert (retry.value.exc, retry.value.when) == (None, pytest.approx(0.2))
        assert pending.waiting() == 1
        assert DealState.objects.get(deal_id=deal_id).version == 0
        assert project_pending.apply().get() == 1
        assert pending.waiting() == 0


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(240)
class TestOnAWorker:
    """A real `celery worker` without beat, so that nothing but the task's retry projects."""

    def test_a_deal_another_worker_holds_is_projected_once_it_is_free(self, workers):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)  # dispatched, queued
        DealState.objects.bulk_create([DealState(deal_id=deal_id)], ignore_conflicts=True)

        with row_held(deal_id):
            worker = workers("busy", beat=False)
            wait_for(RETRIED, worker)

        wait_until_projected(deal_id)
        assert_projected(deal_id)

    def test_a_database_error_is_retried_with_backoff_until_the_database_is_back(self, workers):
        deal_id, _ = deal_with_events(make_organisations(), notes=1)  # dispatched, queued

        with read_models_missing():
            worker = workers("away", beat=False)
            # With no table to lock there is no busy row: the retry is the database error's.
            wait_for(RETRIED, worker)

        wait_until_projected(deal_id)
        assert_projected(deal_id)
