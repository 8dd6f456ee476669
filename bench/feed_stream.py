"""From commit to the event at a connected client: the feed's server-sent events against polling.

Issue 16 asks for p50 and p99 of commit → client with 1 and 8 writers, beside a client polling
the feed at its default interval in the same run; goal: the stream's p50 ≤ 20 ms.

What runs, all on this machine and on the bench's PostgreSQL (durable under `make bench`):

- **The stream server**: uvicorn serving `config.asgi:application` in a process of its own, as
  the stack runs it (bench/stack.py's `stream` command, `CONN_MAX_AGE=0`), woken by LISTEN/NOTIFY.
- **The stream client**: a process holding one HTTP connection to
  `GET /api/v1/events/stream/?after=<the feed's end>` (`Accept: text/event-stream`), parsing the
  messages as EventSource does, and noting the wall-clock time each event's `data:` line arrives.
- **The polling client** (the baseline): a process calling `GET /api/v1/events/?after=<cursor>
  &limit=200` over HTTP every POLL_MS (1,000 ms by default; the next page at once after a full
  one), against gunicorn serving `config.wsgi:application` as the stack serves the rest of the
  API, and noting when each answer arrived. 1 s is what a client mirroring the ledger would
  plausibly default to: `/events/` promises no freshness, and one request a second per client is
  a load a server can afford for many clients; a client's latency is about uniform between 0 and
  the interval plus a request, so other intervals scale from it (`BENCH_POLL_MS`).
- **Writers**: 1, then 8 processes, each with its own database connection and its own stream,
  appending one `NoteAdded` at a time through `tracker.eventstore.store.append` inside
  `transaction.atomic()`, as the deals service does, pausing a random 0 to 2 PACE_MS between
  appends (20 ms on average: about 43 appends/s from one writer). The marker is the event's id,
  chosen by the writer. The commit time is the wall clock read by an on-commit callback queued
  before the append: it runs right after COMMIT returns, before the append's own notification.

Latency = arrival at the client - commit, same machine clock. Each round runs both writer
counts; each figure is the median over ROUNDS rounds of that round's p50 and p99 (nearest rank),
for the stream (`p50_ms`, `p99_ms`) and for the polling client (`baseline_p50_ms`, ...) over the
same events. A round waits until both clients have seen every event it appended. Progress goes
to stderr, the figures to stdout and bench/results/feed_stream.json.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.feed_stream`.
BENCH_ROUNDS (3), BENCH_FEED_APPENDS (appends per writer per round, 300), BENCH_FEED_PACE_MS
(20) and BENCH_POLL_MS (1000) shrink or change a run.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import queue
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import emit, latency_ms, log, machine, median, setup_django
from bench.stack import attempt, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
APPENDS = int(os.environ.get("BENCH_FEED_APPENDS", "300"))
"""Appends per writer per round."""
PACE_MS = float(os.environ.get("BENCH_FEED_PACE_MS", "20"))
"""A writer's mean pause between appends (uniform between 0 and twice this)."""
POLL_MS = float(os.environ.get("BENCH_POLL_MS", "1000"))
POLL_LIMIT = 200
"""The most `/events/` returns in one page."""
WRITERS = (1, 8)
WARMUP = 20
GOAL_P50_MS = 20.0
FEED = "/api/v1/events/stream/"
EVENTS = "/api/v1/events/"


# --- servers --------------------------------------------------------------------------------


def server_env() -> dict[str, str]:
    """The environment of the bench's servers: this database, no replica, no throttling."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_REPLICA_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-not-secret"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        API_THROTTLE_USER="1000000/min",
        API_THROTTLE_ANON="1000000/min",
    )
    return env


def start_server(kind: str, port: int, log_path: Path) -> subprocess.Popen:
    """uvicorn (`stream`) or gunicorn (`api`) on `port`, started as bench/stack.py starts them."""
    env = server_env()
    if kind == "stream":
        command = [
            BIN / "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "3",
            "--no-access-log",
        ]
        # Under ASGI each request runs in a thread of its own: see bench/stack.py.
        env["CONN_MAX_AGE"] = "0"
    else:
        command = [
            BIN / "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while attempt(f"http://127.0.0.1:{port}", "GET", "/health/", timeout=5).status not in (
        200,
        503,
    ):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


# --- clients (each in a process of its own) ------------------------------------------------


def _sse_events(response: http.client.HTTPResponse) -> Iterator[tuple[float, str]]:
    """(arrival, data) of each message with data, as EventSource parses a stream."""
    data: list[str] = []
    arrived = 0.0
    while True:
        line = response.readline()
        if not line:
            raise ConnectionError("the server ended the stream")
        if line.startswith(b"data:"):
            arrived = arrived or time.time()
            data.append(line[5:].decode().removeprefix(" ").rstrip("\r\n"))
        elif line in (b"\n", b"\r\n"):
            if data:
                yield arrived, "\n".join(data)
            data, arrived = [], 0.0


def stream_client(port: int, token: str, after: str, seen: Any) -> None:
    """Follow the feed's stream from `after`; put (event id, arrival) for each event."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request(
        "GET",
        f"{FEED}?after={after}",
        headers={"Accept": "text/event-stream", "Authorization": f"Token {token}"},
    )
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"stream answered {response.status}: {response.read()[:500]!r}")
    for arrived, data in _sse_events(response):
        seen.put((json.loads(data)["event_id"], arrived))


def poll_client(port: int, token: str, after: str, seen: Any) -> None:
    """Read `/events/` after the cursor every POLL_MS (a full page: the next one at once)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Accept": "application/json", "Authorization": f"Token {token}"}
    interval = POLL_MS / 1000
    tick = time.monotonic()
    while True:
        while True:
            connection.request("GET", f"{EVENTS}?after={after}&limit={POLL_LIMIT}", headers=headers)
            response = connection.getresponse()
            body = response.read()
            arrived = time.time()
            if response.status != 200:
                raise RuntimeError(f"/events/ answered {response.status}: {body[:500]!r}")
            page = json.loads(body)
            for event in page["results"]:
                seen.put((event["event_id"], arrived))
            after = page["next"]
            if len(page["results"]) < POLL_LIMIT:
                break
        # On a fixed schedule, as a timer-driven client polls; a late tick is not made up.
        tick = max(tick + interval, time.monotonic())
        time.sleep(max(0.0, tick - time.monotonic()))


# --- writers ----------------------------------------------------------------------------------


def writer(count: int, pace_ms: float, barrier: Any, results: Any) -> None:
    """Append `count` notes to a stream of its own; put [(event id, commit time), ...]."""
    from django.db import connection, transaction

    from tracker.eventstore.store import NewEvent, append

    stream, version = uuid.uuid4(), 0
    committed: list[tuple[str, float]] = []
    pause = pace_ms / 1000
    barrier.wait()
    for _ in range(count):
        time.sleep(random.uniform(0, 2 * pause))
        event = NewEvent(type="NoteAdded", data={"text": "bench.feed_stream"})
        with transaction.atomic():
            # Queued before the append's own notification: runs right after COMMIT returns.
            transaction.on_commit(
                lambda marker=str(event.event_id): committed.append((marker, time.time()))
            )
            version = append(stream, [event], version, actor="bench").version
    connection.close()
    results.put(committed)


def run_writers(clients: int, count: int, pace_ms: float) -> tuple[dict[str, float], float]:
    """{event id: commit time} of `clients` writer processes started together, and their rate."""
    from django.db import connections

    connections.close_all()  # forked children open their own
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    processes = [
        context.Process(target=writer, args=(count, pace_ms, barrier, results))
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.time()
    committed: dict[str, float] = {}
    for _ in processes:
        committed.update(results.get(timeout=600))
    for process in processes:
        process.join(30)
        if process.exitcode != 0:
            raise RuntimeError(f"a writer exited with {process.exitcode}")
    return committed, len(committed) / (max(committed.values()) - started)


def collect(seen: Any, arrivals: dict[str, float], wanted: set[str], timeout: float) -> None:
    """Take arrivals off the client's queue until every wanted id has arrived."""
    deadline = time.monotonic() + timeout
    while not wanted <= arrivals.keys():
        left = deadline - time.monotonic()
        if left <= 0:
            missing = len(wanted - arrivals.keys())
            raise TimeoutError(f"{missing} of {len(wanted)} events never reached a client")
        try:
            marker, arrived = seen.get(timeout=left)
        except queue.Empty:
            continue
        arrivals.setdefault(marker, arrived)


# --- the run ----------------------------------------------------------------------------------


def feed_end() -> str:
    from tracker.eventstore.store import read_all

    after = None
    while True:
        page = read_all(after, 1000)
        after = page.next
        if not page.events:
            return after


def reader_token() -> str:
    from django.contrib.auth.models import Group, User

    from tracker.api.auth import issue_token

    user = User.objects.create_user(username=f"bench-feed-{uuid.uuid4().hex[:8]}")
    user.groups.add(Group.objects.get_or_create(name="reader")[0])
    return issue_token(user)


def server_settings() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes")
        values = []
        for name in names:
            cursor.execute(f"SHOW {name}")
            values.append(f"{name}={cursor.fetchone()[0]}")
    return "PostgreSQL " + ", ".join(values)


def main() -> None:
    setup_django()
    from django.db import connections

    log(f"machine: {machine()}; {server_settings()}")
    token, after = reader_token(), feed_end()
    connections.close_all()
    logs = Path("/tmp") / f"bench-feed-stream-{os.getpid()}"
    logs.mkdir(exist_ok=True)
    stream_port, api_port = free_port(), free_port()
    servers = [
        start_server("stream", stream_port, logs / "uvicorn.log"),
        start_server("api", api_port, logs / "gunicorn.log"),
    ]
    context = multiprocessing.get_context("fork")
    stream_seen, poll_seen = context.Queue(), context.Queue()
    clients = [
        context.Process(target=stream_client, args=(stream_port, token, after, stream_seen)),
        context.Process(target=poll_client, args=(api_port, token, after, poll_seen)),
    ]
    for client in clients:
        client.daemon = True
        client.start()
    stream_arrivals: dict[str, float] = {}
    poll_arrivals: dict[str, float] = {}
    runs: dict[int, list[dict[str, Any]]] = {count: [] for count in WRITERS}
    began = time.perf_counter()
    try:
        # The server's listener, reader threads and prepared statements, and the clients.
        warm, _ = run_writers(1, WARMUP, PACE_MS)
        collect(stream_seen, stream_arrivals, set(warm), 60)
        collect(poll_seen, poll_arrivals, set(warm), 60 + POLL_MS / 1000)
        for round_index in range(ROUNDS):
            for count in WRITERS:
                load_before = os.getloadavg()[0]
                committed, rate = run_writers(count, APPENDS, PACE_MS)
                wanted = set(committed)
                collect(stream_seen, stream_arrivals, wanted, 60)
                collect(poll_seen, poll_arrivals, wanted, 60 + 2 * POLL_MS / 1000)
                run = {
                    "stream": latency_ms([stream_arrivals[m] - committed[m] for m in wanted]),
                    "poll": latency_ms([poll_arrivals[m] - committed[m] for m in wanted]),
                    "events": len(wanted),
                    "events_per_s": rate,
                    "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                }
                runs[count].append(run)
                log(f"round {round_index + 1} writers={count}: {run}")
    finally:
        for client in clients:
            client.kill()
        for server in servers:
            stop_server(server)
    figures = [figure_of(count, runs[count]) for count in WRITERS]
    path = emit("feed_stream", figures)
    log(f"wrote {path} in {time.perf_counter() - began:.0f} s; server logs in {logs}")


def figure_of(writers: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    stream_p50 = median(run["stream"]["p50_ms"] for run in runs)
    poll_p50 = median(run["poll"]["p50_ms"] for run in runs)
    return {
        "figure": "commit_to_stream_client",
        "clients": writers,
        "p50_ms": stream_p50,
        "p99_ms": median(run["stream"]["p99_ms"] for run in runs),
        "target_p50_ms": GOAL_P50_MS,
        "baseline": f"poll_get_events_every_{POLL_MS:g}_ms",
        "baseline_p50_ms": poll_p50,
        "baseline_p99_ms": median(run["poll"]["p99_ms"] for run in runs),
        "ratio": round(stream_p50 / poll_p50, 4),
        "events_per_s": round(median(run["events_per_s"] for run in runs), 1),
        "events_per_round": runs[0]["events"],
        "pace_ms": PACE_MS,
        "median": f"of {len(runs)} rounds, each percentile separately",
        "rounds": len(runs),
        "rounds_p50_ms": [run["stream"]["p50_ms"] for run in runs],
        "rounds_p99_ms": [run["stream"]["p99_ms"] for run in runs],
        "rounds_baseline_p50_ms": [run["poll"]["p50_ms"] for run in runs],
        "rounds_baseline_p99_ms": [run["poll"]["p99_ms"] for run in runs],
        "load_average": [run["load_average"] for run in runs],
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
