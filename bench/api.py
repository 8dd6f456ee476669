"""Throughput and latency of the REST API under gunicorn, beside a plain Django view.

Figures (JSON on stdout and in bench/results/api.json), one per endpoint:

- `get_deals_list`: `GET /api/v1/deals/` (a page of 50 from the projection);
- `get_deal`: `GET /api/v1/deals/{id}/` (one projection row);
- `get_deal_state`: `GET /api/v1/deals/{id}/state/?as_of=2025-06-15` (a replay of the stream);
- `post_deal_event`: `POST /api/v1/deals/{id}/events/` (one NoteAdded, each client on its
  own deal, with the version its previous append returned);

each against the baseline: `GET /bench/baseline/`, a plain Django view returning a fixed JSON
body (no authentication, no database) under the same gunicorn, same middleware, same clients.

Beside them, against the same baseline, the floors of bench/urls.py, which place each endpoint
between the bare view and the least any endpoint of this stack does:

- `get_floor_drf`: `GET /bench/floor/drf/`, the API's authentication, permission, rate limit
  and renderer around the bare view's fixed body (no database);
- `post_floor_drf`: the same for a POST of the same note, its body parsed, nothing stored;
- `post_floor_insert`: a plain Django view storing the note as one row, one prepared INSERT in
  autocommit, durable (bench/append.py's raw table; no framework, no authentication);
- `post_floor_drf_insert`: both, the least a durable, authenticated append costs here.

Then, in bench/results/api_replica.json, the three reads again, `<name>_replica`, on a second
gunicorn whose settings name a PostgreSQL replica (DATABASE_REPLICA_URL), each beside the first
gunicorn (reading from the primary) in turns in the same rounds: `ratio` is replica over
primary. The replica is the one DATABASE_REPLICA_URL names, else one `scripts/services.sh
start-replica` starts beside the services of SERVICES_DIR once the other figures are taken;
with neither, these figures are left out. On one machine the replica shares the primary's
cores, so this measures the cost of routing reads to it, not a gain.

The server is gunicorn (sync workers, WORKERS of them) on a free 127.0.0.1 port with
`bench.settings`; CLIENTS threads send requests over loopback with `http.client`, one
connection per request as sync workers close them. Each endpoint runs ROUNDS times for
SECONDS, each round followed by one of the baseline so that drift on a noisy machine hits them
alike, the reads before the POSTs (which would grow the list's first page); a figure quotes the
median rate and latency over the rounds and the median of the per-round ratios.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.api`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.common import emit, figure, latency_ms, log, machine, median, setup_django

ROUNDS = 3
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
WARMUP_SECONDS = 1.0
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
EXTRA_DEALS = 200
ROOT = Path(__file__).resolve().parents[1]

Request = Callable[[int], tuple[str, str, bytes | None]]
"""(method, path, body) for the given client number."""


def unthrottled() -> str:
    """Set this process's environment, which the servers it starts inherit, for measuring rates:
    no rate limit, no access log, and no replica; returns the replica's URL it took out."""
    # Rates are what is measured here, not the throttle; the access log would be timed too.
    os.environ["API_THROTTLE_USER"] = os.environ["API_THROTTLE_ANON"] = "100000000/min"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return os.environ.pop("DATABASE_REPLICA_URL", "")


def main() -> None:
    replica_url = unthrottled()
    setup_django()
    token, deals = _prepare()
    port = _free_port()
    server = _start_server(port)
    try:
        emit("api", _measure(port, token, deals))
        replica_url = replica_url or _start_replica()
        if not replica_url:
            log("no replica (DATABASE_REPLICA_URL or SERVICES_DIR): replica figures left out")
            return
        _wait_for_replica(replica_url)
        replica_port = _free_port()
        replica_server = _start_server(replica_port, replica_url)
        try:
            emit("api_replica", _measure_replica(port, replica_port, token))
        finally:
            replica_server.terminate()
            replica_server.wait(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _start_replica() -> str:
    """A replica of the services in SERVICES_DIR, started now; its URL, or "" if none."""
    services = os.environ.get("SERVICES_DIR")
    if not services:
        return ""
    subprocess.run([ROOT / "scripts/services.sh", "start-replica", services], check=True)
    for line in Path(services, "env").read_text().splitlines():
        name, _, value = line.partition("=")
        if name == "DATABASE_REPLICA_URL":
            return value
    return ""


def _wait_for_replica(replica_url: str, timeout: float = 60) -> None:
    """Wait until the replica has replayed every commit the primary has made so far."""
    import psycopg

    from bench.common import database_url

    with psycopg.connect(database_url(), autocommit=True) as primary:
        # A commit that wrote WAL, made with synchronous_commit on, writes out the WAL of the
        # commits before it, which synchronous_commit off may have left in the buffers.
        with primary.transaction():
            primary.execute("SET LOCAL synchronous_commit = on")
            primary.execute("SELECT pg_logical_emit_message(true, 'bench', 'catch-up')")
        target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(replica_url, dbname="postgres", autocommit=True) as replica:
        deadline = time.monotonic() + timeout
        while not replica.execute("SELECT pg_last_wal_replay_lsn() >= %s", [target]).fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"the replica did not replay up to {target} in {timeout} s")
            time.sleep(0.05)


def _prepare() -> tuple[str, list[str]]:
    """The demo data, EXTRA_DEALS more deals, all projected; an editor's token; bench deals."""
    import psycopg
    from django.core.management import call_command

    from bench.append import RAW_TABLE_SQL
    from bench.common import database_url
    from tracker.deals.management.commands.seed_demo import seed
    from tracker.projections.models import DealState
    from tracker.projections.projector import deals_behind, project_deal

    seed()
    with psycopg.connect(database_url(), autocommit=True) as raw:
        raw.execute(RAW_TABLE_SQL)  # the floors' table, empty
    if DealState.objects.count() < EXTRA_DEALS:
        for n in range(EXTRA_DEALS):
            _open_deal(f"Bench deal {n}")
    writers = open_writers()
    for deal_id in deals_behind(limit=100_000):
        project_deal(deal_id)
    out = _Capture()
    call_command("create_api_user", "bench-editor", role="editor", stdout=out, stderr=_Capture())
    return out.text.strip(), writers


def open_writers() -> list[str]:
    """A deal for each client to POST notes to (at version 1, unprojected)."""
    return [_open_deal("Bench writer") for _ in range(CLIENTS)]


def _open_deal(title: str) -> str:
    from tracker.deals.management.commands.seed_demo import org_id
    from tracker.deals.services import open_deal

    parties = [{"organisation": str(org_id(slug)), "role": "partner"} for slug in ("bae", "tusas")]
    opened = open_deal(
        title=title,
        kind="other",
        summary="",
        parties=parties,
        occurred={"date": "2025-01-01", "precision": "year"},
        source={"title": "bench", "publisher": "unknown"},
        actor="bench",
    )
    return str(opened.stream_id)


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, value: str) -> None:
        self.text += value

    def flush(self) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(
    port: int,
    replica_url: str = "",
    *,
    workers: int = WORKERS,
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """gunicorn of `workers` sync workers on `port`, reading from the replica at `replica_url` if
    one is given, with `environment` added to this process's."""
    env = {**os.environ, **(environment or {}), "DJANGO_SETTINGS_MODULE": "bench.settings"}
    if replica_url:
        env["DATABASE_REPLICA_URL"] = replica_url
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = _send(port, "GET", "/bench/baseline/", None, {})
            if status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def _send(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _run(port: int, token: str | None, request: Request, seconds: float) -> dict[str, Any]:
    """CLIENTS threads sending `request` until `seconds` pass: rate and latencies."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)
    stop_at = [0.0]

    def client(number: int) -> None:
        mine: list[float] = []
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            method, path, body = request(number)
            started = time.perf_counter()
            status, content = _send(port, method, path, body, headers)
            mine.append(time.perf_counter() - started)
            if status >= 300:
                errors.append(f"{method} {path}: {status} {content[:200]!r}")
                break
            if method == "POST":
                _VERSIONS[path] = json.loads(content)["version"]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"request failed: {errors[0]}")
    return {"rate": len(latencies) / elapsed, "latencies": latencies}


_VERSIONS: dict[str, int] = {}
"""The version each POST path (one stream per client and endpoint) is at."""


def bare_view(number: int) -> tuple[str, str, bytes | None]:
    """The baseline's request."""
    return "GET", "/bench/baseline/", None


def _reads() -> dict[str, Request]:
    from tracker.deals.management.commands.seed_demo import deal_id

    deal = str(deal_id(2))
    return {
        "get_deals_list": lambda n: ("GET", "/api/v1/deals/", None),
        "get_deal": lambda n: ("GET", f"/api/v1/deals/{deal}/", None),
        "get_deal_state": lambda n: ("GET", f"/api/v1/deals/{deal}/state/?as_of=2025-06-15", None),
    }


def _note_to(paths: list[str]) -> Request:
    """A POST of one NoteAdded to client n's path, at the version its last POST returned."""
    for path in paths:
        _VERSIONS.setdefault(path, 1)  # the writers' deals are opened at version 1

    def note(number: int) -> tuple[str, str, bytes]:
        body = {
            "type": "NoteAdded",
            "data": {"text": f"bench note {uuid.uuid4()}"},
            "occurred": {"date": "2025-06-01", "precision": "month"},
            "source": {"title": "bench", "publisher": "unknown"},
            "expected_version": _VERSIONS[paths[number]],
        }
        return "POST", paths[number], json.dumps(body).encode()

    return note


def _floor(kind: str) -> Request:
    return _note_to([f"/bench/floor/{kind}/{uuid.uuid4()}/" for _ in range(CLIENTS)])


def endpoints(writers: list[str]) -> dict[str, Request]:
    """Every figure's request, the reads first: each POST round adds notes to the writers'
    deals, which then head the list's first page."""
    return {
        **_reads(),
        "get_floor_drf": lambda n: ("GET", "/bench/floor/drf/", None),
        "post_deal_event": _note_to([f"/api/v1/deals/{deal}/events/" for deal in writers]),
        "post_floor_drf": _floor("drf"),
        "post_floor_insert": _floor("insert"),
        "post_floor_drf_insert": _floor("drf-insert"),
    }


def _measure(port: int, token: str, writers: list[str]) -> list[dict[str, Any]]:
    requests = endpoints(writers)
    rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {name: [] for name in requests}
    _run(port, token, requests["get_deal"], WARMUP_SECONDS)
    _run(port, None, bare_view, WARMUP_SECONDS)
    # Every round of the reads before the first POST: each POST round adds a few hundred notes
    # to the writers' 8 deals, which would grow the list's first page from round to round.
    for name, request in requests.items():
        for round_number in range(ROUNDS):
            ours = _run(port, token, request, SECONDS)
            theirs = _run(port, None, bare_view, SECONDS)
            rounds[name].append((ours, theirs))
            log(
                f"round {round_number + 1}/{ROUNDS} {name}: {ours['rate']:.0f} req/s, "
                f"baseline {theirs['rate']:.0f} req/s"
            )
    return _figures(rounds, "plain Django view, fixed JSON body, same gunicorn")


def _measure_replica(port: int, replica_port: int, token: str) -> list[dict[str, Any]]:
    """The reads on the gunicorn that reads from the replica, each beside the same read on the
    one that reads from the primary, in turns."""
    reads = _reads()
    rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
        f"{name}_replica": [] for name in reads
    }
    _run(replica_port, token, reads["get_deal"], WARMUP_SECONDS)
    for round_number in range(ROUNDS):
        for name, request in reads.items():
            replica = _run(replica_port, token, request, SECONDS)
            primary = _run(port, token, request, SECONDS)
            rounds[f"{name}_replica"].append((replica, primary))
            log(
                f"round {round_number + 1}/{ROUNDS} {name}: replica {replica['rate']:.0f} "
                f"req/s, primary {primary['rate']:.0f} req/s"
            )
    return _figures(rounds, "the same request on a gunicorn reading from the primary")


def _figures(
    rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]],
    baseline: str,
    *,
    workers: int | None = None,
    seconds: float = SECONDS,
    rounds_run: int = ROUNDS,
) -> list[dict[str, Any]]:
    """A figure per request from its rounds, each a (request's run, baseline's run) pair."""
    figures = []
    for name, measured in rounds.items():
        ours_latency = [latency_ms(ours["latencies"]) for ours, _ in measured]
        base_latency = [latency_ms(theirs["latencies"]) for _, theirs in measured]
        figures.append(
            figure(
                name,
                clients=CLIENTS,
                events_per_s=median(ours["rate"] for ours, _ in measured),
                p50_ms=median(item["p50_ms"] for item in ours_latency),
                p99_ms=median(item["p99_ms"] for item in ours_latency),
                baseline_events_per_s=median(theirs["rate"] for _, theirs in measured),
                ratio=median(ours["rate"] / theirs["rate"] for ours, theirs in measured),
                unit="requests",
                baseline_p50_ms=median(item["p50_ms"] for item in base_latency),
                baseline_p99_ms=median(item["p99_ms"] for item in base_latency),
                baseline=baseline,
                workers=WORKERS if workers is None else workers,
                seconds=seconds,
                rounds=rounds_run,
                machine=machine(),
            )
        )
    return figures


if __name__ == "__main__":
    main()
