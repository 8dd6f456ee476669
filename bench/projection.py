"""Projection throughput with 1 and 2 Celery worker processes, and commit-to-visible latency.

Run against PostgreSQL and Redis: `scripts/with-services.sh .venv/bin/python -m bench.projection`
(`make bench` does). The baseline, measured in the same run, is the same fold done in-process:
every event read through the store's feed (`read_all`, FEED_PAGE at a time), grouped by deal and
replayed with the same reducer, with nothing written. Workers add what a real deployment pays:
the broker, a task per deal, locking the read-model row and writing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.common import emit, figure, latency_ms, log, median, setup_django

ROOT = Path(__file__).resolve().parents[1]
DEALS = int(os.environ.get("BENCH_DEALS", "200"))
EVENTS_PER_DEAL = int(os.environ.get("BENCH_EVENTS_PER_DEAL", "10"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "100"))
ROUNDS = 3
FEED_PAGE = 10_000


def start_workers(count: int) -> list[subprocess.Popen]:
    workers = []
    for n in range(count):
        log_path = Path(f"/tmp/bench-projection-worker-{n}.log")
        log_path.write_text("")
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    f"--hostname=bench{n}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=os.environ.copy(),
                stdout=log_path.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text():
            if time.monotonic() > deadline:
                sys.exit(f"worker did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(30)


def make_deals() -> int:
    from tracker.deals import services
    from tracker.deals.models import Organisation

    buyer = Organisation.objects.create(name="Bench buyer", kind="government", country="TR")
    maker = Organisation.objects.create(name="Bench maker", kind="company", country="GB")
    source = {"title": "Bench", "publisher": "unknown"}
    for n in range(DEALS):
        opened = services.open_deal(
            title=f"Bench deal {n}",
            kind="contract",
            summary="",
            parties=[
                {"organisation": str(buyer.id), "role": "buyer"},
                {"organisation": str(maker.id), "role": "supplier"},
            ],
            occurred={"date": "2025-01-01", "precision": "year"},
            source=source,
            actor="bench",
        )
        services.record_events(
            deal_id=opened.stream_id,
            events=[
                services.ProposedEvent(
                    "NoteAdded",
                    {"text": f"note {i}"},
                    {"date": f"2025-{1 + i % 12:02d}-01", "precision": "month"},
                    source,
                )
                for i in range(EVENTS_PER_DEAL - 1)
            ],
            expected_version=1,
            actor="bench",
        )
    return DEALS * EVENTS_PER_DEAL


def fold_in_process() -> float:
    """The baseline: every event read from the feed, the same replay per deal, nothing written."""
    from tracker.deals.replay import replay_events
    from tracker.eventstore.store import read_all

    started = time.perf_counter()
    streams = defaultdict(list)
    page = read_all(limit=FEED_PAGE)
    while page.events:
        # The feed keeps each stream's events in version order.
        for event in page.events:
            streams[event.stream_id].append(event)
        page = read_all(after=page.next, limit=FEED_PAGE)
    for events in streams.values():
        replay_events(events)
    return time.perf_counter() - started


def project_with_workers(count: int) -> float:
    from tracker.projections import projector
    from tracker.projections.tasks import sweep_projections

    projector.reset()
    workers = start_workers(count)
    try:
        started = time.perf_counter()
        sweep_projections.delay()
        while projector.projection_lag() > 0:
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        stop_workers(workers)


def commit_to_visible() -> list[float]:
    from tracker.deals import services
    from tracker.projections.models import DealState

    workers = start_workers(1)
    try:
        deal_ids = list(DealState.objects.values_list("deal_id", "version")[:LATENCY_SAMPLES])
        samples = []
        for deal_id, version in deal_ids:
            appended = services.record_event(
                deal_id=deal_id,
                event_type="NoteAdded",
                data={"text": "latency"},
                occurred={"date": "2025-06-01", "precision": "month"},
                source={"title": "Bench", "publisher": "unknown"},
                expected_version=version,
                actor="bench",
            )
            started = time.perf_counter()  # committed: record_event's transaction has ended
            while not DealState.objects.filter(
                deal_id=deal_id, version__gte=appended.version
            ).exists():
                time.sleep(0.001)
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        stop_workers(workers)


def main() -> None:
    os.environ.setdefault("CELERY_BROKER_URL", "")
    if not os.environ["CELERY_BROKER_URL"]:
        sys.exit("bench.projection needs CELERY_BROKER_URL (Redis): run it through make bench")
    setup_django()
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    log(f"making {DEALS} deals of {EVENTS_PER_DEAL} events")
    total = make_deals()
    baseline = [fold_in_process() for _ in range(ROUNDS)]
    base_rate = total / median(baseline)
    figures = []
    for count in (1, 2):
        times = [project_with_workers(count) for _ in range(ROUNDS)]
        log(f"{count} worker(s): {times}")
        figures.append(
            figure(
                "projection_throughput",
                clients=count,
                events_per_s=round(total / median(times), 1),
                p50_ms=None,
                p99_ms=None,
                baseline_events_per_s=round(base_rate, 1),
                deals=DEALS,
                events=total,
                rounds=ROUNDS,
            )
        )
    samples = commit_to_visible()
    figures.append(
        {
            "figure": "commit_to_visible",
            "clients": 1,
            **latency_ms(samples),
            "samples": len(samples),
            # What the same work costs in-process: one deal's events replayed, per deal.
            "baseline_ms_per_deal": round(median(baseline) / DEALS * 1000, 3),
        }
    )
    emit("projection", figures)


if __name__ == "__main__":
    main()
