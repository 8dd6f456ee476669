"""GET /api/v1/deals/{id}/verify/: recompute the hash chain."""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.db import connection, transaction

from .conftest import write_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def verify_url(stream) -> str:
    return f"/api/v1/deals/{stream}/verify/"


def forge(stream, version: int, data: str = '{"text": "forged"}') -> None:
    """Alter a stored event as a database superuser could, with the triggers disabled."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE eventstore_event SET data = %s::jsonb WHERE stream_id = %s AND version = %s",
            [data, stream, version],
        )


class TestVerify:
    def test_an_untouched_stream_is_valid(self, client_as):
        events = write_stream(3)
        response = client_as("auditor").get(verify_url(events[0].stream_id))
        assert response.status_code == 200
        assert response.json() == {
            "deal": str(events[0].stream_id),
            "valid": True,
            "events": 3,
            "head": events[-1].hash,
            "first_bad_version": None,
            "reason": None,
        }

    def test_a_row_altered_with_triggers_disabled_is_invalid_at_its_version(self, client_as):
        events = write_stream(3)
        stream = events[0].stream_id
        forge(stream, 2)
        body = client_as("auditor").get(verify_url(stream)).json()
        assert body["valid"] is False
        assert body["first_bad_version"] == 2
        assert body["reason"] == "hash does not match the event's contents"

    def test_an_unknown_deal_is_404(self, client_as):
        response = client_as("auditor").get(verify_url(uuid4()))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
