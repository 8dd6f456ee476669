"""Recompute every read model from the events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from tracker.eventstore.store import iter_stream_ids
from tracker.projections import projector


class Command(BaseCommand):
    help = (
        "Recompute every deal's read model from its events. Each deal is replaced in its own "
        "short transaction, so writers are never blocked and readers keep an answer; with "
        "--drop every read-model row is deleted first."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--drop", action="store_true", help="delete every read-model row before rebuilding"
        )

    def handle(self, *args: Any, drop: bool = False, **options: Any) -> None:
        if drop:
            self.stdout.write(f"Dropped the read models of {projector.reset()} deals.")
        deal_ids = list(iter_stream_ids())
        events = 0
        for deal_id in tqdm(deal_ids, desc="deals", unit="deal", file=self.stderr._out):
            events += projector.project_deal(deal_id, force=True, wait=True).version
        self.stdout.write(
            self.style.SUCCESS(f"Rebuilt {len(deal_ids)} deals from {events} events.")
        )
