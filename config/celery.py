"""The Celery application; settings are read from Django's under the CELERY_ namespace."""

from __future__ import annotations

import os

from celery import Celery

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
    }
}
