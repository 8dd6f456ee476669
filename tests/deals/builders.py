"""Events built in memory for the pure reducer and replay tests, and the demo's deal 2."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from tracker.eventstore.store import RecordedEvent

DEAL = UUID("00000000-0000-4000-8000-00000000d002")
BAYKAR = UUID("00000000-0000-4000-8000-0000000000b1")
LEONARDO = UUID("00000000-0000-4000-8000-0000000000b2")
LBA = UUID("00000000-0000-4000-8000-0000000000b3")
SOURCE = {"title": "Report", "publisher": "unknown", "url": None, "published_on": None}
YEAR_2025 = {"date": "2025-01-01", "precision": "year"}
JUNE_2025 = {"date": "2025-06-01", "precision": "month"}
START = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def fact(kind: str, data: dict[str, Any], occurred: dict[str, str]) -> dict[str, Any]:
    return {"type": kind, "data": data, "occurred": occurred}


def recorded(
    facts: Sequence[dict[str, Any]],
    *,
    stream_id: UUID = DEAL,
    start: datetime = START,
    first_version: int = 1,
) -> list[RecordedEvent]:
    """Stored events, one per fact, recorded a minute apart in the order given."""
    return [
        RecordedEvent(
            event_id=f.get("event_id") or uuid4(),
            stream_id=stream_id,
            version=first_version + index,
            position=first_version + index,
            type=f["type"],
            schema_version=f.get("schema_version", 1),
            data=f["data"],
            occurred=f["occurred"],
            source=SOURCE,
            actor="test",
            recorded_at=start + timedelta(minutes=first_version + index),
            prev_hash="",
            hash="",
        )
        for index, f in enumerate(facts)
    ]


def opened(occurred: dict[str, str] = YEAR_2025) -> dict[str, Any]:
    return fact(
        "DealOpened",
        {
            "title": "Baykar and Leonardo: LBA Systems",
            "kind": "joint_venture",
            "summary": "",
            "parties": [
                {"organisation": str(BAYKAR), "role": "partner"},
                {"organisation": str(LEONARDO), "role": "partner"},
            ],
        },
        occurred,
    )


def mou() -> dict[str, Any]:
    return fact(
        "MouSigned",
        {"parties": [str(BAYKAR), str(LEONARDO)], "scope": "initial MoU"},
        YEAR_2025,
    )


def joint_venture(baykar: str = "50", leonardo: str = "50") -> dict[str, Any]:
    return fact(
        "JointVentureFormed",
        {
            "venture": str(LBA),
            "shares": [
                {"organisation": str(BAYKAR), "percent": baykar},
                {"organisation": str(LEONARDO), "percent": leonardo},
            ],
            "headquarters_country": "IT",
            "scope": "unmanned systems",
        },
        JUNE_2025,
    )


def deal2_facts() -> list[dict[str, Any]]:
    """Deal 2's facts after its opening, plus a few more dated ones, all with distinct starts
    or effects that commute."""
    return [
        mou(),
        joint_venture(),
        fact("PartyAdded", {"organisation": str(LBA), "role": "venture"}, JUNE_2025),
        fact(
            "QuoteRecorded",
            {"speaker": "A", "speaker_role": "", "organisation": None, "text": "hello"},
            {"date": "2025-07-02", "precision": "day"},
        ),
        fact(
            "NoteAdded",
            {"text": "co-production in Italy"},
            {"date": "2025-08-01", "precision": "month"},
        ),
        fact(
            "StageChanged",
            {"stage": "active", "reason": "started"},
            {"date": "2025-09-15", "precision": "day"},
        ),
    ]
