"""manage.py create_api_user NAME --role ROLE prints a working token."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from .conftest import write_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def create(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_user", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_prints_a_token_that_carries_the_role():
    deal = write_stream(1)[0].stream_id
    token, said = create("audrey", "--role", "auditor")
    assert "Created user 'audrey' with role auditor; new token" in said
    assert client_with(token).get(f"/api/v1/deals/{deal}/verify/").status_code == 200
    reader, _ = create("rita", "--role", "reader")
    assert client_with(reader).get(f"/api/v1/deals/{deal}/verify/").status_code == 403


def test_rerun_prints_the_same_token_and_new_token_replaces_it():
    first, _ = create("audrey", "--role", "reader")
    again, said = create("audrey", "--role", "reader")
    assert again == first
    assert "Updated user 'audrey' with role reader; existing token" in said
    rotated, said = create("audrey", "--role", "reader", "--new-token")
    assert rotated != first
    assert "new token" in said
    assert client_with(first).get("/api/v1/events/").status_code == 401
    assert client_with(rotated).get("/api/v1/events/").status_code == 200


def test_password_allows_session_login():
    create("sam", "--role", "reader", "--password", "long-enough-pass")
    client = APIClient()
    assert client.login(username="sam", password="long-enough-pass") is True
    assert client.get("/api/v1/events/").status_code == 200


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        create("mallory", "--role", "admin")
