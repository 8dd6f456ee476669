"""Replay of one deal of 10,000 events, beside a raw psycopg fetch of the same rows.

Run against PostgreSQL: `scripts/with-services.sh .venv/bin/python -m bench.replay`.
Prints one JSON object per figure: its name, the median seconds over the runs, and `ratio`,
the baseline's median divided by the figure's (1.0: as fast as the raw fetch; higher is faster).

- `raw_fetch` (baseline): psycopg 3, the same columns of the same rows into dicts.
- `current_state`: `replay.state(deal)`: read through the event store, decode, upcast, fold.
- `as_of_state`: the same with `as_of` in the middle of the deal's history.
- `read_stream` and `replay_events` split `current_state` into its two halves.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
BATCH = 500


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("bench.replay needs DATABASE_URL pointing at PostgreSQL")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    from tracker.deals.replay import replay_events, state
    from tracker.eventstore.store import read_stream

    deal_id = _load(EVENTS)
    middle = date(2020, 1, 1) + timedelta(days=(EVENTS // 2) % 2000)
    _check(deal_id, middle)

    import psycopg
    from psycopg.rows import dict_row

    raw = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    sql = (
        "SELECT position, stream_id, version, event_id, type, schema_version, data, occurred, "
        "source, actor, recorded_at, prev_hash, hash FROM eventstore_event "
        "WHERE stream_id = %s ORDER BY version"
    )

    def raw_fetch() -> Any:
        with raw.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, [deal_id])
            return cursor.fetchall()

    events = read_stream(deal_id)
    figures: list[tuple[str, Callable[[], Any]]] = [
        ("raw_fetch", raw_fetch),
        ("current_state", lambda: state(deal_id)),
        ("as_of_state", lambda: state(deal_id, as_of=middle)),
        ("read_stream", lambda: read_stream(deal_id)),
        ("replay_events", lambda: replay_events(events)),
    ]
    medians = {name: _median(run) for name, run in figures}
    baseline = medians["raw_fetch"]
    for name, seconds in medians.items():
        print(
            json.dumps(
                {
                    "name": name,
                    "events": EVENTS,
                    "runs": RUNS,
                    "median_seconds": round(seconds, 6),
                    "ratio": round(baseline / seconds, 3),
                }
            )
        )
    raw.close()


def _median(run: Callable[[], Any]) -> float:
    run()  # warm caches and connections alike for every figure
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
    from tracker.deals.replay import state

    current = state(deal_id)
    if current.state is None or current.version != EVENTS:
        sys.exit(f"the benchmark deal replayed to version {current.version}, not {EVENTS}")
    if state(deal_id, as_of=middle).state is None:
        sys.exit("the benchmark deal has no state in the middle of its history")


if __name__ == "__main__":
    main()
