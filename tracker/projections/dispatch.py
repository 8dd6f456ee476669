"""Schedules projections after committed appends; the deals app stays free of Celery.

Publishing happens off the request thread: an append has committed and is safe whatever the
broker does, and a broker that is down must not make writers wait (a refused connection costs
the Redis client several seconds of retries). Dispatches coalesce twice. In this process, the
deals committed while the publisher is busy go out together. Across processes, they join the
waiting deals kept in Redis (`pending`), and a `project_pending` task is sent only when none is
already coming: a burst of appends from many web processes costs one task and a few
transactions, not one each, and a deal appended to twice is projected once.

A dispatch lost to a broker that is down, or to a crash, is healed by the sweep within
`PROJECTION_SWEEP_SECONDS`. After a failure, publishing pauses for a few seconds rather than
queueing attempts that would fail the same way.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from tracker.eventstore.digest import latest_digest, take_digest
from tracker.eventstore.models import LedgerDigest

from . import pending, projector

log = logging.getLogger(__name__)

PAUSE_AFTER_FAILURE_SECONDS = 5.0
_HEAL_BATCH = 100
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-dispatch")
_paused_until = 0.0
_lock = threading.Lock()
_pending: dict[str, int] = {}
"""Deals committed but not yet published, at their highest version; guarded by `_lock`."""


def _start_afresh() -> None:
    """In a forked child: the parent's publisher thread does not exist there, and a pool that
    believes it does would queue every dispatch forever (gunicorn and Celery both fork)."""
    global _publisher, _lock, _paused_until
    _publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-dispatch")
    _lock = threading.Lock()
    _pending.clear()
    _paused_until = 0.0


os.register_at_fork(after_in_child=_start_afresh)


def dispatch_after_commit(sender: Any, *, deal_id: UUID, version: int = 0, **kwargs: Any) -> None:
    """Connected to `deals.signals.events_recorded`, sent in the append's transaction or after it.

    Robust: the append has committed, so whatever dispatching raises is logged, never
    answered. The callback is a named function, not a `functools.partial`: Django 5.2 logs a
    robust callback's failure with `func.__qualname__`, which a partial lacks, and the
    AttributeError from that log line escaped to the request as a 500.
    """
    deal = str(deal_id)

    def project_after_commit() -> None:
        dispatch(deal, version)

    transaction.on_commit(project_after_commit, robust=True)


def dispatch(deal_id: str, version: int = 0) -> None:
    if _embedded():
        # Embedded mode: project now, so the next read sees the append.
        _project_in_process([UUID(deal_id)])
        return
    if time.monotonic() < _paused_until:
        return
    with _lock:
        # Only the first deal of a batch submits: the publish it queued takes every deal
        # added until it runs.
        first = not _pending
        _pending[deal_id] = max(version, _pending.get(deal_id, 0))
    if first:
        # The copied context carries the first request's id into the task's logs.
        _publisher.submit(contextvars.copy_context().run, _publish_pending)


def heal_if_embedded(deal_id: UUID | None = None) -> None:
    """Embedded mode: project now whatever fell behind (one deal, or every deal).

    There is no worker to retry and no beat to sweep there, so the reads that show read
    models call this first: a projection that failed after its append committed is made up
    at the next read, not at the deal's next append. With a broker, the sweep does this.
    """
    if not _embedded():
        return
    try:
        behind = projector.deals_behind(limit=_HEAL_BATCH, deal_id=deal_id)
    except DatabaseError:
        return  # The read itself will report the database.
    if behind:
        _project_in_process(behind)


def embedded_digest() -> LedgerDigest | None:
    """Embedded mode: the latest ledger digest, taken afresh when the beat would have taken
    one by now; None with a broker, whose beat takes them.

    There is no beat in the embedded mode, so without this an auditor of the demo would be
    handed the first digest for ever, committing to none of the events recorded since.
    """
    if not _embedded():
        return None
    latest = latest_digest()
    period = timedelta(seconds=settings.LEDGER_DIGEST_SECONDS)
    if latest is None or timezone.now() - latest.taken_at >= period:
        return take_digest()
    return latest


def _project_in_process(deal_ids: list[UUID]) -> None:
    """Project in the calling process. Runs after a commit, so nothing here may fail the
    request that committed: an error is logged and left to the next read's healing."""
    try:
        projector.project_deals(deal_ids, wait=True)
    except Exception:
        log.warning(
            "projection of %s failed; the next read retries it",
            ", ".join(map(str, deal_ids)),
            exc_info=True,
            extra={"deal_id": str(deal_ids[0]) if len(deal_ids) == 1 else None},
        )


def _embedded() -> bool:
    from .tasks import project_deals

    return bool(project_deals.app.conf.task_always_eager)


def _publish_pending() -> None:
    from .tasks import project_deals, project_pending

    global _paused_until
    with _lock:
        versions = dict(_pending)
        _pending.clear()
    if not versions or time.monotonic() < _paused_until:
        return
    try:
        if not pending.available():
            project_deals.delay(sorted(versions))
        elif pending.mark(versions):
            project_pending.delay()
    except Exception:
        with _lock:
            _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        log.warning(
            "broker unavailable: projection of %s deal(s) left to the sweep",
            len(versions),
            extra={"deal_id": next(iter(versions)) if len(versions) == 1 else None},
        )
