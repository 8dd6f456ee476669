"""Who changed an organisation, when, and what it was called at any moment.

Organisations are reference data edited in place, so their past lives in
`OrganisationRevision`: django-pghistory's triggers copy the row after every insert and update
(and before a delete) on PostgreSQL, with the time of the writing transaction and the
metadata of the `edited_by` block it ran in. Events name organisations by id; a replay as known
at K shows them by the names recorded at K with `organisation_names(ids, at=K)`.

pgtrigger installs no triggers on other databases: on SQLite (the embedded demo) nothing is
recorded, `revisions` is empty and the names are today's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import pghistory
from django.db import DEFAULT_DB_ALIAS, connections

from .models import Organisation, OrganisationRevision

TRACKED_FIELDS = ("name", "short_name", "kind", "country", "parent")


@dataclass(frozen=True, slots=True)
class OrganisationSnapshot:
    """An organisation's fields as they stood at one moment."""

    id: UUID
    name: str
    short_name: str
    kind: str
    country: str
    parent: UUID | None

    @property
    def label(self) -> str:
        """The name as the admin writes it, like `Organisation.__str__`."""
        return f"{self.name} ({self.short_name})" if self.short_name else self.name

    def values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "short_name": self.short_name,
            "kind": self.kind,
            "country": self.country,
            "parent": self.parent,
        }


@dataclass(frozen=True, slots=True)
class Revision:
    """One recorded change: `label` is insert, update, delete or baseline (the row as it was
    when history began); `changes` maps each changed field to (before, after)."""

    organisation_id: UUID
    at: datetime
    label: str
    actor: str
    via: str
    snapshot: OrganisationSnapshot
    changes: dict[str, tuple[Any, Any]]


def is_recorded(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the database records organisation history (PostgreSQL only)."""
    return connections[using].vendor == "postgresql"


@contextlib.contextmanager
def edited_by(actor: str, *, via: str, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Attribute the organisation writes made inside the block to `actor` (a username) and
    `via` (where the edit came from: "admin", "api", "seed", ...).

    On other databases than PostgreSQL this does nothing: pghistory passes the metadata by
    prefixing each statement with a PostgreSQL `set_config` call, which SQLite would refuse.
    """
    if not is_recorded(using):
        yield
        return
    with pghistory.context(actor=actor, via=via):
        yield


def revisions(organisation_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> list[Revision]:
    """Every recorded change of one organisation, oldest first."""
    rows = (
        OrganisationRevision.objects.using(using)
        .filter(pgh_obj_id=organisation_id)
        .select_related("pgh_context")
        .order_by("pgh_created_at", "pgh_id")
    )
    result: list[Revision] = []
    before: dict[str, Any] = {}
    for row in rows:
        snapshot = _snapshot(row)
        after = snapshot.values()
        if row.pgh_label == "delete":
            changes = {name: (value, None) for name, value in after.items()}
        else:
            changes = {
                name: (before.get(name), value)
                for name, value in after.items()
                if before.get(name) != value
            }
        metadata = row.pgh_context.metadata if row.pgh_context is not None else {}
        result.append(
            Revision(
                organisation_id=organisation_id,
                at=row.pgh_created_at,
                label=row.pgh_label,
                actor=str(metadata.get("actor", "")),
                via=str(metadata.get("via", "")),
                snapshot=snapshot,
                changes=changes,
            )
        )
        before = after
    return result


def organisations_at(
    ids: Iterable[UUID | str], *, at: datetime | None, using: str = DEFAULT_DB_ALIAS
) -> dict[UUID, OrganisationSnapshot]:
    """The organisations among `ids` as recorded at `at` (None: as they are now).

    An organisation is shown by its latest revision at or before `at`. With none that early
    (`at` precedes its creation, or the start of history) its earliest revision is the best
    knowledge; with no revision at all (SQLite, or a row no trigger saw) it is today's row.
    Ids of no organisation, present or deleted, are left out.
    """
    wanted = {_uuid(value) for value in ids} - {None}
    if not wanted:
        return {}
    found: dict[UUID, OrganisationSnapshot] = {}
    if at is not None:
        rows = (
            OrganisationRevision.objects.using(using)
            .filter(pgh_obj_id__in=wanted)
            .order_by("pgh_created_at", "pgh_id")
        )
        for row in rows:
            key = row.pgh_obj_id
            if key not in found or row.pgh_created_at <= at:
                found[key] = _snapshot(row)
    current = Organisation.objects.using(using).filter(id__in=wanted - found.keys())
    for org in current:
        found[org.id] = _snapshot(org)
    if at is None and len(found) < len(wanted):
        # Deleted since: their last revision holds the name they had.
        for row in (
            OrganisationRevision.objects.using(using)
            .filter(pgh_obj_id__in=wanted - found.keys())
            .order_by("pgh_created_at", "pgh_id")
        ):
            found[row.pgh_obj_id] = _snapshot(row)
    return found


def organisation_names(
    ids: Iterable[UUID | str], *, at: datetime | None, using: str = DEFAULT_DB_ALIAS
) -> dict[UUID, str]:
    """`name` of each organisation among `ids` as recorded at `at` (see `organisations_at`)."""
    return {key: org.name for key, org in organisations_at(ids, at=at, using=using).items()}


def organisations_in(
    value: Any, *, at: datetime | None, using: str = DEFAULT_DB_ALIAS
) -> dict[UUID, OrganisationSnapshot]:
    """The organisations named anywhere in a JSON value (a deal's state, an event's data), as
    recorded at `at`: every string that is a UUID is looked up, and the organisations kept."""
    return organisations_at(_uuid_strings(value), at=at, using=using)


def _uuid_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _uuid_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _uuid_strings(item)
    elif isinstance(value, str) and len(value) == 36:
        yield value


def _uuid(value: UUID | str) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except ValueError:
        return None


def _snapshot(row: Organisation | OrganisationRevision) -> OrganisationSnapshot:
    return OrganisationSnapshot(
        id=row.id,
        name=row.name,
        short_name=row.short_name,
        kind=row.kind,
        country=row.country,
        parent=row.parent_id,
    )
