"""Import one edition of SIPRI's trade register: each deal's facts, and what the edition changed.

Each SIPRI deal is one deal of the tracker, its id derived from its key (`SIPRI:<id>`), so two
imports of one deal name one stream whatever their order. An edition's rows give the facts a
deal should hold: its opening, its order (a `ContractAwarded` dated to the order year) and one
`DeliveryRecorded` per delivery year. The facts the deal holds from the register (those in
force, as corrected) are compared with them, key by key ("opening", "contract", "delivery
2021"):
- a fact the edition states differently is corrected (`FactCorrected`) citing this edition;
- a fact the edition no longer states is retracted (`FactRetracted`) citing it;
- a fact it states for the first time is appended; an unchanged one appends nothing,
so the same edition imported twice appends nothing, and `known_at` between two imports answers
with the first edition's figures. Each deal's events are appended together or not at all:
deals are compared and appended 200 at a time, in one transaction (`services.record_many`,
with each stream's version as read as its expected version); a deal whose facts break a rule
is refused alone, and a deal another writer moves on meanwhile is read and compared again.

Deals the file does not mention are left alone: an export is the answer to a query (a supplier,
a period), so a deal missing from one file is not a deal withdrawn from the register.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from tracker.eventstore.errors import VersionConflict
from tracker.eventstore.store import Appended, read_streams

from .. import replay
from ..errors import InvalidEvent
from ..events import META_TYPES, latest_date, parse_data, parse_occurred
from ..models import ImportedEvent, Organisation, RegisterImport, RegisterName
from ..services import DealChanges, ProposedEvent, RecordedMany, record_many
from .sipri import Register, RegisterFormatError, RegisterRow, deals, read_register

REGISTER = "SIPRI"
PUBLISHER = "Stockholm International Peace Research Institute (SIPRI)"
URL = "https://www.sipri.org/databases/armstransfers"
_DEAL_IDS = UUID("0c6f8a52-3b7e-4d1a-9f0e-5a2b7c9d4e61")
"""Namespace of the deal ids derived from registers' keys."""
_LOCK = f"deal-tracker:import:{REGISTER}"
_ATTEMPTS = 3
"""A deal another writer moves on meanwhile is read and compared again, this many times."""
_DEALS_PER_TRANSACTION = 200
"""Deals compared and appended together, in one transaction and one round trip.

Why not one deal per transaction: a commit is a durable flush, and a transaction per deal
made the commits and round trips most of an import's time. Why not the whole file: the
deals' streams stay locked until the commit, and an analyst saving one of them waits for it;
200 deals take a fraction of a second."""


class ImportRefused(Exception):
    """The whole file is refused; nothing was appended. str() says why."""


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    deal: str | None
    reason: str


@dataclass(frozen=True)
class ImportReport:
    import_id: UUID
    register: str
    edition: date
    file_name: str
    file_format: str
    digest: str
    rows: int
    deals: int
    deals_opened: int
    deals_changed: int
    deals_unchanged: int
    deals_refused: int
    appended: dict[str, int]
    refused: list[Refusal]
    unresolved: list[str]

    @property
    def events_appended(self) -> int:
        return sum(self.appended.values())

    def lines(self) -> list[str]:
        """The report as an analyst reads it, one line each."""
        found = [
            f"{self.register} edition of {self.edition.isoformat()} "
            f"({self.file_format}, {self.rows} rows, {self.deals} deals, sha256 {self.digest})",
            f"deals opened: {self.deals_opened}, changed: {self.deals_changed}, "
            f"unchanged: {self.deals_unchanged}, refused: {self.deals_refused}",
            "events appended: "
            + (
                ", ".join(f"{kind} {n}" for kind, n in sorted(self.appended.items()))
                if self.appended
                else "none"
            ),
        ]
        if self.unresolved:
            found.append(
                "names no organisation answers to (add them under Register names): "
                + "; ".join(self.unresolved)
            )
        found.extend(
            f"line {r.line}: refused{f' (deal {r.deal})' if r.deal else ''}: {r.reason}"
            for r in self.refused
        )
        return found


def deal_id_for(external_id: str) -> UUID:
    """The deal a register's key names, the same in every import."""
    return uuid5(_DEAL_IDS, external_id)


def import_register(
    content: bytes,
    *,
    actor: str,
    file_name: str = "",
    edition: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import one edition (`edition`, else the date its preamble gives); see the module.

    Raises ImportRefused when the file cannot be read, has no edition date, or is older than an
    edition of the register already imported (editions are imported in order, so that each
    correction cites the edition that made it).
    """
    try:
        register = read_register(content)
    except RegisterFormatError as error:
        raise ImportRefused(str(error)) from None
    edition = edition or register.edition
    if edition is None:
        raise ImportRefused("the file's preamble gives no edition date: give the edition")
    if edition > latest_date(getattr(settings, "DEAL_FUTURE_TOLERANCE_DAYS", 1)):
        raise ImportRefused(f"the edition date {edition.isoformat()} is in the future")
    with _one_import_at_a_time():
        return _import(register, content, edition, actor, file_name, progress)


def _import(
    register: Register,
    content: bytes,
    edition: date,
    actor: str,
    file_name: str,
    progress: Callable[[int, int], None] | None,
) -> ImportReport:
    later = (
        RegisterImport.objects.filter(register=REGISTER, edition__gt=edition)
        .order_by("-edition")
        .first()
    )
    if later is not None:
        raise ImportRefused(
            f"the edition of {later.edition.isoformat()} is already imported: import "
            f"editions in order, not {edition.isoformat()} after it"
        )
    record = RegisterImport.objects.create(
        register=REGISTER,
        edition=edition,
        file_name=file_name[:255],
        file_format=register.format,
        digest=hashlib.sha256(content).hexdigest(),
        actor=actor,
        started_at=timezone.now(),
    )
    run = _Run(record, edition, actor, _Names.load())
    run.refuse_rows(register)
    grouped = deals(register.rows)
    keys = list(grouped)
    for start in range(0, len(keys), _DEALS_PER_TRANSACTION):
        chunk = keys[start : start + _DEALS_PER_TRANSACTION]
        run.import_deals([grouped[key] for key in chunk if key not in run.refused_deals])
        if progress is not None:
            progress(start + len(chunk), len(keys))
    refused_only = {p.deal_id for p in register.problems if p.deal_id} - set(grouped)
    return run.finish(register, len(grouped) + len(refused_only))


@contextlib.contextmanager
def _one_import_at_a_time() -> Iterator[None]:
    """Imports of the register one after another, so that editions keep their order: while one
    runs, another is refused. The caller checks the order of editions inside, under the lock.

    An import commits a transaction per chunk of deals, so the lock must outlast transactions,
    on either backend: SQLite's one writer at a time is one transaction at a time, and two
    imports' chunks would interleave.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    lock = _advisory_lock if connection.vendor == "postgresql" else _file_lock
    with lock(connection) as locked:
        if not locked:
            raise ImportRefused(f"another import of {REGISTER} is running: try again when it ends")
        yield


@contextlib.contextmanager
def _advisory_lock(connection: BaseDatabaseWrapper) -> Iterator[bool]:
    """PostgreSQL: a session-level advisory lock, the server's, so every process's."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [_LOCK])
        (locked,) = cursor.fetchone()
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_LOCK])


@contextlib.contextmanager
def _file_lock(connection: BaseDatabaseWrapper) -> Iterator[bool]:
    """SQLite: an OS lock on a file beside the database, for the threads of a server and for
    other processes (a management command beside runserver) alike.

    flock, not fcntl's record locks: flock locks of two opens of the file exclude each other
    even within one process, and the file is never the database's own, whose record locks
    SQLite holds and any close of another descriptor of it would drop.
    """
    with open(_lock_file(connection), "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            locked = False
        else:
            locked = True
        # Closing the file releases the lock, however the import ends.
        yield locked


def _lock_file(connection: BaseDatabaseWrapper) -> Path:
    name = str(connection.settings_dict["NAME"])
    if connection.is_in_memory_db():
        # An in-memory database lives in one process: so does its lock.
        key = hashlib.sha256(f"{os.getpid()}:{name}".encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"deal-tracker-{key}-import-{REGISTER}.lock"
    return Path(f"{name}-import-{REGISTER}.lock")


# --- one run ---------------------------------------------------------------------------------


@dataclass
class _Run:
    record: RegisterImport
    edition: date
    actor: str
    names: _Names
    refused: list[Refusal] = field(default_factory=list)
    refused_deals: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
    appended: Counter[str] = field(default_factory=Counter)
    opened: int = 0
    changed: int = 0
    unchanged: int = 0

    def refuse_rows(self, register: Register) -> None:
        """A malformed row refuses its deal's batch: every row of that deal is reported."""
        for problem in register.problems:
            self.refused.append(Refusal(problem.line, problem.deal_id, problem.reason))
            if problem.deal_id:
                self.refused_deals.add(problem.deal_id)
        for row in register.rows:
            if row.deal_id in self.refused_deals:
                self.refused.append(
                    Refusal(
                        row.line, row.deal_id, "refused with its deal: another row is malformed"
                    )
                )

    def refuse_deal(self, rows: Sequence[RegisterRow], reason: str) -> None:
        self.refused_deals.add(rows[0].deal_id)
        self.refused.extend(Refusal(row.line, row.deal_id, reason) for row in rows)

    def import_deals(self, chunk: list[list[RegisterRow]]) -> None:
        """Compare these deals with their streams and append what changed, all together.

        A deal that another writer moves on between the read and the append makes the whole
        chunk read and compared again; a deal that keeps moving is refused, the rest go on.
        """
        wanted = {w.deal_id: w for rows in chunk if (w := self._wanted(rows)) is not None}
        conflicts: Counter[UUID] = Counter()
        while wanted:
            try:
                self._append(list(wanted.values()))
                return
            except VersionConflict as conflict:
                moved = conflict.stream_id
                conflicts[moved] += 1
                if conflicts[moved] == _ATTEMPTS:
                    self.refuse_deal(
                        wanted.pop(moved).rows, "the deal kept changing while it was compared"
                    )

    def _wanted(self, rows: list[RegisterRow]) -> _Wanted | None:
        """What the rows say the deal holds; None (the deal refused) when it cannot be read."""
        first = rows[0]
        supplier, recipient = self.names.get(first.supplier), self.names.get(first.recipient)
        pairs = ((first.supplier, supplier), (first.recipient, recipient))
        missing = [name for name, org in pairs if org is None]
        if missing:
            self.unresolved.update(missing)
            self.refuse_deal(
                rows,
                "no organisation answers to "
                + " or ".join(repr(name) for name in missing)
                + ": map the name under Register names",
            )
            return None
        if first.order_year is None:
            self.refuse_deal(rows, "Order date: unknown, and a deal needs the date of its order")
            return None
        assert supplier is not None
        assert recipient is not None
        return _Wanted(rows, supplier, recipient, self.edition)

    def _append(self, wanted: list[_Wanted]) -> None:
        # The events alone, every deal's in one query: comparing needs no state, and folding
        # one cost as much as the rest of an unchanged deal's import.
        streams = read_streams([w.deal_id for w in wanted])
        changes = []
        unreadable: dict[UUID, InvalidEvent] = {}
        for w in wanted:
            events = streams[w.deal_id]
            try:
                proposed = w.changes(events)
            except InvalidEvent as invalid:
                # The edition states a fact the catalogue refuses (comparing parses both sides).
                unreadable[w.deal_id] = invalid
                continue
            if proposed:
                changes.append(DealChanges(w.deal_id, proposed, events, opens_deal=not events))
        if changes:
            with transaction.atomic():
                recorded = record_many(changes, actor=self.actor)
                _note_imported(self.record, recorded.appended.values())
        else:
            recorded = RecordedMany({}, {})
        # Counted once the chunk has committed: a conflict above reads it all again.
        self.unchanged += len(wanted) - len(changes) - len(unreadable)
        for deal_id, invalid in {**unreadable, **recorded.refused}.items():
            reason = "; ".join(f"{e.field}: {e.message}" for e in invalid.errors)
            self.refuse_deal(next(w.rows for w in wanted if w.deal_id == deal_id), reason)
        for change in changes:
            appended = recorded.appended.get(change.deal_id)
            if appended is None:
                continue
            self.appended.update(event.type for event in appended.events)
            if change.stream:
                self.changed += 1
            else:
                self.opened += 1

    def finish(self, register: Register, deal_count: int) -> ImportReport:
        self.refused.sort(key=lambda r: r.line)
        record = self.record
        record.finished_at = timezone.now()
        record.counts = {
            "rows": len(register.rows) + len(register.problems),
            "rows_refused": len(self.refused),
            "deals": deal_count,
            "deals_opened": self.opened,
            "deals_changed": self.changed,
            "deals_unchanged": self.unchanged,
            "deals_refused": len(self.refused_deals),
            "appended": dict(sorted(self.appended.items())),
        }
        record.refused = [
            {"line": r.line, "deal": r.deal, "reason": r.reason} for r in self.refused
        ]
        record.unresolved = sorted(self.unresolved)
        record.save(update_fields=["finished_at", "counts", "refused", "unresolved"])
        return ImportReport(
            import_id=record.id,
            register=record.register,
            edition=self.edition,
            file_name=record.file_name,
            file_format=record.file_format,
            digest=record.digest,
            rows=record.counts["rows"],
            deals=deal_count,
            deals_opened=self.opened,
            deals_changed=self.changed,
            deals_unchanged=self.unchanged,
            deals_refused=len(self.refused_deals),
            appended=dict(record.counts["appended"]),
            refused=list(self.refused),
            unresolved=record.unresolved,
        )


def _note_imported(record: RegisterImport, appended: Iterable[Appended]) -> None:
    """Which events this import appended, for `/imports/{id}/`: one statement."""
    pairs = [(event.event_id, item.stream_id) for item in appended for event in item.events]
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        ImportedEvent.objects.bulk_create(
            ImportedEvent(register_import=record, event_id=event_id, deal_id=deal_id)
            for event_id, deal_id in pairs
        )
        return
    # Two arrays rather than a model per row: building thousands of model instances cost
    # more than the rest of recording an import's events.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ImportedEvent._meta.db_table} (register_import_id, event_id, deal_id) "
            "SELECT %s, e, d FROM unnest(%s::uuid[], %s::uuid[]) AS pairs(e, d)",
            [record.id, [e for e, _ in pairs], [d for _, d in pairs]],
        )


@dataclass(frozen=True)
class _Names:
    """Register names to organisation ids: the analysts' mapping, then exact organisation
    names (or short names), case aside (`str.casefold`). Nothing else: an unknown name stays
    unknown."""

    mapped: Mapping[str, UUID]
    exact: Mapping[str, UUID]

    @classmethod
    def load(cls) -> _Names:
        mapped = dict(
            RegisterName.objects.filter(register=REGISTER).values_list("name", "organisation_id")
        )
        exact: dict[str, UUID] = {}
        # Case is folded here, not by the database: SQLite's LOWER folds ASCII only, and
        # PostgreSQL's follows the database's locale, so `TUSAŞ` would match on one backend
        # and not the other.
        for name, short, org in Organisation.objects.values_list("name", "short_name", "id"):
            exact.setdefault(name.casefold(), org)
            if short:
                exact.setdefault(short.casefold(), org)
        return cls(mapped, exact)

    def get(self, name: str) -> UUID | None:
        return self.mapped.get(name) or self.exact.get(name.casefold())


# --- what an edition says about one deal -----------------------------------------------------


class _Wanted:
    """The facts one edition states about one deal, by key, and the events that make the
    deal's register facts say the same."""

    def __init__(
        self, rows: list[RegisterRow], supplier: UUID, recipient: UUID, edition: date
    ) -> None:
        first = rows[0]
        self.key = f"{REGISTER}:{first.deal_id}"
        self.deal_id = deal_id_for(self.key)
        self.edition = edition
        self.rows = rows
        parties = [{"organisation": str(supplier), "role": "supplier"}]
        if recipient != supplier:
            parties.append({"organisation": str(recipient), "role": "recipient"})
        ordered = _year(first.order_year, first.order_year_estimate)
        self.facts: dict[str, tuple[str, dict[str, Any], dict[str, Any], RegisterRow]] = {
            "opening": (
                "DealOpened",
                {
                    "title": f"{first.designation} from {first.supplier} to {first.recipient}"[
                        :300
                    ],
                    "kind": "contract",
                    "summary": "",
                    "parties": parties,
                    "external_ids": [self.key],
                },
                ordered,
                first,
            ),
            "contract": (
                "ContractAwarded",
                {
                    "buyer": str(recipient),
                    "supplier": str(supplier),
                    "item": first.designation or first.description,
                    "weapon": {
                        "designation": first.designation,
                        "description": first.description,
                        "category": first.category,
                        "status": first.status,
                        "local_production": first.local_production,
                    },
                    **({"tiv_unit": str(first.tiv_unit)} if first.tiv_unit is not None else {}),
                },
                ordered,
                first,
            ),
        }
        for row in rows:
            if row.delivery_year is None or not row.delivered:
                continue
            self.facts[f"delivery {row.delivery_year}"] = (
                "DeliveryRecorded",
                {
                    "quantity": row.delivered,
                    "quantity_estimate": row.delivered_estimate,
                    **({"tiv": str(row.tiv_delivered)} if row.tiv_delivered is not None else {}),
                },
                _year(row.delivery_year, row.delivery_year_estimate),
                row,
            )

    def changes(self, events: Sequence[Any]) -> list[ProposedEvent]:
        """The events that bring the deal's register facts to what this edition says."""
        held = _held(events)
        contract_id = held["contract"][0] if "contract" in held else uuid4()
        proposed: list[ProposedEvent] = []
        for key, (kind, data, occurred, row) in self.facts.items():
            if kind == "DeliveryRecorded":
                data = {"contract": str(contract_id), **data}
            source = self._source(row)
            if key not in held:
                event_id = contract_id if key == "contract" else None
                proposed.append(ProposedEvent(kind, data, occurred, source, event_id))
                continue
            event_id, held_data, held_occurred = held[key]
            body: dict[str, Any] = {"event_id": str(event_id)}
            # Most facts are unchanged and equal as stored: parsing both sides is for the rest.
            changed = [] if held_data == data else _changed_fields(kind, held_data, data)
            if changed:
                body["data"] = data
            if held_occurred != occurred and _occurred(held_occurred) != _occurred(occurred):
                body["occurred"] = occurred
                changed.append("occurred")
            if changed:
                body["reason"] = (
                    f"{REGISTER} edition of {self.edition.isoformat()} changed "
                    + ", ".join(changed)
                )
                proposed.append(ProposedEvent("FactCorrected", body, self._published, source))
        for key, (event_id, _, _) in held.items():
            if key not in self.facts:
                reason = f"not in the {REGISTER} edition of {self.edition.isoformat()}"
                body = {"event_id": str(event_id), "reason": reason}
                source = self._source(self.rows[0])
                proposed.append(ProposedEvent("FactRetracted", body, self._published, source))
        # In the order of `facts`: the opening first, the contract before the deliveries that
        # name it, as the rules ask.
        return proposed

    @property
    def _published(self) -> dict[str, str]:
        """When a correction or retraction happened: the day the edition was published."""
        return {"date": self.edition.isoformat(), "precision": "day"}

    def _source(self, row: RegisterRow) -> dict[str, Any]:
        return {
            "title": (
                f"SIPRI Arms Transfers Database, trade register, edition of "
                f"{self.edition.isoformat()}: deal {row.deal_id}, line {row.line}"
            ),
            "publisher": PUBLISHER,
            "url": URL,
            "published_on": self.edition.isoformat(),
        }


def _held(events: Sequence[Any]) -> dict[str, tuple[UUID, dict[str, Any], dict[str, Any]]]:
    """The register's facts in force in a stream, by key: (event id, data, occurred)."""
    held: dict[str, tuple[UUID, dict[str, Any], dict[str, Any]]] = {}
    for event_id, status in replay.fact_statuses(events).items():
        event = status.event
        if event.type in META_TYPES or status.retracted_by is not None:
            continue
        if (event.source or {}).get("url") != URL or status.occurred is None:
            continue
        if event.type == "DealOpened":
            key = "opening"
        elif event.type == "ContractAwarded":
            key = "contract"
        elif event.type == "DeliveryRecorded":
            key = f"delivery {status.occurred['date'][:4]}"
        else:
            continue
        held[key] = (event_id, status.data, status.occurred)
    return held


def _changed_fields(kind: str, held: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The fields of `kind`'s data that differ, each side read as the catalogue reads it."""
    old, new = parse_data(kind, dict(held)).to_json(), parse_data(kind, dict(wanted)).to_json()
    changed = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if isinstance(before, dict) and isinstance(after, dict):
            changed.extend(
                f"{name}.{inner}"
                for inner in sorted(set(before) | set(after))
                if before.get(inner) != after.get(inner)
            )
        elif before != after:
            changed.append(name)
    return changed


def _occurred(value: Mapping[str, Any]) -> dict[str, Any]:
    return parse_occurred(dict(value)).to_json()


def _year(year: int | None, estimate: bool) -> dict[str, Any]:
    assert year is not None
    found: dict[str, Any] = {"date": f"{year:04d}-01-01", "precision": "year"}
    if estimate:
        found["estimate"] = True
    return found
