"""Where the CPU of one API request goes: per process group, under the load of bench/api.py.

The API's ratios in bench/api.py are bound by CPU (2 cores shared by the clients, gunicorn,
PostgreSQL and Redis). This script runs the same gunicorn (bench.settings, 3 sync workers) and
the same 8 client threads for SECONDS per endpoint, and reads each process's CPU time from
/proc before and after: the CPU seconds of gunicorn's processes, of every PostgreSQL process,
of Redis, and of this (the client) process, divided by the requests served. One figure per
request of bench/api.py (its endpoints and floors) and the bare view, in
bench/results/api_cpu.json: `ms_cpu_per_request` by group and in total. One measurement each,
so read the groups against each other, not to the last digit.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.api_cpu`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench.common import emit, log, machine, setup_django

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_group() -> dict[str, float]:
    """CPU seconds (user + system) of every live process, summed by what it is."""
    found: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
                command = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        if int(pid) == os.getpid():
            group = "client"
        elif "gunicorn" in command:
            group = "gunicorn"
        elif "postgres" in command:
            group = "postgresql"
        elif "redis" in command:
            group = "redis"
        else:
            group = "other"
        found[group] = found.get(group, 0.0) + seconds
    return found


def measure(name: str, run: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
    before = cpu_by_group()
    result = run()
    after = cpu_by_group()
    requests = result["rate"] * seconds
    groups = {
        group: round((after[group] - before.get(group, 0.0)) / requests * 1000, 3)
        for group in sorted(after)
        if group != "other"
    }
    figure = {
        "figure": f"{name}_cpu",
        "requests_per_s": round(result["rate"], 1),
        "ms_cpu_per_request": groups,
        "ms_cpu_per_request_total": round(sum(groups.values()), 3),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    log(f"{name}: {figure['requests_per_s']} req/s, ms CPU per request {groups}")
    return figure


def main() -> None:
    os.environ["API_THROTTLE_USER"] = os.environ["API_THROTTLE_ANON"] = "100000000/min"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("DATABASE_REPLICA_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    setup_django()
    from bench import api

    token, writers = api._prepare()
    port = api._free_port()
    server = api._start_server(port)
    try:
        figures = [
            measure("baseline", lambda: api._run(port, None, api.bare_view, SECONDS), SECONDS)
        ]
        for name, request in api.endpoints(writers).items():
            figures.append(
                measure(
                    name,
                    lambda request=request: api._run(port, token, request, SECONDS),
                    SECONDS,
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    for item in figures:
        item["machine"] = machine()
    emit("api_cpu", figures)


if __name__ == "__main__":
    main()
