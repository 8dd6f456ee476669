"""API tokens are stored hashed: no table holds a token, and expired or revoked ones fail."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api.conftest import make_user
from tracker.api.auth import issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TOKEN_LINE = re.compile(r"^  (admin|editor|reader|auditor)\s+\S+\s+([0-9a-f]{64})$", re.MULTILINE)


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def every_stored_value() -> str:
    """Every row of every table of the database, as text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
        dump = []
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            dump.extend(row for (row,) in cursor.fetchall())
    assert "knox_authtoken" in tables
    return "\n".join(dump)


def test_no_table_holds_a_token_in_clear():
    tokens = [issue_token(make_user(f"user{n}", "reader")) for n in range(3)]
    out = StringIO()
    call_command("create_api_user", "cli", "--role", "auditor", stdout=out, stderr=StringIO())
    tokens.append(out.getvalue().strip())
    for token in tokens:
        assert with_token(token).get("/api/v1/events/").status_code == 200
    stored = every_stored_value()
    for token in tokens:
        assert token not in stored
        # The lookup key (15 of 64 characters) is stored; the rest of the token is not.
        assert token[:15] in stored
        assert token[15:] not in stored


def test_an_expired_token_is_refused_and_deleted():
    user = make_user("old", "reader")
    token = issue_token(user)
    AuthToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
    response = with_token(token).get("/api/v1/events/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not AuthToken.objects.filter(user=user).exists()


def test_a_token_differing_in_one_character_is_refused():
    token = issue_token(make_user("near", "reader"))
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert with_token(forged).get("/api/v1/events/").status_code == 401
    assert with_token(token.upper()).get("/api/v1/events/").status_code == 401
    assert with_token(token).get("/api/v1/events/").status_code == 200


def test_demo_setup_prints_usable_tokens_and_a_rerun_replaces_them():
    def run() -> dict[str, str]:
        out = StringIO()
        call_command("demo_setup", stdout=out)
        return {name: token for name, token in TOKEN_LINE.findall(out.getvalue())}

    first = run()
    assert set(first) == {"admin", "editor", "reader", "auditor"}
    second = run()
    assert set(second) == set(first)
    for name in first:
        assert second[name] != first[name]
        assert with_token(first[name]).get("/api/v1/events/").status_code == 401
        assert with_token(second[name]).get("/api/v1/events/").status_code == 200
    assert AuthToken.objects.filter(user__username="reader").count() == 1
    stored = every_stored_value()
    assert not any(token in stored for token in [*first.values(), *second.values()])


def test_a_deleted_token_is_refused_on_the_next_request():
    user = make_user("revoked", "reader")
    client = with_token(issue_token(user))
    assert client.get("/api/v1/events/").status_code == 200
    AuthToken.objects.filter(user=user).delete()
    response = client.get("/api/v1/events/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_token_revoked_by_a_new_one_is_refused_on_the_next_request():
    user = make_user("rotated", "reader")
    old = with_token(issue_token(user))
    assert old.get("/api/v1/events/").status_code == 200
    new = with_token(issue_token(user, revoke_others=True))
    assert old.get("/api/v1/events/").status_code == 401
    assert new.get("/api/v1/events/").status_code == 200


def test_a_deactivated_user_is_refused_on_the_next_request():
    user = make_user("leaver", "reader")
    client = with_token(issue_token(user))
    assert client.get("/api/v1/events/").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/v1/events/").status_code == 401


def test_a_role_taken_away_or_given_counts_from_the_next_request():
    user = make_user("demoted", "editor")
    client = with_token(issue_token(user))
    assert client.get("/api/v1/events/").status_code == 200
    user.groups.clear()
    response = client.get("/api/v1/events/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    user.groups.add(Group.objects.get(name="reader"))
    assert client.get("/api/v1/events/").status_code == 200
