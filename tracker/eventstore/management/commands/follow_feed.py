"""Watch the ledger move: print each event as it commits, one line each, until interrupted.

    manage.py follow_feed                      # every deal, from the first event
    manage.py follow_feed --after CURSOR       # after a feed cursor (the first column)
    manage.py follow_feed --deal ID            # one deal; the first column is then the version
    manage.py follow_feed --url http://127.0.0.1:8001 --token KEY   # through the API's stream

Each line: where to resume (a feed cursor, or the version on one deal), the feed position, the
deal, its version, the event type and when it occurred. Without --url it reads the event store
of this project's database directly, woken by the same LISTEN/NOTIFY as the API's streams (on
SQLite, which has none, it polls); with --url it reads the server-sent events of
/api/v1/events/stream/ (or the deal's), and reconnects after a drop with Last-Event-ID, as a
browser's EventSource does.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracker.eventstore.errors import InvalidCursor
from tracker.eventstore.feed import decode_cursor
from tracker.eventstore.notify import listen, read_feed, supports_notify
from tracker.eventstore.records import RecordedEvent
from tracker.eventstore.store import read_stream, stream_version

PAGE = 100


class Command(BaseCommand):
    help = "Print each event of the ledger (or of one deal) as it commits, one line each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--after", help="Start after this feed cursor (or version, with --deal)."
        )
        parser.add_argument("--deal", type=UUID, help="Follow only this deal's events.")
        parser.add_argument("--url", help="Read the API's stream at this base URL instead.")
        parser.add_argument("--token", help="API token, with --url.")
        parser.add_argument("--count", type=int, help="Stop after this many events.")

    def handle(self, *args: Any, **options: Any) -> None:
        after, deal, count = options["after"], options["deal"], options["count"]
        if deal is not None and after is not None and not after.isdigit():
            raise CommandError("With --deal, --after is a version (a whole number).")
        if deal is None and after is not None:
            try:
                decode_cursor(after)
            except InvalidCursor:
                raise CommandError(f"--after {after!r} is not a feed cursor.") from None
        if options["url"]:
            lines = _follow_http(options["url"], options["token"], deal, after)
        else:
            if deal is not None and stream_version(deal) == 0:
                raise CommandError(f"No deal {deal}.")
            lines = _follow_store(deal, after)
        with contextlib.suppress(KeyboardInterrupt):
            for printed, line in enumerate(lines, start=1):
                self.stdout.write(line)
                self.stdout.flush()
                if count is not None and printed >= count:
                    return


def _line(place: str, event: dict[str, Any] | RecordedEvent) -> str:
    shown = event if isinstance(event, dict) else _shown(event)
    occurred = shown.get("occurred") or {}
    when = f"{occurred.get('date', '-')} ({occurred.get('precision', '-')})" if occurred else "-"
    return (
        f"{place}  position={shown['position']}  deal={shown['deal']}  v{shown['version']}  "
        f"{shown['type']}  occurred {when}"
    )


def _shown(event: RecordedEvent) -> dict[str, Any]:
    return {
        "position": event.position,
        "deal": str(event.stream_id),
        "version": event.version,
        "type": event.type,
        "occurred": event.occurred,
    }


def _follow_store(deal: UUID | None, after: str | None) -> Iterator[str]:
    """Lines from the event store, read when woken (or polled), as the API's streams read."""
    recheck = settings.EVENT_STREAM_RECHECK_SECONDS
    with contextlib.ExitStack() as stack:
        if supports_notify():
            wait: Callable[[float], object] = stack.enter_context(listen())
            pause = recheck
        else:
            wait, pause = time.sleep, settings.EVENT_STREAM_POLL_SECONDS
        backoff = 0.0
        version = int(after or 0) if deal is not None else 0
        while True:
            held = False
            if deal is not None:
                events = read_stream(deal, version, limit=PAGE)
                entries = [(str(event.version), event) for event in events]
                version = events[-1].version if events else version
            else:
                found = read_feed(after, PAGE)
                entries, after, held = list(found.entries), found.next, found.held_back
            for place, event in entries:
                yield _line(place, event)
            if len(entries) == PAGE:
                continue
            # Held back by an older transaction, which may end without a notification: poll.
            backoff = min(max(backoff * 2, 0.01), recheck) if held else 0.0
            wait(backoff or pause)


def _follow_http(
    base: str, token: str | None, deal: UUID | None, after: str | None
) -> Iterator[str]:
    """Lines from the API's server-sent events; reconnects with Last-Event-ID after a drop."""
    path = f"/api/v1/deals/{deal}/events/stream/" if deal else "/api/v1/events/stream/"
    last_id, retry = after, 2.0
    while True:
        request = urllib.request.Request(base.rstrip("/") + path)
        request.add_header("Accept", "text/event-stream")
        if token:
            request.add_header("Authorization", f"Token {token}")
        if last_id:
            request.add_header("Last-Event-ID", last_id)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                for message in _messages(response):
                    if "retry" in message and message["retry"].isdigit():
                        retry = int(message["retry"]) / 1000
                    if message.get("data"):
                        last_id = message.get("id", last_id)
                        yield _line(last_id or "-", json.loads(message["data"]))
        except urllib.error.HTTPError as error:
            raise CommandError(f"{error.code}: {error.read().decode(errors='replace')}") from None
        except (OSError, ValueError) as error:
            print(f"stream dropped ({error}); reconnecting in {retry:g}s", flush=True)
        time.sleep(retry)


def _messages(lines: Any) -> Iterator[dict[str, str]]:
    """Server-sent messages as {field: value}; comments are skipped."""
    message: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if message:
                yield message
            message = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            message[name] = (
                f"{message[name]}\n{value}" if name == "data" and name in message else value
            )
