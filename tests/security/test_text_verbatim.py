"""SQL and HTML in every text field: stored and read back verbatim, shown escaped in the admin.

Every text field of every event type is filled with the same hostile text; a guard compares the
fields filled with the catalogue's JSON Schemas, so a text field added later fails here until it
is covered too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import OCCURRED, make_organisation
from tracker.deals.events import json_schemas

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
HOSTILE = (
    f"{SCRIPT}<img src=x onerror=alert(2)> Robert'); DROP TABLE eventstore_event;-- "
    '" OR 1=1 -- {{ 7|add:1 }} %s %(x)s \\x00 café'
)
HOSTILE_URL = f"https://example.com/?q={SCRIPT}&u='%3B--"
SOURCE = {
    "title": HOSTILE,
    "publisher": HOSTILE,
    "url": HOSTILE_URL,
    "published_on": "2025-07-01",
}


def body(type_: str, data: dict[str, Any], version: int) -> dict[str, Any]:
    return {
        "type": type_,
        "data": data,
        "occurred": OCCURRED,
        "source": SOURCE,
        "expected_version": version,
    }


def events_for(a: UUID, b: UUID, c: UUID) -> list[tuple[str, dict[str, Any]]]:
    """One event of every type after DealOpened, in an order the rules accept."""
    a, b, c = str(a), str(b), str(c)
    money = {"amount": "10", "currency": "GBP"}
    quote = {"speaker": HOSTILE, "speaker_role": HOSTILE, "organisation": a, "text": HOSTILE}
    return [
        ("PartyAdded", {"organisation": c, "role": HOSTILE}),
        ("PartyRemoved", {"organisation": c, "reason": HOSTILE}),
        ("MouSigned", {"parties": [a, b], "scope": HOSTILE}),
        (
            "JointVentureFormed",
            {
                "venture": c,
                "shares": [
                    {"organisation": a, "percent": "50"},
                    {"organisation": b, "percent": "50"},
                ],
                "headquarters_country": "IT",
                "scope": HOSTILE,
            },
        ),
        (
            "ContractAwarded",
            {"buyer": a, "supplier": b, "item": HOSTILE, "quantity": 2, "value": money},
        ),
        (
            "BudgetAllocated",
            {
                "authority": a,
                "purpose": HOSTILE,
                "amount": {"amount": "100", "currency": "GBP"},
                "earmarks": [{"purpose": HOSTILE, "amount": money}],
            },
        ),
        (
            "SupportAgreed",
            {"provider": a, "recipient": b, "programme": HOSTILE, "scope": HOSTILE},
        ),
        ("QuoteRecorded", quote),
        ("NoteAdded", {"text": HOSTILE}),
        ("FactRetracted", {"event_id": "<the note>", "reason": HOSTILE}),
        ("FactCorrected", {"event_id": "<the quote>", "data": quote, "reason": HOSTILE}),
        ("StageChanged", {"stage": "active", "reason": HOSTILE}),
    ]


def text_paths(schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> set[str]:
    """Paths of the free-text strings of a JSON Schema (no format, pattern or enum)."""
    if "$ref" in schema:
        return text_paths(defs[schema["$ref"].split("/")[-1]], defs, path)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return set().union(*(text_paths(s, defs, path) for s in schema[key]))
    kind = schema.get("type")
    if kind == "object":
        return set().union(
            set(),
            *(
                text_paths(s, defs, f"{path}.{name}" if path else name)
                for name, s in schema.get("properties", {}).items()
            ),
        )
    if kind == "array":
        return text_paths(schema.get("items", {}), defs, f"{path}[]")
    if kind == "string" and not {"format", "pattern", "enum", "const"} & set(schema):
        return {path}
    return set()


def hostile_paths(value: Any, path: str = "") -> set[str]:
    if isinstance(value, dict):
        return set().union(
            set(), *(hostile_paths(v, f"{path}.{k}" if path else k) for k, v in value.items())
        )
    if isinstance(value, list):
        return set().union(set(), *(hostile_paths(v, f"{path}[]") for v in value))
    return {path} if value == HOSTILE else set()


@pytest.fixture
def superuser_browser() -> Client:
    admin = User.objects.create_superuser("root", password="pw-root-long-enough")
    browser = Client()
    browser.force_login(admin)
    return browser


def test_hostile_text_in_every_field_is_stored_verbatim_and_escaped_in_the_admin(
    client_as, superuser_browser
):
    editor: APIClient = client_as("editor")
    a, b = make_organisation(HOSTILE[:200], "GB"), make_organisation("Beta", "IT")
    c = make_organisation("Venture", "IT")
    opening = {
        "title": HOSTILE,
        "kind": "joint_venture",
        "summary": HOSTILE,
        "parties": [
            {"organisation": str(a), "role": HOSTILE},
            {"organisation": str(b), "role": HOSTILE},
        ],
        "occurred": OCCURRED,
        "source": SOURCE,
    }
    opened = editor.post("/api/v1/deals/", opening, format="json")
    assert opened.status_code == 201, opened.content
    deal = opened.json()["id"]
    sent: dict[str, dict[str, Any]] = {
        "DealOpened": {k: opening[k] for k in opening if k not in ("occurred", "source")}
    }
    ids: dict[str, str] = {}
    for version, (type_, data) in enumerate(events_for(a, b, c), start=1):
        if data.get("event_id") == "<the note>":
            data = {**data, "event_id": ids["NoteAdded"]}
        if data.get("event_id") == "<the quote>":
            data = {**data, "event_id": ids["QuoteRecorded"]}
        response = editor.post(
            f"/api/v1/deals/{deal}/events/", body(type_, data, version), format="json"
        )
        assert response.status_code == 201, (type_, response.content)
        ids[type_] = response.json()["events"][0]["event_id"]
        sent[type_] = data

    # Every free-text field of the catalogue was given the hostile text.
    for type_, entry in json_schemas().items():
        schema = entry["schema"]
        expected = text_paths(schema, schema.get("$defs", {}))
        assert expected <= hostile_paths(sent[type_]), (
            type_,
            expected - hostile_paths(sent[type_]),
        )
    assert hostile_paths(SOURCE) == {"title", "publisher"}

    # Read back verbatim, data and sources alike.
    auditor: APIClient = client_as("auditor")
    stored = auditor.get(f"/api/v1/deals/{deal}/events/").json()["results"]
    assert [e["type"] for e in stored] == list(sent)
    for event in stored:
        data = event["data"]
        if event["type"] == "FactCorrected":
            # The service adds the corrected type's schema version and an empty `occurred`.
            assert data.pop("data_schema_version") == 1
            assert data.pop("occurred") is None
        assert data == sent[event["type"]], event["type"]
        assert event["source"] == SOURCE
    state = auditor.get(f"/api/v1/deals/{deal}/?min_version=13").json()
    assert state["title"] == HOSTILE
    assert state["summary"] == HOSTILE
    assert auditor.get(f"/api/v1/deals/{deal}/verify/").json()["valid"] is True
    organisation = auditor.get(f"/api/v1/organisations/{a}/").json()
    assert organisation["name"] == HOSTILE[:200]

    # Shown escaped, never as markup, on every admin page of the deal.
    pages = [
        f"/admin/projections/dealstate/{deal}/change/",
        f"/admin/projections/dealstate/{deal}/audit/",
        "/admin/projections/dealstate/",
        f"/admin/deals/organisation/{a}/change/",
    ]
    for page in pages:
        response = superuser_browser.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert SCRIPT not in html, page
        assert "<img src=x" not in html, page
        assert ESCAPED_SCRIPT in html, page


def test_a_text_field_sent_as_a_number_is_not_turned_into_text(client_as):
    editor: APIClient = client_as("editor")
    org = make_organisation()
    opening = {
        "title": 0.1,
        "kind": "mou",
        "parties": [{"organisation": str(org), "role": 7}],
        "occurred": OCCURRED,
        "source": {**SOURCE, "title": 12},
    }
    response = editor.post("/api/v1/deals/", opening, format="json")
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["title", "parties[0].role", "source.title"]
