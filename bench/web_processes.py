"""The API under several gunicorn set-ups on one machine: how many sync workers, and how often
each process wakes the feed's followers.

bench/api.py measures with 3 sync workers and the settings' defaults. This measures what those
choices do, with bench/api.py's own requests (`get_deal`, `post_deal_event` and the bare view,
8 client threads, one connection per request), on one gunicorn per set-up in SETUPS:

- `workers_1`, `workers_2`, `workers_3`, `workers_5`: that many sync workers (5 is gunicorn's
  rule of thumb for 2 cores, 2 x cores + 1; 2 is docker/entrypoint.sh's WEB_CONCURRENCY);
- `workers_3_notify_100ms`: 3 workers, each process sending the feed's wake-up
  (`pg_notify`) at most every 100 ms instead of every 10 (EVENT_NOTIFY_INTERVAL_SECONDS).

All the gunicorns run for the whole run, idle but for the one measured; each POSTs to 8 deals
of its own, so that no set-up meets streams that another's POSTs have grown. Each of ROUNDS rounds
measures every set-up in turn (each round starting one set-up further down the list), each
request for SECONDS followed by the bare view on the same gunicorn, so that drift hits them
alike. A figure per set-up and request, `<setup>_<request>`:
the median rate over the rounds, the median of the per-round ratios to the bare view, and
`cpu_ms_per_request`, the whole machine's CPU (every process, from /proc/stat) over the requests
served, median over the rounds, for the request and for its bare view (busy time only: not
idle, I/O wait or the hypervisor's steal), and the 1-minute load average after each round.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.web_processes`.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bench import api
from bench.common import emit, log, median, setup_django

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
SETUPS: dict[str, tuple[int, dict[str, str]]] = {
    "workers_1": (1, {}),
    "workers_2": (2, {}),
    "workers_3": (3, {}),
    "workers_5": (5, {}),
    "workers_3_notify_100ms": (3, {"EVENT_NOTIFY_INTERVAL_SECONDS": "0.1"}),
}
REQUESTS = ("get_deal", "post_deal_event")
_TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    api.unthrottled()
    setup_django()
    token, _ = api._prepare()
    # Each set-up's POSTs go to deals of its own, so that none meets streams the others grew.
    requests = {setup: api.endpoints(api.open_writers()) for setup in SETUPS}
    servers = {name: start(workers, env) for name, (workers, env) in SETUPS.items()}
    try:
        for setup, (port, _) in servers.items():
            api._run(port, token, requests[setup]["get_deal"], api.WARMUP_SECONDS)
            api._run(port, None, api.bare_view, api.WARMUP_SECONDS)
        rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
            f"{setup}_{request}": [] for setup in SETUPS for request in REQUESTS
        }
        order = list(servers)
        for number in range(ROUNDS):
            # Each round starts one set-up later, so that no set-up always meets the host's
            # drift at the same point of a round.
            for setup in order[number % len(order) :] + order[: number % len(order)]:
                port = servers[setup][0]
                for request in REQUESTS:
                    ours = measured(port, token, requests[setup][request])
                    theirs = measured(port, None, api.bare_view)
                    rounds[f"{setup}_{request}"].append((ours, theirs))
                    log(
                        f"round {number + 1}/{ROUNDS} {setup} {request}: "
                        f"{ours['rate']:.0f} req/s ({ours['cpu_ms']:.2f} ms CPU), bare view "
                        f"{theirs['rate']:.0f} req/s ({theirs['cpu_ms']:.2f} ms CPU)"
                    )
        emit("web_processes", _figures(rounds))
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(timeout=30)


def start(workers: int, environment: dict[str, str]) -> tuple[int, subprocess.Popen]:
    """A gunicorn of `workers` sync workers with `environment` added, on a free port."""
    port = api._free_port()
    return port, api._start_server(port, workers=workers, environment=environment)


def measured(
    port: int, token: str | None, request: api.Request, seconds: float = SECONDS
) -> dict[str, Any]:
    """bench/api.py's run, with the machine's CPU per request over it."""
    busy_before = _busy_seconds()
    run = api._run(port, token, request, seconds)
    cpu = _busy_seconds() - busy_before
    return {
        **run,
        "cpu_ms": cpu / len(run["latencies"]) * 1000,
        "load_average": round(os.getloadavg()[0], 2),
    }


def _busy_seconds() -> float:
    """CPU seconds this machine's cores have spent working: user, nice, system, irq and
    softirq. Not idle or I/O wait, and not steal (time the hypervisor gave to other machines);
    guest time is already inside user and nice."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return sum(ticks[index] for index in (0, 1, 2, 5, 6)) / _TICKS


def _figures(rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> list[dict]:
    figures = []
    for name, measured in rounds.items():
        setup = next(setup for setup in SETUPS if name.startswith(f"{setup}_"))
        workers, env = SETUPS[setup]
        (found,) = api._figures(
            {name: measured},
            "plain Django view, fixed JSON body, same gunicorn",
            workers=workers,
            seconds=SECONDS,
            rounds_run=ROUNDS,
        )
        found.update(
            rounds_ratio=[round(ours["rate"] / theirs["rate"], 3) for ours, theirs in measured],
            cpu_ms_per_request=round(median(ours["cpu_ms"] for ours, _ in measured), 3),
            baseline_cpu_ms_per_request=round(
                median(theirs["cpu_ms"] for _, theirs in measured), 3
            ),
            settings=env,
            load_average=[ours["load_average"] for ours, _ in measured],
        )
        figures.append(found)
    return figures


if __name__ == "__main__":
    main()
