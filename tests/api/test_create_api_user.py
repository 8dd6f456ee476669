"""manage.py create_api_user NAME --role ROLE prints a working token."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from knox.crypto import hash_token
from knox.models import AuthToken
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


def test_each_run_prints_a_new_token_and_revoke_others_stops_the_earlier_ones():
    first, _ = create("audrey", "--role", "reader")
    second, said = create("audrey", "--role", "reader")
    assert second != first
    assert "Updated user 'audrey' with role reader; new token" in said
    assert client_with(first).get("/api/v1/events/").status_code == 200
    assert client_with(second).get("/api/v1/events/").status_code == 200
    third, said = create("audrey", "--role", "reader", "--revoke-others")
    assert "earlier tokens revoked" in said
    assert client_with(first).get("/api/v1/events/").status_code == 401
    assert client_with(second).get("/api/v1/events/").status_code == 401
    assert client_with(third).get("/api/v1/events/").status_code == 200


def test_the_token_is_stored_only_as_a_digest():
    token, _ = create("audrey", "--role", "reader")
    rows = AuthToken.objects.filter(user__username="audrey").values_list("digest", "token_key")
    [(digest, key)] = rows
    assert digest == hash_token(token)
    assert token not in digest
    assert key == token[:15]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        stored = repr(cursor.fetchall())
    assert token not in stored


def test_password_allows_session_login():
    create("sam", "--role", "reader", "--password", "long-enough-pass")
    client = APIClient()
    assert client.login(username="sam", password="long-enough-pass") is True
    assert client.get("/api/v1/events/").status_code == 200


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        create("mallory", "--role", "admin")
