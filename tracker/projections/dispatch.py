"""Sends `project_deal` after each committed append; the deals app stays free of Celery.

Publishing happens off the request thread: an append has committed and is safe whatever the
broker does, and a broker that is down must not make writers wait (a refused connection costs
the Redis client several seconds of retries). A dispatch lost that way, or to a crash, is
healed by the sweep within `PROJECTION_SWEEP_SECONDS`. After a failure, publishing pauses for
a few seconds rather than queueing attempts that would fail the same way.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from uuid import UUID

from django.db import transaction

log = logging.getLogger(__name__)

PAUSE_AFTER_FAILURE_SECONDS = 5.0
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-dispatch")
_paused_until = 0.0
_lock = threading.Lock()


def dispatch_after_commit(sender: Any, *, deal_id: UUID, **kwargs: Any) -> None:
    """Connected to `deals.signals.events_recorded`, which fires inside the append's transaction."""
    transaction.on_commit(partial(dispatch, str(deal_id)), robust=True)


def dispatch(deal_id: str) -> None:
    from .tasks import project_deal as project_deal_task

    if project_deal_task.app.conf.task_always_eager:
        # Embedded mode: project now, so the next read sees the append.
        project_deal_task.delay(deal_id)
        return
    if time.monotonic() < _paused_until:
        return
    # The copied context carries the request id into the task's logs.
    _publisher.submit(contextvars.copy_context().run, _publish, project_deal_task, deal_id)


def _publish(task: Any, deal_id: str) -> None:
    global _paused_until
    if time.monotonic() < _paused_until:
        return
    try:
        task.delay(deal_id)
    except Exception:
        with _lock:
            _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        log.warning(
            "broker unavailable: projection of deal %s left to the sweep",
            deal_id,
            extra={"deal_id": deal_id},
        )
