"""Following the feed as it grows: reads that name each event's cursor, and the wake-up.

On PostgreSQL, `store.append` sends an empty notification on `CHANNEL` once the events it
appended have committed (`transaction.on_commit`, one per transaction, none for a rollback or
for a repeat that appended nothing). A writer that bypasses `append` must send
`SELECT pg_notify('eventstore_appended', '')` itself after its COMMIT. A follower reads the feed
with `read_feed`, and when it has caught up waits to be woken:

- in an asyncio server, on the process's one `Listener` (one LISTEN connection, however many
  followers: each waits on it, none holds a connection while it waits);
- in a plain loop (the `follow_feed` command), on a connection of its own (`listen`).

Gap-safety stays `read_all`'s: a page never reaches past a transaction still in flight. A
transaction that appends sends its own notification right after it commits, which wakes the
followers it held back; one that holds the feed back without appending (any transaction that
took a transaction id, on any table) sends none, so `read_feed` says when committed events are
held back, and the follower then polls briefly instead of waiting. A timer (every
EVENT_STREAM_RECHECK_SECONDS for the API's streams) covers what is left: a notification lost
while the listening connection was down, or one that `append` could not send because its own
connection broke after the commit (it logs a warning and lets the append succeed).

SQLite has no LISTEN/NOTIFY: followers there poll (`supports_notify` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

from .feed import START, decode_cursor, encode_cursor
from .postgres import PostgresRecorder
from .recorder import EVENT_TABLE
from .records import RecordedEvent
from .store import recorder

logger = logging.getLogger(__name__)

CHANNEL = "eventstore_appended"
"""The channel `store.append` notifies on after each commit that appended (empty payload)."""

# Any committed event past the cursor, whether or not the feed may show it yet.
_SELECT_PAST = f"SELECT 1 FROM {EVENT_TABLE} WHERE (txid, position) > (%s::text::xid8, %s) LIMIT 1"


class FeedEntry(NamedTuple):
    cursor: str
    """The feed cursor after this event: `read_all(after=cursor)` goes on with the next one."""
    event: RecordedEvent


@dataclass(frozen=True, slots=True)
class FeedRead:
    entries: tuple[FeedEntry, ...]
    next: str
    """The cursor after the last entry; the cursor read from when there is none."""
    held_back: bool
    """Committed events lie past `next` but wait behind an older transaction still in flight."""


def read_feed(
    after: str | None = None, limit: int = 100, *, using: str = DEFAULT_DB_ALIAS
) -> FeedRead:
    """`read_all(after, limit)`, with the cursor after each event and whether the feed is held.

    The events, their order and the bound are `read_all`'s (the recorder's own statement); each
    entry adds the cursor `read_all` would have returned as `next` had the page ended there, so
    a follower that stops after any event resumes there with no gap and no repeat. Raises
    InvalidCursor for a cursor the feed did not issue.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    store = recorder(using)
    txid, position = decode_cursor(after) if after else START
    if not isinstance(store, PostgresRecorder):
        # One writer at a time: position order is commit order, and nothing is ever held back.
        page = store.read_all(after, limit)
        entries = tuple(FeedEntry(encode_cursor(0, e.position), e) for e in page.events)
        return FeedRead(entries, page.next, held_back=False)
    rows = store._fetch_typed(store.select_feed, [str(txid), position, limit])
    if rows:
        txid, position = rows[-1][-1], rows[-1][3]
    entries = tuple(
        FeedEntry(encode_cursor(row[-1], row[3]), RecordedEvent(*row[:-1])) for row in rows
    )
    # A full page says nothing about what follows; the caller reads on at once anyway.
    held = len(rows) < limit and bool(store._fetch_typed(_SELECT_PAST, [str(txid), position]))
    return FeedRead(entries, encode_cursor(txid, position), held_back=held)


def supports_notify(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the database announces new events (PostgreSQL), or followers must poll."""
    return connections[using].vendor == "postgresql"


def connection_params(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """psycopg's connection arguments for the database `using`, as Django would connect."""
    params = dict(connections[using].get_connection_params())
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    params.setdefault("connect_timeout", 5)
    return params


class Listener:
    """Wakes this process's followers of the feed when events commit: one LISTEN connection.

    `generation` counts wake-ups. A follower notes it before it reads the feed and, having found
    nothing new, awaits `wait(noted, timeout)`, which returns at once if a wake-up came in the
    meantime: a notification that arrives while a follower reads is never lost. Waiting holds
    no database connection, so any number of followers share this one.

    The connection is opened by `start()` (in the running event loop) and reopened, with a
    backoff of up to `max_backoff` seconds, whenever it drops; every (re)connection counts as a
    wake-up, since notifications sent while it was down are lost. Every `idle_check` seconds
    without one it sends a query, so that a connection dropped without a word is noticed.
    """

    def __init__(
        self,
        using: str = DEFAULT_DB_ALIAS,
        *,
        channel: str = CHANNEL,
        idle_check: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.using = using
        self.channel = channel
        self.idle_check = idle_check
        self.max_backoff = max_backoff
        self.connected = False
        self._generation = 0
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait(self, generation: int, timeout: float) -> int:
        """The generation after the next wake-up past `generation`, or after `timeout` s."""
        if self._generation == generation:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout)
        return self._generation

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    def _wake(self) -> None:
        self._generation += 1
        # Every waiter has the old event; the next ones wait on a new one.
        woken, self._woken = self._woken, asyncio.Event()
        woken.set()

    async def _run(self) -> None:
        backoff = 0.1
        params = connection_params(self.using)
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")
                    self.connected = True
                    backoff = 0.1
                    self._wake()
                    while True:
                        async for _ in conn.notifies(timeout=self.idle_check):
                            self._wake()
                        await conn.execute("SELECT 1")
            except psycopg.Error as error:
                logger.warning("Feed listener lost its connection (%s); reconnecting", error)
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)


@contextlib.contextmanager
def listen(
    using: str = DEFAULT_DB_ALIAS, *, channel: str = CHANNEL
) -> Iterator[Callable[[float], bool]]:
    """A connection LISTENing on `channel`, for a follower in a plain loop.

    Yields `wait(timeout)`: True when a notification came (at once if one came since the last
    call, as the connection keeps them), False after `timeout` seconds.
    """
    with psycopg.connect(**connection_params(using), autocommit=True) as conn:
        conn.execute(f"LISTEN {channel}")

        def wait(timeout: float) -> bool:
            return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))

        yield wait
