"""Check the whole ledger: every stream's hash chain and every stored digest."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tracker.eventstore.digest import verify_ledger


class Command(BaseCommand):
    help = (
        "Recompute every stream's hash chain and check every stored ledger digest: its link "
        "to the previous digest, its hash, and that each stream's event at the version it "
        "recorded still has the hash it recorded. Exits 1 naming each failure."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default="default", help="database alias to check")

    def handle(self, *args: Any, database: str = "default", **options: Any) -> None:
        result = verify_ledger(using=database)
        summary = f"{result.streams} streams, {result.events} events, {result.digests} digests"
        if result.valid:
            self.stdout.write(self.style.SUCCESS(f"OK {summary}"))
            return
        for problem in result.problems:
            self.stdout.write(f"FAILED {problem}")
        raise CommandError(f"{len(result.problems)} problems in {summary}")
