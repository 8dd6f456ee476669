"""A 100-event batch through the service beside the event store's own 100-event append.

Run against a durable PostgreSQL:
`SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.batch`.

- `store_append_100` (baseline): `eventstore.append` of 100 NoteAdded events in one call, at the
  stream's version: one round trip, the hash chain, the durable commit.
- `service_batch_100`: `deals.services.record_events` of the same 100 notes: parse each against
  the catalogue, read the stream, replay it once, fold the notes on one by one checking the
  rules, check organisations, then the same `append`. On a deal that already holds `HISTORY`
  events, so that a replay per event (the old write path) would show: the ratio is the
  service's overhead, and it should not fall as the deal grows.

Each round appends to a fresh deal of each kind, rotating which goes first; figures are the
median over `ROUNDS` rounds, in events per second.
"""

from __future__ import annotations

import os
import time
from uuid import UUID, uuid4

from .common import emit, figure, latency_ms, log, machine, median, setup_django

BATCH = 100
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
HISTORY = int(os.environ.get("BENCH_HISTORY", "200"))
SOURCE = {"title": "Bench report", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-01-01", "precision": "year"}


def main() -> None:
    setup_django()
    from tracker.deals import services
    from tracker.deals.models import Organisation
    from tracker.eventstore.store import NewEvent, append

    suffix = uuid4().hex[:6]
    buyer = Organisation.objects.create(name=f"Buyer {suffix}", kind="government", country="TR")
    maker = Organisation.objects.create(name=f"Maker {suffix}", kind="company", country="GB")

    def notes(first: int) -> list[services.ProposedEvent]:
        return [
            services.ProposedEvent("NoteAdded", {"text": f"note {first + n}"}, OCCURRED, SOURCE)
            for n in range(BATCH)
        ]

    def new_deal() -> tuple[UUID, int]:
        opened = services.open_deal(
            title="Bench deal",
            kind="contract",
            summary="",
            parties=[
                {"organisation": str(buyer.id), "role": "buyer"},
                {"organisation": str(maker.id), "role": "supplier"},
            ],
            occurred=OCCURRED,
            source=SOURCE,
            actor="bench",
        )
        version = opened.version
        for start in range(0, HISTORY, BATCH):
            version = services.record_events(
                deal_id=opened.stream_id,
                events=notes(start)[: HISTORY - start],
                expected_version=version,
                actor="bench",
            ).version
        return opened.stream_id, version

    def store_append() -> float:
        deal, version = new_deal()
        events = [
            NewEvent(type="NoteAdded", data={"text": f"note {n}"}, occurred=OCCURRED, source=SOURCE)
            for n in range(BATCH)
        ]
        started = time.perf_counter()
        append(deal, events, version, actor="bench")
        return time.perf_counter() - started

    def service_batch() -> float:
        deal, version = new_deal()
        batch = notes(version)
        started = time.perf_counter()
        services.record_events(deal_id=deal, events=batch, expected_version=version, actor="bench")
        return time.perf_counter() - started

    runs: dict[str, list[float]] = {"store_append_100": [], "service_batch_100": []}
    order = list(runs)
    measure = {"store_append_100": store_append, "service_batch_100": service_batch}
    for round_number in range(ROUNDS):
        for name in order[round_number % 2 :] + order[: round_number % 2]:
            runs[name].append(measure[name]())
        log(f"round {round_number + 1}/{ROUNDS}")

    baseline = BATCH / median(runs["store_append_100"])
    figures = [
        figure(
            name,
            clients=1,
            events_per_s=BATCH / median(seconds),
            baseline_events_per_s=baseline,
            batch=BATCH,
            deal_history=HISTORY,
            rounds=ROUNDS,
            **latency_ms(seconds),
        )
        for name, seconds in runs.items()
    ]
    figures.append({"machine": machine()})
    emit("batch", figures)


if __name__ == "__main__":
    main()
