"""Try a change before writing it properly: one of bench/api.py's requests on two gunicorns at once,
A as configured and B with AB_B_ENV added to its environment, in alternating rounds.

For trials, not for the README's figures: a change worth keeping is measured again by
`make bench` on the final code. B differs from A only by environment variables, either a
setting (`EVENT_NOTIFY_INTERVAL_SECONDS=1`) or a variable that a temporary patch of the working
tree reads; bench/README.md says which patch each trial used.

Each of AB_ROUNDS rounds runs A then B (B then A in the 2nd, 4th, ... round) for AB_SECONDS
each, with bench/api.py's 8 clients (one connection per request) and WORKERS sync workers per
gunicorn; the idle one of the two costs nothing measurable. Both POST to the same 8 deals, so
each side's processes find the streams moved on by the other's round at its first appends, as
often for A as for B. Per round: each side's rate and the machine's busy CPU per request
(every process, from /proc/stat, as bench/web_processes.py counts it). The figure: each side's
median rate, the median of the per-round rate ratios B/A and of the per-round CPU ratios B/A.
JSON on stdout and in bench/results/ab.json (not committed: a trial, not a figure the README
quotes).

Run: `AB_B_ENV="EVENT_NOTIFY_INTERVAL_SECONDS=1" SERVICES_MODE=--durable
scripts/with-services.sh .venv/bin/python -m bench.ab` (AB_REQUEST: a name of
`bench.api.endpoints`, `post_deal_event` by default).
"""

from __future__ import annotations

import os
from typing import Any

from bench import api
from bench.common import emit, figure, log, machine, median, setup_django
from bench.web_processes import measured, start

ROUNDS = int(os.environ.get("AB_ROUNDS", "6"))
SECONDS = float(os.environ.get("AB_SECONDS", "4"))


def main() -> None:
    api.unthrottled()
    b_env = dict(item.split("=", 1) for item in os.environ.get("AB_B_ENV", "").split())
    name = os.environ.get("AB_REQUEST", "post_deal_event")
    setup_django()
    token, deals = api._prepare()
    request = api.endpoints(deals)[name]
    servers = {"a": start(api.WORKERS, {}), "b": start(api.WORKERS, b_env)}
    try:
        for port, _ in servers.values():
            api._run(port, token, request, api.WARMUP_SECONDS)
        runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        for number in range(ROUNDS):
            for side in "ab" if number % 2 == 0 else "ba":
                runs[side].append(measured(servers[side][0], token, request, SECONDS))
            a, b = runs["a"][-1], runs["b"][-1]
            log(
                f"round {number + 1}/{ROUNDS}: A {a['rate']:.0f} req/s ({a['cpu_ms']:.2f} ms "
                f"CPU), B {b['rate']:.0f} req/s ({b['cpu_ms']:.2f} ms CPU)"
            )
        pairs = list(zip(runs["a"], runs["b"], strict=True))
        emit(
            "ab",
            [
                figure(
                    f"{name}_b_over_a",
                    clients=api.CLIENTS,
                    events_per_s=median(b["rate"] for _, b in pairs),
                    p50_ms=None,
                    p99_ms=None,
                    baseline_events_per_s=median(a["rate"] for a, _ in pairs),
                    ratio=median(b["rate"] / a["rate"] for a, b in pairs),
                    cpu_ratio=round(median(b["cpu_ms"] / a["cpu_ms"] for a, b in pairs), 3),
                    cpu_ms_per_request_a=round(median(a["cpu_ms"] for a, _ in pairs), 3),
                    cpu_ms_per_request_b=round(median(b["cpu_ms"] for _, b in pairs), 3),
                    rounds_ratio=[round(b["rate"] / a["rate"], 3) for a, b in pairs],
                    b_env=b_env,
                    workers=api.WORKERS,
                    seconds=SECONDS,
                    rounds=ROUNDS,
                    machine=machine(),
                )
            ],
        )
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
