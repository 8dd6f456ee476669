"""API tokens, stored hashed (django-rest-knox), and the helpers that issue them.

The database holds a token's SHA-512 digest and its first 15 characters (the lookup key, 60 of
its 256 random bits), never the token: someone who reads the table, a backup or a log of its
SQL cannot use what they read. A token is shown once, when issued.

Expiry is `REST_KNOX["TOKEN_TTL"]` from settings (None: no expiry); an expired token is refused
as an invalid one and deleted.

On PostgreSQL one query fetches the token, its user and the user's role names (the permission
checks would otherwise ask for the roles in a second query), in SQL written once rather than
compiled by the ORM each time, and prepared once per database session (tracker.api.prepared).
With Redis as the cache, a process keeps what that query returned for a short time, and each
request confirms it with one Redis read, so deleting a token, deactivating a user or taking a
role away still takes effect on the next request (tracker.api.token_cache).
"""

from __future__ import annotations

import binascii
import re
from hmac import compare_digest
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.db import connection, transaction
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.request import Request

from . import token_cache
from .prepared import PreparedStatement

# What `issue_token` makes: 64 lowercase hex characters (knox's default, with no prefix).
_TOKEN = re.compile(r"[0-9a-f]{64}")


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <key>` against knox's hashed tokens.

    Unlike knox's own class, a key that cannot be one of ours (not 64 hex characters, bytes
    that are not UTF-8, NUL) is refused before the database is asked, so a hostile header is a
    401, never a 500; and only the presented token's expiry is checked, not every token of
    its user on every request.
    """

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, AuthToken] | None:
        self._request = request  # for the token cache; DRF makes an instance per request
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes) -> tuple[AbstractBaseUser, AuthToken]:
        invalid = exceptions.AuthenticationFailed("Invalid token.")
        try:
            key = token.decode("ascii")
        except UnicodeDecodeError:
            raise invalid from None
        if not _TOKEN.fullmatch(key):
            raise invalid
        try:
            digest = hash_token(key)
        except (TypeError, binascii.Error):
            raise invalid from None
        token_key = key[: CONSTANTS.TOKEN_KEY_LENGTH]
        if connection.vendor == "postgresql":
            candidates = _candidates_with_roles(token_key, digest, getattr(self, "_request", None))
        else:
            candidates = AuthToken.objects.filter(token_key=token_key).select_related("user")
        for auth_token in candidates:
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                raise exceptions.AuthenticationFailed("Token expired.")
            return self.validate_user(auth_token)
        raise invalid


_TOKEN_FIELDS = [field.attname for field in AuthToken._meta.concrete_fields]
_USER_FIELDS = [field.attname for field in User._meta.concrete_fields]
# Written out rather than built by the ORM: compiling the equivalent queryset (select_related
# plus an ArraySubquery) cost about ten times the query itself on every request.
_CANDIDATES = PreparedStatement(
    "token_candidates",
    (
        "SELECT {token}, {user}, ARRAY({roles}) FROM {tokens} t"
        " JOIN {users} u ON u.{user_pk} = t.{user_fk} WHERE t.{token_key} = %s"
    ).format(
        token=", ".join(f"t.{AuthToken._meta.get_field(name).column}" for name in _TOKEN_FIELDS),
        user=", ".join(f"u.{User._meta.get_field(name).column}" for name in _USER_FIELDS),
        roles=(
            f"SELECT g.name FROM {User.groups.through._meta.db_table} m "
            f"JOIN {Group._meta.db_table} g ON g.id = m.group_id WHERE m.user_id = t.user_id"
        ),
        tokens=AuthToken._meta.db_table,
        users=User._meta.db_table,
        user_pk=User._meta.pk.column,
        user_fk=AuthToken._meta.get_field("user").column,
        token_key=AuthToken._meta.get_field("token_key").column,
    ),
    ["text"],
)


def _candidates_with_roles(token_key: str, digest: str, request: Any) -> list[AuthToken]:
    """The tokens with this lookup key, each with its user and the user's role names.

    One query on PostgreSQL where the ORM needs two: the role names are what
    tracker.deals.roles.has_role would otherwise ask for on this request. If this process
    keeps the presented token's row under the current generation (token_cache.py), that one
    alone, with no query.
    """
    # The generation is read before the rows: a revocation committed after it makes the rows
    # kept here stale.
    row, generation = token_cache.confirmed(digest, request)
    if row is not None:
        return [_token_from(row)]
    with connection.cursor() as cursor:
        _CANDIDATES.execute(cursor, [token_key])
        rows = cursor.fetchall()
    candidates = [_token_from(row) for row in rows]
    if generation is not None:
        for row, candidate in zip(rows, candidates, strict=True):
            if candidate.user.is_active and compare_digest(digest, candidate.digest):
                token_cache.keep(digest, generation, row, candidate.user.pk)
    return candidates


def _token_from(row: tuple[Any, ...]) -> AuthToken:
    split = len(_TOKEN_FIELDS)
    auth_token = AuthToken.from_db(connection.alias, _TOKEN_FIELDS, row[:split])
    user = User.from_db(connection.alias, _USER_FIELDS, row[split:-1])
    user._role_names = set(row[-1])
    auth_token.user = user
    return auth_token


def issue_token(user: AbstractBaseUser, *, revoke_others: bool = False) -> str:
    """A new token for `user` with the configured expiry, returned once and stored hashed.

    With `revoke_others`, the user's earlier tokens stop working in the same transaction.
    """
    with transaction.atomic():
        if revoke_others:
            AuthToken.objects.filter(user=user).delete()
        _, token = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
    return token


def describe_expiry() -> str:
    ttl: Any = knox_settings.TOKEN_TTL
    if ttl is None:
        return "does not expire"
    return f"expires in {ttl.days} days" if ttl.days else f"expires in {ttl}"
