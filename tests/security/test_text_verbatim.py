"""Text in every field: stored and read back verbatim, shown escaped in the admin, unless it
can only deceive (controls, bidirectional overrides, invisible text, a line break in a line).

Every text field of every event type is filled with the same text; a guard compares the fields
filled with the catalogue's JSON Schemas, so a text field added later fails here until it is
covered too.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import OCCURRED, make_organisation
from tracker.deals.events import json_schemas, parse_data

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


def events_for(a: UUID, b: UUID, c: UUID, text: str = HOSTILE) -> list[tuple[str, dict[str, Any]]]:
    """One event of every type after DealOpened, in an order the rules accept."""
    a, b, c = str(a), str(b), str(c)
    money = {"amount": "10", "currency": "GBP"}
    quote = {"speaker": text, "speaker_role": text, "organisation": a, "text": text}
    return [
        ("PartyAdded", {"organisation": c, "role": text}),
        ("PartyRemoved", {"organisation": c, "reason": text}),
        ("MouSigned", {"parties": [a, b], "scope": text}),
        (
            "JointVentureFormed",
            {
                "venture": c,
                "shares": [
                    {"organisation": a, "percent": "50"},
                    {"organisation": b, "percent": "50"},
                ],
                "headquarters_country": "IT",
                "scope": text,
            },
        ),
        (
            "ContractAwarded",
            {
                "buyer": a,
                "supplier": b,
                "item": text,
                "quantity": 2,
                "value": money,
                "weapon": {"designation": text, "description": text, "category": text},
            },
        ),
        ("DeliveryRecorded", {"contract": "<the contract>", "quantity": 1}),
        (
            "BudgetAllocated",
            {
                "authority": a,
                "purpose": text,
                "amount": {"amount": "100", "currency": "GBP"},
                "earmarks": [{"purpose": text, "amount": money}],
            },
        ),
        (
            "SupportAgreed",
            {"provider": a, "recipient": b, "programme": text, "scope": text},
        ),
        ("QuoteRecorded", quote),
        ("NoteAdded", {"text": text}),
        ("FactRetracted", {"event_id": "<the note>", "reason": text}),
        ("FactCorrected", {"event_id": "<the quote>", "data": quote, "reason": text}),
        ("StageChanged", {"stage": "active", "reason": text}),
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


def hostile_paths(value: Any, path: str = "", text: str = HOSTILE) -> set[str]:
    """Paths in `value` that hold `text`."""
    if isinstance(value, dict):
        return set().union(
            set(),
            *(hostile_paths(v, f"{path}.{k}" if path else k, text) for k, v in value.items()),
        )
    if isinstance(value, list):
        return set().union(set(), *(hostile_paths(v, f"{path}[]", text) for v in value))
    return {path} if value == text else set()


def record_every_type(
    editor: APIClient, text: str, source: dict[str, Any], parties: tuple[UUID, UUID, UUID]
) -> tuple[str, dict[str, dict[str, Any]]]:
    """A deal with one event of every type, `text` in every text field: (deal id, data sent)."""
    a, b, c = parties
    opening = {
        "title": text,
        "kind": "joint_venture",
        "summary": text,
        "parties": [
            {"organisation": str(a), "role": text},
            {"organisation": str(b), "role": text},
        ],
        "occurred": OCCURRED,
        "source": source,
    }
    opened = editor.post("/api/v1/deals/", opening, format="json")
    assert opened.status_code == 201, opened.content
    deal = opened.json()["id"]
    sent: dict[str, dict[str, Any]] = {
        "DealOpened": {k: opening[k] for k in opening if k not in ("occurred", "source")}
    }
    ids: dict[str, str] = {}
    for version, (type_, data) in enumerate(events_for(a, b, c, text), start=1):
        if data.get("event_id") == "<the note>":
            data = {**data, "event_id": ids["NoteAdded"]}
        if data.get("event_id") == "<the quote>":
            data = {**data, "event_id": ids["QuoteRecorded"]}
        if data.get("contract") == "<the contract>":
            data = {**data, "contract": ids["ContractAwarded"]}
        response = editor.post(
            f"/api/v1/deals/{deal}/events/",
            {**body(type_, data, version), "source": source},
            format="json",
        )
        assert response.status_code == 201, (type_, response.content)
        ids[type_] = response.json()["events"][0]["event_id"]
        sent[type_] = data
    # Every free-text field of the catalogue was given the text.
    for type_, entry in json_schemas().items():
        schema = entry["schema"]
        expected = text_paths(schema, schema.get("$defs", {}))
        filled = hostile_paths(sent[type_], text=text)
        assert expected <= filled, (type_, expected - filled)
    return deal, sent


def with_defaults(defaults: Any, sent: Any) -> Any:
    """`sent`, with what the catalogue fills in where it says nothing (nested objects too)."""
    if isinstance(defaults, dict) and isinstance(sent, dict):
        return {
            k: with_defaults(defaults[k], sent[k]) if k in sent else defaults[k] for k in defaults
        }
    return sent


def assert_read_back_verbatim(
    reader: APIClient, deal: str, sent: dict[str, dict[str, Any]], source: dict[str, Any]
) -> None:
    stored = reader.get(f"/api/v1/deals/{deal}/events/").json()["results"]
    assert [e["type"] for e in stored] == list(sent)
    for event in stored:
        data = event["data"]
        if event["type"] == "FactCorrected":
            # The service adds the corrected type's schema version and an empty `occurred`.
            assert data.pop("data_schema_version") == 1
            assert data.pop("occurred") is None
        # Fields left out are stored with their defaults; every field sent is stored as sent.
        expected = with_defaults(
            parse_data(event["type"], sent[event["type"]]).to_json(), sent[event["type"]]
        )
        if event["type"] == "FactCorrected":
            del expected["data_schema_version"], expected["occurred"]
        assert data == expected, event["type"]
        assert event["source"] == source
    assert reader.get(f"/api/v1/deals/{deal}/verify/").json()["valid"] is True


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
    deal, sent = record_every_type(editor, HOSTILE, SOURCE, (a, b, c))
    assert hostile_paths(SOURCE) == {"title", "publisher"}

    # Read back verbatim, data and sources alike.
    auditor: APIClient = client_as("auditor")
    assert_read_back_verbatim(auditor, deal, sent, SOURCE)
    state = auditor.get(f"/api/v1/deals/{deal}/?min_version=13").json()
    assert state["title"] == HOSTILE
    assert state["summary"] == HOSTILE
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


WORLD = (
    "TUSAŞ ve Baykar: İnsansız Hava Aracı · بايكار وليوناردو \u200f· 土耳其无人机 · 한국어 · "  # noqa: RUF001
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1f9\U0001f1f7 · £5.4\u00a0billion · "
    "zero\u200bwidth"
)


def test_text_in_every_script_is_stored_verbatim_in_every_field(client_as, superuser_browser):
    editor: APIClient = client_as("editor")
    a, b = make_organisation("Baykar", "TR"), make_organisation("Leonardo", "IT")
    c = make_organisation("LBA Systems", "IT")
    source = {
        "title": WORLD,
        "publisher": WORLD,
        "url": "https://örnek.com.tr/haber/insansız-hava-aracı",  # noqa: RUF001
        "published_on": "2025-07-01",
    }
    deal, sent = record_every_type(editor, WORLD, source, (a, b, c))
    assert_read_back_verbatim(client_as("auditor"), deal, sent, source)
    page = superuser_browser.get(f"/admin/projections/dealstate/{deal}/change/")
    assert WORLD in page.content.decode()


DECEPTIVE = (
    "\u202egnp.exe",  # right-to-left override: shows "exe.png"
    "\u200b\u2060\u200b",  # nothing visible
    "\x1b[2J\x1b[31mcleared",  # ANSI escape sequences
    "a\x85b",  # C1 control (next line)
    "a\u2066b\u2069",  # bidirectional isolate
    "a\x00b",  # NUL
)
LINE_BREAKS = ("one\r\ntwo", "one\ntwo", "one\u2028two")
MULTI_LINE = {"summary", "scope", "reason", "text"}


def with_text(data: dict[str, Any], path: str, value: str) -> tuple[dict[str, Any], str]:
    """`data` with `value` at a JSON Schema text path ("parties[].role" is the first item's),
    and the path as the API names it ("parties[0].role")."""
    data = copy.deepcopy(data)
    node: Any = data
    named = []
    parts = path.split(".")
    for index, part in enumerate(parts):
        name = part.removesuffix("[]")
        key: Any = name
        if part.endswith("[]"):
            node, key = node[name], 0
            named.append(f"{name}[0]")
        else:
            named.append(name)
        if index == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]
    return data, ".".join(named)


def post_json(client: APIClient, path: str, payload: dict[str, Any]) -> Any:
    # ASCII JSON, so that a lone surrogate travels as the "\ud800" escape a client would send.
    return client.post(path, json.dumps(payload), content_type="application/json")


def test_every_text_field_refuses_deceptive_text_and_line_breaks_in_a_line(client_as):
    editor: APIClient = client_as("editor")
    a, b = make_organisation("Baykar", "TR"), make_organisation("Leonardo", "IT")
    c = make_organisation("LBA Systems", "IT")
    opening = {
        "title": "Baykar and Leonardo",
        "kind": "joint_venture",
        "summary": "",
        "parties": [
            {"organisation": str(a), "role": "partner"},
            {"organisation": str(b), "role": "partner"},
        ],
    }
    opened = editor.post(
        "/api/v1/deals/", {**opening, "occurred": OCCURRED, "source": SOURCE}, format="json"
    )
    assert opened.status_code == 201, opened.content
    deal = opened.json()["id"]
    some_event = str(uuid4())
    samples = [("DealOpened", opening), *events_for(a, b, c, "fine")]
    tried: list[tuple[str, str]] = []
    rotation = 0
    for type_, data in samples:
        data = {
            k: some_event if isinstance(v, str) and v.startswith("<the ") else v
            for k, v in data.items()
        }
        schema = json_schemas()[type_]["schema"]
        for path in sorted(text_paths(schema, schema.get("$defs", {}))):
            leaf = path.split(".")[-1].removesuffix("[]")
            values = [DECEPTIVE[rotation % len(DECEPTIVE)]]
            rotation += 1
            if leaf not in MULTI_LINE:
                values.append(LINE_BREAKS[rotation % len(LINE_BREAKS)])
            for value in values:
                changed, field = with_text(data, path, value)
                response = post_json(
                    editor, f"/api/v1/deals/{deal}/events/", body(type_, changed, 1)
                )
                assert response.status_code == 422, (type_, path, value, response.content)
                problem = response.json()
                assert problem["code"] == "invalid_event"
                assert [e["field"] for e in problem["errors"]] == [f"data.{field}"], (
                    type_,
                    path,
                    value,
                )
                tried.append((type_, path))
    for path in ("title", "publisher"):
        for value in (DECEPTIVE[0], DECEPTIVE[1], LINE_BREAKS[0]):
            response = post_json(
                editor,
                f"/api/v1/deals/{deal}/events/",
                {**body("NoteAdded", {"text": "fine"}, 1), "source": {**SOURCE, path: value}},
            )
            assert response.status_code == 422, (path, value, response.content)
            assert [e["field"] for e in response.json()["errors"]] == [f"source.{path}"]
    # A lone surrogate is refused too: by the API's JSON parser as malformed (400), or by the
    # catalogue (422) if the parser lets it through.
    lone = post_json(
        editor, f"/api/v1/deals/{deal}/events/", body("NoteAdded", {"text": "\ud800"}, 1)
    )
    assert (lone.status_code, lone.json()["code"]) in {
        (400, "malformed_request"),
        (422, "invalid_event"),
    }
    # Every type with text fields had them tried, and nothing was stored.
    texts = {
        name
        for name, entry in json_schemas().items()
        if text_paths(entry["schema"], entry["schema"].get("$defs", {}))
    }
    assert texts >= set(json_schemas()) - {"DeliveryRecorded"}
    assert {type_ for type_, _ in tried} == texts
    events = editor.get(f"/api/v1/deals/{deal}/events/").json()["results"]
    assert [e["type"] for e in events] == ["DealOpened"]
