"""Which database a read is served from: a PostgreSQL replica when one is configured and up.

A view's GET that may be served by the replica says so once, with `@replica_read`: it is then
called with `using=`, the alias to read from, and passes it to every read it makes. Every other
query stays on the primary (config.routers): writes, `SELECT ... FOR UPDATE`, the projector and
its tasks, the admin, idempotency records, and authentication, so that a token revoked a moment
ago is refused at once rather than once the replica has replayed its deletion.

The replica is a hot standby, a little behind the primary. So the read runs again on the primary,
in the same request, when on the replica
- it needs a version the replica has not replayed yet (`require_version`, for `?min_version=`:
  a client reads its own writes);
- the deal is not found (one just opened may not have reached the replica), or a table or column
  (a migration may not have);
- the read fails: if the replica cannot be reached, or has ended the connection, it is then
  remembered down for REPLICA_RETRY_SECONDS in this process, during which reads go straight to
  the primary instead of each waiting for a connection to fail (connect timeout:
  REPLICA_CONNECT_TIMEOUT); a query the replica cancelled over a conflict with what it replays
  is only read again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connections,
)
from django.http import Http404
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from config.routers import REPLICA
from tracker.deals.errors import DealNotFound
from tracker.eventstore.errors import StreamNotFound
from tracker.eventstore.store import stream_version

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
_NOT_THERE_YET = (DealNotFound, StreamNotFound, NotFound, Http404)
# Undefined table, column, function: a migration the replica has not replayed yet.
_NOT_MIGRATED_YET = ("42P01", "42703", "42883")

_down_until = 0.0
"""`time.monotonic()` until which the replica counts as down in this process."""

P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")


class ReplicaBehind(Exception):
    """The replica has not replayed what the request needs yet: read it on the primary."""


def read_alias() -> str:
    """The alias reads that may be a little stale go to: the replica, unless there is none or
    it was found down in the last REPLICA_RETRY_SECONDS."""
    if settings.REPLICA_READS and time.monotonic() >= _down_until:
        return REPLICA
    return PRIMARY


def require_version(deal_id: UUID, version: int, using: str) -> None:
    """Raise ReplicaBehind if `using` is the replica and its copy of the deal's stream is below
    `version` (the streams table as the replica has replayed it)."""
    if using != PRIMARY and version > 0 and stream_version(deal_id, using=using) < version:
        raise ReplicaBehind


def replica_read(
    method: Callable[Concatenate[V, Request, P], R],
) -> Callable[Concatenate[V, Request, P], R]:
    """A view method that reads from `using=`: the replica, or the primary as the module says."""

    @functools.wraps(method)
    def read(view: V, request: Request, *args: P.args, **kwargs: P.kwargs) -> R:
        alias = read_alias()
        if alias != PRIMARY:
            try:
                return method(view, request, *args, using=alias, **kwargs)  # type: ignore[arg-type]
            except (ReplicaBehind, *_NOT_THERE_YET):
                pass
            except ProgrammingError as error:
                if getattr(error.__cause__, "sqlstate", None) not in _NOT_MIGRATED_YET:
                    raise
            except (OperationalError, InterfaceError) as error:
                replica_failed(error)
        return method(view, request, *args, using=PRIMARY, **kwargs)  # type: ignore[arg-type]

    return read


def replica_failed(error: DatabaseError) -> None:
    """Note a failed read on the replica's watch: if its connection is lost (or was never made),
    drop it and count the replica down for REPLICA_RETRY_SECONDS."""
    global _down_until
    replica = connections[REPLICA]
    if replica.connection is not None and replica.is_usable():
        # The replica is up: it cancelled the query over a conflict with what it replays
        # (SQLSTATE 40001), or the error was the primary's.
        logger.info("A read on the replica failed; read again on the primary: %s", error)
        return
    with contextlib.suppress(DatabaseError):
        replica.close()
    _down_until = time.monotonic() + settings.REPLICA_RETRY_SECONDS
    logger.warning(
        "Replica unavailable; reads go to the primary for %ss: %s",
        settings.REPLICA_RETRY_SECONDS,
        error,
    )


def replica_answered() -> None:
    """Note that the replica answered (a health check): reads may go there again at once."""
    global _down_until
    _down_until = 0.0


def replica_health(primary_ok: bool) -> dict[str, Any]:
    """`replica` ("ok", "down" or "not configured") and its lag behind the primary: bytes of
    WAL not yet replayed, and seconds since the last transaction it replayed (0 when it has
    replayed everything the primary has written)."""
    body: dict[str, Any] = {
        "replica": "not configured",
        "replica_lag_bytes": None,
        "replica_lag_seconds": None,
    }
    if not settings.REPLICA_READS:
        return body
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT pg_last_wal_replay_lsn()::text,"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
            )
            replayed, since = cursor.fetchone()
    except DatabaseError as error:
        replica_failed(error)
        body["replica"] = "down"
        return body
    replica_answered()
    body["replica"] = "ok"
    if not primary_ok or replayed is None:
        return body
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [replayed])
            (behind,) = cursor.fetchone()
    except DatabaseError:
        logger.warning("Health check: primary's WAL position unavailable", exc_info=True)
        return body
    body["replica_lag_bytes"] = max(int(behind), 0)
    if behind <= 0:
        body["replica_lag_seconds"] = 0.0
    elif since is not None:
        body["replica_lag_seconds"] = round(max(since, 0.0), 3)
    return body


class ReplicaReads:
    """For a generic view: its GET reads the view's queryset from the database `replica_read`
    chooses; its other methods, from the primary."""

    read_from = PRIMARY

    @replica_read
    def get(self, request: Request, *args: Any, using: str, **kwargs: Any) -> Any:
        self.read_from = using
        return super().get(request, *args, **kwargs)  # type: ignore[misc]

    def get_queryset(self) -> Any:
        return super().get_queryset().using(self.read_from)  # type: ignore[misc]
