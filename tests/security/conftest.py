"""Clients by role and the ledger's state, for the security tests (helpers from tests/api)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import client_as, client_for, make_user
from tracker.eventstore.store import iter_stream_ids, stream_version

__all__ = ["client_as"]  # the fixture, shared with tests/api


@pytest.fixture
def editor() -> APIClient:
    return client_for(make_user("eddie", "editor"))


@pytest.fixture
def auditor() -> APIClient:
    return client_for(make_user("audrey", "auditor"))


@pytest.fixture
def reader() -> APIClient:
    return client_for(make_user("rita", "reader"))


@pytest.fixture
def ledger(auditor: APIClient) -> Callable[[], dict[str, object]]:
    """A callable giving every stream's version and `/verify/` answer, to compare before/after."""

    def state() -> dict[str, object]:
        streams: dict[str, object] = {}
        for stream_id in iter_stream_ids():
            verified = auditor.get(f"/api/v1/deals/{stream_id}/verify/")
            assert verified.status_code == 200, verified.content
            body = verified.json()
            assert body["valid"] is True
            streams[str(stream_id)] = (stream_version(UUID(str(stream_id))), body)
        return streams

    return state
