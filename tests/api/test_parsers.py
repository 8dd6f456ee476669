"""Request bodies: UTF-8 JSON only, and an empty body is not JSON.

Runs on the default database: PostgreSQL under `make test`, SQLite (embedded) without it.
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from tracker.deals.models import Organisation
from tracker.eventstore.store import iter_stream_ids, stream_version

from .conftest import client_for, make_organisation, note_event, opening

pytestmark = [pytest.mark.django_db]
DEALS = "/api/v1/deals/"


@pytest.fixture
def organisation() -> UUID:
    return make_organisation("Acme Aero", "GB")


@pytest.fixture
def deal(editor, organisation) -> UUID:
    response = editor.post(DEALS, opening([organisation]), format="json")
    assert response.status_code == 201, response.content
    return UUID(response.json()["id"])


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["status"], body["code"]) == (status, code)
    return body


class TestCharset:
    @pytest.mark.parametrize(
        ("charset", "encoding"),
        [
            ("utf-16", "utf-8"),  # the request: `{}` sent as UTF-8, labelled UTF-16
            ("utf-16", "utf-16"),
            ("UTF-32", "utf-32"),
            ("latin-1", "latin-1"),
            ("utf-8-sig", "utf-8"),
            ("nonexistent", "utf-8"),
            ("", "utf-8"),
            ("bz2_codec", "utf-8"),
        ],
    )
    def test_a_charset_other_than_utf8_is_415(self, editor, organisation, charset, encoding):
        for body in ({}, opening([organisation])):
            response = editor.post(
                DEALS,
                json.dumps(body).encode(encoding),
                content_type=f"application/json; charset={charset}",
            )
            result = problem(response, 415, "unsupported_media_type")
            assert "UTF-8" in result["detail"]
        assert list(iter_stream_ids()) == []

    def test_is_415_on_every_write(self, editor, deal, organisation):
        content_type = "application/json; charset=utf-16"
        appended = editor.post(f"{DEALS}{deal}/events/", b"{}", content_type=content_type)
        problem(appended, 415, "unsupported_media_type")
        created = editor.post("/api/v1/organisations/", b"{}", content_type=content_type)
        problem(created, 415, "unsupported_media_type")
        path = f"/api/v1/organisations/{organisation}/"
        problem(editor.patch(path, b"{}", content_type=content_type), 415, "unsupported_media_type")
        assert stream_version(deal) == 1

    @pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", '"utf-8"'])
    def test_utf8_under_any_of_its_names_is_read(self, editor, organisation, charset):
        body = opening([organisation], title="Café ✓")
        response = editor.post(
            DEALS,
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            content_type=f"application/json; charset={charset}",
        )
        assert response.status_code == 201, response.content[:500]
        assert response.json()["title"] == "Café ✓"


class TestEmptyBody:
    """Not JSON: 400 `malformed_request`, as for any other body that is not (API.md)."""

    @pytest.mark.parametrize("content_type", ["application/json", None])
    def test_is_400_on_every_write(self, editor, deal, organisation, content_type):
        writes = [
            ("post", DEALS),
            ("post", f"{DEALS}{deal}/events/"),
            ("post", "/api/v1/organisations/"),
            ("patch", f"/api/v1/organisations/{organisation}/"),
        ]
        for method, path in writes:
            if content_type:
                response = getattr(editor, method)(path, b"", content_type=content_type)
            else:
                response = getattr(editor, method)(path)
            result = problem(response, 400, "malformed_request")
            assert "empty" in result["detail"]
        assert stream_version(deal) == 1
        assert list(iter_stream_ids()) == [deal]
        assert Organisation.objects.count() == 1

    def test_an_anonymous_client_still_gets_401(self):
        problem(
            client_for(None).post(DEALS, b"", content_type="application/json"),
            401,
            "not_authenticated",
        )

    def test_an_empty_object_is_still_read(self, editor, deal, organisation):
        path = f"/api/v1/organisations/{organisation}/"
        assert editor.patch(path, {}, format="json").status_code == 200
        response = editor.post(f"{DEALS}{deal}/events/", {}, format="json")
        problem(response, 422, "invalid_event")
        appended = editor.post(f"{DEALS}{deal}/events/", note_event("after"), format="json")
        assert appended.status_code == 201, appended.content[:500]
