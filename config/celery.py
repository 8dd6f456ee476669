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

# The beat schedule is CELERY_BEAT_SCHEDULE in config/settings.py, read from the environment.

task_log = logging.getLogger("tracker.tasks")
_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str, **kwargs: Any) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id: str, task: Any, args: tuple, state: str, **kwargs: Any) -> None:
    """One record per task run, as the access log has one per request."""
    started = _started.pop(task_id, None)
    deal_id = None
    if args and task.name.endswith(".project_deal"):
        deal_id = args[0]
    elif args and task.name.endswith(".project_deals") and len(args[0]) == 1:
        deal_id = args[0][0]
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
