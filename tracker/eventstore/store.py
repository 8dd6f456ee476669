"""The event store's public interface: append to and read from event streams.

`append` is the only writer of events. Each function runs on the database `using` through the
recorder for its backend (`postgres.PostgresRecorder`, `sqlite.SqliteRecorder`, both keeping
the contract of `recorder.Recorder`); `recorder(using)` gives it for what these do not cover.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .postgres import PostgresRecorder
from .recorder import EVENT_TABLE, STREAM_TABLE, Recorder
from .records import Appended, FeedPage, NewEvent, RecordedEvent, StreamAppend, StreamHead
from .sqlite import SqliteRecorder
from .verify import Verification

__all__ = [
    "EVENT_TABLE",
    "STREAM_TABLE",
    "Appended",
    "FeedPage",
    "NewEvent",
    "RecordedEvent",
    "Recorder",
    "StreamAppend",
    "StreamHead",
    "Verification",
    "append",
    "append_many",
    "iter_stream_ids",
    "read_all",
    "read_stream",
    "read_streams",
    "recorder",
    "stream_head",
    "stream_version",
    "verify_stream",
]

_BACKENDS: dict[str, type[Recorder]] = {
    "postgresql": PostgresRecorder,
    "sqlite": SqliteRecorder,
}
_recorders: dict[tuple[str, str], Recorder] = {}


def recorder(using: str = DEFAULT_DB_ALIAS) -> Recorder:
    """The recorder for the database `using`, built (with its statements) once per process."""
    vendor = connections[using].vendor
    found = _recorders.get((using, vendor))
    if found is None:
        if vendor not in _BACKENDS:
            raise NotImplementedError(f"the event store has no recorder for {vendor}")
        found = _recorders[using, vendor] = _BACKENDS[vendor](using)
    return found


def append(
    stream_id: UUID,
    events: Sequence[NewEvent],
    expected_version: int,
    *,
    actor: str = "",
    idempotency_key: str | None = None,
    expected_head: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Appended:
    """Append events to one stream atomically, as versions expected_version+1 onwards.

    Raises VersionConflict if the stream is not at `expected_version` (0: must not exist yet).
    With `idempotency_key`, a repeat of the same request returns what was stored the first time
    and appends nothing; the key used for a different request raises IdempotencyKeyReused.
    With `expected_head`, StaleHead unless the stream's event `expected_version` has that hash:
    a caller that decided on a copy of the stream it did not read again is refused if the copy
    is not what is stored.

    On PostgreSQL, once the events commit, the feed's followers are woken by an empty
    notification on `eventstore_appended` (tracker.eventstore.notify), asked for after the
    commit (at once when no atomic block encloses the call, else when the outermost one
    commits, through `transaction.on_commit`) and sent by a thread of the process with a
    connection of its own: once per transaction at most, requests made while one is sent
    answered by one more, and never for a transaction rolled back or a repeat that appended
    nothing. A notification that cannot be sent is logged and does not fail the append: the
    followers re-read the feed every EVENT_STREAM_RECHECK_SECONDS anyway.
    """
    store = recorder(using)
    appended = store.append(
        stream_id,
        events,
        expected_version,
        actor=actor,
        idempotency_key=idempotency_key,
        expected_head=expected_head,
    )
    if isinstance(store, PostgresRecorder) and not appended.replayed:
        _announce_on_commit(using)
    return appended


def append_many(
    appends: Sequence[StreamAppend], *, actor: str = "", using: str = DEFAULT_DB_ALIAS
) -> list[Appended]:
    """Append to several streams in one transaction: every append, or none of them.

    Each stream is checked and chained as `append` does it (each stream at most once); the
    first one not at its expected version raises VersionConflict and nothing is stored. On
    PostgreSQL every stream's append goes in one round trip. For bulk writers (an import):
    the streams' rows stay locked until the transaction ends, so keep the batch to what a
    second's work appends. Followers are notified once, as for `append`.
    """
    store = recorder(using)
    appended = store.append_many(appends, actor=actor)
    if appended and isinstance(store, PostgresRecorder):
        _announce_on_commit(using)
    return appended


# --- the notification of appended events (PostgreSQL) ---------------------------------------

logger = logging.getLogger(__name__)

# The channel of tracker.eventstore.notify.CHANNEL (which imports this module, not the reverse).
_NOTIFY = "SELECT pg_notify('eventstore_appended', '')"


def _announce_on_commit(using: str) -> None:
    """Have the notification sent once the transaction that appended commits.

    Why after the commit, not from a trigger inside the appending transaction (migration 0007,
    dropped by 0008): PostgreSQL commits the transactions that have notified one at a time
    (PreCommit_Notify takes a database-wide lock, held past the commit's WAL flush, to queue
    notifications in commit order), so concurrent durable appends stop sharing a flush: the
    cost ARCHITECTURE.md refuses for a global lock. A NOTIFY in a transaction of its own writes
    nothing, so its commit waits for no flush and holds that lock briefly.

    Why from a thread of its own (`_Announcer`): sent on the appending connection, the NOTIFY
    was a second round trip that every append waited for, a fifth of a single append's time.
    """
    connection = connections[using]
    if not connection.in_atomic_block and not connection.get_autocommit():
        # A transaction managed by hand (autocommit off) has no commit to hook: notify inside
        # it, as a trigger would, and PostgreSQL delivers the notification if it commits.
        _announce(using)
        return
    announcer = _announcers.get(using)
    if announcer is None:
        announcer = _announcers.setdefault(using, _Announcer(using))
    # One notification per transaction wakes the followers as well as many. The callback
    # already queued is Django's own record: a savepoint or transaction rolled back drops it
    # with the events it announced, and a later append then queues it again.
    if not any(queued == announcer.request for _, queued, _ in connection.run_on_commit):
        # Outside an atomic block the append has committed by itself, and this runs at once.
        transaction.on_commit(announcer.request, using=using)


class _Announcer:
    """Sends the notification for the database `using` from a thread with a connection of its
    own, so that an append waits for no second round trip.

    The first request after a quiet spell is sent at once; requests made while one is being sent,
    or within EVENT_NOTIFY_INTERVAL_SECONDS of it, are answered together by one more, not one
    each: a follower reads everything new whatever woke it, so a burst of appends costs a few
    notifications. The connection is closed after EVENT_NOTIFY_IDLE_SECONDS without a request.
    A send that fails is tried once more on a new connection (the server may have closed the
    idle one); one that fails again is logged, and the followers find the events at their next
    re-check (EVENT_STREAM_RECHECK_SECONDS).
    """

    def __init__(self, using: str) -> None:
        self.using = using
        self.wanted = threading.Event()
        self.sending = False
        self.thread: threading.Thread | None = None
        self.starting = threading.Lock()

    def request(self) -> None:
        self.wanted.set()
        if self.thread is None or not self.thread.is_alive():
            with self.starting:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(
                        target=self._run, name=f"eventstore-announcer-{self.using}", daemon=True
                    )
                    self.thread.start()

    def settle(self, timeout: float) -> bool:
        """Wait until nothing asked for is unsent; False if `timeout` seconds were not enough."""
        deadline = time.monotonic() + timeout
        while self.wanted.is_set() or self.sending:
            if time.monotonic() > deadline or self.thread is None or not self.thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        while True:
            idle = settings.EVENT_NOTIFY_IDLE_SECONDS
            if not self.wanted.wait(timeout=idle):
                self._close()
                self.wanted.wait()
            # Marked busy before the request is taken, so that `settle` never sees neither.
            self.sending = True
            self.wanted.clear()
            sent_at = time.monotonic()
            try:
                self._send()
            finally:
                self.sending = False
            # At most one notification an interval: the requests made meanwhile are answered
            # together by the next. Each NOTIFY is a transaction that takes PostgreSQL's
            # notification queue lock; one per append cost a quarter of the appends' throughput.
            pause = settings.EVENT_NOTIFY_INTERVAL_SECONDS
            time.sleep(max(0.0, pause - (time.monotonic() - sent_at)))

    def _send(self) -> None:
        if _notify(self.using) is None:
            return
        self._close()
        error = _notify(self.using)
        if error is not None:
            self._close()
            _warn(error)

    def _close(self) -> None:
        try:
            connections[self.using].close()
        except Exception:  # a connection that failed to close is gone all the same
            logger.debug("Closing the announcer's connection failed", exc_info=True)


_announcers: dict[str, _Announcer] = {}


def settle_announcements(timeout: float = 5.0) -> bool:
    """Wait until every notification asked for in this process has been sent (tests, exit)."""
    return all(announcer.settle(timeout) for announcer in list(_announcers.values()))


def _forget_announcers() -> None:
    # A forked child has none of its parent's threads: it starts its own when it appends.
    _announcers.clear()


os.register_at_fork(after_in_child=_forget_announcers)
# A command that appends and exits at once (an import, the demo data) still wakes followers.
atexit.register(settle_announcements, 1.0)


def _announce(using: str) -> None:
    """Send the notification on the caller's connection, in its transaction."""
    error = _notify(using)
    if error is not None:
        _warn(error)


def _notify(using: str) -> Exception | None:
    """Send the notification; the error if it could not be sent."""
    try:
        with connections[using].cursor() as cursor:
            cursor.execute(_NOTIFY)
    except Exception as error:  # the announcer's thread must outlive it, whatever failed
        return error
    return None


def _warn(error: Exception) -> None:
    logger.warning(
        "Appended events committed, but their notification was not sent (%s); followers of "
        "the feed will find them at their next re-check",
        error,
    )


def read_stream(
    stream_id: UUID,
    after_version: int = 0,
    *,
    limit: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """The stream's events with version > after_version, in version order."""
    return recorder(using).read_stream(stream_id, after_version, limit=limit)


def read_streams(
    stream_ids: Sequence[UUID], *, using: str = DEFAULT_DB_ALIAS
) -> dict[UUID, list[RecordedEvent]]:
    """Every event of these streams, in one query: {stream id: its events in version order}.
    A stream that does not exist maps to an empty list."""
    return recorder(using).read_streams(stream_ids)


def read_all(
    after: str | None = None, limit: int = 1000, *, using: str = DEFAULT_DB_ALIAS
) -> FeedPage:
    """Every stream's events in commit order, after the cursor `after` (None: from the start).

    Never skips an event that commits later with a smaller position; a long-running writing
    transaction delays the feed instead. Raises InvalidCursor for a cursor it did not issue.
    """
    return recorder(using).read_all(after, limit)


def stream_version(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """The stream's current version; 0 if it does not exist."""
    return recorder(using).stream_version(stream_id)


def stream_head(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> StreamHead | None:
    """The stream's version and head hash as its row records them; None if it does not exist."""
    return recorder(using).stream_head(stream_id)


def iter_stream_ids(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[UUID]:
    """Every stream's id, in order."""
    return recorder(using).iter_stream_ids()


def verify_stream(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Verification:
    """Recompute the stream's hash chain and report the first version that does not match."""
    return recorder(using).verify_stream(stream_id)
