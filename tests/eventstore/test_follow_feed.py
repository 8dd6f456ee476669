"""manage.py follow_feed: the feed read from the store, woken by LISTEN/NOTIFY."""

from __future__ import annotations

import io
import threading
import time
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tracker.eventstore.notify import read_feed
from tracker.eventstore.store import NewEvent, append

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def follow(*args: str) -> tuple[threading.Thread, io.StringIO]:
    out = io.StringIO()

    def run() -> None:
        try:
            call_command("follow_feed", *args, stdout=out)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_prints_each_event_as_it_commits_and_resumes_after_a_cursor(settings):
    settings.EVENT_STREAM_RECHECK_SECONDS = 60  # only a notification can wake it in time
    first = append(uuid4(), [NewEvent(type="NoteAdded", data={"n": 1})], 0).events[0]
    thread, out = follow("--count", "2")
    # Once the first event is printed the follower is waiting: only a notification wakes it.
    deadline = time.monotonic() + 10
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue().count("\n") == 1
    later_stream = uuid4()
    committed = time.monotonic()
    append(later_stream, [NewEvent(type="NoteAdded", data={"n": 2})], 0)
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - committed < 3
    entries = read_feed().entries
    assert [entry.event.stream_id for entry in entries] == [first.stream_id, later_stream]
    lines = out.getvalue().splitlines()
    assert lines == [
        f"{cursor}  position={event.position}  deal={event.stream_id}  v1  NoteAdded  occurred -"
        for cursor, event in entries
    ]
    thread, out = follow("--after", entries[0].cursor, "--count", "1")
    thread.join(10)
    assert out.getvalue().splitlines() == lines[1:]


def test_refuses_a_cursor_it_did_not_issue_and_an_unknown_deal():
    with pytest.raises(CommandError, match="not a feed cursor"):
        call_command("follow_feed", "--after", "nope")
    with pytest.raises(CommandError, match="No deal"):
        call_command("follow_feed", "--deal", str(uuid4()))
