"""The Celery application; settings are read from Django's under the CELERY_ namespace."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The sweep heals dispatches lost to a broker outage or a killed worker; it is cheap (one
# indexed query) so it runs every few seconds.
app.conf.beat_schedule = {
    "sweep-projections": {
        "task": "tracker.projections.tasks.sweep_projections",
        "schedule": float(os.environ.get("PROJECTION_SWEEP_SECONDS", "5")),
    },
    # A digest commits to every stream's head, so a later rewrite of history, even with the
    # hashes recomputed, no longer matches it.
    "take-ledger-digest": {
        "task": "tracker.projections.tasks.take_ledger_digest",
        "schedule": float(os.environ.get("LEDGER_DIGEST_SECONDS", "900")),
    },
}

task_log = logging.getLogger("tracker.tasks")
_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str, **kwargs: Any) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id: str, task: Any, args: tuple, state: str, **kwargs: Any) -> None:
    """One record per task run, as the access log has one per request."""
    started = _started.pop(task_id, None)
    deal_id = args[0] if task.name.endswith(".project_deal") and args else None
    task_log.info(
        "%s %s",
        task.name,
        state,
        extra={
            "task": task.name,
            "task_id": task_id,
            "state": state,
            "deal_id": deal_id,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        },
    )
