"""Cursors and limits of the lists: a forged one is 400 `malformed_request`, never a 500.

A DRF cursor is base64 of a query string whose `p` is the position, a value of the list's first
ordering field that reaches the database as a query parameter. Runs on the default database:
PostgreSQL under `make test`, SQLite (the embedded default) without it; the two refuse
different values (SQLite's adapter converts times to UTC in Python, PostgreSQL refuses NUL in
text and offsets beyond 15:59).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import orjson
import pytest

from tracker.api import deal_views
from tracker.projections.models import DealState

from .conftest import client_for, make_organisation, make_user

pytestmark = [pytest.mark.django_db]


def cursor(**tokens: str) -> str:
    """A cursor as DRF's CursorPagination encodes one, quoted for a query string."""
    return quote(base64.b64encode(urlencode(tokens).encode("ascii")).decode("ascii"))


def feed_cursor(text: str) -> str:
    return quote(base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("="))


@pytest.fixture
def reader():
    make_organisation("Acme Aero", "GB")
    return client_for(make_user("rita", "reader"))


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["status"], body["code"]) == (status, code)
    return body


FORGED = {
    # The cursor, byte for byte: a time whose UTC form is before year 1.
    "deals: before year 1 in UTC": (
        "/api/v1/deals/?cursor=cD0wMDAxLTAxLTAxVDAwOjAwOjAwJTJCMDE6MDA%3D"
    ),
    "deals: after year 9999 in UTC": "/api/v1/deals/?cursor="
    + cursor(p="9999-12-31T23:59:59-01:00"),
    "deals: an offset of 24 hours": "/api/v1/deals/?cursor="
    + cursor(p="2025-01-01T00:00:00+24:00"),
    "deals: a time without an offset": "/api/v1/deals/?cursor=" + cursor(p="2025-01-01T00:00:00"),
    "deals: NUL after a time": "/api/v1/deals/?cursor=" + cursor(p="2025-01-01T00:00:00Z\x00"),
    "deals: a negative offset count": "/api/v1/deals/?cursor="
    + cursor(o="-1", p="2025-01-01T00:00:00Z"),
    "deals: an offset count of 4400 digits": "/api/v1/deals/?cursor=" + cursor(o="9" * 4400),
    "deals: a reverse flag that is not a number": "/api/v1/deals/?cursor=" + cursor(r="x"),
    "deals: not ASCII": "/api/v1/deals/?cursor="
    + quote(base64.b64encode("p=été".encode()).decode("ascii")),
    "organisations: NUL in the name": "/api/v1/organisations/?cursor=" + cursor(p="a\x00b"),
    "organisations: 1001 characters": "/api/v1/organisations/?cursor=" + cursor(p="x" * 1001),
    "feed: a transaction id of 2**64": "/api/v1/events/?after=" + feed_cursor(f"{2**64}.1"),
    "feed: a position of 2**63": "/api/v1/events/?after=" + feed_cursor(f"1.{2**63}"),
    "feed: negative": "/api/v1/events/?after=" + feed_cursor("-1.5"),
    "feed: three parts": "/api/v1/events/?after=" + feed_cursor("1.2.3"),
    "feed: NUL": "/api/v1/events/?after=" + feed_cursor("1\x00.1"),
    "feed: 5000 digits": "/api/v1/events/?after=" + feed_cursor("9" * 5000 + ".1"),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_a_forged_cursor_is_400(reader, name):
    problem(reader.get(FORGED[name]), 400, "malformed_request")


FILTERS = [
    "/api/v1/deals/?updated_after=0001-01-01T00:00:00%2B01:00",
    "/api/v1/deals/?updated_after=9999-12-31T23:59:59-01:00",
    "/api/v1/deals/?updated_after=2025-01-01T00:00:00%2B24:00",
    "/api/v1/deals/?party=%00",
    "/api/v1/deals/?party=" + "1" * 5000,
    "/api/v1/deals/?stage=announced%00",
    "/api/v1/deals/?country=I%00",
    "/api/v1/deals/?search=" + "x" * 301,
    "/api/v1/deals/?limit=" + "9" * 5000,
    "/api/v1/deals/?limit=1.5",
    "/api/v1/organisations/?kind=company%00",
    "/api/v1/organisations/?country=G%00",
    "/api/v1/organisations/?search=%00",
    "/api/v1/organisations/?search=" + "x" * 201,
    "/api/v1/organisations/?limit=0",
    "/api/v1/events/?limit=" + "9" * 5000,
]


@pytest.mark.parametrize("query", FILTERS)
def test_a_filter_value_that_cannot_be_meant_is_400(reader, query):
    problem(reader.get(query), 400, "malformed_request")


EXTREME_BUT_VALID = [
    "/api/v1/deals/?cursor=" + cursor(p="2025-01-01T00:00:00+15:59"),
    # Beyond what PostgreSQL takes, but a time: read in UTC, as `updated_after` is.
    "/api/v1/deals/?cursor=" + cursor(p="2025-01-01T00:00:00+20:00"),
    "/api/v1/deals/?cursor=" + cursor(p="0001-01-01T00:00:00Z"),
    "/api/v1/deals/?cursor=" + cursor(p="9999-12-31T23:59:59.999999+00:00", r="1"),
    "/api/v1/deals/?cursor=" + cursor(o="999999999999", p="2025-01-01T00:00:00Z"),
    "/api/v1/deals/?updated_after=2025-01-01T00:00:00%2B20:00",
    "/api/v1/deals/?party=" + "A1B2C3D4-0000-4000-8000-00000000000F",
    "/api/v1/deals/?limit=" + "9" * 50,
    "/api/v1/organisations/?cursor=" + cursor(p="Ünïcode ✓ name"),
    "/api/v1/organisations/?cursor=" + cursor(p="", r="1"),
    "/api/v1/organisations/?cursor=" + cursor(p="a\x1bb\x7f"),
    "/api/v1/events/?after=" + feed_cursor(f"{2**64 - 1}.{2**63 - 1}"),
]


@pytest.mark.parametrize("query", EXTREME_BUT_VALID)
def test_an_extreme_but_well_formed_value_is_answered(reader, query):
    response = reader.get(query)
    assert response.status_code == 200, response.content[:500]
    assert isinstance(response.json()["results"], list)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestUnfilteredDealPages:
    """Without filters, PostgreSQL's pages of deals come from prepared SQL with each state
    spliced into the answer as compact JSON; they are, byte for byte, the pages the ORM's
    queryset and the decoded states gave."""

    @pytest.fixture
    def deals(self, seeded):
        # Ties (three deals updated at one whole second) make DRF's cursors carry offsets,
        # and a whole second is written without a fraction.
        tie = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
        DealState.objects.filter(deal_id__in=[seeded[f"deal{n}"] for n in (1, 2, 3)]).update(
            updated_at=tie
        )
        DealState.objects.filter(deal_id=seeded["deal4"]).update(
            updated_at=tie + timedelta(microseconds=120)
        )
        return seeded

    @pytest.fixture
    def orm(self, monkeypatch):
        """Serve the list as before: the queryset, and every state decoded then rendered."""

        def decoded(texts, request):
            return [orjson.loads(text) for text in texts]

        def read_by_orm():
            monkeypatch.setattr(deal_views, "names_a_filter", lambda request, filterset: True)
            monkeypatch.setattr(deal_views, "json_values", decoded)

        return read_by_orm

    def walk(self, client, url: str) -> list[bytes]:
        """Every page from `url` following `next` to the end, then from there `previous`."""
        bodies = []
        for link in ("next", "previous"):
            while url:
                response = client.get(url)
                assert response.status_code == 200, response.content[:500]
                bodies.append(response.content)
                following = json.loads(response.content)[link]
                if following is None:
                    break
                url = following
        return bodies

    @pytest.mark.parametrize("limit", [1, 2, 3, 50])
    def test_every_page_both_ways_is_the_querysets(self, deals, orm, limit):
        client = client_for(make_user("rita", "reader"))
        fast = self.walk(client, f"/api/v1/deals/?limit={limit}")
        orm()
        assert self.walk(client, f"/api/v1/deals/?limit={limit}") == fast
        # Forwards and back again: the last page is read once each way.
        assert len(fast) == 2 * -(-5 // limit)

    @pytest.mark.parametrize(
        "tokens",
        [
            {"o": "2"},
            {"o": "1", "r": "1"},
            {"o": "3", "r": "1", "p": "2025-03-01 12:00:00+00:00"},
            {"p": "2025-03-01 12:00:00.000120+00:00"},
            {"p": "2025-03-01 12:00:00+00:00", "r": "1"},
            {"p": "2025-03-01T13:00:00+01:00", "o": "1"},
            {"p": "1999-01-01T00:00:00Z"},
        ],
    )
    def test_a_cursor_reads_the_page_the_queryset_read(self, deals, orm, tokens):
        client = client_for(make_user("rita", "reader"))
        url = "/api/v1/deals/?limit=2&cursor=" + cursor(**tokens)
        fast = client.get(url)
        orm()
        slow = client.get(url)
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        assert fast.status_code == 200

    def test_the_spliced_page_is_the_json_of_the_projection(self, deals):
        client = client_for(make_user("rita", "reader"))
        body = json.loads(client.get("/api/v1/deals/").content)
        stored = {str(row.deal_id): row.state for row in DealState.objects.all()}
        assert {deal["id"]: deal for deal in body["results"]} == stored

    def test_the_browsable_api_and_indented_json_show_the_same_page(self, deals):
        client = client_for(make_user("rita", "reader"))
        compact = json.loads(client.get("/api/v1/deals/").content)
        indented = client.get("/api/v1/deals/", HTTP_ACCEPT="application/json; indent=2")
        assert indented.content.startswith(b'{\n  "next"')
        assert json.loads(indented.content) == compact
        html = client.get("/api/v1/deals/", HTTP_ACCEPT="text/html")
        assert html.status_code == 200
        assert compact["results"][0]["id"].encode() in html.content
