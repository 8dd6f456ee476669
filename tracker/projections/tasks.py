"""Celery tasks. They call the projector (or `pending`) and turn what it left into a retry or a
new task; running twice is harmless."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from tracker.eventstore.digest import take_digest

from . import pending, projector
from .projector import Left

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

BUDGET_SECONDS = 20.0
"""How long one catch-up task projects before it hands the rest to a new task."""


def _retry_while_held(task: Any, what: str, **options: Any) -> None:
    """Retry shortly while another worker holds the deals; then leave them, quietly.

    Giving up is no failure: the holder projects them, and the sweep catches up whatever a
    holder read too early. So it is logged at INFO, not raised as MaxRetriesExceededError.
    """
    if task.request.retries >= task.max_retries:
        log.info("%s still held by another worker: left to it and to the sweep", what)
        return
    raise task.retry(countdown=0.2 * (task.request.retries + 1), **options)


@shared_task(**_PROJECTING)
def project_deals(self, deal_ids: list[str]) -> dict[str, int]:
    """Project these deals in one transaction (the dispatcher sends the deals a burst of
    appends touched together). Retries the ones another worker holds, and a database error."""
    results = projector.project_deals([UUID(deal_id) for deal_id in deal_ids])
    busy = [str(result.deal_id) for result in results if result.outcome is projector.Outcome.BUSY]
    counts = Counter(result.outcome.value for result in results)
    if busy:
        # The holder may have read the stream before this task's event committed.
        _retry_while_held(self, f"{len(busy)} deal(s)", args=[busy])
    return dict(counts)


@shared_task(**_PROJECTING)
def project_pending(self) -> int:
    """Project the deals waiting in Redis (`pending.project_waiting`).

    An entry is removed only after its deal's projection has committed at or past its version,
    so this task, redelivered after its worker died, finds what it had not finished. When only
    deals another worker holds are left, it retries shortly; after its time budget, the rest
    goes to a new task.
    """
    pending.unschedule()
    projected, left = pending.project_waiting(BUDGET_SECONDS)
    if left is Left.HELD:
        # The holder may have read its stream before the append that made it wait.
        _retry_while_held(self, "waiting deals")
    if left is Left.TIME:
        project_pending.delay()
    return projected


@shared_task(**_PROJECTING)
def project_deal(self, deal_id: str) -> str:
    """One deal: what the dispatcher sent before batches (such tasks may still be queued)."""
    result = projector.project_deal(UUID(deal_id))
    if result.outcome is projector.Outcome.BUSY:
        _retry_while_held(self, f"deal {deal_id}")
    return result.outcome.value


@shared_task(**_PROJECTING)
def project_behind(self) -> int:
    """Project the deals that are behind, a batch per transaction, until none is left free.

    Workers running it at once take disjoint batches (SKIP LOCKED). After its time budget it
    hands the rest to a new task rather than holding one worker for a long backlog.
    """
    projected, left = projector.catch_up_behind(BUDGET_SECONDS)
    if left is Left.TIME:
        project_behind.delay()
    return projected


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
