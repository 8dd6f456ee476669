"""Paths under /api/v1/ that are not canonical, or name nothing: served or problem details.

Each case runs with DEBUG on and off: Django answers an unresolved path with its HTML debug
page (DEBUG) or `handler404` (no DEBUG), and CommonMiddleware's APPEND_SLASH turns a write
without its trailing slash into a RuntimeError (DEBUG) or a redirect that loses the body.
Runs on the default database: PostgreSQL under `make test`, SQLite (embedded) without it.
"""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest

from tracker.deals.models import Organisation
from tracker.eventstore.store import stream_version

from .conftest import client_for, make_organisation, note_event, opening

pytestmark = [pytest.mark.django_db]
DEALS = "/api/v1/deals/"


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def organisation() -> UUID:
    return make_organisation("Acme Aero", "GB")


@pytest.fixture
def deal(editor, organisation) -> str:
    response = editor.post(DEALS, opening([organisation]), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["status"], body["code"]) == (status, code)
    return body


class TestWithoutTrailingSlash:
    """Served by the view of the canonical path, with the body, never redirected."""

    def test_opening_a_deal_is_served(self, debug, editor, organisation):
        response = editor.post("/api/v1/deals", opening([organisation]), format="json")
        assert response.status_code == 201, response.content[:500]
        deal = response.json()["id"]
        assert response["Location"] == f"http://testserver{DEALS}{deal}/"
        assert stream_version(UUID(deal)) == 1

    def test_appending_is_served(self, debug, editor, deal):
        response = editor.post(f"{DEALS}{deal}/events", note_event("no slash"), format="json")
        assert response.status_code == 201, response.content[:500]
        assert response.json()["version"] == 2
        assert stream_version(UUID(deal)) == 2

    def test_editing_an_organisation_is_served(self, debug, editor, organisation):
        path = f"/api/v1/organisations/{organisation}"
        response = editor.patch(path, {"short_name": "ACME"}, format="json")
        assert response.status_code == 200, response.content[:500]
        assert Organisation.objects.get(id=organisation).short_name == "ACME"

    @pytest.mark.django_db(transaction=True)  # the projection is written on commit
    def test_a_list_is_served_with_links_on_the_canonical_path(self, debug, editor, organisation):
        for title in ("First", "Second"):
            opened = editor.post(DEALS, opening([organisation], title=title), format="json")
            assert opened.status_code == 201, opened.content[:500]
        response = editor.get("/api/v1/deals", {"limit": 1})
        assert response.status_code == 200, response.content[:500]
        page = response.json()
        assert [d["title"] for d in page["results"]] == ["Second"]
        assert page["next"].startswith(f"http://testserver{DEALS}?cursor=")

    def test_an_anonymous_write_is_401_problem(self, debug, organisation):
        response = client_for(None).post("/api/v1/deals", opening([organisation]), format="json")
        problem(response, 401, "not_authenticated")

    def test_a_wrong_method_is_405_problem(self, debug, editor):
        problem(editor.delete("/api/v1/deals"), 405, "method_not_allowed")


class TestUnknownPaths:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/deals/xyz/",
            "/api/v1/deals/xyz",
            "/api/v1/organisations/notauuid/",
            "/api/v1/deals/{deal}/nothing/",
            "/api/v1/no-such-thing/",
            "/api/v1/",
            "/api/v1/deals/{deal}/events/extra",
        ],
    )
    @pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
    def test_is_404_problem_whatever_the_method(self, debug, editor, deal, path, method):
        response = getattr(editor, method)(path.format(deal=deal), {}, format="json")
        problem(response, 404, "not_found")

    def test_is_404_problem_for_anonymous_clients(self, debug):
        problem(client_for(None).post("/api/v1/nothing", {}, format="json"), 404, "not_found")

    def test_an_unknown_deal_is_404_problem(self, debug, editor):
        problem(editor.get(f"{DEALS}{uuid4()}/"), 404, "not_found")


class TestWrongMethod:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("delete", "/api/v1/deals/"),
            ("put", "/api/v1/deals/{deal}/"),
            ("delete", "/api/v1/organisations/{organisation}/"),
            ("put", "/api/v1/organisations/{organisation}/"),
            ("post", "/api/v1/events/"),
        ],
    )
    def test_is_405_problem(self, debug, editor, deal, organisation, method, path):
        url = path.format(deal=deal, organisation=organisation)
        problem(getattr(editor, method)(url, {}, format="json"), 405, "method_not_allowed")


class TestUpperCaseIds:
    """UUIDs are case-insensitive (RFC 9562): an upper-case id names the same resource."""

    def test_a_deal_resolves(self, debug, editor, deal):
        response = editor.get(f"{DEALS}{deal.upper()}/")
        assert response.status_code == 200, response.content[:500]
        assert response.json()["id"] == deal

    def test_a_deal_resolves_without_trailing_slash(self, debug, editor, deal):
        response = editor.post(f"{DEALS}{deal.upper()}/events", note_event("upper"), format="json")
        assert response.status_code == 201, response.content[:500]
        assert response.json()["events"][0]["deal"] == deal

    def test_an_organisation_resolves(self, debug, editor, organisation):
        response = editor.get(f"/api/v1/organisations/{str(organisation).upper()}/")
        assert response.status_code == 200, response.content[:500]
        assert response.json()["id"] == str(organisation)
