"""The Celery application; settings are read from Django's under the CELERY_ namespace."""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set, and then closes them every 2 x this many tasks: a new PostgreSQL connection per
# task cost more than the projection it served (10 ms of 13). Connections are kept instead as
# Django keeps them between requests, by CONN_MAX_AGE and its health check (below).
app.conf.CELERY_DB_REUSE_MAX = 2**31
app.autodiscover_tasks()

# The beat schedule is CELERY_BEAT_SCHEDULE in config/settings.py, read from the environment.

task_log = logging.getLogger("tracker.tasks")
_started: dict[str, float] = {}


@worker_process_init.connect
def _freeze_startup_objects(**kwargs: Any) -> None:
    """Move what start-up made (modules, settings, the catalogue) out of the collector's
    reach: each full collection then walks only what tasks create, which in a projection
    batch of 200 deals was a large share of the time."""
    gc.freeze()


@task_prerun.connect
def _task_started(task_id: str, task: Any, **kwargs: Any) -> None:
    if not getattr(task.request, "is_eager", False):
        # What Django does as a request starts: a connection past CONN_MAX_AGE, or one that
        # failed its health check or broke (the database restarted), is closed and reopened.
        close_old_connections()
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
