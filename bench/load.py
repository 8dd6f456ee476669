"""A load test on loopback: concurrent clients mixing reads and appends on many deals.

`make loadtest` runs it for 60 seconds with 16 clients on 100 deals against its own stack
(PostgreSQL, Redis, gunicorn, a Celery worker and beat, all real processes); the suite runs a
20-second version (tests/e2e/test_load.py). Every request loop is bounded in count and time,
and only 127.0.0.1 is ever addressed. Afterwards every deal's chain must verify and every
projection must equal its replay; the run reports requests/s, p50/p99 per endpoint and the
count of 5xx answers (which must be 0).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import emit, latency_ms, log
from bench.stack import Stack

SOURCE = {"title": "Load test", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}
MAX_REQUESTS_PER_CLIENT = 100_000


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


def client(stack: Stack, deals: list[str], deadline: float, seed: int, results: dict) -> None:
    rng = random.Random(seed)
    versions: dict[str, int] = {}
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline:
            return
        deal = rng.choice(deals)
        roll = rng.random()
        if roll < 0.45:
            name, method, path, body = "GET /deals/{id}/", "GET", f"/api/v1/deals/{deal}/", None
        elif roll < 0.60:
            name, method, path, body = "GET /deals/", "GET", "/api/v1/deals/?limit=20", None
        elif roll < 0.75:
            name, method, path = "GET /deals/{id}/state/", "GET", f"/api/v1/deals/{deal}/state/"
            path += "?as_of=2025-06-15"
            body = None
        else:
            stale = roll > 0.98  # a few deliberate conflicts: a version known to be old
            expected = 0 if stale else versions.get(deal, 1)
            name, method, path = "POST /deals/{id}/events/", "POST", f"/api/v1/deals/{deal}/events/"
            body = {
                "type": "NoteAdded",
                "data": {"text": f"load {seed}"},
                "occurred": OCCURRED,
                "source": SOURCE,
                "expected_version": expected,
            }
        started = time.perf_counter()
        status, answer = stack.request(method, path, body, token=stack.editor)
        elapsed = time.perf_counter() - started
        with results["lock"]:
            results["latency"][name].append(elapsed)
            results["status"][name][status] += 1
        if method == "POST":
            if status == 201:
                versions[deal] = answer["version"]
            elif status == 409:
                versions[deal] = answer["current_version"]


def run(stack: Stack, *, seconds: float, clients: int, deals: int) -> dict[str, Any]:
    deal_ids = prepare(stack, deals)
    results: dict[str, Any] = {
        "lock": threading.Lock(),
        "latency": defaultdict(list),
        "status": defaultdict(lambda: defaultdict(int)),
    }
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [
        threading.Thread(target=client, args=(stack, deal_ids, deadline, n, results))
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.monotonic() - started
    figures = []
    for name, latencies in sorted(results["latency"].items()):
        statuses = dict(results["status"][name])
        figures.append(
            {
                "figure": "load",
                "endpoint": name,
                "clients": clients,
                "requests": len(latencies),
                "requests_per_s": round(len(latencies) / elapsed, 1),
                **latency_ms(latencies),
                "statuses": {str(code): count for code, count in sorted(statuses.items())},
                "server_errors": sum(c for code, c in statuses.items() if code >= 500 or code == 0),
            }
        )
    return {"figures": figures, "deals": deal_ids, "elapsed": elapsed}


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dealtracker-load-") as directory:
        stack = start_stack(Path(directory))
        try:
            log(f"{args.clients} clients for {args.seconds:.0f}s on {args.deals} deals")
            outcome = run(stack, seconds=args.seconds, clients=args.clients, deals=args.deals)
            checks = check_after(stack, outcome["deals"])
        finally:
            stack.stop()
    total = sum(f["requests"] for f in outcome["figures"])
    summary = {
        "figure": "load_total",
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": total,
        "requests_per_s": round(total / outcome["elapsed"], 1),
        "server_errors": sum(f["server_errors"] for f in outcome["figures"]),
        **checks,
    }
    emit("load", [*outcome["figures"], summary])


if __name__ == "__main__":
    main()
