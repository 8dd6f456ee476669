"""Endpoints take only the query parameters they know: a misspelt filter is 400, not "every
deal", and a misspelt `as_of` is 400, not the state of today."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from .conftest import client_for, make_organisation, make_user, opening

pytestmark = pytest.mark.django_db
LISTS = ["/api/v1/deals/", "/api/v1/organisations/", "/api/v1/imports/"]


@pytest.fixture
def editor() -> APIClient:
    user = make_user("ed", "editor")
    # An auditor too: the imports list and `known_at` are theirs.
    user.groups.add(Group.objects.get_or_create(name="auditor")[0])
    return client_for(user)


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query", ["stag=signed", "countries=GB", "page=2", "limit=5&offset=10"])
def test_an_unknown_parameter_is_400_naming_it_and_the_known_ones(editor, path, query):
    response = editor.get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "malformed_request"
    unknown = query.split("&")[-1].split("=")[0]
    assert [error["field"] for error in body["errors"]] == [unknown]
    message = body["errors"][0]["message"]
    assert message.startswith("unknown parameter (this endpoint takes: ")
    assert "limit" in message
    assert "format" not in message


@pytest.mark.parametrize("path", LISTS)
def test_every_unknown_parameter_is_named_once(editor, path):
    response = editor.get(f"{path}?zeta=1&alpha=2&alpha=3&limit=2")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["alpha", "zeta"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query", ["limit=1", "format=json", "limit=2&format=json", "cursor="])
def test_known_parameters_still_answer(editor, path, query):
    make_organisation("Acme Aero", "GB")
    response = editor.get(f"{path}?{query}")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", LISTS)
def test_an_anonymous_client_is_told_to_authenticate_first(path):
    assert APIClient().get(f"{path}?stag=signed").status_code == 401


def test_a_write_is_not_refused_for_its_query(editor):
    response = editor.post(
        "/api/v1/organisations/?via=script",
        {"name": "Beta", "kind": "company", "country": "IT"},
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("path", LISTS)
def test_the_known_parameters_are_the_schemas(editor, path):
    """The one list the check reads is the one clients are told of: the OpenAPI parameters."""
    schema = editor.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    documented = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
    for name in documented:
        response = editor.get(path, {name: "x"})
        assert not any(
            error["message"].startswith("unknown parameter")
            for error in response.json().get("errors", [])
        ), name
    assert editor.get(path, {"undocumented": "x"}).status_code == 400


class TestTheOtherEndpoints:
    @pytest.fixture
    def deal(self, editor) -> str:
        parties = [make_organisation("Acme Aero", "GB"), make_organisation("Beta", "IT")]
        opened = editor.post("/api/v1/deals/", opening(parties), format="json")
        assert opened.status_code == 201, opened.content
        return opened.json()["id"]

    @pytest.mark.parametrize(
        ("path", "query", "unknown"),
        [
            ("/api/v1/deals/{deal}/", "minversion=2", "minversion"),
            ("/api/v1/deals/{deal}/state/", "asof=2025-01-01", "asof"),
            ("/api/v1/deals/{deal}/state/", "as_of=2025-01-01&knownat=x", "knownat"),
            ("/api/v1/deals/{deal}/events/", "after=3", "after"),
            ("/api/v1/deals/{deal}/diff/", "from=2025-01-01", "from"),
            ("/api/v1/events/", "cursor=abc", "cursor"),
        ],
    )
    def test_an_unknown_parameter_is_400_naming_it(self, editor, deal, path, query, unknown):
        response = editor.get(f"{path.format(deal=deal)}?{query}")
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "malformed_request"
        assert [error["field"] for error in body["errors"]] == [unknown]
        assert body["errors"][0]["message"].startswith("unknown parameter (this endpoint takes: ")

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/deals/{deal}/?min_version=1&format=json",
            "/api/v1/deals/{deal}/state/?as_of=2025-01-01&format=json",
            "/api/v1/deals/{deal}/events/?after_version=0&limit=5",
            "/api/v1/events/?limit=5&format=json",
        ],
    )
    def test_known_parameters_and_format_still_answer(self, editor, deal, path):
        assert editor.get(path.format(deal=deal)).status_code == 200

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/deals/{deal}/timeline/",
            "/api/v1/deals/{deal}/verify/",
            "/api/v1/deals/{deal}/export/",
            "/api/v1/ledger/digest/",
        ],
    )
    def test_the_auditors_endpoints_take_no_parameter_but_format(self, client_as, deal, path):
        auditor = client_as("auditor")
        refused = auditor.get(path.format(deal=deal), {"known_at": "2020-01-01T00:00:00Z"})
        assert refused.status_code == 400, refused.content
        assert [e["field"] for e in refused.json()["errors"]] == ["known_at"]
        answered = auditor.get(path.format(deal=deal), {"format": "json"})
        assert answered.status_code == 200, answered.content
