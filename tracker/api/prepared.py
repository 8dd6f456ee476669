"""SQL of the API's hottest reads, prepared once per PostgreSQL session and then run by name.

PostgreSQL parsed and planned these short statements on every request, and that cost more
than running them: the token lookup took 0.27 ms sent as text and 0.10 ms as `EXECUTE` of a
prepared statement, measured alone on the bench's machine. Django leaves psycopg's automatic
preparing off (`prepare_threshold` None) for the whole project, so these few statements are
prepared with SQL's own `PREPARE`, through Django's cursor like any other query: its errors
are Django's, and query logging and capture see them.

A statement is prepared the first time it runs on a connection and lives until the session
ends; a new connection (after CONN_MAX_AGE, or a failed health check) prepares it again.
`PREPARE` is not undone by a rollback, so a statement prepared inside a transaction that then
fails is still there. PostgreSQL re-plans a prepared statement itself when a table it reads
changes, unless the change alters the type of a column it returns: then it is prepared
again here. What this needs from the deployment: each Django connection is one server session
(no PgBouncer in transaction pooling mode, which may hand the next transaction another one).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError, ProgrammingError
from django.db.backends.utils import CursorWrapper
from psycopg import errors

# The names prepared on each psycopg connection; an entry goes with its connection.
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class PreparedStatement:
    """One statement written with `%s` placeholders, prepared on first use per connection.

    `types` names the PostgreSQL type of each placeholder, in order.
    """

    def __init__(self, name: str, sql: str, types: Sequence[str]) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain SQL identifier")
        parts = sql.split("%s")
        if len(parts) - 1 != len(types):
            raise ValueError(f"{name}: {len(parts) - 1} placeholders, {len(types)} types")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        self.name = f"tracker_api_{name}"
        self.sql = sql
        self._prepare = f"PREPARE {self.name}({', '.join(types)}) AS {numbered}"
        self._execute = (
            f"EXECUTE {self.name}({', '.join(['%s'] * len(types))})"
            if types
            else f"EXECUTE {self.name}"
        )

    def execute(self, cursor: CursorWrapper, params: Sequence[Any] = ()) -> None:
        """Run the statement, preparing it first on a new PostgreSQL session.

        Other backends run the SQL as it is written.
        """
        if cursor.db.vendor != "postgresql":
            cursor.execute(self.sql, params)
            return
        session = cursor.db.connection
        names = _prepared.get(session)
        if names is None:
            names = _prepared.setdefault(session, set())
        if self.name not in names:
            cursor.execute(self._prepare)
            names.add(self.name)
        try:
            cursor.execute(self._execute, params)
        except (ProgrammingError, NotSupportedError) as error:
            cause = error.__cause__
            if isinstance(cause, errors.InvalidSqlStatementName):
                # The session forgot it (`DEALLOCATE ALL`, `DISCARD ALL` from a pool's reset).
                names.discard(self.name)
            elif not isinstance(cause, errors.FeatureNotSupported):
                raise
            # Otherwise "cached plan must not change result type": a migration changed the
            # type of a column it returns, under this session. Either way it is prepared
            # again, at once outside a transaction, else on the next request.
            if cursor.db.in_atomic_block:
                raise
            if self.name in names:
                cursor.execute(f"DEALLOCATE {self.name}")
                names.discard(self.name)
            cursor.execute(self._prepare)
            names.add(self.name)
            cursor.execute(self._execute, params)
