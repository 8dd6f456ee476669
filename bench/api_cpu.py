"""Where the CPU of one API request goes: per process group, under the load of bench/api.py.

The API's ratios in bench/api.py are bound by CPU (2 cores shared by the clients, gunicorn,
PostgreSQL and Redis). This script runs the same gunicorn (bench.settings, 3 sync workers) and
the same 8 client threads for SECONDS per endpoint, and reads each process's CPU time from
/proc before and after: the CPU seconds of gunicorn's processes, of every PostgreSQL process,
of Redis, and of this (the client) process, divided by the requests served. gunicorn's are
split into its request threads (`gunicorn`) and the threads that wake the feed's followers and
dispatch projections after each commit (`gunicorn_threads`), and PostgreSQL's into the backends
those wake-ups are sent on (`postgresql_notify`) and the rest (`postgresql`). One figure per
request of bench/api.py (its endpoints and floors) and the bare view, in
bench/results/api_cpu.json: `ms_cpu_per_request` by group and in total. One measurement each,
so read the groups against each other, not to the last digit.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.api_cpu`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench import api
from bench.common import emit, log, machine, setup_django

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_thread() -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds (user + system) by (process, thread) for gunicorn's threads, by (process, 0)
    for every other live process, with what the process is: `client` (this one), `gunicorn`,
    `postgres`, `redis` or `other`."""
    found: dict[tuple[int, int], tuple[str, float]] = {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
                command = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace")
            group = next(
                (name for name in ("gunicorn", "postgres", "redis") if name in command), "other"
            )
            if pid == os.getpid():
                group = "client"
            if group != "gunicorn":
                # A process's own figure counts the threads that have ended, as the clients' do.
                found[pid, 0] = (group, _seconds(f"/proc/{pid}/stat"))
                continue
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                found[pid, tid] = (group, _seconds(f"/proc/{pid}/task/{tid}/stat"))
        except OSError:
            continue
    return found


def _seconds(path: str) -> float:
    with open(path, encoding="utf-8") as stat_file:
        fields = stat_file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def by_group(
    before: dict[tuple[int, int], tuple[str, float]],
    after: dict[tuple[int, int], tuple[str, float]],
    notifying: frozenset[int],
) -> dict[str, float]:
    """The CPU seconds spent between the two readings, summed by group.

    gunicorn's are split by thread: `gunicorn` is its processes' main threads, which serve the
    requests, and `gunicorn_threads` their other threads, which wake the feed's followers and
    dispatch projections after each commit. PostgreSQL's backends in `notifying` (the
    connections those wake-ups are sent on) are `postgresql_notify`, the rest `postgresql`.
    """
    spent: dict[str, float] = {}
    for (pid, tid), (group, seconds) in after.items():
        if group == "gunicorn" and tid != pid:
            group = "gunicorn_threads"
        elif group == "postgres":
            group = "postgresql_notify" if pid in notifying else "postgresql"
        spent[group] = spent.get(group, 0.0) + seconds - before.get((pid, tid), (group, 0.0))[1]
    return spent


def notifying_backends() -> frozenset[int]:
    """The PostgreSQL backends whose last statement sent the feed's notification."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND query LIKE 'SELECT pg_notify(%%'"
        )
        return frozenset(pid for (pid,) in cursor.fetchall())


def measure(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before = cpu_by_thread()
    result = run()
    after = cpu_by_thread()
    requests = len(result["latencies"])
    spent = by_group(before, after, notifying_backends())
    groups = {
        group: round(spent[group] / requests * 1000, 3)
        for group in sorted(spent)
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
    api.unthrottled()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    setup_django()

    token, writers = api._prepare()
    port = api._free_port()
    server = api._start_server(port)
    try:
        figures = [measure("baseline", lambda: api._run(port, None, api.bare_view, SECONDS))]
        for name, request in api.endpoints(writers).items():
            figures.append(
                measure(name, lambda request=request: api._run(port, token, request, SECONDS))
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    for item in figures:
        item["machine"] = machine()
    emit("api_cpu", figures)


if __name__ == "__main__":
    main()
