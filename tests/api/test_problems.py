"""Every error code of API.md, provoked by a real request and answered as problem details."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from django.conf import settings
from django.test import override_settings

from tracker.api.parsers import MAX_STRING_LENGTH
from tracker.eventstore.store import stream_version

from .conftest import (
    client_for,
    database_unreachable,
    make_organisation,
    make_user,
    note_event,
    opening,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.api.urls"),
]
APPEND = "/api/v1/test/append/"


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:deal-tracker:problem:{code}"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert isinstance(body["errors"], list)
    return body


def note(stream, expected_version: int, text: str = "hello") -> dict:
    return {
        "stream": str(stream),
        "expected_version": expected_version,
        "events": [{"type": "NoteAdded", "data": {"text": text}}],
    }


class TestEventStoreErrors:
    def test_stale_expected_version_is_409_with_current_version(self, editor):
        stream = uuid4()
        assert editor.post(APPEND, note(stream, 0), format="json").status_code == 201
        body = problem(editor.post(APPEND, note(stream, 0), format="json"), 409, "version_conflict")
        assert body["current_version"] == 1
        assert "expected 0, current 1" in body["detail"]

    def test_idempotency_key_with_another_body_is_422(self, editor):
        stream = uuid4()
        first = editor.post(APPEND, note(stream, 0), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = editor.post(APPEND, note(stream, 0), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.json()["events"] == first.json()["events"]
        other = editor.post(
            APPEND, note(stream, 0, "other"), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        problem(other, 422, "idempotency_key_reused")
        assert stream_version(stream) == 1

    def test_a_float_is_422_invalid_event_naming_its_path(self, editor):
        body = note(uuid4(), 0)
        body["events"][0]["data"] = {"amount": 1.5}
        result = problem(editor.post(APPEND, body, format="json"), 422, "invalid_event")
        assert result["errors"] == [
            {
                "field": "events[0].data.amount",
                "message": "floats are not stored; send a decimal string",
            }
        ]


class TestRequestErrors:
    def test_body_that_is_not_json_is_400(self, editor):
        response = editor.post(APPEND, b'{"stream": ', content_type="application/json")
        problem(response, 400, "malformed_request")

    def test_body_of_the_wrong_top_level_shape_is_400(self, editor):
        response = editor.post(APPEND, [note(uuid4(), 0)], format="json")
        problem(response, 400, "malformed_request")

    def test_fields_failing_validation_are_422_with_each_field(self, editor):
        body = {"stream": "not-a-uuid", "events": [{"type": "NoteAdded"}]}
        result = problem(editor.post(APPEND, body, format="json"), 422, "invalid_event")
        fields = {error["field"] for error in result["errors"]}
        assert fields == {"stream", "expected_version", "events[0].data"}

    def test_body_over_the_limit_is_413_and_nothing_is_written(self, editor):
        stream = uuid4()
        body = note(stream, 0, "x" * (2 * 1024 * 1024))
        result = problem(editor.post(APPEND, body, format="json"), 413, "payload_too_large")
        assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in result["detail"]
        assert stream_version(stream) == 0

    def test_body_just_under_the_limit_is_read(self, editor):
        stream = uuid4()
        # In pieces: one string is refused past MAX_STRING_LENGTH, whatever the body's size.
        size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 200
        parts = ["x" * MAX_STRING_LENGTH] * (size // (MAX_STRING_LENGTH + 3))
        body = {**note(stream, 0), "events": [{"type": "NoteAdded", "data": {"parts": parts}}]}
        assert len(json.dumps(body)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE - MAX_STRING_LENGTH
        assert editor.post(APPEND, body, format="json").status_code == 201

    def test_form_body_is_415(self, editor):
        response = editor.post(APPEND, {"stream": "x"}, format="multipart")
        problem(response, 415, "unsupported_media_type")

    def test_an_accept_header_that_nothing_satisfies_is_406(self, editor):
        response = editor.get("/api/v1/events/", HTTP_ACCEPT="application/xml")
        problem(response, 406, "not_acceptable")

    def test_a_format_no_renderer_has_is_406_not_404(self, editor):
        # DRF's 404 would read as "no such resource" for a path that exists.
        response = editor.get("/api/v1/events/", {"format": "xml"})
        problem(response, 406, "not_acceptable")
        assert "this endpoint has: json, api." in response.json()["detail"]
        assert editor.get("/api/v1/events/", {"format": "json"}).status_code == 200

    def test_wrong_method_is_405(self, editor):
        problem(editor.delete("/api/v1/events/"), 405, "method_not_allowed")

    def test_unknown_path_under_api_is_404_problem(self, editor):
        problem(editor.get("/api/v1/no-such-thing/"), 404, "not_found")

    def test_deal_id_that_is_not_a_uuid_is_404_problem(self, editor):
        problem(editor.get("/api/v1/deals/42/verify/"), 404, "not_found")

    def test_over_the_rate_limit_is_429_with_retry_after(self):
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "2/min"}
        client = client_for(make_user(f"busy-{uuid4().hex[:8]}", "reader"))
        with override_settings(
            REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        ):
            statuses = [client.get("/api/v1/events/").status_code for _ in range(2)]
            response = client.get("/api/v1/events/")
        assert statuses == [200, 200]
        problem(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0


class TestPluggedInErrors:
    """Errors of apps this module does not import map by their `code` and `errors`."""

    def test_domain_error_with_code_and_field_errors_is_422(self, editor):
        result = problem(editor.get("/api/v1/test/raise/plugged-invalid/"), 422, "invalid_event")
        assert result["errors"] == [{"field": "data.shares", "message": "shares must sum to 100"}]
        assert result["detail"] == "the event breaks a domain rule"

    def test_domain_not_found_is_404(self, editor):
        result = problem(editor.get("/api/v1/test/raise/plugged-not-found/"), 404, "not_found")
        assert result["detail"] == "No deal 42."

    def test_unexpected_error_is_500_without_internals(self, editor, caplog):
        response = editor.get("/api/v1/test/raise/bug/")
        result = problem(response, 500, "internal_error")
        assert "hunter2" not in response.content.decode()
        assert result["errors"] == []
        assert "hunter2" in caplog.text


class TestDatabaseDown:
    def test_write_while_the_database_is_down_is_503_and_writes_nothing(self, editor):
        stream = uuid4()
        with database_unreachable():
            response = editor.post(APPEND, note(stream, 0), format="json")
        result = problem(response, 503, "unavailable")
        assert result["detail"] == "The database is unavailable; nothing was written."
        assert stream_version(stream) == 0

    def test_read_while_the_database_is_down_is_503(self, editor):
        with database_unreachable():
            response = editor.get("/api/v1/events/")
        problem(response, 503, "unavailable")
        assert editor.get("/api/v1/events/").status_code == 200


class TestEveryCodeOnTheDealEndpoints:
    """API.md's table of codes, each earned by a request to a real endpoint of the contract."""

    @pytest.fixture
    def deal(self, editor) -> str:
        org = make_organisation()
        response = editor.post("/api/v1/deals/", opening([org]), format="json")
        assert response.status_code == 201
        return response.json()["id"]

    def events(self, deal: str) -> str:
        return f"/api/v1/deals/{deal}/events/"

    def test_malformed_request(self, editor, deal):
        not_json = editor.post(self.events(deal), b"{", content_type="application/json")
        problem(not_json, 400, "malformed_request")
        a_list = editor.post(self.events(deal), [note_event("x")], format="json")
        problem(a_list, 400, "malformed_request")
        problem(editor.get(f"/api/v1/deals/{deal}/state/?as_of=june"), 400, "malformed_request")

    def test_not_authenticated(self):
        problem(client_for(None).get("/api/v1/deals/"), 401, "not_authenticated")

    def test_permission_denied(self, deal):
        reader = client_for(make_user("rita", "reader"))
        problem(
            reader.post(self.events(deal), note_event("x"), format="json"), 403, "permission_denied"
        )
        problem(reader.get(f"/api/v1/deals/{deal}/timeline/"), 403, "permission_denied")

    def test_not_found(self, editor):
        problem(editor.get(f"/api/v1/deals/{uuid4()}/"), 404, "not_found")
        problem(editor.get(f"/api/v1/organisations/{uuid4()}/"), 404, "not_found")
        problem(editor.get("/api/v1/event-types/Nope/"), 404, "not_found")

    def test_version_conflict(self, editor, deal):
        assert editor.post(self.events(deal), note_event("a", 1), format="json").status_code == 201
        body = problem(
            editor.post(self.events(deal), note_event("b", 1), format="json"),
            409,
            "version_conflict",
        )
        assert body["current_version"] == 2

    def test_payload_too_large(self, editor, deal):
        body = note_event("x" * (2 * 1024 * 1024))
        problem(editor.post(self.events(deal), body, format="json"), 413, "payload_too_large")
        assert stream_version(deal) == 1

    def test_invalid_event(self, editor, deal):
        body = {**note_event("x"), "data": {"text": "x", "extra": 1}}
        result = problem(editor.post(self.events(deal), body, format="json"), 422, "invalid_event")
        assert [e["field"] for e in result["errors"]] == ["data.extra"]
        unknown = {**note_event("x"), "type": "NoSuchEvent"}
        result = problem(
            editor.post(self.events(deal), unknown, format="json"), 422, "invalid_event"
        )
        assert [e["field"] for e in result["errors"]] == ["type"]

    def test_idempotency_key_reused(self, editor, deal):
        editor.post(self.events(deal), note_event("a"), format="json", HTTP_IDEMPOTENCY_KEY="k")
        again = editor.post(
            self.events(deal), note_event("b"), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        problem(again, 422, "idempotency_key_reused")

    def test_idempotency_key_reused_does_not_show_the_stored_key(self, editor, deal):
        """The store keeps keys scoped to the user (`u<id>:<key>`); that is not the client's."""
        key = "order-7"
        editor.post(self.events(deal), note_event("a"), format="json", HTTP_IDEMPOTENCY_KEY=key)
        again = editor.post(
            self.events(deal), note_event("b"), format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        body = problem(again, 422, "idempotency_key_reused")
        assert ":" + key not in again.content.decode()
        assert "Idempotency-Key" in body["detail"]

    def test_throttled(self, deal):
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "1/min"}
        client = client_for(make_user(f"busy-{uuid4().hex[:8]}", "reader"))
        with override_settings(
            REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        ):
            assert client.get(f"/api/v1/deals/{deal}/").status_code == 200
            response = client.get(f"/api/v1/deals/{deal}/")
        problem(response, 429, "throttled")

    def test_unavailable_and_nothing_written(self, editor, deal):
        with database_unreachable():
            response = editor.post(self.events(deal), note_event("a"), format="json")
        problem(response, 503, "unavailable")
        assert stream_version(deal) == 1
