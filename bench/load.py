"""A load test on loopback: concurrent clients mixing reads and appends on many deals.

`make loadtest` runs it for 60 seconds with 16 clients on 100 deals against its own stack
(durable PostgreSQL, Redis, gunicorn, a Celery worker and beat, all real processes); the suite
runs a 20-second version (tests/e2e/test_load.py). Every request loop is bounded in count and
time, and only 127.0.0.1 is ever addressed.

Every request is counted by what became of it: its status, or a connection error or timeout
when no answer came; an answer with a status the endpoint should not give, or a body that
fails its check, counts as an error too. A read must show the deal asked for at a version no
older than this client knows it to have reached (reads of one deal pass `min_version`, the
API's read-your-writes). A client never dies silently: anything it raises is counted. After
the run every deal's chain must verify and every projection must equal its replay.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import emit, latency_ms, log, machine
from bench.stack import Reply, Stack, attempt

SOURCE = {"title": "Load test", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}
MAX_REQUESTS_PER_CLIENT = 100_000
EXAMPLES_PER_KIND = 5

READ = "GET /deals/{id}/"
LIST = "GET /deals/"
REPLAY = "GET /deals/{id}/state/"
APPEND = "POST /deals/{id}/events/"
EXPECTED_STATUSES = {READ: {200}, LIST: {200}, REPLAY: {200}, APPEND: {201, 409}}
ERROR_KINDS = (
    "connection_errors",
    "timeouts",
    "unexpected_statuses",
    "failed_checks",
    "client_exceptions",
)


def prepare(stack: Stack, deals: int) -> list[str]:
    ids = []
    for name, kind, country in [
        ("Load buyer", "government", "TR"),
        ("Load maker", "company", "GB"),
    ]:
        status, body = stack.request(
            "POST",
            "/api/v1/organisations/",
            {"name": name, "kind": kind, "country": country},
            token=stack.editor,
        )
        assert status == 201, body
        ids.append(body["id"])
    deal_ids = []
    for n in range(deals):
        status, body = stack.request(
            "POST",
            "/api/v1/deals/",
            {
                "title": f"Load deal {n}",
                "kind": "contract",
                "summary": "",
                "parties": [
                    {"organisation": ids[0], "role": "buyer"},
                    {"organisation": ids[1], "role": "supplier"},
                ],
                "occurred": {"date": "2025-01-01", "precision": "year"},
                "source": SOURCE,
            },
            token=stack.editor,
        )
        assert status == 201, body
        deal_ids.append(body["id"])
    return deal_ids


@dataclass
class Endpoint:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class Tally:
    """Every request's outcome, by endpoint; shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.endpoints: dict[str, Endpoint] = defaultdict(Endpoint)
        self.finished = 0

    def record(self, name: str, reply: Reply, elapsed: float, error: tuple[str, str] | None):
        with self.lock:
            endpoint = self.endpoints[name]
            endpoint.latencies.append(elapsed)
            if reply.status is not None:
                endpoint.statuses[str(reply.status)] += 1
            if error is not None:
                self._error(endpoint, *error)

    def exception(self, name: str, error: BaseException) -> None:
        with self.lock:
            detail = "".join(traceback.format_exception_only(error)).strip()
            self._error(self.endpoints[name], "client_exceptions", detail)

    def _error(self, endpoint: Endpoint, kind: str, detail: str) -> None:
        endpoint.errors[kind] += 1
        if len(endpoint.examples[kind]) < EXAMPLES_PER_KIND:
            endpoint.examples[kind].append(detail[:300])


def judge(name: str, reply: Reply, check: Any) -> tuple[str, str] | None:
    """None for an answer as the endpoint should give it, else (error kind, what was wrong)."""
    if reply.failure == "timeout":
        return "timeouts", reply.detail
    if reply.failure is not None:
        return "connection_errors", reply.detail
    if reply.status not in EXPECTED_STATUSES[name]:
        return "unexpected_statuses", f"{reply.status}: {str(reply.body)[:200]}"
    problem = check(reply)
    if problem:
        return "failed_checks", f"{reply.status}: {problem}; body {str(reply.body)[:200]}"
    return None


def _version(body: Any) -> int | None:
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def check_deal(deal: str, known: int):
    def check(reply: Reply) -> str | None:
        body, version = reply.body, _version(reply.body)
        if not isinstance(body, dict) or body.get("id") != deal:
            return f"not deal {deal}"
        if version is None or version < known:
            return f"version {version}, this client knows {known}"
        return None

    return check


def check_list(reply: Reply) -> str | None:
    results = reply.body.get("results") if isinstance(reply.body, dict) else None
    if not isinstance(results, list) or not 0 < len(results) <= 20:
        return "no page of 1 to 20 results"
    if not all(isinstance(item, dict) and item.get("id") and _version(item) for item in results):
        return "a result without id and version"
    return None


def check_replay(deal: str, known: int):
    def check(reply: Reply) -> str | None:
        body, version = reply.body, _version(reply.body)
        state = body.get("state") if isinstance(body, dict) else None
        if not isinstance(state, dict) or state.get("id") != deal:
            return f"state not of deal {deal}"
        if version is None or version < known:
            return f"version {version}, this client knows {known}"
        return None

    return check


def check_append(expected: int, known: int):
    def check(reply: Reply) -> str | None:
        version = _version(reply.body)
        if reply.status == 201:
            return None if version == expected + 1 else f"version {version}, not {expected + 1}"
        body = reply.body if isinstance(reply.body, dict) else {}
        current = body.get("current_version")
        if body.get("code") != "version_conflict" or not isinstance(current, int):
            return "no version_conflict with current_version"
        if current == expected or current < known:
            return f"current_version {current} with expected {expected}, known {known}"
        return None

    return check


def client(
    base: str,
    token: str,
    deals: list[str],
    deadline: float,
    seed: int,
    tally: Tally,
    timeout: float,
) -> None:
    """Mix reads and appends until the deadline; what this client has seen of each deal's
    version (answers of its own writes, conflicts and reads) is the least it may read next."""
    rng = random.Random(seed)
    known: dict[str, int] = {}
    try:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            name = "client"
            try:
                deal = rng.choice(deals)
                least = known.get(deal, 1)
                roll = rng.random()
                body = None
                if roll < 0.45:
                    name, method = READ, "GET"
                    path = f"/api/v1/deals/{deal}/?min_version={least}"
                    check = check_deal(deal, least)
                elif roll < 0.60:
                    name, method, path, check = LIST, "GET", "/api/v1/deals/?limit=20", check_list
                elif roll < 0.75:
                    name, method = REPLAY, "GET"
                    path = f"/api/v1/deals/{deal}/state/?as_of=2025-06-15"
                    check = check_replay(deal, least)
                else:
                    stale = roll > 0.98  # a few deliberate conflicts: a version known to be old
                    expected = 0 if stale else least
                    name, method = APPEND, "POST"
                    path = f"/api/v1/deals/{deal}/events/"
                    body = {
                        "type": "NoteAdded",
                        "data": {"text": f"load {seed}"},
                        "occurred": OCCURRED,
                        "source": SOURCE,
                        "expected_version": expected,
                    }
                    check = check_append(expected, least)
                started = time.perf_counter()
                reply = attempt(base, method, path, body, token=token, timeout=timeout)
                elapsed = time.perf_counter() - started
                error = judge(name, reply, check)
                tally.record(name, reply, elapsed, error)
                if error is None and name != LIST:
                    seen = reply.body.get("current_version") or _version(reply.body)
                    known[deal] = max(least, seen)
            except Exception as error:
                tally.exception(name, error)
    finally:
        with tally.lock:
            tally.finished += 1


def run(
    base: str,
    token: str,
    deal_ids: list[str],
    *,
    seconds: float,
    clients: int,
    timeout: float = 30,
) -> dict[str, Any]:
    """Run `clients` client threads for `seconds` against `base`; figures per endpoint and total."""
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(
            target=client,
            args=(base, token, deal_ids, deadline, n, tally, timeout),
            name=f"load-client-{n}",
            daemon=True,
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + timeout + 30)
    elapsed = time.monotonic() - started
    with tally.lock:
        figures = [
            _figure(name, endpoint, clients, elapsed)
            for name, endpoint in sorted(tally.endpoints.items())
        ]
        finished = tally.finished
    total = {
        "figure": "load_total",
        "clients": clients,
        "seconds": seconds,
        "requests": sum(f["requests"] for f in figures),
        "requests_per_s": round(sum(f["requests"] for f in figures) / elapsed, 1),
        "statuses": dict(sum((Counter(f["statuses"]) for f in figures), Counter())),
        **{kind: sum(f[kind] for f in figures) for kind in ERROR_KINDS},
        "clients_finished": finished,
        "clients_still_running": sum(thread.is_alive() for thread in threads),
    }
    total["errors"] = sum(total[kind] for kind in ERROR_KINDS)
    return {"figures": figures, "total": total, "elapsed": elapsed}


def _figure(name: str, endpoint: Endpoint, clients: int, elapsed: float) -> dict[str, Any]:
    return {
        "figure": "load",
        "endpoint": name,
        "clients": clients,
        "requests": len(endpoint.latencies),
        "requests_per_s": round(len(endpoint.latencies) / elapsed, 1),
        **(latency_ms(endpoint.latencies) if endpoint.latencies else {}),
        "statuses": dict(sorted(endpoint.statuses.items())),
        **{kind: endpoint.errors[kind] for kind in ERROR_KINDS},
        "error_examples": {kind: list(found) for kind, found in endpoint.examples.items()},
    }


def check_after(stack: Stack, deal_ids: list[str], timeout: float = 120) -> dict[str, int]:
    """Every chain verifies and every projection equals its replay, once workers catch up."""
    deadline = time.monotonic() + timeout
    bad_chains = mismatched = 0
    for deal in deal_ids:
        status, verified = stack.request(
            "GET", f"/api/v1/deals/{deal}/verify/", token=stack.auditor
        )
        if status != 200 or verified["valid"] is not True:
            bad_chains += 1
        status, replay = stack.request("GET", f"/api/v1/deals/{deal}/state/", token=stack.editor)
        while True:
            _, projected = stack.request("GET", f"/api/v1/deals/{deal}/", token=stack.editor)
            if projected == replay["state"]:
                break
            if time.monotonic() > deadline:
                mismatched += 1
                break
            time.sleep(0.2)
    return {"bad_chains": bad_chains, "projections_not_equal_to_replay": mismatched}


def start_stack(directory: Path) -> Stack:
    stack = Stack(directory)
    stack.start_services()
    stack.manage("migrate", "--no-input", "-v0")
    stack.editor = stack.manage("create_api_user", "load-editor", "--role", "editor").strip()
    stack.auditor = stack.manage("create_api_user", "load-auditor", "--role", "auditor").strip()
    for name in ("web", "worker", "beat"):
        stack.start(name)
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--deals", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30, help="seconds per request")
    args = parser.parse_args()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dealtracker-load-") as directory:
        stack = start_stack(Path(directory))
        try:
            durability = stack.durability()
            log(f"{args.clients} clients for {args.seconds:.0f}s on {args.deals} deals")
            log(f"PostgreSQL {durability}")
            deal_ids = prepare(stack, args.deals)
            outcome = run(
                stack.base,
                stack.editor,
                deal_ids,
                seconds=args.seconds,
                clients=args.clients,
                timeout=args.timeout,
            )
            checks = check_after(stack, deal_ids)
        finally:
            stack.stop()
    summary = {
        **outcome["total"],
        "deals": args.deals,
        "request_timeout_s": args.timeout,
        **checks,
        "postgresql": durability,
        "machine": machine(),
        # The 1-minute load average before and after: others' work on the same cores.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "started_at": started_at,
    }
    path = emit("load", [*outcome["figures"], summary])
    log(f"written to {path}")
    if summary["errors"] or summary["clients_finished"] != args.clients or any(checks.values()):
        raise SystemExit("the load test counted errors: see the figures above")


if __name__ == "__main__":
    main()
