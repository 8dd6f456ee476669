"""Hostile input through HTTP: each request gets the 4xx and `code` of API.md, and nothing moves.

Every case is sent to a real deal on PostgreSQL; afterwards every stream has the version it had
and `/verify/` gives the same head, so a refused request wrote nothing, not even half of a batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from tests.api.conftest import OCCURRED, SOURCE, make_organisation
from tracker.api.parsers import MAX_DEPTH, MAX_STRING_LENGTH, loads
from tracker.deals.models import Organisation
from tracker.eventstore.store import iter_stream_ids

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

JSON = "application/json"


@dataclass(frozen=True)
class Target:
    """A deal at version 3 (opened; a note n2; n2 retracted by r3) and a second deal."""

    deal: UUID
    parties: tuple[UUID, UUID]
    note: UUID
    retraction: UUID
    other_deal: UUID
    other_note: UUID

    @property
    def events(self) -> str:
        return f"/api/v1/deals/{self.deal}/events/"


@pytest.fixture
def target(editor: APIClient) -> Target:
    a, b = make_organisation("Acme Aero", "GB"), make_organisation("Beta Defence", "IT")

    def open_deal(title: str) -> UUID:
        body = {
            "title": title,
            "kind": "mou",
            "summary": "",
            "parties": [
                {"organisation": str(a), "role": "partner"},
                {"organisation": str(b), "role": "partner"},
            ],
            "occurred": OCCURRED,
            "source": SOURCE,
        }
        response = editor.post("/api/v1/deals/", body, format="json")
        assert response.status_code == 201, response.content
        return UUID(response.json()["id"])

    def append(deal: UUID, body: dict[str, Any]) -> UUID:
        response = editor.post(f"/api/v1/deals/{deal}/events/", body, format="json")
        assert response.status_code == 201, response.content
        return UUID(response.json()["events"][0]["event_id"])

    deal, other = open_deal("Target"), open_deal("Other")
    note = append(deal, event("NoteAdded", {"text": "n2"}, 1))
    retraction = append(deal, event("FactRetracted", {"event_id": str(note), "reason": "x"}, 2))
    other_note = append(other, event("NoteAdded", {"text": "elsewhere"}, 1))
    return Target(deal, (a, b), note, retraction, other, other_note)


def event(
    type_: str = "NoteAdded",
    data: dict[str, Any] | None = None,
    expected_version: int = 3,
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "type": type_,
        "data": {"text": "a note"} if data is None else data,
        "occurred": OCCURRED,
        "source": SOURCE,
        "expected_version": expected_version,
    }
    body.update(fields)
    return body


def note(text: Any) -> dict[str, Any]:
    return event(data={"text": text})


def contract(t: Target, amount: Any) -> dict[str, Any]:
    a, b = t.parties
    value = {"amount": amount, "currency": "GBP"}
    return event(
        "ContractAwarded", {"buyer": str(a), "supplier": str(b), "item": "drones", "value": value}
    )


def raw(text: str) -> bytes:
    return text.encode("utf-8")


def nested(depth: int) -> bytes:
    """A NoteAdded body whose `data.text` is a list nested `depth` deep."""
    body = json.dumps(note("PLACEHOLDER"))
    return raw(body.replace('"PLACEHOLDER"', "[" * depth + "]" * depth))


def future_date(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class Case:
    body: Callable[[Target], Any]
    status: int
    code: str
    fields: list[str] | None = None
    """The `field` of each error, in order, when the contract names them."""
    content_type: str = JSON
    extra: dict[str, str] = field(default_factory=dict)


def _400(body: Callable[[Target], Any], **kw: Any) -> Case:
    return Case(body, 400, "malformed_request", **kw)


def _415(body: Callable[[Target], Any], **kw: Any) -> Case:
    return Case(body, 415, "unsupported_media_type", **kw)


def _422(body: Callable[[Target], Any], *fields: str, **kw: Any) -> Case:
    return Case(body, 422, "invalid_event", list(fields) or None, **kw)


SQL = "'; DROP TABLE eventstore_event; --"
CASES: dict[str, Case] = {
    # --- not JSON, or not text ---------------------------------------------------------------
    "not json": _400(lambda t: b"type=NoteAdded&expected_version=3"),
    "truncated json": _400(lambda t: b'{"type": "NoteAdded", "data": {'),
    "empty object then garbage": _400(lambda t: b"{} trailing"),
    "form body": Case(
        lambda t: b"type=NoteAdded", 415, "unsupported_media_type", content_type="text/plain"
    ),
    "invalid utf-8": _400(lambda t: raw(json.dumps(note("PLACE"))).replace(b"PLACE", b"\xff\xfe")),
    "overlong utf-8": _400(lambda t: raw(json.dumps(note("PLACE"))).replace(b"PLACE", b"\xc0\xaf")),
    "a lone surrogate": _400(lambda t: raw(json.dumps(note("x")).replace('"x"', '"\\ud800"'))),
    "an empty body": _400(lambda t: b""),
    "a charset that decompresses": _415(
        lambda t: raw(json.dumps(note("x"))), content_type="application/json; charset=bz2_codec"
    ),
    "UTF-8 labelled UTF-16": _415(lambda t: b"{}", content_type="application/json; charset=utf-16"),
    "UTF-16": _415(
        lambda t: json.dumps(note("x")).encode("utf-16"),
        content_type="application/json; charset=utf-16",
    ),
    "an unknown charset": _415(
        lambda t: raw(json.dumps(note("x"))), content_type="application/json; charset=nonexistent"
    ),
    # --- JSON that two parsers could read differently ------------------------------------------
    "a duplicate key": _400(
        lambda t: raw(
            json.dumps(note("x")).replace(
                '"type": "NoteAdded"', '"type": "NoteAdded", "type": "DealOpened"'
            )
        )
    ),
    "a duplicate key in data": _400(
        lambda t: raw(json.dumps(note("x")).replace('"text": "x"', '"text": "x", "text": "y"'))
    ),
    "NaN": _400(
        lambda t: raw(
            json.dumps(note("x")).replace('"expected_version": 3', '"expected_version": NaN')
        )
    ),
    "Infinity": _400(lambda t: raw(json.dumps(note("x")).replace('"x"', "Infinity"))),
    "-Infinity": _400(lambda t: raw(json.dumps(note("x")).replace('"x"', "-Infinity"))),
    "an integer of 5000 digits": _400(
        lambda t: raw(
            json.dumps(note("x")).replace(
                '"expected_version": 3', '"expected_version": ' + "9" * 5000
            )
        )
    ),
    # --- numbers where decimal strings are due: refused, never rounded -----------------------
    "money as a float": _422(lambda t: contract(t, 5400000000.5), "data.value.amount"),
    "money as an integer": _422(lambda t: contract(t, 5400000000), "data.value.amount"),
    "money with an exponent": _422(
        lambda t: raw(json.dumps(contract(t, "X")).replace('"X"', "5.4e9")), "data.value.amount"
    ),
    "money beyond a double": _422(
        lambda t: raw(json.dumps(contract(t, "X")).replace('"X"', "1e400")), "data.value.amount"
    ),
    "money with 40 significant digits": _422(
        lambda t: raw(
            json.dumps(contract(t, "X")).replace('"X"', "1234567890.123456789012345678901234567890")
        ),
        "data.value.amount",
    ),
    "a share as a number": _422(
        lambda t: event(
            "JointVentureFormed",
            {
                "venture": str(t.parties[0]),
                "shares": [
                    {"organisation": str(t.parties[0]), "percent": 50},
                    {"organisation": str(t.parties[1]), "percent": "50"},
                ],
                "headquarters_country": "IT",
            },
        ),
        "data.shares[0].percent",
    ),
    "text as a number": _422(lambda t: note(0.1), "data.text"),
    "type as a number": _422(lambda t: event(1.5), "type"),
    "expected_version as a float": _422(lambda t: event(expected_version=3.0), "expected_version"),
    "expected_version as a string": _422(lambda t: event(expected_version="3"), "expected_version"),
    "expected_version as true": _422(lambda t: event(expected_version=True), "expected_version"),
    "expected_version negative": _422(lambda t: event(expected_version=-1), "expected_version"),
    "expected_version over 64 bits": _422(
        lambda t: event(expected_version=2**64), "expected_version"
    ),
    # --- size and depth ----------------------------------------------------------------------
    "10,000-deep nesting": _400(lambda t: nested(10_000)),
    f"nesting just past {MAX_DEPTH}": _400(lambda t: nested(MAX_DEPTH)),
    "a 2 MiB body": Case(lambda t: note("x" * (2 * 1024 * 1024)), 413, "payload_too_large"),
    "a string of 100,000 characters": _422(lambda t: note("x" * 100_000), "data.text"),
    "a source title of 100,000 characters": _422(
        lambda t: event(source={**SOURCE, "title": "x" * 100_000}), "source.title"
    ),
    "a key of 100,000 characters": _422(lambda t: note({"k" * 100_000: 1})),
    "text over the field's limit, under the parser's": _422(
        lambda t: note("x" * (MAX_STRING_LENGTH - 1)), "data.text"
    ),
    # --- NUL and other text that cannot be stored --------------------------------------------
    "NUL in text": _422(lambda t: note("a\u0000b"), "data.text"),
    "NUL in a source title": _422(
        lambda t: event(source={**SOURCE, "title": "a\u0000b"}), "source.title"
    ),
    "NUL in the type": _422(lambda t: event("Note\u0000Added"), "type"),
    # --- dates -------------------------------------------------------------------------------
    "2025-02-30": _422(
        lambda t: event(occurred={"date": "2025-02-30", "precision": "day"}), "occurred.date"
    ),
    "year 0": _422(
        lambda t: event(occurred={"date": "0000-01-01", "precision": "year"}), "occurred.date"
    ),
    "a publication date of year 0": _422(
        lambda t: event(source={**SOURCE, "published_on": "0000-06-01"}), "source.published_on"
    ),
    "a date with a time": _422(
        lambda t: event(occurred={"date": "2025-06-01T00:00:00Z", "precision": "day"}),
        "occurred.date",
    ),
    "a month-precision date not on the 1st": _422(
        lambda t: event(occurred={"date": "2025-06-15", "precision": "month"}), "occurred"
    ),
    "a year-precision date not on 1 January": _422(
        lambda t: event(occurred={"date": "2025-06-01", "precision": "year"}), "occurred"
    ),
    "an unknown precision": _422(
        lambda t: event(occurred={"date": "2025-06-01", "precision": "week"}), "occurred.precision"
    ),
    "occurred beyond the future tolerance": _422(
        lambda t: event(
            occurred={
                "date": future_date(settings.DEAL_FUTURE_TOLERANCE_DAYS + 2),
                "precision": "day",
            }
        ),
        "occurred",
    ),
    "a correction moving a fact into the future": _422(
        lambda t: event(
            "FactCorrected",
            {"event_id": str(t.note), "occurred": {"date": future_date(400), "precision": "day"}},
        ),
        "data.occurred",
    ),
    # --- the catalogue and the rules ---------------------------------------------------------
    "an unknown event type": _422(lambda t: event("DealDeleted"), "type"),
    "an unknown field in data": _422(
        lambda t: note("x") | {"data": {"text": "x", "extra": 1}}, "data.extra"
    ),
    "an unknown top-level field": _422(lambda t: event(comment="x"), "comment"),
    "an unknown field in occurred": _422(
        lambda t: event(occurred={**OCCURRED, "tz": "UTC"}), "occurred.tz"
    ),
    "an unknown field in source": _422(
        lambda t: event(source={**SOURCE, "trust": "high"}), "source.trust"
    ),
    "a stage that cannot be typed in": _422(
        lambda t: event("StageChanged", {"stage": "agreed", "reason": "x"}), "data.stage"
    ),
    "a javascript: source url": _422(
        lambda t: event(source={**SOURCE, "url": "javascript:alert(1)"}), "source.url"
    ),
    "an empty publisher": _422(
        lambda t: event(source={**SOURCE, "publisher": ""}), "source.publisher"
    ),
    "no source": _422(lambda t: {k: v for k, v in note("x").items() if k != "source"}, "source"),
    "an organisation that does not exist": _422(
        lambda t: event("PartyAdded", {"organisation": str(uuid4()), "role": "x"}),
        "data.organisation",
    ),
    "retracting an event of another deal": _422(
        lambda t: event("FactRetracted", {"event_id": str(t.other_note), "reason": "x"}),
        "data.event_id",
    ),
    "retracting a retraction": _422(
        lambda t: event("FactRetracted", {"event_id": str(t.retraction), "reason": "x"}),
        "data.event_id",
    ),
    "retracting an event twice": _422(
        lambda t: event("FactRetracted", {"event_id": str(t.note), "reason": "x"}), "data.event_id"
    ),
    "correcting an event of another deal": _422(
        lambda t: event("FactCorrected", {"event_id": str(t.other_note), "data": {"text": "y"}}),
        "data.event_id",
    ),
    "opening the deal again": _422(
        lambda t: event(
            "DealOpened",
            {
                "title": "x",
                "kind": "mou",
                "parties": [{"organisation": str(t.parties[0]), "role": "x"}],
            },
        ),
        "type",
    ),
    # --- shape -------------------------------------------------------------------------------
    "a list": _400(lambda t: [note("x")]),
    "a string": _400(lambda t: raw('"NoteAdded"')),
    "null": _400(lambda t: raw("null")),
    "events that are not a list": _422(
        lambda t: {"expected_version": 3, "events": {"a": 1}}, "events"
    ),
    "an empty batch": _422(lambda t: {"expected_version": 3, "events": []}, "events"),
    "a batch with one bad event": _422(
        lambda t: {
            "expected_version": 3,
            "events": [
                {k: v for k, v in note("fine").items() if k != "expected_version"},
                {k: v for k, v in note("a\u0000b").items() if k != "expected_version"},
            ],
        },
        "events[1].data.text",
    ),
    "a stale expected_version": Case(lambda t: event(expected_version=1), 409, "version_conflict"),
    "an idempotency key with a NUL": _400(
        lambda t: note("x"), extra={"HTTP_IDEMPOTENCY_KEY": "k\x00"}
    ),
    "an idempotency key of 256 characters": _400(
        lambda t: note("x"), extra={"HTTP_IDEMPOTENCY_KEY": "k" * 256}
    ),
}


def send(client: APIClient, path: str, case: Case, t: Target, method: str = "post") -> Any:
    body = case.body(t)
    if not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    return getattr(client, method)(path, body, content_type=case.content_type, **case.extra)


def assert_problem(response: Any, case: Case) -> dict[str, Any]:
    assert response.status_code == case.status, response.content[:2000]
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == case.code
    assert problem["status"] == case.status
    if case.fields is not None:
        assert [error["field"] for error in problem["errors"]] == case.fields, problem
    elif case.status == 422:
        assert problem["errors"], problem
    return problem


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_append_is_refused_and_changes_nothing(name, editor, target, ledger):
    case = CASES[name]
    before = ledger()
    response = send(editor, target.events, case, target)
    assert_problem(response, case)
    assert ledger() == before


def test_a_key_of_100000_characters_is_named_shortened():
    """The error names the key's path without echoing 100,000 characters back."""
    with pytest.raises(ValidationError) as raised:
        loads(json.dumps({"data": {"k" * 100_000: 1}}))
    [(path, _)] = raised.value.detail.items()
    assert path.startswith("data.kkk")
    assert len(path) < 200


# --- POST /deals/ and the organisations -------------------------------------------------------


def opening(t: Target, **changes: Any) -> dict[str, Any]:
    body = {
        "title": "A deal",
        "kind": "mou",
        "summary": "",
        "parties": [{"organisation": str(t.parties[0]), "role": "partner"}],
        "occurred": OCCURRED,
        "source": SOURCE,
    }
    body.update(changes)
    return body


OPEN_CASES: dict[str, Case] = {
    "not json": _400(lambda t: b"{"),
    "an empty body": _400(lambda t: b""),
    "an empty object labelled UTF-16": _415(
        lambda t: b"{}", content_type="application/json; charset=utf-16"
    ),
    "an unknown charset": _415(
        lambda t: raw(json.dumps(opening(t))), content_type="application/json; charset=nonexistent"
    ),
    "a duplicate key": _400(
        lambda t: raw(
            json.dumps(opening(t)).replace('"kind": "mou"', '"kind": "mou", "kind": "budget"')
        )
    ),
    "a deal id chosen by the client": _422(lambda t: opening(t, id=str(uuid4())), "id"),
    "an actor chosen by the client": _422(lambda t: opening(t, actor="root"), "actor"),
    "a title as a number": _422(lambda t: opening(t, title=1.5), "title"),
    "a title of 100,000 characters": _422(lambda t: opening(t, title="x" * 100_000), "title"),
    "a title with NUL": _422(lambda t: opening(t, title="a\u0000b"), "title"),
    "an unknown kind": _422(lambda t: opening(t, kind="alliance"), "kind"),
    "no parties": _422(lambda t: opening(t, parties=[]), "parties"),
    "a party that does not exist": _422(
        lambda t: opening(t, parties=[{"organisation": str(uuid4()), "role": "x"}]),
        "parties[0].organisation",
    ),
    "an unknown field in a party": _422(
        lambda t: opening(
            t, parties=[{"organisation": str(t.parties[0]), "role": "x", "share": "1"}]
        ),
        "parties[0].share",
    ),
    "a date of the 30th of February": _422(
        lambda t: opening(t, occurred={"date": "2025-02-30", "precision": "day"}), "occurred.date"
    ),
    "10,000-deep nesting": _400(
        lambda t: raw(
            json.dumps(opening(t, summary="X")).replace('"X"', "[" * 10_000 + "]" * 10_000)
        )
    ),
}


@pytest.mark.parametrize("name", list(OPEN_CASES))
def test_hostile_opening_is_refused_and_opens_nothing(name, editor, target, ledger):
    case = OPEN_CASES[name]
    before = ledger()
    response = send(editor, "/api/v1/deals/", case, target)
    assert_problem(response, case)
    assert ledger() == before
    assert len(list(iter_stream_ids())) == 2


ORGANISATION_CASES: dict[str, Case] = {
    "a name with NUL": _422(
        lambda t: {"name": "a\u0000b", "kind": "company", "country": "GB"}, "name"
    ),
    "a name of 100,000 characters": _422(
        lambda t: {"name": "x" * 100_000, "kind": "company", "country": "GB"}, "name"
    ),
    "a name as a number": _422(lambda t: {"name": 7, "kind": "company", "country": "GB"}, "name"),
    "a country that is not ISO 3166": _422(
        lambda t: {"name": "X", "kind": "company", "country": "XX"}, "country"
    ),
    "an unknown field": _422(
        lambda t: {"name": "X", "kind": "company", "country": "GB", "owner": "me"}, "owner"
    ),
    "a parent that does not exist": _422(
        lambda t: {"name": "X", "kind": "company", "country": "GB", "parent": str(uuid4())},
        "parent",
    ),
    "a duplicate key": _400(
        lambda t: b'{"name": "X", "name": "Y", "kind": "company", "country": "GB"}'
    ),
}


@pytest.mark.parametrize("name", list(ORGANISATION_CASES))
def test_hostile_organisation_is_refused_and_stores_nothing(name, editor, target):
    case = ORGANISATION_CASES[name]
    before = list(Organisation.objects.order_by("id").values())
    assert_problem(send(editor, "/api/v1/organisations/", case, target), case)
    path = f"/api/v1/organisations/{target.parties[0]}/"
    assert_problem(send(editor, path, case, target, method="patch"), case)
    assert list(Organisation.objects.order_by("id").values()) == before


def test_an_organisation_cannot_become_its_own_parent(editor, target):
    org = target.parties[0]
    response = editor.patch(f"/api/v1/organisations/{org}/", {"parent": str(org)}, format="json")
    assert_problem(response, Case(lambda t: None, 422, "invalid_event"))
    assert Organisation.objects.get(id=org).parent_id is None


# --- the future tolerance is configurable -----------------------------------------------------


def test_the_future_tolerance_comes_from_settings(editor, target):
    ahead = event(occurred={"date": future_date(10), "precision": "day"})
    with override_settings(DEAL_FUTURE_TOLERANCE_DAYS=0):
        refused = editor.post(target.events, ahead, format="json")
    assert_problem(refused, Case(lambda t: None, 422, "invalid_event", ["occurred"]))
    assert "in the future" in refused.json()["errors"][0]["message"]
    with override_settings(DEAL_FUTURE_TOLERANCE_DAYS=30):
        accepted = editor.post(target.events, ahead, format="json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["version"] == 4


# --- hostile query parameters: 400, never 500 ------------------------------------------------

QUERIES = [
    "/api/v1/deals/{deal}/state/?as_of=garbage",
    "/api/v1/deals/{deal}/state/?as_of=2025-02-30",
    "/api/v1/deals/{deal}/state/?as_of=0000-01-01",
    "/api/v1/deals/{deal}/state/?known_at=garbage",
    "/api/v1/deals/{deal}/state/?known_at=2025-13-01T00:00:00Z",
    "/api/v1/deals/{deal}/state/?known_at=%00",
    "/api/v1/deals/{deal}/state/?known_at=9999-12-31T23:00:00-14:00",
    "/api/v1/deals/{deal}/state/?known_at=0001-01-01T00:00:00%2B14:00",
    "/api/v1/deals/{deal}/?min_version=abc",
    "/api/v1/deals/{deal}/?min_version=-1",
    "/api/v1/deals/{deal}/?min_version=99999999999999999999",
    "/api/v1/deals/{deal}/events/?after_version=abc",
    "/api/v1/deals/{deal}/events/?limit=-1",
    "/api/v1/deals/{deal}/events/?limit=0",
    "/api/v1/deals/{deal}/events/?limit=1e3",
    "/api/v1/events/?limit=-1",
    "/api/v1/events/?limit=abc",
    "/api/v1/events/?after=garbage",
    "/api/v1/events/?after=%00",
    "/api/v1/events/?after=" + "A" * 5000,
    "/api/v1/deals/?limit=-1",
    "/api/v1/deals/?limit=abc",
    "/api/v1/deals/?cursor=garbage",
    "/api/v1/deals/?cursor=cD0yMDI1LTAxLTAx",  # base64 of a position that is not a time
    "/api/v1/deals/?cursor=%00",
    "/api/v1/deals/?cursor=cD0wMDAxLTAxLTAxVDAwOjAwOjAwJTJCMDE6MDA%3D",  # p=0001-01-01T00:00+01:00
    "/api/v1/deals/?cursor=cD05OTk5LTEyLTMxVDIzOjU5OjU5LTAxOjAw",  # p=9999-12-31T23:59:59-01:00
    "/api/v1/deals/?updated_after=0001-01-01T00:00:00%2B01:00",
    "/api/v1/deals/?updated_after=9999-12-31T23:59:59-01:00",
    "/api/v1/deals/?updated_after=garbage",
    "/api/v1/deals/?party=not-a-uuid",
    "/api/v1/deals/?kind=alliance",
    "/api/v1/deals/?stage=%00",
    "/api/v1/deals/?country=%00",
    "/api/v1/deals/?search=%00",
    "/api/v1/organisations/?cursor=garbage",
    "/api/v1/organisations/?cursor=cD1hJTAwYg%3D%3D",  # p=a\x00b: NUL cannot reach PostgreSQL
    "/api/v1/organisations/?limit=-1",
    "/api/v1/organisations/?country=xx",
    "/api/v1/organisations/?search=a%00b",
]


@pytest.mark.parametrize("query", QUERIES)
def test_hostile_query_parameter_is_400(query, auditor, target):
    response = auditor.get(query.format(deal=target.deal))
    assert_problem(response, Case(lambda t: None, 400, "malformed_request"))


@pytest.mark.parametrize(
    "header",
    ["Token \xff\xfe", "Token a\x00b", "Token " + "a" * 10_000, "Token", "Token a b", "Bearer x"],
)
def test_hostile_authorization_header_is_401(header):
    client = APIClient()
    response = client.get("/api/v1/events/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "not_authenticated"


EXTREME_BUT_VALID = [
    "/api/v1/deals/{deal}/state/?as_of=9999-12-31",
    "/api/v1/deals/{deal}/state/?as_of=0001-01-01",
    "/api/v1/deals/{deal}/state/?known_at=0001-01-01T00:00:00Z",
    "/api/v1/deals/{deal}/state/?known_at=9999-12-31T23:59:59.999Z",
    "/api/v1/deals/{deal}/state/?known_at=9999-12-31T23:59:59.999999%2B00:00",
    "/api/v1/deals/{deal}/?min_version=2147483647",
    "/api/v1/deals/{deal}/events/?after_version=2147483647&limit=2147483647",
    "/api/v1/events/?limit=2147483647",
    "/api/v1/deals/?updated_after=9999-12-31T23:59:59Z&limit=200",
]


@pytest.mark.parametrize("query", EXTREME_BUT_VALID)
def test_extreme_but_valid_query_parameter_is_answered(query, auditor, target):
    response = auditor.get(query.format(deal=target.deal))
    assert response.status_code == 200, response.content[:500]
