"""The event streams as each server runs them: the embedded demo's `runserver` (WSGI, SQLite,
polling) and the PostgreSQL stack's uvicorn (ASGI, woken by LISTEN/NOTIFY), with events
appended through the API by clients racing each other."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.sse import EventStream

from .servers import ROOT, Server
from .test_write_races import note, open_deal

pytestmark = pytest.mark.timeout(300)


def append_notes(server: Server, deal: str, count: int, errors: list) -> None:
    try:
        for version in range(1, count + 1):
            status, body = server.request(
                "POST", f"/api/v1/deals/{deal}/events/", note(f"note {version}", version)
            )
            assert status == 201, body
    except BaseException as error:
        errors.append(error)


def the_feed(server: Server) -> tuple[list[str], str]:
    ids, after = [], ""
    while True:
        status, page = server.request("GET", f"/api/v1/events/?limit=1000&after={after}")
        assert status == 200
        if not page["results"]:
            return ids, after
        ids += [event["event_id"] for event in page["results"]]
        after = page["next"]


def test_streams_serve_what_racing_clients_append_exactly_once_in_feed_order(server: Server):
    """And `follow_feed --url` prints them."""
    deals = [open_deal(server), open_deal(server)]
    feed = EventStream(server.stream_base, "/api/v1/events/stream/", token=server.editor)
    one = EventStream(
        server.stream_base, f"/api/v1/deals/{deals[0]}/events/stream/", token=server.editor
    )
    with feed, one:
        assert (feed.status, one.status) == (200, 200)
        errors: list = []
        threads = [
            threading.Thread(target=append_notes, args=(server, deal, 10, errors)) for deal in deals
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        received = feed.events(22)
        mine = one.events(11)
        assert feed.quiet_for(1.0) is True
        assert one.quiet_for(0.1) is True
    ids, last = the_feed(server)
    assert [m.json["event_id"] for m in received] == ids
    assert received[-1].id == last
    assert [m.id for m in mine] == [str(v) for v in range(1, 12)]
    assert {m.json["deal"] for m in mine} == {deals[0]}

    # The command-line follower reads the same stream, resuming after version 10.
    result = subprocess.run(
        [
            *(sys.executable, "manage.py", "follow_feed", "--url", server.stream_base),
            *("--token", server.editor, "--deal", deals[0], "--after", "10", "--count", "1"),
        ],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = result.stdout.splitlines()
    position = mine[-1].json["position"]
    assert (
        line
        == f"11  position={position}  deal={deals[0]}  v11  NoteAdded  occurred 2025-03-01 (month)"
    )
