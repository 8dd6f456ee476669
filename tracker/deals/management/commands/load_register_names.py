"""`manage.py load_register_names FILE`: map a register's names to organisations (names.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracker.deals.registers.names import load_names


class Command(BaseCommand):
    help = (
        "Map a register's names to organisations from a CSV file with the columns "
        "register,name,organisation,kind,country."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            loaded = load_names(options["file"].read_text(encoding="utf-8"))
        except (OSError, KeyError, ValidationError) as error:
            raise CommandError(f"{options['file']}: {error}") from None
        self.stdout.write(f"{loaded.mapped} names mapped")
        for name in loaded.created:
            self.stdout.write(f"organisation created: {name}")
