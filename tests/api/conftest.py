"""Users with each role, clients with their tokens, and streams written through the store."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from rest_framework.test import APIClient

from tracker.api.auth import issue_token
from tracker.eventstore.store import NewEvent, RecordedEvent, append

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"
SOURCE = {
    "title": "Turkish drone makers court Europe",
    "publisher": "unknown",
    "url": None,
    "published_on": "2025-07-01",
}


def make_user(username: str, role: str | None = None, *, superuser: bool = False) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    if superuser:
        user.is_superuser = True
        user.save()
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def client_as() -> Callable[[str | None], APIClient]:
    """A client authenticated by token as a fresh user with that role.

    "anonymous": no credentials; "none": a user without a role; "superuser".
    """

    def build(role: str | None) -> APIClient:
        if role == "anonymous":
            return client_for(None)
        name = f"{role}-{uuid4().hex[:8]}"
        if role == "superuser":
            return client_for(make_user(name, superuser=True))
        return client_for(make_user(name, None if role == "none" else role))

    return build


def write_stream(
    count: int, stream_id: UUID | None = None, *, actor: str = "alice"
) -> list[RecordedEvent]:
    """A stream of `count` NoteAdded events, each appended on its own (one per version)."""
    stream_id = stream_id or uuid4()
    events: list[RecordedEvent] = []
    for n in range(count):
        appended = append(
            stream_id,
            [
                NewEvent(
                    type="NoteAdded",
                    data={"text": f'note {n} \u2013 café ✓ "quoted"\n'},
                    occurred={"date": "2025-06-01", "precision": "month"},
                    source=SOURCE,
                )
            ],
            expected_version=n,
            actor=actor,
        )
        events.extend(appended.events)
    return events


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Point the default connection at a port that refuses connections, as a down server does."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))  # bound but never listening: connections are refused
    connection = connections["default"]
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["PORT"] = str(blocker.getsockname()[1])
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved
        blocker.close()


def run_tool(export: bytes, tmp_path: Path, *, stdin: bool = False) -> subprocess.CompletedProcess:
    if stdin:
        args, given = [sys.executable, str(TOOL)], export
    else:
        path = tmp_path / "export.jsonl"
        path.write_bytes(export)
        args, given = [sys.executable, str(TOOL), str(path)], None
    # -I: isolated, so the tool cannot lean on this project being importable.
    return subprocess.run(
        [args[0], "-I", *args[1:]], input=given, capture_output=True, timeout=30, check=False
    )


# --- deals through the API -------------------------------------------------------------------

OCCURRED = {"date": "2025-06-01", "precision": "month"}


@pytest.fixture
def seeded() -> dict[str, UUID]:
    """DOMAIN.md's demo data, loaded by `seed_demo`: organisation and deal ids by name."""
    from django.core.management import call_command

    from tracker.deals.management.commands.seed_demo import ORGANISATIONS, deal_id, org_id

    call_command("seed_demo", stdout=io.StringIO())
    ids = {slug: org_id(slug) for slug, *_ in ORGANISATIONS}
    ids.update({f"deal{n}": deal_id(n) for n in range(1, 6)})
    return ids


def make_organisation(name: str = "Acme Aero", country: str = "GB", **extra: object) -> UUID:
    from tracker.deals.models import Organisation

    return Organisation.objects.create(name=name, kind="company", country=country, **extra).id


def opening(parties: list[UUID], *, title: str = "Acme and Beta: drones") -> dict:
    """The body of POST /deals/."""
    return {
        "title": title,
        "kind": "mou",
        "summary": "A test deal.",
        "parties": [{"organisation": str(p), "role": "partner"} for p in parties],
        "occurred": OCCURRED,
        "source": SOURCE,
    }


def note_event(text: str = "a note", expected_version: int | None = 1) -> dict:
    body = {"type": "NoteAdded", "data": {"text": text}, "occurred": OCCURRED, "source": SOURCE}
    if expected_version is not None:
        body["expected_version"] = expected_version
    return body


@pytest.fixture
def reader():
    return client_for(make_user("rita", "reader"))


@pytest.fixture
def auditor():
    return client_for(make_user("audrey", "auditor"))


@pytest.fixture
def editor():
    return client_for(make_user("ed", "editor"))
