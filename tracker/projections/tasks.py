"""Celery tasks. They take ids, call the projector and nothing else; running twice is harmless."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from tracker.eventstore.digest import take_digest

from . import pending, projector
from .projector import Outcome

log = logging.getLogger(__name__)

# Bounded: a task retried this often gives up, and the sweep picks its deals up again later.
MAX_RETRIES = 5


# A database error is retried after a random wait of up to 1, 2, 4 ... seconds (at most 30): the
# jitter spreads the retries of many deals that failed together. acks_late with
# reject_on_worker_lost: a task whose process dies is redelivered, and its transaction, never
# committed, is simply done again.
_PROJECTING = dict(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    soft_time_limit=60,
    time_limit=90,
)

SWEEP_FAN_OUT = 4
"""At most this many `project_behind` tasks per sweep: enough for every worker process of a
small deployment to take batches at once; each takes batches until none is left."""

BEHIND_BUDGET_SECONDS = 20.0


@shared_task(**_PROJECTING)
def project_deals(self, deal_ids: list[str]) -> dict[str, int]:
    """Project these deals in one transaction (the dispatcher sends the deals a burst of
    appends touched together). Retries the ones another worker holds, and a database error."""
    results = projector.project_deals([UUID(deal_id) for deal_id in deal_ids])
    busy = [str(result.deal_id) for result in results if result.outcome is projector.Outcome.BUSY]
    counts = Counter(result.outcome.value for result in results)
    _log_projected(results)
    if busy:
        # The holder may have read the stream before this task's event committed.
        raise self.retry(args=[busy], countdown=0.2 * (self.request.retries + 1))
    return dict(counts)


@shared_task(**_PROJECTING)
def project_pending(self) -> int:
    """Project the deals waiting in Redis (see `pending`), a batch per transaction.

    An entry is removed only after its deal's projection has committed at or past its version,
    so this task, redelivered after its worker died, finds what it had not finished. When only
    deals another worker holds are left, it retries shortly; after its time budget, the rest
    goes to a new task.
    """
    pending.unschedule()
    deadline = time.monotonic() + BEHIND_BUDGET_SECONDS
    projected = 0
    while deal_ids := pending.take(projector.BATCH):
        results = projector.project_deals(deal_ids)
        done = _log_projected(results)
        projected += done
        settled = {r.deal_id: _settled(r) for r in results if r.outcome is not Outcome.BUSY}
        if not pending.done(settled) and not done:
            # Every deal taken is held by another worker, which may have read its stream
            # before the append that made it wait: look again once it is likely free.
            raise self.retry(countdown=0.2 * (self.request.retries + 1))
        if time.monotonic() > deadline:
            project_pending.delay()
            break
    return projected


@shared_task(**_PROJECTING)
def project_deal(self, deal_id: str) -> str:
    """One deal: what the dispatcher sent before batches (such tasks may still be queued)."""
    result = projector.project_deal(UUID(deal_id))
    if result.outcome is projector.Outcome.BUSY:
        raise self.retry(countdown=0.2 * (self.request.retries + 1))
    return result.outcome.value


@shared_task(**_PROJECTING)
def project_behind(self) -> int:
    """Project the deals that are behind, a batch per transaction, until none is left free.

    Workers running it at once take disjoint batches (SKIP LOCKED). After its time budget it
    hands the rest to a new task rather than holding one worker for a long backlog.
    """
    deadline = time.monotonic() + BEHIND_BUDGET_SECONDS
    projected = 0
    while True:
        batch = projector.project_behind(limit=projector.BATCH)
        done = _log_projected(batch)
        projected += done
        if not done:
            break  # None free was behind, or only deals that cannot be replayed (logged).
        if time.monotonic() > deadline:
            project_behind.delay()
            break
    return projected


def _settled(result: projector.Projection) -> int:
    """The version up to which a deal's waiting entry is settled by this result."""
    if result.outcome is Outcome.FAILED or result.version == 0:
        # Logged and left to the sweep, or a deal with no stream (nothing will ever come):
        # an entry kept would only come back here.
        return 2**31 - 1
    return result.version


def _log_projected(results: list[projector.Projection]) -> int:
    """One line per batch naming each deal projected and its version (`id@version`), so that
    an operator, or a test, can tell which worker projected what; returns how many."""
    projected = [r for r in results if r.outcome is projector.Outcome.PROJECTED]
    if projected:
        log.info(
            "%s deal(s) projected: %s",
            len(projected),
            " ".join(f"{r.deal_id}@{r.version}" for r in projected),
            extra={"deal_id": str(projected[0].deal_id) if len(projected) == 1 else None},
        )
    return len(projected)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, expires=60)
def sweep_projections() -> int:
    """Start catching up every deal whose stream is ahead of its read model: heals lost
    dispatches. Returns how many deals were behind (at most PROJECTION_SWEEP_BATCH counted)."""
    behind = len(projector.deals_behind(limit=getattr(settings, "PROJECTION_SWEEP_BATCH", 1000)))
    for _ in range(min(SWEEP_FAN_OUT, math.ceil(behind / projector.BATCH))):
        project_behind.delay()
    return behind


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360, expires=600)
def take_ledger_digest() -> int:
    """Take the next ledger digest. A repeated run adds one with no changed heads: harmless."""
    return take_digest().sequence
