"""Tokens this process has already checked, confirmed on each request by one Redis read.

Reading a token, its user and the user's roles from PostgreSQL was the dearest part of a
cheap request (about 0.45 ms of CPU of 2 ms, in the gunicorn worker and in PostgreSQL), so a
process keeps what it read, keyed by the token's digest, for `API_TOKEN_CACHE_SECONDS` at most.

Revocation stays immediate. Redis holds one *generation*, a random value; every change that
can revoke a token (a token deleted or changed, a user changed or deleted, a role given or
taken away, a role group renamed or deleted) writes a new one, when it is made and again once
its transaction commits. Each request reads the generation first (a GET, sent as the rate
limit's script is, and in the same round trip as the request's rate limit when the token is
kept) and uses a kept entry only if it was read under that same generation. So
once the request or command that revoked a token has been answered, its commit hooks have run
and no process accepts the token any more. A generation is never reused (it is random, not a
count), so a Redis that restarted empty cannot make old entries current again.

What this does not see, and its bound: a change made without the models' signals (raw SQL,
`QuerySet.update()` on users or tokens, a data migration's historical models) writes no
generation; nor does a revocation whose write to Redis failed twice (logged as an error), and a
Redis restored from an old snapshot may bring back an old generation. Each is in force in every
process once its entries age out, `API_TOKEN_CACHE_SECONDS` (30 s by default) at most. Nothing
in the project revokes without the signals. Only rows of active users are kept. Without
Redis as the cache, or when Redis cannot be reached, nothing is kept and every request reads
PostgreSQL, as before. An expired token is refused from the expiry kept with it.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from . import throttling

logger = logging.getLogger(__name__)

# Far more than a process's clients; when full, everything is dropped and read again.
_MAX_ENTRIES = 4096
# digest -> (generation, monotonic time it ages out, the token query's row, the user's pk)
_entries: dict[str, tuple[bytes, float, tuple[Any, ...], Any]] = {}
_GET, _SET, _NX = b"GET", b"SET", b"NX"


def _key() -> bytes:
    return cache.make_key("api-token-generation").encode()


def confirmed(digest: str, request: Any) -> tuple[tuple[Any, ...] | None, bytes | None]:
    """The row kept for this token digest if it is still current, and the current generation.

    The generation is read with the request's user rate limit when the token is kept (one
    round trip for both, throttling.count_with_generation), else alone. A row read from the
    database now may be kept under the returned generation; None: keep nothing.
    """
    if settings.API_TOKEN_CACHE_SECONDS <= 0 or throttling.redis_client() is None:
        return None, None
    entry = _entries.get(digest)
    if entry is not None and time.monotonic() >= entry[1]:
        entry = None
    key = _key()
    try:
        generation = None
        if entry is not None:
            generation = throttling.count_with_generation(request, entry[3], key, entry[0])
        if generation is None:
            generation = throttling.send(_GET, key)
        if not generation:
            # Redis lost it (restarted empty, flushed, evicted): a new one, which no kept
            # entry can hold, whichever process writes it first.
            throttling.send(_SET, key, secrets.token_hex(16).encode(), _NX)
            generation = throttling.send(_GET, key)
    except Exception:
        # Not only RedisError: redis-py has raised ValueError from a socket closed under it
        # (seen with concurrent requests). Unchecked entries must not be trusted, and a request
        # must not fail for it: read PostgreSQL until Redis answers again.
        logger.warning("API token cache not used: Redis did not answer", exc_info=True)
        _entries.clear()
        return None, None
    if entry is not None and entry[0] == generation:
        return entry[2], generation
    _entries.pop(digest, None)
    return None, generation


def keep(digest: str, generation: bytes, row: tuple[Any, ...], user_pk: Any) -> None:
    """Keep the row read for this token digest, under the generation read *before* the row."""
    if len(_entries) >= _MAX_ENTRIES:
        _entries.clear()
    ages_out = time.monotonic() + settings.API_TOKEN_CACHE_SECONDS
    _entries[digest] = (generation, ages_out, row, user_pk)


def revoke_kept(using: str = "default") -> None:
    """Make every process read its tokens again: now, and once the current transaction commits.

    Now, so that a request in the same transaction (or a test) sees it; after the commit, so
    that a request which read the old rows while the transaction was open cannot keep them.
    """
    _new_generation()
    # Robust: a hook before it that fails must not leave the kept rows current.
    transaction.on_commit(_new_generation, using=using, robust=True)


def _new_generation() -> None:
    _entries.clear()
    if throttling.redis_client() is None:
        return
    for attempt in range(2):
        try:
            throttling.send(_SET, _key(), secrets.token_hex(16).encode())
            return
        except Exception:  # as in confirmed(): not only RedisError
            if attempt == 0:
                continue
            logger.error(
                "Could not tell other processes that API tokens were revoked: they may "
                "accept the revoked tokens for up to API_TOKEN_CACHE_SECONDS (%s s)",
                settings.API_TOKEN_CACHE_SECONDS,
                exc_info=True,
            )
