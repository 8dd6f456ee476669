"""Celery tasks. They take ids, call the projector and nothing else; running twice is harmless."""

from __future__ import annotations

import logging
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from tracker.eventstore.digest import take_digest

from . import projector

log = logging.getLogger(__name__)

# Bounded: a task retried this often gives up, and the sweep picks the deal up again later.
MAX_RETRIES = 5


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    # A database error is retried after a random wait of up to 1, 2, 4 ... seconds (at most 30):
    # the jitter spreads the retries of many deals that failed together.
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    soft_time_limit=60,
    time_limit=90,
)
def project_deal(self, deal_id: str) -> str:
    """Project one deal. Retries while another worker holds it or the database is away."""
    result = projector.project_deal(UUID(deal_id))
    if result.outcome is projector.Outcome.BUSY:
        # The holder may have read the stream before this task's event committed.
        raise self.retry(countdown=0.2 * (self.request.retries + 1))
    log.info(
        "deal %s %s at version %s",
        deal_id,
        result.outcome.value,
        result.version,
        extra={"deal_id": deal_id},
    )
    return result.outcome.value


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, expires=60)
def sweep_projections() -> int:
    """Dispatch every deal whose stream is ahead of its read model: heals lost dispatches."""
    behind = projector.deals_behind(limit=getattr(settings, "PROJECTION_SWEEP_BATCH", 1000))
    for deal_id in behind:
        project_deal.delay(str(deal_id))
    return len(behind)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360, expires=600)
def take_ledger_digest() -> int:
    """Take the next ledger digest. A repeated run adds one with no changed heads: harmless."""
    return take_digest().sequence
