"""Import throughput of SIPRI's trade register, beside PostgreSQL's COPY of the same rows.

A generated trade-register CSV (the current export's preamble and header, CRLF, marked as
invented on its second line) of DEALS deals of YEARS delivery-year rows each (2,000 x 10 =
20,000 rows), supplier and recipient among 36 names, all mapped to organisations by
`registers.names.load_names` before the import. Figures (JSON on stdout and in
bench/results/import.json, one object per figure):

- `first_edition`: `import_register` of the file into an empty store: per deal a `DealOpened`, a
  `ContractAwarded` and one `DeliveryRecorded` per row, 12 facts per deal at the defaults.
- `second_edition`: the next edition of the same deals, with 5 % of the first edition's rows
  changed: 90 % of those keep their year with `Numbers delivered` one more and `TIV delivery
  values` to match (a `FactCorrected` each), 5 % disappear (a `FactRetracted` each, one per
  deal) and as many new rows appear, a year after a deal's last delivery (a `DeliveryRecorded`
  each): at the defaults 900 + 50 + 50 rows, so the file again has 20,000 rows.
- `second_edition_again`: the same second edition imported once more: nothing is appended, so
  this is the cost of reading the file and comparing every deal with its stream.

Each figure is beside PostgreSQL `COPY … FROM STDIN (FORMAT csv, HEADER)` of the same file's bytes
(header and rows, the preamble cut off) into a bare table of the 17 columns typed as the reader
types them (int id, years and counts, text names, bool flags, numeric TIV; no key, no index), on
the same database in the same round, through psycopg 3's `cursor.copy()`, committed once. The
server runs durable (fsync and synchronous_commit on), so COPY pays one durable commit and the
importer one per 200 deals (`importer._DEALS_PER_TRANSACTION`). `events_per_s` is the
importer's facts (events appended) per second; `ratio` is its median rows per second over
COPY's median rows per second for the same file (COPY's rate is `baseline_events_per_s`, in
rows). The first edition has a second baseline in `baselines`, `copy_per_deal`: the same rows,
one COPY and one durable commit per deal, the unit the importer keeps atomic; it shows what a
commit per deal alone would cost (the importer committed per deal until it grouped 200 deals a
transaction).

Every round starts from a database created afresh (`CREATE DATABASE … TEMPLATE` of the migrated
database, the names already mapped): the event store refuses to delete events, an import
refuses an edition older than one already imported, and a fresh database gives each round the
same empty tables and indexes. Each round's SIPRI ids are a range of their own too, so that the
process's stream cache (`deals.cache.streams`) holds nothing of a round's deals when it starts.
In each round the importer and the baselines take turns, in an order rotated from round to
round; a `CHECKPOINT` before every measurement leaves no dirty pages of the previous one to flush
during it.

With a broker configured (`with-services.sh` sets one), each committed deal is published to Redis
by the projections' on-commit dispatch, as in production; no Celery worker runs, so no
projection competes with the import.

Then `first_edition_floor`: what reading the file with `csv`, checking each of its facts
against the catalogue and encoding each as canonical JSON cost alone, beside COPY's time, and
the best ratio an importer doing only that could reach (`first_edition_floor`'s docstring).

Last, one more first-edition import in a fresh database runs under cProfile; the top 15 by
cumulative time go to stderr and, with the time of the main parts, into the JSON.

`BENCH_ROUNDS` (3), `BENCH_IMPORT_DEALS` (2000), `BENCH_IMPORT_YEARS` (10) shrink a run and
`BENCH_IMPORT_PROFILE=0` skips the profile.

Run: `SERVICES_MODE=--durable scripts/with-services.sh .venv/bin/python -m bench.import`.
"""

from __future__ import annotations

import cProfile
import csv
import gc
import io
import os
import pstats
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from bench.common import database_url, emit, figure, log, machine, median, setup_django

# BENCH_* shrink a run while developing; figures to quote come from the defaults.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DEALS = int(os.environ.get("BENCH_IMPORT_DEALS", "2000"))
YEARS = int(os.environ.get("BENCH_IMPORT_YEARS", "10"))
PROFILE = os.environ.get("BENCH_IMPORT_PROFILE", "1") != "0"
TARGET_RATIO = 0.15
"""Issue 15: the first edition at 0.15x of COPY's rows per second at least."""

CHANGED_SHARE = Decimal("0.05")
"""Of the first edition's rows, the share the second edition changes, drops or adds."""
EDITIONS = ("11 March 2024", "10 March 2025")
ACTOR = "bench"
ROUND_DATABASE = "bench_import_{}"
COPY_TABLE = "bench_import_copy_{}"
HEADER = (
    "SIPRI AT Database ID,Supplier,Recipient,Designation,Description,Armament category,"
    "Order date,Order date is estimate,Numbers delivered,Numbers delivered is estimate,"
    "Delivery year,Delivery year is estimate,Status,SIPRI estimate,TIV deal unit,"
    "TIV delivery values,Local production"
)
COPY_COLUMNS = (
    "deal_id integer, supplier text, recipient text, designation text, description text, "
    "category text, order_year integer, order_year_estimate boolean, delivered integer, "
    "delivered_estimate boolean, delivery_year integer, delivery_year_estimate boolean, "
    "status text, sipri_estimate boolean, tiv_unit numeric, tiv_delivered numeric, "
    "local_production boolean"
)
# (SIPRI's name, ISO 3166-1 alpha-2): the first twelve also supply.
COUNTRIES = (
    ("United States", "US"),
    ("Russia", "RU"),
    ("France", "FR"),
    ("China", "CN"),
    ("Germany", "DE"),
    ("Italy", "IT"),
    ("United Kingdom", "GB"),
    ("Spain", "ES"),
    ("Israel", "IL"),
    ("South Korea", "KR"),
    ("Turkiye", "TR"),
    ("Sweden", "SE"),
    ("India", "IN"),
    ("Saudi Arabia", "SA"),
    ("Qatar", "QA"),
    ("Ukraine", "UA"),
    ("Pakistan", "PK"),
    ("Japan", "JP"),
    ("Egypt", "EG"),
    ("Australia", "AU"),
    ("Poland", "PL"),
    ("Algeria", "DZ"),
    ("Netherlands", "NL"),
    ("Norway", "NO"),
    ("Greece", "GR"),
    ("Brazil", "BR"),
    ("Indonesia", "ID"),
    ("Viet Nam", "VN"),
    ("Singapore", "SG"),
    ("Canada", "CA"),
    ("Chile", "CL"),
    ("Morocco", "MA"),
    ("Nigeria", "NG"),
    ("Philippines", "PH"),
    ("Romania", "RO"),
    ("Kazakhstan", "KZ"),
)
SUPPLIERS = 12
# (designation, description, armament category, TIV deal unit): invented.
WEAPONS = (
    ("Kestrel-2", "FGA aircraft", "Aircraft", "28"),
    ("Osprey 200", "UAV", "Aircraft", "1.5"),
    ("Skua T1", "trainer aircraft", "Aircraft", "6.5"),
    ("Gannet", "transport aircraft", "Aircraft", "18"),
    ("Tarn", "APC", "Armoured vehicles", "0.4"),
    ("Ridgeback", "IFV", "Armoured vehicles", "1.2"),
    ("Halcyon", "frigate", "Ships", "220"),
    ("Marlin", "patrol craft", "Ships", "12"),
    ("Corvid", "SAM system", "Air defence systems", "45"),
    ("Pike", "anti-ship missile", "Missiles", "0.8"),
    ("Lantern", "air search radar", "Sensors", "6"),
    ("Bastion", "self-propelled gun", "Artillery", "2.5"),
)


# --- the files --------------------------------------------------------------------------------


def names_csv() -> str:
    lines = ["register,name,organisation,kind,country"]
    lines += [f"SIPRI,{name},Government of {name},government,{code}" for name, code in COUNTRIES]
    return "\n".join(lines) + "\n"


def _deal_rows(deal_id: int, index: int) -> list[list[Any]]:
    """One deal's rows, the same for the same `index` in every round (its own seeded random)."""
    rng = random.Random(index)
    supplier = COUNTRIES[rng.randrange(SUPPLIERS)][0]
    recipient = rng.choice([name for name, _ in COUNTRIES if name != supplier])
    designation, description, category, unit = rng.choice(WEAPONS)
    # Every delivery, the one a second edition may add included, before the first edition.
    ordered = 2022 - YEARS - rng.randrange(8)
    order = [
        deal_id,
        supplier,
        recipient,
        designation,
        description,
        category,
        ordered,
        _flag(rng.random() < 0.2),
    ]
    tail = [
        "Second hand" if rng.random() < 0.1 else "New",
        _flag(rng.random() < 0.3),
        unit,
    ]
    local = _flag(rng.random() < 0.1)
    return [
        [*order, *_delivery(rng, ordered + year), *tail, None, local]
        for year in range(1, YEARS + 1)
    ]


def _delivery(rng: random.Random, year: int) -> list[Any]:
    delivered = rng.randint(1, 20)
    return [delivered, _flag(rng.random() < 0.3), year, _flag(rng.random() < 0.1)]


def _tiv(row: list[Any]) -> None:
    """TIV delivery values = numbers delivered * TIV deal unit."""
    row[15] = str(Decimal(row[8]) * Decimal(row[14]))


def _flag(value: bool) -> str:
    return "Yes" if value else "No"


def editions(first_id: int) -> tuple[bytes, bytes, dict[str, int]]:
    """The first and second editions of DEALS deals with SIPRI ids from `first_id` on, and the
    second edition's mix of changed rows."""
    deals = [_deal_rows(first_id + index, index) for index in range(DEALS)]
    for rows in deals:
        for row in rows:
            _tiv(row)
    first = _csv(deals, EDITIONS[0])

    rng = random.Random(15)
    total = DEALS * YEARS
    changed = int(total * CHANGED_SHARE)
    moved = changed // 20  # dropped, and as many added
    corrected = changed - 2 * moved
    dropped_deals = rng.sample(range(DEALS), moved)
    dropped = {(deal, rng.randrange(YEARS)) for deal in dropped_deals}
    kept = [(deal, year) for deal in range(DEALS) for year in range(YEARS)]
    kept = [pair for pair in kept if pair not in dropped]
    second = [[list(row) for row in rows] for rows in deals]
    for deal, year in rng.sample(kept, corrected):
        row = second[deal][year]
        row[8] += 1
        _tiv(row)
    for deal in rng.sample(range(DEALS), moved):
        row = list(second[deal][-1])
        row[8:12] = _delivery(rng, row[10] + 1)
        _tiv(row)
        second[deal].append(row)
    for deal, year in sorted(dropped, reverse=True):
        del second[deal][year]
    mix = {"corrected": corrected, "dropped": moved, "added": moved}
    return first, _csv(second, EDITIONS[1]), mix


def _csv(deals: list[list[list[Any]]], generated: str) -> bytes:
    """A trade-register CSV in the current export's shape: a preamble, the header, CRLF."""
    out = io.StringIO()
    preamble = [
        "SIPRI Arms Transfers Database",
        "INVENTED BENCHMARK DATA generated by bench/import.py: not SIPRI data",
        "Trade Registers",
        "Transfers of major weapons: Deals with deliveries or orders made for 1990 to 2023",
        "",
        "Suppliers: All",
        "Recipients: All",
        "Weapon types: All",
        "",
        f"Information generated: {generated}",
        "",
    ]
    out.write("".join(f'"{line}"\r\n' if line else "\r\n" for line in preamble))
    out.write(HEADER + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    for rows in deals:
        writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- databases --------------------------------------------------------------------------------


def _admin() -> psycopg.Connection[Any]:
    """A connection to the server's `postgres` database: CREATE DATABASE … TEMPLATE needs the
    template to have no other session."""
    return psycopg.connect(database_url(), dbname="postgres", autocommit=True)


def use_database(name: str) -> None:
    """Point Django's default connection at `name`, connected now, not during a measurement."""
    from django.db import connection, connections

    connections.close_all()
    connection.settings_dict["NAME"] = name
    connection.ensure_connection()


def fresh_database(name: str, template: str) -> None:
    from django.db import connections

    connections.close_all()
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    use_database(name)


def drop_database(name: str, template: str) -> None:
    use_database(template)
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def checkpoint() -> None:
    with _admin() as admin:
        admin.execute("CHECKPOINT")


def server() -> str:
    with _admin() as admin:
        version = admin.execute("SHOW server_version").fetchone()
        settings = admin.execute(
            "SELECT name, setting FROM pg_settings "
            "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
        ).fetchall()
    assert version is not None
    return f"PostgreSQL {version[0]} ({', '.join(f'{n}={v}' for n, v in settings)})"


# --- measurements -----------------------------------------------------------------------------


def measure_import(content: bytes, expected: dict[str, int]) -> dict[str, Any]:
    """One import, timed from the bytes to the report; fails loudly on any other outcome."""
    from tracker.deals.registers.importer import import_register

    checkpoint()
    started = time.perf_counter()
    report = import_register(content, actor=ACTOR, file_name="bench.csv")
    seconds = time.perf_counter() - started
    if report.refused or report.unresolved or report.appended != expected:
        raise RuntimeError(
            f"unexpected import: appended {report.appended}, expected {expected}; "
            f"refused {report.refused[:3]}; unresolved {report.unresolved}"
        )
    return {
        "seconds": seconds,
        "rows": report.rows,
        "events": report.events_appended,
        "deals_opened": report.deals_opened,
        "deals_changed": report.deals_changed,
        "deals_unchanged": report.deals_unchanged,
    }


def measure_copy(content: bytes, table: str, *, per_deal: bool = False) -> dict[str, Any]:
    """COPY of the file's header and rows into a new bare table: committed once, or with
    `per_deal` one COPY and one commit per deal (the unit the importer keeps atomic)."""
    from django.db import connection

    url = make_conninfo(database_url(), dbname=connection.settings_dict["NAME"])
    body = memoryview(content)[content.index(HEADER.encode()) :]
    chunks = _per_deal(bytes(body)) if per_deal else [body]
    sql = f"COPY {table} FROM STDIN (FORMAT csv, HEADER {str(not per_deal).lower()})"
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {table} ({COPY_COLUMNS})")
        conn.commit()
        checkpoint()
        started = time.perf_counter()
        for chunk in chunks:
            with conn.cursor() as cursor, cursor.copy(sql) as copy:
                copy.write(chunk)
            conn.commit()
        seconds = time.perf_counter() - started
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert count is not None
    return {"seconds": seconds, "rows": count[0], "commits": len(chunks)}


def _per_deal(body: bytes) -> list[bytes]:
    """The rows after the header line, one chunk per deal (rows of a deal are adjacent)."""
    chunks: dict[bytes, list[bytes]] = {}
    for line in body.split(b"\r\n")[1:]:
        if line:
            chunks.setdefault(line.split(b",", 1)[0], []).append(line + b"\r\n")
    return [b"".join(lines) for lines in chunks.values()]


def one_round(
    index: int, template: str, expected: dict[str, dict[str, int]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """A fresh database; each file through the importer and through COPY, taking turns."""
    first, second, _ = editions(_first_id(index))
    database = ROUND_DATABASE.format(index)
    fresh_database(database, template)
    stages: list[tuple[str, bytes, dict[str, int]]] = [
        ("first_edition", first, expected["first_edition"]),
        ("second_edition", second, expected["second_edition"]),
        ("second_edition_again", second, {}),
    ]
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, content, appended in stages:
        table = COPY_TABLE.format(stage)
        turns: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("copy", lambda c=content, t=table: measure_copy(c, t)),
            ("ours", lambda c=content, a=appended: measure_import(c, a)),
        ]
        if stage == "first_edition":
            turns.append(
                (
                    "copy_per_deal",
                    lambda c=content, t=table: measure_copy(c, t + "_per_deal", per_deal=True),
                )
            )
        shift = index % len(turns)
        turns = turns[shift:] + turns[:shift]
        found[stage] = {}
        for system, measure in turns:
            outcome = measure()
            outcome["rows_per_s"] = outcome["rows"] / outcome["seconds"]
            outcome["load_average"] = round(os.getloadavg()[0], 2)
            found[stage][system] = outcome
            log(f"round {index + 1} {stage} {system}: {_brief(outcome)}")
    drop_database(database, template)
    return found


def _brief(outcome: dict[str, Any]) -> str:
    return ", ".join(
        f"{key} {value:,.3f}" if isinstance(value, float) else f"{key} {value:,}"
        for key, value in outcome.items()
    )


def _first_id(index: int) -> int:
    return 100_000 * (index + 1)


# --- profile ----------------------------------------------------------------------------------

# (label, end of the file's path, function name): the parts of an import worth naming.
PARTS = (
    ("read_register (decode, parse, check the file)", "registers/sipri.py", "read_register"),
    (
        "importer: _Run.import_deals (200 deals a transaction)",
        "registers/importer.py",
        "import_deals",
    ),
    ("importer: _Run._append (read, compare, record, commit)", "registers/importer.py", "_append"),
    (
        "importer: read_streams (the chunk's streams, one query)",
        "eventstore/store.py",
        "read_streams",
    ),
    ("importer: _Wanted.changes (compare with held facts)", "registers/importer.py", "changes"),
    ("importer: _Wanted.__init__ (facts of the rows)", "registers/importer.py", "__init__"),
    ("importer: _note_imported (one INSERT … unnest)", "registers/importer.py", "_note_imported"),
    ("services.record_many", "deals/services.py", "record_many"),
    ("services._parse (catalogue schemas)", "deals/services.py", "_parse"),
    ("services._check (rules, fold)", "deals/services.py", "_check"),
    (
        "services._existing_organisations (one query)",
        "deals/services.py",
        "_existing_organisations",
    ),
    ("eventstore append_many (one pipelined round trip)", "eventstore/store.py", "append_many"),
    ("transaction commit (Atomic.__exit__)", "django/db/transaction.py", "__exit__"),
    ("on-commit dispatch", "projections/dispatch.py", "dispatch"),
)


def profile_first_edition(template: str, expected: dict[str, int]) -> dict[str, Any]:
    """One first-edition import under cProfile in a fresh database of its own."""
    from tracker.deals.registers.importer import import_register

    content, _, _ = editions(_first_id(ROUNDS))
    database = ROUND_DATABASE.format("profile")
    fresh_database(database, template)
    checkpoint()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    report = import_register(content, actor=ACTOR, file_name="bench.csv")
    profiler.disable()
    seconds = time.perf_counter() - started
    drop_database(database, template)
    if report.appended != expected:
        raise RuntimeError(f"unexpected profiled import: appended {report.appended}")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
    stats.print_stats(15)
    log(text.getvalue())
    root = str(Path(__file__).resolve().parent.parent) + "/"
    table = stats.stats  # type: ignore[attr-defined]
    top = []
    for func in stats.fcn_list[:15]:  # type: ignore[attr-defined]
        _, calls, own, cumulative, _ = table[func]
        top.append(
            {
                "function": f"{func[0].replace(root, '')}:{func[1]}({func[2]})",
                "calls": calls,
                "tottime_s": round(own, 3),
                "cumtime_s": round(cumulative, 3),
            }
        )
    parts = {}
    for label, path, name in PARTS:
        found = [v for k, v in table.items() if k[0].endswith(path) and k[2] == name]
        if found:
            parts[label] = {
                "calls": sum(v[1] for v in found),
                "cumtime_s": round(sum(v[3] for v in found), 3),
            }
    return {
        "figure": "first_edition_profile",
        "seconds_under_profiler": round(seconds, 2),
        "rows": report.rows,
        "events": report.events_appended,
        "top_cumulative": top,
        "parts_cumtime": parts,
    }


def first_edition_floor(template: str, copy_seconds: float) -> dict[str, Any]:
    """What any importer of the first edition that checks its facts as this one must pays in
    this process before it writes anything, part by part, each the median of ROUNDS:

    - reading the file's rows with the standard library's `csv` (no cell checked);
    - checking each fact's data against the catalogue (`events.parse_data`), the check the
      issue asks of every fact;
    - encoding each event as canonical JSON (`canonical.canonical_json`), the form its hash is
      computed over.

    Timed with the garbage collector paused, so the floor is the lowest this process shows.

    The facts are those the importer appended, read back from a fresh database. `best_ratio`
    is COPY's time for the same file (the first edition's median) over the sum of the parts:
    the ratio an importer doing only these three things would reach.
    """
    from tracker.deals.events import parse_data
    from tracker.deals.registers.importer import import_register
    from tracker.eventstore.canonical import canonical_json
    from tracker.eventstore.store import read_all

    content, _, _ = editions(_first_id(ROUNDS + 1))
    database = ROUND_DATABASE.format("floor")
    fresh_database(database, template)
    import_register(content, actor=ACTOR, file_name="bench.csv")
    events = []
    page = read_all(limit=10_000)
    while page.events:
        events += page.events
        page = read_all(after=page.next, limit=10_000)
    drop_database(database, template)
    bodies = [
        {"type": e.type, "data": e.data, "occurred": e.occurred, "source": e.source} for e in events
    ]
    text = content.decode("utf-8")

    def timed(work: Callable[[], object]) -> float:
        # With the collector paused, as the projection benchmark's baseline is: a floor taken
        # at its lowest.
        times = []
        for _ in range(ROUNDS):
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                work()
                times.append(time.perf_counter() - started)
            finally:
                gc.enable()
        return median(times)

    parts = {
        "csv_reader_s": timed(lambda: list(csv.reader(io.StringIO(text)))),
        "catalogue_check_s": timed(lambda: [parse_data(e.type, e.data) for e in events]),
        "canonical_json_s": timed(lambda: [canonical_json(body) for body in bodies]),
    }
    floor = sum(parts.values())
    return {
        "figure": "first_edition_floor",
        "events": len(events),
        **{name: round(value, 4) for name, value in parts.items()},
        "floor_seconds": round(floor, 4),
        "copy_seconds": round(copy_seconds, 4),
        "target_ratio": TARGET_RATIO,
        "target_seconds": round(copy_seconds / TARGET_RATIO, 4),
        "best_ratio": round(copy_seconds / floor, 4),
        "median": f"each part the median of {ROUNDS} runs; copy_seconds from first_edition",
    }


# --- figures ----------------------------------------------------------------------------------


def summarise(
    rounds: list[dict[str, dict[str, dict[str, Any]]]], mix: dict[str, int]
) -> list[dict[str, Any]]:
    figures = []
    for stage in rounds[0]:
        ours = [found[stage]["ours"] for found in rounds]
        raw = [found[stage]["copy"] for found in rounds]
        rows_per_s = median(run["rows_per_s"] for run in ours)
        copy_per_s = median(run["rows_per_s"] for run in raw)
        events = ours[0]["events"]
        extra: dict[str, Any] = {"second_edition_mix": mix} if stage == "second_edition" else {}
        baselines = {}
        for system in ("copy", "copy_per_deal"):
            if system not in rounds[0][stage]:
                continue
            runs = [found[stage][system] for found in rounds]
            rate = median(run["rows_per_s"] for run in runs)
            baselines[system] = {
                "rows_per_s": round(rate, 1),
                "commits": runs[0]["commits"],
                "rounds_rows_per_s": [round(run["rows_per_s"], 1) for run in runs],
                "ratio": round(rows_per_s / rate, 4),
            }
        extra["baselines"] = baselines
        figures.append(
            figure(
                stage,
                clients=1,
                events_per_s=median(run["events"] / run["seconds"] for run in ours),
                p50_ms=None,
                p99_ms=None,
                baseline_events_per_s=copy_per_s,
                ratio=rows_per_s / copy_per_s,
                baseline="copy",
                baseline_unit="rows per second (COPY appends rows, not events)",
                **({"target_ratio": TARGET_RATIO} if stage == "first_edition" else {}),
                ratio_precise=round(rows_per_s / copy_per_s, 5),
                rows=ours[0]["rows"],
                events_appended=events,
                deals_opened=ours[0]["deals_opened"],
                deals_changed=ours[0]["deals_changed"],
                deals_unchanged=ours[0]["deals_unchanged"],
                rows_per_s=round(rows_per_s, 1),
                baseline_rows_per_s=round(copy_per_s, 1),
                seconds=round(median(run["seconds"] for run in ours), 3),
                baseline_seconds=round(median(run["seconds"] for run in raw), 4),
                median=(
                    f"of {len(rounds)} rounds; ratio = median rows/s of the importer / "
                    "median rows/s of COPY of the same file"
                ),
                rounds=len(rounds),
                rounds_rows_per_s=[round(run["rows_per_s"], 1) for run in ours],
                rounds_baseline_rows_per_s=[round(run["rows_per_s"], 1) for run in raw],
                rounds_ratio=[
                    round(mine["rows_per_s"] / theirs["rows_per_s"], 4)
                    for mine, theirs in zip(ours, raw, strict=True)
                ],
                load_average=[run["load_average"] for run in ours],
                **extra,
            )
        )
    return figures


def main() -> None:
    setup_django()
    from django.db import connection

    from tracker.deals.registers.names import load_names

    template = connection.settings_dict["NAME"]
    loaded = load_names(names_csv())
    log(f"machine: {machine()}; server: {server()}; load average {os.getloadavg()}")
    log(f"{loaded.mapped} names mapped, {len(loaded.created)} organisations created")
    _, _, mix = editions(_first_id(0))
    expected = {
        "first_edition": {
            "DealOpened": DEALS,
            "ContractAwarded": DEALS,
            "DeliveryRecorded": DEALS * YEARS,
        },
        "second_edition": {
            key: count
            for key, count in (
                ("FactCorrected", mix["corrected"]),
                ("FactRetracted", mix["dropped"]),
                ("DeliveryRecorded", mix["added"]),
            )
            if count
        },
    }
    log(f"{DEALS} deals x {YEARS} rows; second edition: {mix}")
    began = time.perf_counter()
    load_before = os.getloadavg()
    rounds = [one_round(index, template, expected) for index in range(ROUNDS)]
    figures = summarise(rounds, mix)
    for item in figures:
        item["machine"] = machine()
        item["server"] = server()
        item["load_average_before_after"] = [
            [round(value, 2) for value in load_before],
            [round(value, 2) for value in os.getloadavg()],
        ]
    copy_seconds = next(f["baseline_seconds"] for f in figures if f["figure"] == "first_edition")
    figures.append(first_edition_floor(template, copy_seconds))
    if PROFILE:
        figures.append(profile_first_edition(template, expected["first_edition"]))
    path = emit("import", figures)
    log(f"wrote {path} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
