"""Helpers shared by the benchmarks in `bench/`: set-up, timing, percentiles and JSON output.

A benchmark script calls `setup_django()` first (it migrates the database named by DATABASE_URL
itself), measures with `time.perf_counter()`, summarises with `median` and `latency_ms`, and ends
with `emit(name, figures)`, which prints the figures as JSON and writes `bench/results/<name>.json`.
Each figure is one object from `figure(...)`: the rate and latency measured through the project's
code beside a raw baseline measured in the same run, and their ratio.

Run a benchmark against a private, durable PostgreSQL with
`SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.<name>`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def setup_django(*, migrate: bool = True, require_postgres: bool = True) -> None:
    """Configure Django from the environment (config.settings) and migrate the database.

    Exits with a message when `require_postgres` and DATABASE_URL does not name PostgreSQL:
    figures from the embedded SQLite database say nothing about production.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Request logging and debug cursors would be part of what is timed.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if require_postgres and connection.vendor != "postgresql":
        sys.exit(
            "This benchmark needs PostgreSQL: run it with "
            "`SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.<name>`"
        )
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)


def database_url() -> str:
    """DATABASE_URL, usable as a libpq conninfo by `psycopg.connect` for raw baselines."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must name a PostgreSQL database")
    return url


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 < q <= 100) by nearest rank: always one of the measured values."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
    }


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def figure(
    name: str,
    *,
    clients: int,
    events_per_s: float,
    p50_ms: float | None,
    p99_ms: float | None,
    baseline_events_per_s: float,
    ratio: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result object. `ratio` defaults to events_per_s / baseline_events_per_s."""
    if ratio is None:
        ratio = events_per_s / baseline_events_per_s
    return {
        "figure": name,
        "clients": clients,
        "events_per_s": round(events_per_s, 1),
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "baseline_events_per_s": round(baseline_events_per_s, 1),
        "ratio": round(ratio, 3),
        **extra,
    }


def machine() -> dict[str, Any]:
    """Where the figures came from: cores, CPU model, Python."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def emit(name: str, figures: list[dict[str, Any]]) -> Path:
    """Print the figures as a JSON array, one object per line, and write them to results/."""
    text = "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in figures) + "\n]\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(text, encoding="utf-8")
    return path


def log(message: str) -> None:
    """Progress goes to stderr so that stdout stays pure JSON."""
    print(message, file=sys.stderr, flush=True)
