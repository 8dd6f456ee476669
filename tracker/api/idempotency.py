"""The `Idempotency-Key` header (API.md, "Writes are safe to retry"), scoped to the user.

The event store keeps keys durably with a fingerprint of the append, so a retry after a restart
returns what the first request stored. Keys live in one table for every client; prefixing each
with the user's id keeps two users' keys apart, so one client can neither collide with nor
replay another's request.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.request import Request

from .problems import FieldProblem, MalformedRequest

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
"""What API.md allows a client; also the store's column width."""


def idempotency_key(request: Request) -> str | None:
    """The request's key scoped to its user, or None without the header.

    Raises MalformedRequest for an empty key, one over 255 characters, or one with control
    characters (NUL cannot even be stored in PostgreSQL text).
    """
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not raw or len(raw) > MAX_LENGTH:
        raise MalformedRequest(
            f"The {HEADER} header must be 1 to {MAX_LENGTH} characters long.",
            [FieldProblem(HEADER, f"must be 1 to {MAX_LENGTH} characters long")],
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise MalformedRequest(
            f"The {HEADER} header must not hold control characters.",
            [FieldProblem(HEADER, "must not hold control characters")],
        )
    return scoped(request.user, raw)


def scoped(user: Any, key: str) -> str:
    """`u<user id>:<key>`, or a digest of the key when that would not fit the column."""
    prefix = f"u{user.pk}:"
    if len(prefix) + len(key) <= MAX_LENGTH:
        return prefix + key
    return prefix + "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
