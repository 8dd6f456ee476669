"""Who may do what (API.md): every endpoint here x every role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tracker.deals.services import open_deal

from .conftest import (
    OCCURRED,
    SOURCE,
    client_for,
    make_organisation,
    make_user,
    note_event,
    opening,
    write_stream,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROLES = ["anonymous", "none", "reader", "editor", "auditor", "superuser"]
EXPECTED = {
    "feed": [401, 403, 200, 200, 200, 200],
    "verify": [401, 403, 403, 403, 200, 200],
    "export": [401, 403, 403, 403, 200, 200],
    "schema": [200, 200, 200, 200, 200, 200],
    "docs": [200, 200, 200, 200, 200, 200],
    "health": [200, 200, 200, 200, 200, 200],
}
URLS = {
    "feed": "/api/v1/events/",
    "verify": "/api/v1/deals/{deal}/verify/",
    "export": "/api/v1/deals/{deal}/export/",
    "schema": "/api/schema/",
    "docs": "/api/docs/",
    "health": "/health/",
}
CODES = {401: "not_authenticated", 403: "permission_denied"}


@pytest.mark.parametrize(
    ("endpoint", "role", "status"),
    [
        (endpoint, role, status)
        for endpoint, statuses in EXPECTED.items()
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_endpoint_answers_each_role_as_the_contract_says(client_as, endpoint, role, status):
    deal = write_stream(1)[0].stream_id
    response = client_as(role).get(URLS[endpoint].format(deal=deal))
    assert response.status_code == status
    if status in CODES:
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == CODES[status]
    if status == 401:
        assert response["WWW-Authenticate"] == "Token"


def test_the_three_role_groups_exist():
    names = set(Group.objects.values_list("name", flat=True))
    assert {"reader", "editor", "auditor"} <= names


def test_an_invalid_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = client.get("/api/v1/events/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_inactive_user_is_401():
    user = make_user("gone", "auditor")
    client = client_for(user)
    user.is_active = False
    user.save()
    assert client.get("/api/v1/events/").status_code == 401


def test_session_login_works_for_an_auditor():
    make_user("sam", "auditor")
    deal = write_stream(1)[0].stream_id
    client = APIClient()
    assert client.login(username="sam", password="pw-sam") is True
    assert client.get(f"/api/v1/deals/{deal}/verify/").json()["valid"] is True


# method, path, body (None for reads) -> statuses for ROLES
DEAL_ENDPOINTS = {
    "deals list": ("get", "/api/v1/deals/", None, [401, 403, 200, 200, 200, 200]),
    "deals open": ("post", "/api/v1/deals/", "opening", [401, 403, 403, 201, 403, 201]),
    "deal": ("get", "/api/v1/deals/{deal}/", None, [401, 403, 200, 200, 200, 200]),
    "events": ("get", "/api/v1/deals/{deal}/events/", None, [401, 403, 200, 200, 200, 200]),
    "append": ("post", "/api/v1/deals/{deal}/events/", "note", [401, 403, 403, 201, 403, 201]),
    "state": ("get", "/api/v1/deals/{deal}/state/", None, [401, 403, 200, 200, 200, 200]),
    "state as_of": (
        "get",
        "/api/v1/deals/{deal}/state/?as_of=2025-06-15",
        None,
        [401, 403, 200, 200, 200, 200],
    ),
    "state known_at": (
        "get",
        "/api/v1/deals/{deal}/state/?known_at=2030-01-01T00:00:00Z",
        None,
        [401, 403, 403, 403, 200, 200],
    ),
    "diff as_of": (
        "get",
        "/api/v1/deals/{deal}/diff/?from_as_of=2025-06-15",
        None,
        [401, 403, 200, 200, 200, 200],
    ),
    "diff known_at": (
        "get",
        "/api/v1/deals/{deal}/diff/?to_known_at=2030-01-01T00:00:00Z",
        None,
        [401, 403, 403, 403, 200, 200],
    ),
    "timeline": ("get", "/api/v1/deals/{deal}/timeline/", None, [401, 403, 403, 403, 200, 200]),
    "organisations": ("get", "/api/v1/organisations/", None, [401, 403, 200, 200, 200, 200]),
    "organisation add": (
        "post",
        "/api/v1/organisations/",
        "organisation",
        [401, 403, 403, 201, 403, 201],
    ),
    "organisation": (
        "get",
        "/api/v1/organisations/{org}/",
        None,
        [401, 403, 200, 200, 200, 200],
    ),
    "organisation edit": (
        "patch",
        "/api/v1/organisations/{org}/",
        "rename",
        [401, 403, 403, 200, 403, 200],
    ),
    "event types": ("get", "/api/v1/event-types/", None, [401, 403, 200, 200, 200, 200]),
    "event type": ("get", "/api/v1/event-types/NoteAdded/", None, [401, 403, 200, 200, 200, 200]),
    "imports": ("get", "/api/v1/imports/", None, [401, 403, 403, 200, 200, 200]),
}


@pytest.mark.parametrize(
    ("endpoint", "role", "status"),
    [
        (endpoint, role, status)
        for endpoint, (*_, statuses) in DEAL_ENDPOINTS.items()
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_deal_and_reference_endpoints_answer_each_role(client_as, endpoint, role, status):
    org = make_organisation()
    deal = open_deal(
        title="A deal",
        kind="other",
        summary="",
        parties=[{"organisation": str(org), "role": "partner"}],
        occurred=OCCURRED,
        source=SOURCE,
        actor="setup",
    ).stream_id
    bodies = {
        "opening": opening([org]),
        "note": note_event("hello", 1),
        "organisation": {"name": "New Co", "kind": "company", "country": "FR"},
        "rename": {"name": "Renamed Co"},
    }
    method, path, body, _ = DEAL_ENDPOINTS[endpoint]
    client = client_as(role)
    response = getattr(client, method)(
        path.format(deal=deal, org=org), bodies.get(body or ""), format="json"
    )
    assert response.status_code == status, response.content
    if status in CODES:
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == CODES[status]
