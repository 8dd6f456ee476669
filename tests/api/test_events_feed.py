"""GET /api/v1/events/: every deal's events in commit order, page by page."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest

from tracker.eventstore.store import NewEvent, append

from .conftest import SOURCE, write_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FEED = "/api/v1/events/"
EVENT_KEYS = [
    "event_id",
    "deal",
    "version",
    "position",
    "type",
    "schema_version",
    "data",
    "occurred",
    "source",
    "actor",
    "recorded_at",
    "prev_hash",
    "hash",
]


def interleaved_streams(streams: int, events: int) -> list:
    ids = [uuid4() for _ in range(streams)]
    recorded = []
    for version in range(events):
        for stream in ids:
            recorded += append(
                stream,
                [NewEvent(type="NoteAdded", data={"text": f"{stream} {version}"}, source=SOURCE)],
                expected_version=version,
                actor="alice",
            ).events
    return recorded


class TestEventFeed:
    def test_pages_through_every_event_in_commit_order(self, client_as):
        recorded = interleaved_streams(streams=3, events=4)
        client = client_as("reader")
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 5} | ({"after": cursor} if cursor else {})
            body = client.get(FEED, params).json()
            pages += 1
            if not body["results"]:
                assert body["next"] == cursor
                break
            assert len(body["results"]) <= 5
            seen += body["results"]
            cursor = body["next"]
        assert [e["event_id"] for e in seen] == [str(e.event_id) for e in recorded]
        assert pages == 4

    def test_event_has_exactly_the_contract_shape(self, client_as):
        (event,) = write_stream(1)
        (shown,) = client_as("reader").get(FEED).json()["results"]
        assert list(shown) == EVENT_KEYS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", shown["recorded_at"])
        assert shown["recorded_at"][:23] == event.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
        assert shown == {
            "event_id": str(event.event_id),
            "deal": str(event.stream_id),
            "version": 1,
            "position": event.position,
            "type": "NoteAdded",
            "schema_version": 1,
            "data": event.data,
            "occurred": {"date": "2025-06-01", "precision": "month"},
            "source": SOURCE,
            "actor": "alice",
            "recorded_at": shown["recorded_at"],
            "prev_hash": "0" * 64,
            "hash": event.hash,
        }

    def test_a_following_reader_gets_only_what_is_new(self, client_as):
        client = client_as("reader")
        first = write_stream(2)
        page = client.get(FEED).json()
        assert [e["event_id"] for e in page["results"]] == [str(e.event_id) for e in first]
        later = write_stream(1)
        page = client.get(FEED, {"after": page["next"]}).json()
        assert [e["event_id"] for e in page["results"]] == [str(later[0].event_id)]

    def test_limit_defaults_to_100_and_is_capped_at_1000(self, client_as):
        append(uuid4(), [NewEvent(type="NoteAdded", data={"n": n}) for n in range(1001)], 0)
        client = client_as("reader")
        assert len(client.get(FEED).json()["results"]) == 100
        assert len(client.get(FEED, {"limit": 5000}).json()["results"]) == 1000

    @pytest.mark.parametrize("cursor", ["not-a-cursor", "!!!", "MTIz"])
    def test_a_bad_cursor_is_400_malformed_request(self, client_as, cursor):
        response = client_as("reader").get(FEED, {"after": cursor})
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"

    @pytest.mark.parametrize("limit", ["0", "-3", "ten"])
    def test_a_bad_limit_is_400_naming_the_parameter(self, client_as, limit):
        response = client_as("reader").get(FEED, {"limit": limit})
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "malformed_request"
        assert [error["field"] for error in body["errors"]] == ["limit"]
