"""Organisations and deals made through the services, as an analyst would make them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
from django.db import connection

from tracker.deals import services
from tracker.deals.models import Organisation
from tracker.projections.models import DealState

SOURCE = {"title": "Test report", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}


def make_organisations() -> list[Organisation]:
    suffix = uuid4().hex[:6]
    return [
        Organisation.objects.create(name=f"Buyer {suffix}", kind="government", country="TR"),
        Organisation.objects.create(name=f"Supplier {suffix}", kind="company", country="GB"),
    ]


def note(text: str = "a note", occurred: dict | None = None) -> services.ProposedEvent:
    return services.ProposedEvent(
        type="NoteAdded", data={"text": text}, occurred=occurred or OCCURRED, source=SOURCE
    )


def deal_with_events(orgs: list[Organisation], *, notes: int = 0) -> tuple[UUID, int]:
    """Open a contract deal between the two organisations and add `notes` notes."""
    appended = services.open_deal(
        title=f"Deal {uuid4().hex[:8]}",
        kind="contract",
        summary="",
        parties=[
            {"organisation": str(orgs[0].id), "role": "buyer"},
            {"organisation": str(orgs[1].id), "role": "supplier"},
        ],
        occurred={"date": "2025-01-01", "precision": "year"},
        source=SOURCE,
        actor="test",
    )
    version = appended.version
    if notes:
        version = services.record_events(
            deal_id=appended.stream_id,
            events=[note(f"note {n}") for n in range(notes)],
            expected_version=version,
            actor="test",
        ).version
    return appended.stream_id, version


def another_connection() -> psycopg.Connection:
    """A second connection to the test database, as another worker would hold: locks it takes
    are seen by this process's Django connection."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )


@contextlib.contextmanager
def read_models_missing() -> Iterator[None]:
    """Rename the read-model table for a while: every projection meanwhile fails with a real
    ProgrammingError, a DatabaseError, as against a database being restored."""
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{_TABLE}" RENAME TO "{_TABLE}_away"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{_TABLE}_away" RENAME TO "{_TABLE}"')


_TABLE = DealState._meta.db_table
