"""Write the whole ledger as JSON Lines: `manage.py export_ledger > ledger.jsonl`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tracker.eventstore.export import export_ledger_lines


class Command(BaseCommand):
    help = (
        "Write every digest and every stream's events as JSON Lines to standard output (or "
        "--output FILE), in the format of docs/export-format.md; check it offline with "
        "`tools/verify_export.py --ledger FILE --digest SAVED-DIGEST.json`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", "-o", help="file to write instead of standard output")
        parser.add_argument("--database", default="default", help="database alias to export")

    def handle(
        self, *args: Any, output: str | None = None, database: str = "default", **options: Any
    ) -> None:
        # Bytes straight to the file: the lines are UTF-8 canonical JSON, never re-encoded.
        if output:
            with open(output, "wb") as stream:
                stream.writelines(export_ledger_lines(using=database))
            return
        target = self.stdout._out
        binary = getattr(target, "buffer", None)
        target.flush()
        for line in export_ledger_lines(using=database):
            if binary is not None:
                binary.write(line)
            else:
                target.write(line.decode("utf-8"))
        target.flush()
