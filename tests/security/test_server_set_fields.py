"""A client can never set what the server sets: actor, recorded_at, position, version, hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import OCCURRED, SOURCE, client_for, make_organisation, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SERVER_SET = {
    "actor": "root",
    "recorded_at": "2000-01-01T00:00:00.000Z",
    "position": 1,
    "version": 1,
    "event_id": "00000000-0000-0000-0000-000000000001",
    "prev_hash": "0" * 64,
    "hash": "f" * 64,
    "schema_version": 99,
    "deal": "00000000-0000-0000-0000-000000000002",
    "stream_id": "00000000-0000-0000-0000-000000000002",
}


@pytest.fixture
def deal(editor) -> str:
    org = make_organisation()
    opening = {
        "title": "A deal",
        "kind": "other",
        "parties": [{"organisation": str(org), "role": "partner"}],
        "occurred": OCCURRED,
        "source": SOURCE,
    }
    response = editor.post("/api/v1/deals/", opening, format="json")
    assert response.status_code == 201
    return response.json()["id"]


def note() -> dict:
    return {"type": "NoteAdded", "data": {"text": "x"}, "occurred": OCCURRED, "source": SOURCE}


@pytest.mark.parametrize("name", list(SERVER_SET))
def test_a_server_set_field_in_an_append_is_refused(name, editor, deal, ledger):
    before = ledger()
    one = editor.post(
        f"/api/v1/deals/{deal}/events/",
        {**note(), "expected_version": 1, name: SERVER_SET[name]},
        format="json",
    )
    many = editor.post(
        f"/api/v1/deals/{deal}/events/",
        {"expected_version": 1, "events": [{**note(), name: SERVER_SET[name]}]},
        format="json",
    )
    for response, field in ((one, name), (many, f"events[0].{name}")):
        assert response.status_code == 422, response.content
        problem = response.json()
        assert problem["code"] == "invalid_event"
        assert [e["field"] for e in problem["errors"]] == [field]
        assert problem["errors"][0]["message"].startswith("unknown field")
    assert ledger() == before


@pytest.mark.parametrize("name", ["actor", "recorded_at", "id", "version"])
def test_a_server_set_field_in_an_opening_is_refused(name, editor, ledger):
    before = ledger()
    org = make_organisation()
    opening = {
        "title": "A deal",
        "kind": "other",
        "parties": [{"organisation": str(org), "role": "partner"}],
        "occurred": OCCURRED,
        "source": SOURCE,
        name: SERVER_SET.get(name, "00000000-0000-0000-0000-000000000003"),
    }
    response = editor.post("/api/v1/deals/", opening, format="json")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [name]
    assert ledger() == before


def test_the_server_sets_them_from_the_request_and_the_clock(deal):
    client = client_for(make_user("mallory", "editor"))
    started = datetime.now(UTC)
    response = client.post(
        f"/api/v1/deals/{deal}/events/", {**note(), "expected_version": 1}, format="json"
    )
    assert response.status_code == 201
    [stored] = response.json()["events"]
    assert stored["actor"] == "mallory"
    assert stored["version"] == 2
    recorded = datetime.fromisoformat(stored["recorded_at"].replace("Z", "+00:00"))
    assert started - timedelta(seconds=1) <= recorded <= datetime.now(UTC) + timedelta(seconds=1)
    assert stored["schema_version"] == 1
