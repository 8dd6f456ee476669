"""GET /api/v1/events/stream/ and /deals/{id}/events/stream/: server-sent events of the feed,
served by a real ASGI server (uvicorn, in a thread of the test process) on the test database."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
import uvicorn
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.core.wsgi import get_wsgi_application
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from bench.stack import free_port
from config.asgi import application
from tests.sse import EventStream
from tracker.api.auth import issue_token
from tracker.deals.services import open_deal, record_event
from tracker.eventstore.notify import read_feed
from tracker.eventstore.store import NewEvent, append, read_all

from .conftest import OCCURRED, SOURCE, make_organisation, make_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

FEED = "/api/v1/events/stream/"
READERS = 3
HELD = 3.6
"""Seconds a writer holds the feed back in TestGapSafety: between two polls of the backoff."""


@pytest.fixture
def server(settings) -> Iterator[str]:
    """uvicorn serving config.asgi on a free port; its base URL."""
    settings.EVENT_STREAM_READERS = READERS
    port = free_port()
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)
    assert not thread.is_alive(), "uvicorn did not stop"


def token(role: str | None = "reader") -> str:
    return issue_token(make_user(f"{role}-{uuid4().hex[:8]}", role))


def open_deals(count: int) -> list[UUID]:
    a, b = make_organisation("Acme Aero"), make_organisation("Beta Systems", "IT")
    parties = [
        {"organisation": str(a), "role": "partner"},
        {"organisation": str(b), "role": "partner"},
    ]
    return [
        open_deal(
            title=f"Deal {n}",
            kind="mou",
            summary="",
            parties=parties,
            occurred=OCCURRED,
            source=SOURCE,
            actor="opener",
        ).stream_id
        for n in range(count)
    ]


def note(deal: UUID, version: int) -> None:
    """Append a NoteAdded at `version` through the deals service, as the API does."""
    record_event(
        deal_id=deal,
        event_type="NoteAdded",
        data={"text": f"note {version}"},
        occurred=OCCURRED,
        source=SOURCE,
        expected_version=version - 1,
        actor="writer",
    )


def start_writers(deals: list[UUID], notes: int) -> tuple[list[threading.Thread], list]:
    """One thread per deal, each on its own connection, appending `notes` notes; all released
    together. Errors land in the returned list."""
    barrier = threading.Barrier(len(deals))
    errors: list[BaseException] = []

    def write(deal: UUID) -> None:
        try:
            barrier.wait()
            for version in range(2, notes + 2):
                note(deal, version)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(deal,)) for deal in deals]
    for thread in threads:
        thread.start()
    return threads, errors


def join(threads: list[threading.Thread], errors: list) -> None:
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    assert errors == []


def the_feed() -> list[tuple[str, str]]:
    """(cursor after it, event id) of every event, in the order GET /events/ pages them."""
    found, after = [], None
    while page := read_feed(after, 1000).entries:
        found += [(cursor, str(event.event_id)) for cursor, event in page]
        after = page[-1].cursor
    return found


def naive_read(after_position: int) -> list[int]:
    """What a reader ordering by position alone would see."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT position FROM eventstore_event WHERE position > %s ORDER BY position",
            [after_position],
        )
        return [row[0] for row in cursor.fetchall()]


class TestFollowingConcurrentWriters:
    def test_receives_every_event_of_four_writers_in_feed_order_exactly_once(self, server):
        deals = open_deals(4)
        with EventStream(server, FEED, token=token()) as stream:
            assert stream.status == 200
            threads, errors = start_writers(deals, notes=50)
            received = stream.events(4 * 51)
            join(threads, errors)
            assert stream.quiet_for(0.5) is True
        feed = the_feed()
        assert len(feed) == 4 * 51
        assert [(m.id, m.json["event_id"]) for m in received] == feed
        assert {m.event for m in received} == {"event"}

    def test_resumes_with_last_event_id_without_a_gap_or_a_repeat(self, server):
        deals = open_deals(4)
        reader = token()
        first_cursor = read_all(limit=1).next
        threads, errors = start_writers(deals, notes=40)
        try:
            with EventStream(server, FEED, token=reader) as stream:
                before = stream.events(70)
            # Reconnected while the writers go on; the header wins over `after`.
            with EventStream(
                server, f"{FEED}?after={first_cursor}", token=reader, last_event_id=before[-1].id
            ) as stream:
                join(threads, errors)
                after = stream.events(4 * 41 - 70)
                assert stream.quiet_for(0.5) is True
        finally:
            join(threads, errors)
        received = before + after
        assert [(m.id, m.json["event_id"]) for m in received] == the_feed()

    def test_an_id_is_the_cursor_that_get_events_takes_as_after(self, server):
        deals = open_deals(3)
        reader = token()
        with EventStream(server, FEED, token=reader) as stream:
            received = stream.events(3)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {reader}")
        page = client.get("/api/v1/events/", {"after": received[0].id}).json()
        assert [e["deal"] for e in page["results"]] == [str(d) for d in deals[1:]]
        assert page["results"] == [m.json for m in received[1:]]
        assert page["next"] == received[-1].id


class TestGapSafety:
    def test_a_transaction_held_open_delays_the_events_after_it_and_none_is_skipped(
        self, server, settings
    ):
        """An event written first but committed last has the smaller position.

        A naive `ORDER BY position` reader that runs between the two commits moves past that
        position and never sees the event. The stream sends neither until both have committed,
        then both in feed order; woken by the notification the slow writer's `append` sends
        once its transaction commits, not by a timer.
        """
        settings.EVENT_STREAM_RECHECK_SECONDS = 60
        slow_stream, fast_stream = uuid4(), uuid4()
        inserted, release = threading.Event(), threading.Event()

        def slow_writer() -> None:
            try:
                with transaction.atomic():
                    append(slow_stream, [NewEvent(type="NoteAdded", data={"n": "slow"})], 0)
                    inserted.set()
                    assert release.wait(30)
            finally:
                connection.close()

        with EventStream(server, FEED, token=token()) as stream:
            assert stream.next().retry == 2000
            thread = threading.Thread(target=slow_writer)
            thread.start()
            try:
                assert inserted.wait(30)
                fast = append(fast_stream, [NewEvent(type="NoteAdded", data={"n": "fast"})], 0)
                appended = time.monotonic()
                naive = naive_read(0)
                assert naive == [fast.events[0].position]
                # Held back, the stream polls from 10 ms doubling (read 2.55 s after the fast
                # event, then 5.11 s): released in between, only a notification brings the
                # events well before the next poll.
                assert stream.quiet_for(HELD - (time.monotonic() - appended)) is True
            finally:
                release.set()
                thread.join(30)
            released = time.monotonic()
            received = stream.events(2, timeout=10)
            assert time.monotonic() - released < 1.0
        assert naive_read(naive[-1]) == []  # the slow event is behind the naive reader for good
        assert [m.json["deal"] for m in received] == [str(slow_stream), str(fast_stream)]
        assert [m.id for m in received] == [cursor for cursor, _ in the_feed()]

    def test_a_transaction_that_appends_nothing_delays_the_feed_only_while_it_runs(
        self, server, settings
    ):
        """A transaction with an id holds the feed back, and commits without a notification:
        the stream polls while held back instead of waiting for the re-check timer."""
        settings.EVENT_STREAM_RECHECK_SECONDS = 60
        started, release = threading.Event(), threading.Event()

        def holder() -> None:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_current_xact_id()")
                    started.set()
                    assert release.wait(30)
            finally:
                connection.close()

        with EventStream(server, FEED, token=token()) as stream:
            thread = threading.Thread(target=holder)
            thread.start()
            try:
                assert started.wait(30)
                appended = append(uuid4(), [NewEvent(type="NoteAdded", data={"n": 1})], 0)
                assert stream.quiet_for(1.0) is True
            finally:
                release.set()
                thread.join(30)
            released = time.monotonic()
            (received,) = stream.events(1, timeout=10)
            assert time.monotonic() - released < 3
        assert received.json["event_id"] == str(appended.events[0].event_id)


class TestStreamProtocol:
    def test_heartbeats_keep_an_idle_stream_alive(self, server, settings):
        settings.EVENT_STREAM_HEARTBEAT_SECONDS = 0.3
        with EventStream(server, FEED, token=token()) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert "no-cache" in stream.headers["Cache-Control"]
            assert stream.headers["X-Accel-Buffering"] == "no"
            first = stream.next(comments=True)
            assert (first.retry, first.data) == (2000, "")
            beats = [stream.next(timeout=2, comments=True) for _ in range(3)]
        assert [beat.comment for beat in beats] == ["keep-alive"] * 3

    @pytest.mark.parametrize(
        ("role", "path", "headers", "status", "code"),
        [
            (None, FEED, {}, 401, "not_authenticated"),
            ("none", FEED, {}, 403, "permission_denied"),
            ("reader", f"{FEED}?after=not-a-cursor", {}, 400, "malformed_request"),
            ("reader", f"{FEED}?afterr=MTIz", {}, 400, "malformed_request"),
            ("reader", "/api/v1/deals/{deal}/events/stream/?from=1", {}, 400, "malformed_request"),
            (
                "reader",
                "/api/v1/deals/{deal}/events/stream/?after=1&after_version=2",
                {},
                400,
                "malformed_request",
            ),
            ("reader", FEED, {"Last-Event-ID": "MTIz"}, 400, "malformed_request"),
            ("reader", f"/api/v1/deals/{uuid4()}/events/stream/", {}, 404, "not_found"),
            (
                "reader",
                "/api/v1/deals/{deal}/events/stream/?after_version=-1",
                {},
                400,
                "malformed_request",
            ),
            (
                "reader",
                "/api/v1/deals/{deal}/events/stream/",
                {"Last-Event-ID": "x"},
                400,
                "malformed_request",
            ),
            (None, "/api/v1/deals/{deal}/events/stream/", {}, 401, "not_authenticated"),
            ("none", "/api/v1/deals/{deal}/events/stream/", {}, 403, "permission_denied"),
        ],
    )
    def test_refuses_before_streaming_with_problem_details(
        self, server, role, path, headers, status, code
    ):
        (deal,) = open_deals(1)
        key = None if role is None else token(None if role == "none" else role)
        stream = EventStream(server, path.format(deal=deal), token=key, headers=headers)
        assert stream.status == status
        assert stream.headers["Content-Type"] == "application/problem+json"
        assert stream.problem()["code"] == code

    @pytest.mark.parametrize("role", ["editor", "auditor"])
    def test_every_role_that_reads_the_feed_may_follow_it(self, server, role):
        open_deals(1)
        with EventStream(server, FEED, token=token(role)) as stream:
            assert stream.status == 200
            assert stream.events(1)[0].json["type"] == "DealOpened"

    @pytest.mark.parametrize("path", [FEED, "/api/v1/deals/{deal}/events/stream/"])
    def test_head_answers_a_gets_headers_and_ends(self, server, path):
        (deal,) = open_deals(1)
        host, port = server.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request(
                "HEAD", path.format(deal=deal), headers={"Authorization": f"Token {token()}"}
            )
            answer = connection.getresponse()
            assert answer.status == 200
            assert answer.getheader("Content-Type").startswith("text/event-stream")
            assert answer.read() == b""
        finally:
            connection.close()

    def test_head_ends_under_runserver_too(self, transactional_db):
        """`make demo`'s server (WSGI): it sends no headers until the body's first bytes, and
        a HEAD's body is never sent, so a stream followed for it never answered."""
        (deal,) = open_deals(1)
        httpd = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler, ipv6=False)
        httpd.set_app(get_wsgi_application())

        def serve() -> None:
            try:
                httpd.serve_forever()
            finally:
                connections.close_all()  # the requests' connection, kept across requests

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        connection = http.client.HTTPConnection("127.0.0.1", httpd.server_port, timeout=10)
        try:
            connection.request(
                "HEAD",
                f"/api/v1/deals/{deal}/events/stream/",
                headers={"Authorization": f"Token {token()}"},
            )
            answer = connection.getresponse()
            assert answer.status == 200
            assert answer.getheader("Content-Type").startswith("text/event-stream")
        finally:
            connection.close()
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)


class TestDealStream:
    def test_sends_only_that_deals_events_with_versions_as_ids_and_resumes(self, server):
        mine, other = open_deals(2)
        reader = token()
        path = f"/api/v1/deals/{mine}/events/stream/"
        with EventStream(server, path, token=reader) as stream:
            note(other, 2)
            note(mine, 2)
            note(other, 3)
            note(mine, 3)
            received = stream.events(3)
            assert stream.quiet_for(0.5) is True
        assert [m.id for m in received] == ["1", "2", "3"]
        assert {m.json["deal"] for m in received} == {str(mine)}
        assert [m.json["version"] for m in received] == [1, 2, 3]
        note(mine, 4)
        with EventStream(
            server, f"{path}?after_version=0", token=reader, last_event_id="2"
        ) as stream:
            resumed = stream.events(2)
            assert stream.quiet_for(0.3) is True
        assert [m.id for m in resumed] == ["3", "4"]
        assert resumed[0].data == received[2].data
        # `?after=`, API.md's name for where to resume, is the same as `after_version` here.
        with EventStream(server, f"{path}?after=3", token=reader) as stream:
            assert [m.id for m in stream.events(1)] == ["4"]
            assert stream.quiet_for(0.3) is True


class TestConnections:
    def test_open_streams_share_a_fixed_number_of_database_connections(self, server):
        (deal,) = open_deals(1)
        reader = token()

        def in_use() -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                return cursor.fetchone()[0]

        def settled(bound: int) -> int:
            # A closed connection's server process may take a moment to leave the view.
            deadline = time.monotonic() + 3
            while (found := in_use()) > bound and time.monotonic() < deadline:
                time.sleep(0.05)
            return found

        # This test's own connection; then the listener and at most READERS reader threads.
        before = in_use()
        bound = before + 1 + READERS
        streams: list[EventStream] = []
        try:
            for count, version in ((20, 2), (40, 3)):
                fresh = [
                    EventStream(server, FEED, token=reader) for _ in range(count - len(streams))
                ]
                for stream in fresh:
                    assert stream.events(version - 1)[-1].json["version"] == version - 1
                streams += fresh
                note(deal, version)
                for stream in streams:
                    assert stream.events(1)[0].json["version"] == version
                assert settled(bound) <= bound, f"{count} streams"
        finally:
            for stream in streams:
                stream.close()


def test_the_schema_describes_both_streams_as_text_event_stream():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, resume in [
        ("/api/v1/events/stream/", "after"),
        ("/api/v1/deals/{deal_id}/events/stream/", "after_version"),
    ]:
        operation = schema["paths"][path]["get"]
        assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
        assert {p["name"] for p in operation["parameters"]} >= {resume, "Last-Event-ID"}
        assert "Last-Event-ID" in operation["description"]
