"""Replay of one deal of 10,000 events, beside raw psycopg fetches and the eventsourcing library.

Run on a durable server:
`SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.replay`.
Prints one JSON object per figure (also written to bench/results/replay.json).

Baselines, each fetching the same columns of the same rows (`WHERE stream_id = %s ORDER BY
version`):
- `raw_binary`: as the store reads (`_fetch_typed`): a prepared statement, binary rows, JSON
  parsed by orjson, plain tuples;
- `raw_text`: text rows into dicts, the baseline of the figures before 2026-12.

Figures:
- `read_stream`: the event store's read of the stream (rows into `RecordedEvent`s);
- `current_state`: `replay.state(deal)`: read, decode, upcast, fold;
- `as_of_state`: the same with `as_of` in the middle of the deal's history;
- `replay_events`: the fold alone, on events already read;
- `timeline`: `replay.timeline(deal)`, the state after each of the 10,000 events, and
  `timeline_events`, the same on events already read; each beside `current_state`;
- `eventsourcing_rebuild`: the `eventsourcing` library's `repository.get(id)` of an aggregate
  holding the same 10,000 events (type, data and `occurred` of each), stored by its PostgreSQL
  recorder in its own database on the same server; its mutator keeps each event's type and
  data in a list, so the figure is the library's read, decode and event-object cost, with less
  domain work than our fold. Beside `current_state`.

The deal has events of every kind, dated so that most facts are reported late (each one 81 days
before the one recorded before it, wrapping around), with a retraction and a correction every 100
events. Each round runs every figure once, in an order rotated from round to round; a figure's
`median_seconds` is the median over the rounds (`median`, `rounds`), `events_per_s` is
`events / median_seconds`, and each ratio is the other figure's median seconds divided by this
one's (above 1.0: faster than it), so it follows from the medians in the same JSON.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import database_url, emit, log, machine, median, setup_django

EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
BATCH = 500
PEER_DATABASE = "bench_eventsourcing_replay"
BASELINES = ("raw_binary", "raw_text")
COLUMNS = (
    "position, stream_id, version, event_id, type, schema_version, data, occurred, "
    "source, actor, recorded_at, prev_hash, hash"
)


class PeerDeal(Aggregate):
    """The peer's aggregate: the same events, kept as they come."""

    @event("Opened")
    def __init__(self, data: dict[str, Any], occurred: dict[str, Any] | None) -> None:
        self.facts: list[tuple[str, dict[str, Any]]] = [("DealOpened", data)]

    @event("Recorded")
    def record(self, kind: str, data: dict[str, Any], occurred: dict[str, Any] | None) -> None:
        self.facts.append((kind, data))


class PeerDeals(Application[UUID]):
    pass


def main() -> None:
    setup_django()
    import orjson
    import psycopg
    from psycopg.rows import dict_row
    from psycopg.types.json import set_json_loads

    from tracker.deals.replay import replay_events, state, timeline, timeline_events
    from tracker.eventstore.store import read_stream

    deal_id = _load(EVENTS)
    middle = date(2020, 1, 1) + timedelta(days=(EVENTS // 2) % 2000)
    _check(deal_id, middle)
    events = read_stream(deal_id)
    peer, peer_id = _load_peer(events)

    sql = f"SELECT {COLUMNS} FROM eventstore_event WHERE stream_id = %s ORDER BY version"
    text = psycopg.connect(database_url(), autocommit=True, row_factory=dict_row)
    binary = psycopg.connect(database_url(), autocommit=True)
    set_json_loads(orjson.loads, binary)

    def raw_text() -> Any:
        with text.cursor() as cursor:
            cursor.execute(sql, [deal_id])
            return cursor.fetchall()

    def raw_binary() -> Any:
        with binary.cursor() as cursor:
            cursor.execute(sql, [deal_id], prepare=True, binary=True)
            return cursor.fetchall()

    systems: dict[str, Callable[[], Any]] = {
        "raw_binary": raw_binary,
        "raw_text": raw_text,
        "read_stream": lambda: read_stream(deal_id),
        "current_state": lambda: state(deal_id),
        "as_of_state": lambda: state(deal_id, as_of=middle),
        "replay_events": lambda: replay_events(events),
        "timeline": lambda: timeline(deal_id),
        "timeline_events": lambda: timeline_events(events),
        "eventsourcing_rebuild": lambda: peer.repository.get(peer_id),
    }
    seconds = _rounds(systems)
    text.close()
    binary.close()
    figures = [
        _figure(name, seconds, _compared(name), _shape(events) if "timeline" in name else {})
        for name in systems
    ]
    emit("replay", figures)


def _compared(name: str) -> tuple[str, ...]:
    """The figures a figure is compared with: the baselines, and our replay for the timeline
    and the peer."""
    if name in BASELINES:
        return ()
    if name.startswith(("timeline", "eventsourcing")):
        return (*BASELINES, "current_state")
    return BASELINES


def _rounds(systems: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """RUNS rounds of every system once, the order rotated each round, after one warm-up each."""
    names = list(systems)
    for name in names:
        systems[name]()  # warm caches, connections and prepared statements alike
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for index in range(RUNS):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            systems[name]()
            seconds[name].append(time.perf_counter() - started)
        log(f"round {index + 1}/{RUNS}: " + ", ".join(f"{n} {seconds[n][-1]:.3f}" for n in names))
    return seconds


def _figure(
    name: str,
    seconds: dict[str, list[float]],
    compared: tuple[str, ...],
    extra: dict[str, Any],
) -> dict[str, Any]:
    mine = median(seconds[name])
    return {
        "figure": name,
        "events": EVENTS,
        "median_seconds": round(mine, 6),
        "events_per_s": round(EVENTS / mine, 1),
        "median": f"of {RUNS} rounds",
        "rounds": RUNS,
        # The first comparison (the fairer baseline) gives `ratio`; all are in `compared_with`.
        **(
            {"ratio": round(median(seconds[compared[0]]) / mine, 3), "baseline": compared[0]}
            if compared
            else {}
        ),
        "compared_with": {
            other: {
                "median_seconds": round(median(seconds[other]), 6),
                "ratio": round(median(seconds[other]) / mine, 3),
            }
            for other in compared
        },
        **extra,
    }


def _shape(events: list[Any]) -> dict[str, Any]:
    """How late the deal's facts are: those recorded after a fact they fold before."""
    from tracker.deals.events import META_TYPES
    from tracker.deals.replay import fold_key

    late = 0
    latest = None
    for recorded in events:
        if recorded.type in META_TYPES:
            continue
        key = fold_key(recorded)
        if latest is not None and key < latest:
            late += 1
        latest = key if latest is None else max(latest, key)
    return {
        "late_facts": late,
        "retractions": sum(e.type == "FactRetracted" for e in events),
        "corrections": sum(e.type == "FactCorrected" for e in events),
    }


def _peer_env() -> dict[str, str]:
    url = urlsplit(database_url())
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PEER_DATABASE,
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
    }


def _load_peer(events: list[Any]) -> tuple[PeerDeals, UUID]:
    """The same events as one eventsourcing aggregate, saved BATCH at a time."""
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PEER_DATABASE}")
        conn.execute(f"CREATE DATABASE {PEER_DATABASE}")
    app = PeerDeals(env=_peer_env())
    first, *rest = events
    aggregate = PeerDeal(first.data, first.occurred)
    for index, recorded in enumerate(rest, start=1):
        aggregate.record(recorded.type, recorded.data, recorded.occurred)
        if index % BATCH == 0:
            app.save(aggregate)
    app.save(aggregate)
    rebuilt = app.repository.get(aggregate.id)
    if len(rebuilt.facts) != len(events):
        sys.exit(f"the peer's aggregate rebuilt {len(rebuilt.facts)} events, not {len(events)}")
    log(f"machine: {machine()}; peer aggregate {aggregate.id} at version {rebuilt.version}")
    return app, aggregate.id


def _load(count: int) -> UUID:
    """A deal of `count` events of every kind, some out of order, retracted or corrected."""
    from tracker.deals.events import parse_data
    from tracker.eventstore.store import NewEvent, append

    deal_id = uuid4()
    orgs = [str(uuid4()) for _ in range(6)]
    source = {"title": "Benchmark", "publisher": "unknown", "url": None, "published_on": None}
    recorded: list[UUID] = []
    pending: list[NewEvent] = []
    version = 0

    def add(kind: str, data: dict[str, Any], day: int) -> None:
        when = date(2020, 1, 1) + timedelta(days=day % 2000)
        body = parse_data(kind, data).to_json()
        event = NewEvent(kind, body, {"date": when.isoformat(), "precision": "day"}, source)
        pending.append(event)
        recorded.append(event.event_id)

    add(
        "DealOpened",
        {
            "title": "Benchmark deal",
            "kind": "other",
            "summary": "",
            "parties": [{"organisation": o, "role": "partner"} for o in orgs[:2]],
        },
        0,
    )
    money = {"amount": "1000000", "currency": "EUR"}
    for index in range(1, count):
        # Business dates wander, so the fold has to sort facts reported late.
        day = (index * 7919) % 2000
        slot = index % 10
        if slot == 0 and index % 100 == 0:
            # index - 3 is an MoU (slot 7): a fact that may be retracted.
            add("FactRetracted", {"event_id": str(recorded[index - 3]), "reason": "wrong"}, day)
        elif slot == 0 and index % 50 == 0:
            # index - 1 is always a note (slot 9), so the correction is valid for its type.
            add(
                "FactCorrected",
                {"event_id": str(recorded[index - 1]), "data": {"text": "fixed"}},
                day,
            )
        elif slot in (0, 1, 2):
            add("NoteAdded", {"text": f"note {index}"}, day)
        elif slot == 3:
            add("QuoteRecorded", {"speaker": "Speaker", "text": f"quote {index}"}, day)
        elif slot == 4:
            c = {
                "buyer": orgs[0],
                "supplier": orgs[1],
                "item": "UAV",
                "quantity": 2,
                "value": money,
            }
            add("ContractAwarded", c, day)
        elif slot == 5:
            earmark = {"purpose": "x", "amount": {"amount": "10", "currency": "EUR"}}
            b = {"authority": orgs[2], "purpose": "p", "amount": money, "earmarks": [earmark]}
            add("BudgetAllocated", b, day)
        elif slot == 6:
            add("SupportAgreed", {"provider": orgs[0], "recipient": orgs[1], "programme": "K"}, day)
        elif slot == 7:
            add("MouSigned", {"parties": orgs[:2], "scope": "s"}, day)
        elif slot == 8:
            shares = [{"organisation": o, "percent": "50"} for o in orgs[:2]]
            jv = {"venture": orgs[3], "shares": shares, "headquarters_country": "IT"}
            add("JointVentureFormed", jv, day)
        else:
            add("NoteAdded", {"text": f"note {index}"}, day)
        if len(pending) == BATCH:
            version = append(deal_id, pending, version, actor="bench").version
            pending.clear()
    if pending:
        version = append(deal_id, pending, version, actor="bench").version
    return deal_id


def _check(deal_id: UUID, middle: date) -> None:
    from tracker.deals.replay import state, timeline

    current = state(deal_id)
    if current.state is None or current.version != EVENTS:
        sys.exit(f"the benchmark deal replayed to version {current.version}, not {EVENTS}")
    if state(deal_id, as_of=middle).state is None:
        sys.exit("the benchmark deal has no state in the middle of its history")
    if timeline(deal_id)[-1].state_after != current.state:
        sys.exit("the benchmark deal's timeline ends elsewhere than its replay")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
