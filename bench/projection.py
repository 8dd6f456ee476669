"""Projection throughput with 1 and 2 Celery worker processes, and commit-to-visible latency.

Run against PostgreSQL and Redis: `scripts/with-services.sh .venv/bin/python -m bench.projection`
(`make bench` does). The baseline, measured in the same run, is the same fold done in-process:
every event read through the store's feed (`read_all`, FEED_PAGE at a time), grouped by deal and
replayed with the same reducer, with nothing written. Workers add what a real deployment pays:
the broker, the tasks, locking the read-model rows and writing them. The sweep starts the
catching up, as after a restore or a broker outage: it sends `project_behind` tasks, each of
which projects batches of deals until none is left.

Commit to visible: 1 and then 8 writer processes append notes to their own deals, each timing
from its commit until the read model shows the note, with one worker projecting.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.common import emit, figure, latency_ms, log, median, setup_django

ROOT = Path(__file__).resolve().parents[1]
DEALS = int(os.environ.get("BENCH_DEALS", "1000"))
EVENTS_PER_DEAL = int(os.environ.get("BENCH_EVENTS_PER_DEAL", "10"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "100"))
"""Appends timed per writer."""
POLL_S = 0.002
LAG_POLL_S = 0.01
"""The lag query reads every stream: polled less often, so it takes little from the workers."""
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
    """The baseline: every event read from the feed, the same replay per deal, nothing written.

    Timed with the garbage collector paused: holding every event at once, the fold otherwise
    spends up to half its time in collections (25,000-34,000 events/s against 57,000-69,000
    measured side by side), and a slower baseline would flatter the workers' ratio.
    """
    from tracker.deals.replay import replay_events
    from tracker.eventstore.store import read_all

    gc.collect()
    gc.disable()
    try:
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
    finally:
        gc.enable()


def project_with_workers(count: int) -> float:
    from tracker.projections import projector
    from tracker.projections.tasks import sweep_projections

    workers = start_workers(count)
    try:
        # Once the workers are up and idle, so that every event is projected inside the timing.
        purge_queue()
        projector.reset()
        started = time.perf_counter()
        sweep_projections.delay()
        while projector.projection_lag() > 0:
            time.sleep(LAG_POLL_S)
        return time.perf_counter() - started
    finally:
        stop_workers(workers)
        purge_queue()  # the sweep's spare `project_behind` tasks, if a worker left some


def purge_queue() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


def commit_to_visible(writers: int) -> list[float]:
    """`writers` processes at once, each appending a note to its own deals one after another
    and timing from its commit until the deal's read model shows it (polled every POLL_S)."""
    from django.db import connections

    from tracker.projections.models import DealState

    deals = list(DealState.objects.values_list("deal_id", "version")[: LATENCY_SAMPLES * writers])
    shares = [deals[n::writers] for n in range(writers)]
    workers = start_workers(1)
    connections.close_all()  # each writer process opens its own connection
    try:
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(writers)
        with context.Pool(writers, initializer=_writer_ready, initargs=(barrier,)) as pool:
            per_writer = pool.map(_append_and_wait, shares)
        return [sample for samples in per_writer for sample in samples]
    finally:
        stop_workers(workers)


_barrier = None


def _writer_ready(barrier: object) -> None:
    global _barrier
    _barrier = barrier


def _visible(deal_id: object, version: int) -> bool:
    """One plain query: 8 writers polling through the ORM would spend more CPU than the worker
    they wait for, on a machine of 2 cores."""
    from django.db import connection

    from tracker.projections.models import DealState

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {DealState._meta.db_table} WHERE deal_id = %s AND version >= %s",
            [deal_id, version],
        )
        return cursor.fetchone() is not None


def _append_and_wait(deals: list[tuple[object, int]]) -> list[float]:
    from django.db import connections

    from tracker.deals import services

    connections.close_all()
    _barrier.wait(60)  # the writers start together, so their appends overlap
    samples = []
    for deal_id, version in deals:
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
        while not _visible(deal_id, appended.version):
            if time.perf_counter() - started > 60:
                raise TimeoutError(f"deal {deal_id} not projected in 60 s")
            time.sleep(POLL_S)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    os.environ.setdefault("CELERY_BROKER_URL", "")
    if not os.environ["CELERY_BROKER_URL"]:
        sys.exit("bench.projection needs CELERY_BROKER_URL (Redis): run it through make bench")
    setup_django()
    purge_queue()
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
    for writers in (1, 8):
        samples = commit_to_visible(writers)
        log(f"commit to visible, {writers} writer(s): {latency_ms(samples)}")
        figures.append(
            {
                "figure": "commit_to_visible",
                "clients": writers,
                **latency_ms(samples),
                "samples": len(samples),
                "poll_ms": POLL_S * 1000,
                "workers": 1,
                # What the same work costs in-process: one deal's events replayed, per deal.
                "baseline_ms_per_deal": round(median(baseline) / DEALS * 1000, 3),
            }
        )
    emit("projection", figures)


if __name__ == "__main__":
    main()
