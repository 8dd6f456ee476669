"""`manage.py import_register FILE [--edition DATE]`: import an edition of SIPRI's register."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tracker.deals.registers.importer import ImportRefused, import_register


class Command(BaseCommand):
    help = (
        "Import one edition of SIPRI's trade register (the CSV export or the older "
        "semicolon-separated text export): deals opened, what changed since the last edition "
        "as corrections and retractions citing this one, and a report of refused rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--edition",
            type=date.fromisoformat,
            help="The edition's publication date, YYYY-MM-DD (default: the file's own date).",
        )
        parser.add_argument("--actor", default="import_register", help="Recorded as the actor.")
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar (it goes to stderr)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            content = path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        bar = None if options["no_progress"] else tqdm(unit="deal", desc=path.name, leave=False)

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        try:
            report = import_register(
                content,
                actor=options["actor"],
                file_name=path.name,
                edition=options["edition"],
                progress=progress,
            )
        except ImportRefused as refused:
            raise CommandError(f"{path}: refused: {refused}") from None
        finally:
            if bar is not None:
                bar.close()
        for line in report.lines():
            self.stdout.write(line)
