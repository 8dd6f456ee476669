"""The analysts' mapping of a register's names to organisations, loaded from a CSV file.

Columns: `register,name,organisation,kind,country`. A row maps `name` to the organisation
called `organisation`; when none has that name, the file's kind and country create it, and
the result says so: the file is the analyst's explicit statement, never a guess by the import.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.db import transaction

from .. import history
from ..models import Organisation, RegisterName


@dataclass
class NamesLoaded:
    mapped: int = 0
    created: list[str] = field(default_factory=list)


@transaction.atomic
def load_names(text: str, *, actor: str = "load_register_names") -> NamesLoaded:
    """Map the file's names; organisations it creates are recorded as `actor`'s, via a
    command, as the admin and the API record theirs."""
    loaded = NamesLoaded()
    with history.edited_by(actor, via="command"):
        _load(text, loaded)
    return loaded


def _load(text: str, loaded: NamesLoaded) -> None:
    for row in csv.DictReader(io.StringIO(text)):
        organisation = Organisation.objects.filter(name=row["organisation"]).first()
        if organisation is None:
            organisation = Organisation(
                name=row["organisation"], kind=row["kind"], country=row["country"]
            )
            organisation.full_clean()
            organisation.save()
            loaded.created.append(organisation.name)
        RegisterName.objects.update_or_create(
            register=row["register"], name=row["name"], defaults={"organisation": organisation}
        )
        loaded.mapped += 1
