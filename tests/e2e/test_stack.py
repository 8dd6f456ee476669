"""The production stack end to end, through HTTP only, with a worker killed and PostgreSQL
restarted on the way; and scaled out (two web instances, two workers, a replica), with a
worker killed and the replica restarted on the way."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import pytest

from bench.load import prepare
from bench.stack import Stack
from tests.sse import EventStream

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(420)]

SOURCE = {"title": "Stack test report", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}


@pytest.fixture
def stack(tmp_path: Path):
    stack = Stack(tmp_path)
    try:
        stack.start_services()
        stack.manage("migrate", "--no-input", "-v0")
        stack.editor = stack.manage("create_api_user", "editor", "--role", "editor").strip()
        stack.auditor = stack.manage("create_api_user", "auditor", "--role", "auditor").strip()
        for name in ("web", "stream", "worker", "beat"):
            stack.start(name)
        yield stack
    finally:
        stack.stop()


def open_deal(stack: Stack) -> str:
    """Two organisations and a contract deal between them, through HTTP as the load test does."""
    return prepare(stack, deals=1)[0]


def append_notes(stack: Stack, deal: str, count: int, wins: list[int], errors: list) -> None:
    """Append `count` notes, retrying on version conflicts with the version the 409 reports.

    Runs in a thread: whatever goes wrong, including no answer at all, lands in `errors`.
    """
    try:
        expected = stack.request("GET", f"/api/v1/deals/{deal}/state/", token=stack.editor)[1][
            "version"
        ]
        done = 0
        while done < count:
            status, body = stack.request(
                "POST",
                f"/api/v1/deals/{deal}/events/",
                {
                    "type": "NoteAdded",
                    "data": {"text": f"note {done}"},
                    "occurred": OCCURRED,
                    "source": SOURCE,
                    "expected_version": expected,
                },
                token=stack.editor,
            )
            if status == 201:
                wins.append(body["version"])
                expected = body["version"]
                done += 1
            elif status == 409:
                expected = body["current_version"]
            else:
                errors.append((status, body))
                return
    except Exception as error:
        errors.append(error)


def concurrently(stack, deal, clients: int, per_client: int):
    wins: list[int] = []
    errors: list = []
    threads = [
        threading.Thread(target=append_notes, args=(stack, deal, per_client, wins, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    return threads, wins, errors


def wait_for_projection(stack: Stack, deal: str, version: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = stack.request("GET", f"/api/v1/deals/{deal}/", token=stack.editor)
        if status == 200 and body["version"] == version:
            return body
        time.sleep(0.25)
    raise AssertionError(f"projection not at {version} after {timeout}s:\n{stack.dump_logs()}")


def replayed(stack: Stack, deal: str) -> dict:
    status, body = stack.request("GET", f"/api/v1/deals/{deal}/state/", token=stack.editor)
    assert status == 200
    return body["state"]


def the_feed(stack: Stack) -> tuple[list[str], str]:
    """Every event's id, paged through GET /events/, and the cursor after the last."""
    ids, after = [], ""
    while True:
        path = f"/api/v1/events/?limit=1000&after={after}"
        status, page = stack.request("GET", path, token=stack.editor)
        assert status == 200
        if not page["results"]:
            return ids, after
        ids += [event["event_id"] for event in page["results"]]
        after = page["next"]


def test_the_stack_projects_survives_a_killed_worker_and_a_database_restart(stack):
    deal = open_deal(stack)
    # Follows the feed from the stream server throughout, the database restart included.
    stream = EventStream(stack.stream_base, "/api/v1/events/stream/", token=stack.editor)
    assert stream.status == 200

    threads, wins, errors = concurrently(stack, deal, clients=4, per_client=50)
    for thread in threads:
        thread.join(180)
    assert errors == []
    assert sorted(wins) == list(range(2, 202))
    assert wait_for_projection(stack, deal, 201) == replayed(stack, deal)

    threads, more, errors = concurrently(stack, deal, clients=2, per_client=50)
    time.sleep(0.5)
    stack.kill("worker")
    for thread in threads:
        thread.join(180)
    stack.start("worker")
    assert errors == []
    assert sorted(more) == list(range(202, 302))
    assert wait_for_projection(stack, deal, 301) == replayed(stack, deal)
    status, verified = stack.request("GET", f"/api/v1/deals/{deal}/verify/", token=stack.auditor)
    assert (status, verified["valid"], verified["events"]) == (200, True, 301)

    stack.service("stop-postgres")
    try:
        status, body = stack.request(
            "POST",
            f"/api/v1/deals/{deal}/events/",
            {
                "type": "NoteAdded",
                "data": {"text": "while down"},
                "occurred": OCCURRED,
                "source": SOURCE,
                "expected_version": 301,
            },
            token=stack.editor,
        )
        assert (status, body["code"]) == (503, "unavailable")
        assert stack.get("/health/")[0] == 503
    finally:
        stack.service("start-postgres")
    stack.wait_for(lambda: stack.get("/health/")[0] == 200, what="recovery")
    status, body = stack.request(
        "POST",
        f"/api/v1/deals/{deal}/events/",
        {
            "type": "NoteAdded",
            "data": {"text": "after"},
            "occurred": OCCURRED,
            "source": SOURCE,
            "expected_version": 301,
        },
        token=stack.editor,
    )
    assert (status, body["version"]) == (201, 302), body
    assert wait_for_projection(stack, deal, 302) == replayed(stack, deal)
    assert '"status": 500' not in stack.log("web")

    with stream:
        received = stream.events(302, timeout=60)
        assert stream.quiet_for(0.5) is True
    ids, last = the_feed(stack)
    assert [m.json["event_id"] for m in received] == ids
    assert received[-1].id == last
    assert "Traceback" not in stack.log("stream")


# --- many processes: two web instances, two workers and a beat, a primary and a replica ------

WEBS = ("web", "web-2")
WORKERS = ("worker", "worker-2")


@pytest.fixture
def scaled_stack(tmp_path: Path):
    stack = Stack(tmp_path, replica=True)
    try:
        stack.start_services()
        stack.manage("migrate", "--no-input", "-v0")
        stack.editor = stack.manage("create_api_user", "editor", "--role", "editor").strip()
        stack.auditor = stack.manage("create_api_user", "auditor", "--role", "auditor").strip()
        for name in (*WEBS, *WORKERS, "beat"):
            stack.start(name)
        yield stack
    finally:
        stack.stop()


class Run:
    """What the clients saw: every acknowledged append, and every error of any kind."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.errors: list = []
        self.requests: Counter = Counter()
        self.stop = threading.Event()

    def acknowledge(self, deal: str, version: int, event_id: str) -> None:
        with self.lock:
            self.acknowledged[deal].append((version, event_id))

    def count(self) -> int:
        with self.lock:
            return sum(len(events) for events in self.acknowledged.values())


def balanced_client(stack: Stack, run: Run, deal: str, writes_to: str, reads_from: str) -> None:
    """Append notes to `deal` through one web instance until told to stop, and after each one
    read the deal back through the other with `?min_version=` the version the append returned
    (read-your-writes across instances, and across primary and replica); between them, list the
    deals (a read the replica serves whenever it is up). Anything but 201 or 409 on an append,
    200 on a read, or no answer at all, is an error."""
    write, read = stack.base_of(writes_to), stack.base_of(reads_from)
    try:
        status, body = stack.request(
            "GET", f"/api/v1/deals/{deal}/state/", token=stack.editor, base=read
        )
        assert status == 200, body
        expected = body["version"]
        while not run.stop.is_set():
            status, body = stack.request(
                "POST",
                f"/api/v1/deals/{deal}/events/",
                {
                    "type": "NoteAdded",
                    "data": {"text": f"note from {writes_to} at {expected}"},
                    "occurred": OCCURRED,
                    "source": SOURCE,
                    "expected_version": expected,
                },
                token=stack.editor,
                base=write,
            )
            run.requests[f"POST via {writes_to}"] += 1
            if status == 409:
                expected = body["current_version"]
                continue
            if status != 201:
                run.errors.append(("append", writes_to, status, body))
                return
            expected = body["version"]
            run.acknowledge(deal, expected, body["events"][0]["event_id"])
            path = f"/api/v1/deals/{deal}/?min_version={expected}"
            status, seen = stack.request("GET", path, token=stack.editor, base=read)
            run.requests[f"GET min_version via {reads_from}"] += 1
            if status != 200 or seen["version"] < expected:
                run.errors.append(("own write missing", reads_from, expected, status, seen))
                return
            status, page = stack.request("GET", "/api/v1/deals/", token=stack.editor, base=read)
            run.requests[f"GET list via {reads_from}"] += 1
            if status != 200:
                run.errors.append(("list", reads_from, status, page))
                return
    except Exception as error:
        run.errors.append(error)


def replica_scans(stack: Stack) -> int:
    """Scans of the read model the replica itself has run: only the web instances read there."""
    with psycopg.connect(stack.replica_url(), autocommit=True) as connection:
        return connection.execute(
            "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables"
            " WHERE relname = 'projections_dealstate'"
        ).fetchone()[0]


def wait_for_replica_reads(stack: Stack, before: int, what: str) -> None:
    # A backend sends its statistics at most once a second, and an idle one within seconds.
    stack.wait_for(lambda: replica_scans(stack) > before, what=what, timeout=30)


def primary_read_model(stack: Stack, deal: str) -> tuple[int, dict] | None:
    """The deal's projection row on the primary, as the workers wrote it."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as connection:
        row = connection.execute(
            "SELECT version, state FROM projections_dealstate WHERE deal_id = %s", [deal]
        ).fetchone()
    if row is None:
        return None
    version, state = row
    return version, json.loads(state) if isinstance(state, str) else state


def stream_through(stack: Stack, deal: str, version: int, bases: itertools.cycle) -> list[dict]:
    """The deal's whole stream, paged through the web instances in turn, once they serve it
    to `version` (a replica a moment behind gives a shorter stream: read it again)."""
    deadline = time.monotonic() + 60
    while True:
        events, after = [], 0
        while True:
            path = f"/api/v1/deals/{deal}/events/?limit=100&after_version={after}"
            status, page = stack.request("GET", path, token=stack.editor, base=next(bases))
            assert status == 200, page
            events += page["results"]
            if not page["next"]:
                break
            after = events[-1]["version"]
        if (events and events[-1]["version"] >= version) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def feed_through(stack: Stack, total: int, bases: itertools.cycle) -> list[str]:
    """Every event id in the feed, each page from the next web instance (so the cursor moves
    between instances, and between replica and primary), followed until `total` have come."""
    ids: list[str] = []
    after = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, page = stack.request(
            "GET", f"/api/v1/events/?limit=500&after={after}", token=stack.editor, base=next(bases)
        )
        assert status == 200, page
        ids += [event["event_id"] for event in page["results"]]
        after = page["next"]
        if not page["results"]:
            if len(ids) >= total:
                return ids
            time.sleep(0.2)
    return ids


def test_two_web_instances_two_workers_and_a_replica_lose_and_double_nothing(scaled_stack):
    stack = scaled_stack
    deals = prepare(stack, deals=3)
    run = Run()
    # Two clients a deal, racing on it (409s), one writing through each instance and reading
    # back through the other.
    clients = [
        threading.Thread(
            target=balanced_client,
            args=(stack, run, deal, WEBS[n % 2], WEBS[(n + 1) % 2]),
        )
        for deal in deals
        for n in range(2)
    ]
    started = time.monotonic()
    for client in clients:
        client.start()
    try:
        stack.wait_for(lambda: run.count() >= 30 or bool(run.errors), what="30 appends")
        # The replica serves reads before it is stopped.
        wait_for_replica_reads(stack, 0, what="reads on the replica")

        stack.kill("worker-2")
        time.sleep(1)
        stack.stop_replica()
        down_at = run.count()
        # Longer than REPLICA_RETRY_SECONDS (5): each web worker finds it down more than once.
        time.sleep(7)
        assert run.count() > down_at, "no append was acknowledged while the replica was down"
        stack.start_replica()
        after_restart = replica_scans(stack)
        stack.start("worker-2")
        up_at = run.count()
        time.sleep(6)
        assert run.count() > up_at
        # Reads went back to the replica once it was up again.
        wait_for_replica_reads(stack, after_restart, what="reads on the restarted replica")
    finally:
        run.stop.set()
        for client in clients:
            client.join(60)
    duration = time.monotonic() - started
    assert not any(client.is_alive() for client in clients)
    assert run.errors == [], stack.dump_logs()
    assert run.count() >= 60, (run.count(), duration)
    assert all(run.requests[f"POST via {web}"] > 0 for web in WEBS), run.requests

    bases = itertools.cycle([stack.base_of(web) for web in WEBS])
    total = 0
    for deal in deals:
        acknowledged = run.acknowledged[deal]
        final = max(version for version, _ in acknowledged)
        # 0 lost, 0 doubled: the stream is versions 1..final, its DealOpened and then exactly
        # the acknowledged appends, each once, at the version its client was told.
        stream = stream_through(stack, deal, final, bases)
        assert [e["version"] for e in stream] == list(range(1, final + 1))
        assert [e["type"] for e in stream[:1]] == ["DealOpened"]
        assert sorted((e["version"], e["event_id"]) for e in stream[1:]) == sorted(acknowledged)
        total += final

        # The projection the workers wrote (on the primary) equals a replay of the stream.
        stack.wait_for(
            lambda deal=deal, final=final: (primary_read_model(stack, deal) or (0,))[0] == final,
            what=f"the projection of {deal} at {final}",
            timeout=90,
        )
        status, replay = stack.request(
            "GET", f"/api/v1/deals/{deal}/state/", token=stack.editor, base=next(bases)
        )
        assert (status, replay["version"]) == (200, final)
        assert primary_read_model(stack, deal) == (final, replay["state"])

        status, verified = stack.request(
            "GET", f"/api/v1/deals/{deal}/verify/", token=stack.auditor, base=next(bases)
        )
        assert (status, verified["valid"], verified["events"]) == (200, True, final)

    # The feed, followed across instances, has every event once.
    ids = feed_through(stack, total, bases)
    assert len(ids) == total == len(set(ids))

    for web in WEBS:
        status, health = stack.get("/health/", base=stack.base_of(web))
        assert (status, health["replica"]) == (200, "ok"), health
        assert '"status": 500' not in stack.log(web)
    for name in (*WEBS, *WORKERS, "beat"):
        if (excerpt := unexpected_traceback(stack.log(name))) is not None:
            pytest.fail(f"a traceback in the log of {name}:\n{excerpt}", pytrace=False)


def unexpected_traceback(log: str) -> str | None:
    """The first line of a log that holds a traceback."""
    return next((line[:5000] for line in log.splitlines() if "Traceback" in line), None)
