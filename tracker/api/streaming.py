"""Server-sent events of the feed: what a stream sends, how it waits, and what it may hold.

A stream is a loop: read the next page of events, send each as one message, and when caught up
wait to be woken. Two loops share the reads and the message format:

- `follow_async`, under an ASGI server (uvicorn): waiting costs a coroutine, no thread and no
  database connection. Reads run in this process's `ReaderPool`, a few threads that each keep
  one connection between reads: however many streams are open, the process holds at most
  `EVENT_STREAM_READERS` reader connections plus the `Listener`'s one. The connection the
  request used to authenticate is closed before the first byte is sent. On PostgreSQL the
  stream waits on the listener (LISTEN/NOTIFY, tracker.eventstore.notify), with a re-check
  every `EVENT_STREAM_RECHECK_SECONDS` as a safety net; on SQLite it polls every
  `EVENT_STREAM_POLL_SECONDS`.
- `follow_sync`, under a WSGI server (`manage.py runserver` in the embedded demo): the stream
  holds its server thread and that thread's connection, and polls every
  `EVENT_STREAM_POLL_SECONDS`. Fine for a demo; production serves streams from the ASGI process.

Backpressure: a page is at most `PAGE` events, handed to the server in one write; an ASGI
server's send waits while the client does not read, and the next page is read only once it has
been sent, so a slow client holds one page in memory, and no connection (the read has finished).

Every message that carries an event is

    id: <cursor>
    event: event
    data: <the event as JSON, exactly as GET /api/v1/events/ shows it>

with a blank line after it. On the feed the id is the feed cursor after that event (the `next`
the feed would return had its page ended there), on a deal's stream the event's version. The
stream opens with `retry:` (reconnection delay, ms) and sends a comment (`: keep-alive`) after
`EVENT_STREAM_HEARTBEAT_SECONDS` without a message, so that proxies keep idle streams open.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections

from tracker.eventstore.notify import Listener, read_feed, supports_notify
from tracker.eventstore.records import RecordedEvent
from tracker.eventstore.store import read_stream

from .renderers import FastJSONRenderer
from .serializers import event_json

logger = logging.getLogger(__name__)

PAGE = 100
"""Events per read: the most a stream holds for a client that does not read."""
RETRY_MILLISECONDS = 2000
EVENT_NAME = b"event"
KEEP_ALIVE = b": keep-alive\n\n"
_renderer = FastJSONRenderer()


def event_message(event_id: str, event: RecordedEvent) -> bytes:
    """One event as a server-sent message: its id, the fixed event name, the feed's JSON."""
    data = _renderer.render(event_json(event))
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode("ascii"), EVENT_NAME, data)


class Page(NamedTuple):
    messages: list[bytes]
    full: bool
    """The read returned as many events as it asked for: read on at once."""
    held_back: bool
    """Committed events wait behind an older transaction still in flight: poll, do not wait."""


class Source(Protocol):
    def read(self) -> Page:
        """The next page, moving the source on past it. Blocking: runs in a reader thread."""


class FeedSource:
    """Every deal's events in commit order (`read_all`), after the feed cursor `after`."""

    def __init__(self, after: str | None) -> None:
        self.after = after

    def read(self) -> Page:
        found = read_feed(self.after, PAGE)
        self.after = found.next
        messages = [event_message(cursor, event) for cursor, event in found.entries]
        return Page(messages, len(messages) == PAGE, found.held_back)


class DealSource:
    """One deal's events in version order, after `after_version`.

    Gap-safe by construction: a deal's versions have no gaps, and version n+1 cannot commit
    before version n (appends to one deal queue on its row), so a reader that goes on from the
    last version it saw never skips one, and the version is all it needs as its place.
    """

    def __init__(self, deal_id: UUID, after_version: int) -> None:
        self.deal_id = deal_id
        self.after_version = after_version

    def read(self) -> Page:
        events = read_stream(self.deal_id, self.after_version, limit=PAGE)
        if events:
            self.after_version = events[-1].version
        messages = [event_message(str(event.version), event) for event in events]
        return Page(messages, len(messages) == PAGE, held_back=False)


class ReaderPool:
    """Threads that run the streams' reads, each keeping its own database connection.

    The bound on connections: `size` threads, so at most `size` connections however many
    streams wait on them. A read that fails on the database closes its thread's connection,
    so the next one reconnects (a restarted database, a dropped connection).
    """

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"feed-reader-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, read: Callable[[], Page]) -> Page:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Page] = loop.create_future()
        self._queue.put((read, future, loop))
        return await future

    def close(self) -> None:
        """Stop the threads once the reads queued before have run; each closes its connection."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(10)

    def _work(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                read, future, loop = item
                if future.cancelled():  # the stream ended while its read waited
                    continue
                try:
                    outcome: tuple[Any, BaseException | None] = (read(), None)
                except BaseException as error:
                    if isinstance(error, DatabaseError):
                        connections.close_all()
                    outcome = (None, error)
                loop.call_soon_threadsafe(_settle, future, *outcome)
        finally:
            connections.close_all()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Hub:
    """This process's reader threads and listener, bound to the event loop that serves streams."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.readers = ReaderPool(settings.EVENT_STREAM_READERS)
        self.listener: Listener | None = None
        if supports_notify():
            self.listener = Listener(idle_check=settings.EVENT_STREAM_RECHECK_SECONDS * 6)
            self.listener.start()

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        await asyncio.get_running_loop().run_in_executor(None, self.readers.close)


_hub: Hub | None = None


def hub() -> Hub:
    """The process's hub, started with the first stream."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        if _hub is not None:  # a server stopped without its shutdown (its loop is gone)
            _hub.readers.close()
        _hub = Hub(loop)
    return _hub


async def shutdown() -> None:
    """Stop the listener and the reader threads, closing their connections (server shutdown)."""
    global _hub
    if _hub is not None and _hub.loop is asyncio.get_running_loop():
        found, _hub = _hub, None
        await found.close()


def _opening() -> bytes:
    return b"retry: %d\n\n" % RETRY_MILLISECONDS


async def follow_async(source: Source) -> AsyncIterator[bytes]:
    """The stream's messages, forever, under an ASGI server (see the module's docstring)."""
    # The request authenticated on a connection of its own, in its own thread; nothing needs it
    # while the stream is open, and kept it would make one connection per stream.
    await sync_to_async(connections.close_all)()
    found = hub()
    listener = found.listener
    heartbeat = settings.EVENT_STREAM_HEARTBEAT_SECONDS
    loop = asyncio.get_running_loop()
    yield _opening()
    last_sent = loop.time()
    pace = _Pace(notified=listener is not None)
    while True:
        generation = listener.generation if listener else 0
        try:
            page = await found.readers.run(source.read)
        except DatabaseError as error:
            logger.warning("Event stream could not read the feed (%s); retrying", error)
            page = Page([], full=False, held_back=True)
        if page.messages:
            # A page in one write: fewer system calls, and the same messages.
            yield b"".join(page.messages)
            last_sent = loop.time()
        if page.full:
            continue
        idle = loop.time() - last_sent
        if idle >= heartbeat:
            yield KEEP_ALIVE
            last_sent, idle = loop.time(), 0.0
        timeout = min(pace.after(page), heartbeat - idle)
        if listener is not None:
            await listener.wait(generation, timeout)
        else:
            await asyncio.sleep(timeout)


def follow_sync(source: Source) -> Iterator[bytes]:
    """The stream's messages, forever, under a WSGI server: reads in the request's thread, and
    polls every `EVENT_STREAM_POLL_SECONDS`."""
    heartbeat = settings.EVENT_STREAM_HEARTBEAT_SECONDS
    yield _opening()
    last_sent = time.monotonic()
    pace = _Pace(notified=False)
    while True:
        try:
            page = source.read()
        except DatabaseError as error:
            logger.warning("Event stream could not read the feed (%s); retrying", error)
            connections.close_all()
            page = Page([], full=False, held_back=True)
        if page.messages:
            yield b"".join(page.messages)
            last_sent = time.monotonic()
        if page.full:
            continue
        idle = time.monotonic() - last_sent
        if idle >= heartbeat:
            yield KEEP_ALIVE
            last_sent, idle = time.monotonic(), 0.0
        time.sleep(min(pace.after(page), heartbeat - idle))


class _Pace:
    """How long a caught-up stream waits before it reads again, at most.

    Held back: it polls, from 10 ms doubling up to the re-check interval, since the transaction
    in the way may end without a notification (or the database is unreachable). Otherwise it
    waits to be woken, the re-check interval being the safety net; without notifications it
    polls at the poll interval.
    """

    def __init__(self, *, notified: bool) -> None:
        self.notified = notified
        self.backoff = 0.0

    def after(self, page: Page) -> float:
        recheck = settings.EVENT_STREAM_RECHECK_SECONDS
        if page.held_back:
            self.backoff = min(max(self.backoff * 2, 0.01), recheck)
            return self.backoff
        self.backoff = 0.0
        return recheck if self.notified else settings.EVENT_STREAM_POLL_SECONDS
