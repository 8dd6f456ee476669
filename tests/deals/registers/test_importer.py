"""Importing SIPRI's trade register edition by edition: what each edition appends, and why."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from tracker.deals import replay
from tracker.deals.models import ImportedEvent, Organisation, RegisterImport
from tracker.deals.reducer import deal_json
from tracker.deals.registers import importer
from tracker.deals.registers.importer import (
    URL,
    ImportRefused,
    ImportReport,
    deal_id_for,
    import_register,
)
from tracker.deals.registers.names import load_names
from tracker.deals.registers.sipri import CSV, HEADERS
from tracker.deals.services import record_event
from tracker.eventstore.store import read_stream

from ...threads import paused_in_thread

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).parents[3] / "tracker" / "deals" / "fixtures" / "sipri"
EDITION_1 = SAMPLES / "trade-register-2024.csv"
EDITION_2 = SAMPLES / "trade-register-2025.csv"
TEXT_1 = SAMPLES / "deals-and-tivs-2024.txt"
TEXT_2 = SAMPLES / "deals-and-tivs-2025.txt"
MALFORMED = SAMPLES / "trade-register-2025-malformed.csv"
IMPORTED_DEALS = ["60123", "60245", "60402", "60518", "60634", "60889", "60917"]


@pytest.fixture
def names() -> None:
    load_names((SAMPLES / "names.csv").read_text(encoding="utf-8"))


def run(path: Path, **options: Any) -> ImportReport:
    return import_register(path.read_bytes(), actor="analyst", file_name=path.name, **options)


# One order without deliveries, of a name with a letter beyond ASCII.
HURJET = "60889,Turkiye,Qatar,Hürjet,trainer aircraft,Aircraft,2023,No,,,,,New,No,4,,No"


def edition(generated: str, *rows: str) -> bytes:
    """A UTF-8 trade-register CSV of the edition generated on that day."""
    lines = [f"Information generated: {generated}", "", ",".join(HEADERS[CSV]), *rows]
    return "\r\n".join(lines).encode()


def stream(sipri_id: str) -> list[Any]:
    return read_stream(deal_id_for(f"SIPRI:{sipri_id}"))


def contract(sipri_id: str, **at: Any) -> dict[str, Any]:
    found = replay.state(deal_id_for(f"SIPRI:{sipri_id}"), **at).state
    assert found is not None
    (only,) = found.contracts
    return {
        "ordered_on": only.ordered_on.to_json(),
        "delivered": only.delivered,
        "by_year": {
            d.year: (d.quantity, d.estimate, d.year_estimate, d.tiv) for d in only.deliveries
        },
        "weapon": only.weapon.model_dump() if only.weapon else None,
    }


class TestFirstEdition:
    def test_opens_a_deal_per_resolved_sipri_deal_with_its_order_and_deliveries(
        self, names: None
    ) -> None:
        report = run(EDITION_1)

        assert report.edition == date(2024, 3, 11)
        assert (report.deals, report.deals_opened, report.deals_refused) == (8, 7, 1)
        assert report.appended == {"DealOpened": 7, "ContractAwarded": 7, "DeliveryRecorded": 12}
        tb2 = contract("60123")
        assert tb2["delivered"] == 24
        assert tb2["by_year"][2021] == (6, True, False, 9)
        assert tb2["ordered_on"] == {"date": "2019-01-01", "precision": "year"}
        anka = contract("60245")
        assert anka["ordered_on"] == {"date": "2019-01-01", "precision": "year", "estimate": True}
        state = replay.state(deal_id_for("SIPRI:60402")).state
        assert state.external_ids == ("SIPRI:60402",)
        assert state.contracts[0].weapon.status == "second_hand"
        assert state.stage == "active"
        assert replay.state(deal_id_for("SIPRI:60889")).state.stage == "agreed"

    def test_every_fact_cites_the_register_its_edition_and_its_row(self, names: None) -> None:
        run(EDITION_1)
        for event in stream("60518"):
            assert event.source["url"] == URL
            assert event.source["published_on"] == "2024-03-11"
            assert "deal 60518, line" in event.source["title"]
        lines = [e.source["title"].rsplit("line ", 1)[1] for e in stream("60518")]
        # The opening and the order cite the deal's first row; each delivery its own.
        assert lines == ["19", "19", "19", "20", "21"]

    def test_an_unresolved_name_is_reported_and_its_deal_refused(self, names: None) -> None:
        report = run(EDITION_1)

        assert report.unresolved == ["unknown supplier(s)"]
        refused = [r for r in report.refused if r.deal == "60752"]
        assert refused
        assert all("unknown supplier(s)" in r.reason for r in refused)
        assert stream("60752") == []
        assert "names no organisation answers to" in "\n".join(report.lines())

    def test_both_formats_of_an_edition_give_the_same_facts(self, names: None) -> None:
        run(TEXT_1)
        from_text = {i: contract(i) for i in IMPORTED_DEALS}
        second = run(EDITION_1)
        assert second.events_appended == 0
        assert {i: contract(i) for i in IMPORTED_DEALS} == from_text

    def test_tiv_is_never_money(self, names: None) -> None:
        run(EDITION_1)
        for sipri_id in IMPORTED_DEALS:
            state = replay.state(deal_id_for(f"SIPRI:{sipri_id}")).state
            for item in state.contracts:
                assert item.value is None
            for event in stream(sipri_id):
                assert event.data.get("value") is None
                assert "amount" not in json.dumps(event.data)
            shown = json.dumps(deal_json(state))
            assert '"currency"' not in shown
            assert '"tiv_unit"' in shown


class TestNextEdition:
    @pytest.fixture
    def both(self, names: None) -> tuple[ImportReport, ImportReport]:
        return run(EDITION_1), run(EDITION_2)

    def test_appends_exactly_what_changed_each_citing_the_new_edition(self, both) -> None:
        _, second = both

        assert second.appended == {
            "FactCorrected": 4,
            "FactRetracted": 1,
            "DeliveryRecorded": 1,
            "DealOpened": 1,
            "ContractAwarded": 1,
        }
        assert (second.deals_opened, second.deals_changed, second.deals_unchanged) == (1, 5, 2)
        added = ImportedEvent.objects.filter(register_import_id=second.import_id)
        assert added.count() == 8
        for event_id, deal in added.values_list("event_id", "deal_id"):
            (event,) = [e for e in read_stream(deal) if e.event_id == event_id]
            assert event.source["published_on"] == "2025-03-10"

    def test_each_change_lands_on_the_fact_it_changes(self, both) -> None:
        tb2 = contract("60123")
        assert tb2["by_year"][2021] == (8, True, False, 12)
        assert tb2["delivered"] == 26
        assert contract("60245")["ordered_on"] == {"date": "2018-01-01", "precision": "year"}
        opened = replay.state(deal_id_for("SIPRI:60245")).state.opened_on
        assert opened.to_json() == {"date": "2018-01-01", "precision": "year"}
        assert 2018 not in contract("60518")["by_year"]
        assert contract("60402")["by_year"][2024][0] == 4
        assert contract("60634")["weapon"]["description"] == "UCAV"
        assert contract("60990")["delivered"] == 0
        retraction = [e for e in stream("60518") if e.type == "FactRetracted"]
        assert retraction[0].data["reason"] == "not in the SIPRI edition of 2025-03-10"

    def test_known_at_between_the_imports_shows_the_first_editions_figures(
        self, names: None
    ) -> None:
        run(EDITION_1)
        between = timezone.now()
        run(EDITION_2)

        assert contract("60123", known_at=between)["by_year"][2021] == (6, True, False, 9)
        assert contract("60123")["by_year"][2021] == (8, True, False, 12)
        assert replay.state(deal_id_for("SIPRI:60990"), known_at=between).state is None

    @pytest.mark.parametrize("again", [EDITION_2, TEXT_2])
    def test_either_edition_again_appends_nothing(self, both, again: Path) -> None:
        report = run(again)
        assert report.events_appended == 0
        assert report.deals_unchanged == 8
        first = run(EDITION_1, edition=date(2025, 3, 10))
        # The first edition's rows, as if published on the second's date, restore its figures:
        # what matters is what a file says, compared with what the deals hold.
        assert first.appended["FactCorrected"] >= 1

    def test_an_older_edition_after_a_newer_one_is_refused(self, both) -> None:
        before = RegisterImport.objects.count()
        with pytest.raises(ImportRefused, match="import editions in order"):
            run(EDITION_1)
        assert RegisterImport.objects.count() == before


class TestRefusals:
    def test_a_malformed_row_refuses_its_deal_only(self, names: None) -> None:
        run(EDITION_1)
        versions = {i: len(stream(i)) for i in IMPORTED_DEALS}

        report = run(MALFORMED)

        malformed = [r for r in report.refused if r.deal == "60917"]
        assert [r.line for r in malformed if "Order date" in r.reason] == [27]
        assert len(malformed) == 2
        assert len(stream("60917")) == versions["60917"]
        assert report.deals_refused == 2  # 60917, and 60752's unknown supplier
        assert report.appended["DeliveryRecorded"] == 1

    def test_a_changed_fact_the_catalogue_refuses_refuses_its_deal_only(self, names: None) -> None:
        run(EDITION_1)
        before = len(stream("60123"))
        text = EDITION_2.read_bytes().decode("utf-8-sig")
        too_long = "B" * 400
        content = "\n".join(
            line.replace("Bayraktar TB2", too_long) if line.startswith("60123,") else line
            for line in text.split("\n")
        ).encode()

        report = import_register(content, actor="analyst", file_name="edited.csv")

        refused = {r.deal for r in report.refused}
        assert refused == {"60123", "60752"}
        reason = next(r.reason for r in report.refused if r.deal == "60123")
        assert "designation" in reason
        assert len(stream("60123")) == before
        assert report.events_appended > 0
        assert RegisterImport.objects.get(id=report.import_id).finished_at is not None

    def test_a_utf8_edition_cut_inside_a_character_renames_nothing(self, names: None) -> None:
        first = edition("2024-03-11", HURJET)
        second = edition("2025-03-10", HURJET, HURJET.replace("60889", "60890"))
        # A truncated download: the file ends after the first byte of the last "ü".
        cut = second[: second.rindex("ü".encode()) + 1]
        import_register(first, actor="analyst")

        report = import_register(cut, actor="analyst")

        assert contract("60889")["weapon"]["designation"] == "Hürjet"
        assert report.events_appended == 0
        assert [(r.line, r.deal) for r in report.refused] == [(5, "60890")]
        assert "not UTF-8" in report.refused[0].reason

    def test_an_unclosed_quote_leaves_the_next_line_s_deal_alone(self, names: None) -> None:
        run(EDITION_1)
        text = EDITION_2.read_bytes().decode("utf-8-sig")
        # Line 15 is deal 60123's last row; line 16, deal 60245's first.
        lines = text.split("\r\n")
        assert (lines[14][:6], lines[15][:6]) == ("60123,", "60245,")
        lines[14] = lines[14].replace("Bayraktar TB2", '"Bayraktar TB2')
        before = len(stream("60245"))

        report = import_register("\r\n".join(lines).encode(), actor="analyst")

        assert [r.line for r in report.refused if r.deal == "60123"] == [13, 14, 15]
        assert {r.deal for r in report.refused} == {"60123", "60752"}
        assert "FactRetracted" not in [e.type for e in stream("60245")[before:]]
        assert len(contract("60245")["by_year"]) == 2
        assert report.rows == 16

    def test_a_file_without_a_header_is_refused_whole(self, names: None) -> None:
        with pytest.raises(ImportRefused):
            import_register(b"just,some\ntext,here\n", actor="analyst")
        assert RegisterImport.objects.count() == 0

    def test_an_edition_in_the_future_is_refused_whole(self, names: None) -> None:
        with pytest.raises(ImportRefused, match="in the future"):
            run(EDITION_1, edition=date(2099, 1, 1))
        assert RegisterImport.objects.count() == 0

    def test_an_edition_date_is_needed(self, names: None) -> None:
        content = EDITION_1.read_text(encoding="utf-8").replace("Information generated", "Made")
        with pytest.raises(ImportRefused, match="edition"):
            import_register(content.encode(), actor="analyst")


class TestNames:
    def test_organisation_names_match_case_aside_beyond_ascii_on_every_backend(
        self, names: None
    ) -> None:
        tusas = Organisation.objects.create(
            name="Turkish Aerospace Industries", short_name="TUSAŞ", kind="company", country="TR"
        )
        izmir = Organisation.objects.create(name="İzmir Savunma", kind="company", country="TR")
        content = edition(
            "2024-03-11",
            HURJET.replace("Turkiye", "TUSAŞ", 1),
            HURJET.replace("60889", "60890").replace("Turkiye", "tusaş", 1),
            HURJET.replace("60889", "60891").replace("Turkiye", "İzmir Savunma", 1),
        )

        report = import_register(content, actor="analyst")

        assert (report.unresolved, report.refused) == ([], [])
        suppliers = {i: stream(i)[1].data["supplier"] for i in ("60889", "60890", "60891")}
        assert suppliers == {"60889": str(tusas.id), "60890": str(tusas.id), "60891": str(izmir.id)}


class TestCommand:
    def test_prints_the_report(self, names: None, capsys) -> None:
        call_command("import_register", str(EDITION_1), "--no-progress")
        out = capsys.readouterr().out
        assert "SIPRI edition of 2024-03-11" in out
        assert "DealOpened 7" in out
        assert "unknown supplier(s)" in out
        record = RegisterImport.objects.get()
        counts = Counter(record.counts["appended"])
        assert counts["DeliveryRecorded"] == 12
        assert record.finished_at is not None


def importing(path: Path) -> AbstractContextManager[None]:
    """An import of `path` in another thread, on its own connection, paused after its first
    chunk of deals for the block; it then finishes, and must finish without error."""
    return paused_in_thread(lambda pause: run(path, progress=lambda done, total: pause()))


# Python, run in another process: exit 1 if the lock file is locked, else 0.
_TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as file:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(1)
"""


class TestOneImportAtATime:
    """On either backend: SQLite has one writer per transaction, and an import commits many."""

    def test_a_second_import_while_one_runs_is_refused_whole(self, names: None) -> None:
        with (
            importing(EDITION_1),
            pytest.raises(ImportRefused, match="another import of SIPRI is running"),
        ):
            run(EDITION_1)

        assert RegisterImport.objects.count() == 1
        assert [e.type for e in stream("60123")].count("DealOpened") == 1

    def test_a_newer_edition_started_during_an_older_one_never_lands_before_it(
        self, names: None
    ) -> None:
        with (
            importing(EDITION_1),
            pytest.raises(ImportRefused, match="another import of SIPRI is running"),
        ):
            run(EDITION_2)
        run(EDITION_2)

        assert contract("60123")["by_year"][2021] == (8, True, False, 12)
        assert contract("60245")["ordered_on"] == {"date": "2018-01-01", "precision": "year"}
        editions = RegisterImport.objects.order_by("started_at").values_list("edition", flat=True)
        assert list(editions) == [date(2024, 3, 11), date(2025, 3, 10)]

    def test_the_sqlite_lock_file_excludes_other_holders_threads_and_processes(
        self, tmp_path: Path
    ) -> None:
        # The mechanism itself, whatever the suite's backend (make test runs on PostgreSQL).
        class Database:
            settings_dict = {"NAME": str(tmp_path / "db.sqlite3")}

            def is_in_memory_db(self) -> bool:
                return False

        database = Database()
        path = str(importer._lock_file(database))
        with importer._file_lock(database) as first, importer._file_lock(database) as second:
            during = subprocess.run([sys.executable, "-c", _TRY_LOCK, path], check=False)
        after = subprocess.run([sys.executable, "-c", _TRY_LOCK, path], check=False)
        with importer._file_lock(database) as again:
            pass

        assert (first, second, during.returncode, after.returncode, again) == (
            True,
            False,
            1,
            0,
            True,
        )
        assert path == str(tmp_path / "db.sqlite3-import-SIPRI.lock")


@pytest.mark.postgres
class TestConcurrentWriters:
    def test_a_deal_written_to_meanwhile_is_compared_again_not_refused(
        self, names: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run(EDITION_1)
        target = deal_id_for("SIPRI:60123")
        read = importer.read_streams
        interfered: list[int] = []

        def read_then_interfere(deal_ids, **options):
            streams = read(deal_ids, **options)
            if target in streams and not interfered:
                version = streams[target][-1].version
                interfered.append(version)
                # An analyst's note lands between the import's read and its append.
                writer = threading.Thread(target=add_note, args=(target, version))
                writer.start()
                writer.join(timeout=30)
            return streams

        monkeypatch.setattr(importer, "read_streams", read_then_interfere)
        report = run(EDITION_2)

        assert interfered
        assert {r.deal for r in report.refused} == {"60752"}
        types = [e.type for e in stream("60123")]
        assert types[-2:] == ["NoteAdded", "FactCorrected"]
        assert contract("60123")["by_year"][2021][0] == 8

    def test_a_deal_that_keeps_changing_is_refused_and_the_others_appended(
        self, names: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run(EDITION_1)
        target = deal_id_for("SIPRI:60123")
        read = importer.read_streams
        notes: list[int] = []

        def read_then_interfere(deal_ids, **options):
            streams = read(deal_ids, **options)
            if target in streams:
                version = streams[target][-1].version
                notes.append(version)
                writer = threading.Thread(target=add_note, args=(target, version))
                writer.start()
                writer.join(timeout=30)
            return streams

        monkeypatch.setattr(importer, "read_streams", read_then_interfere)
        report = run(EDITION_2)

        assert len(notes) == 3
        assert {r.deal for r in report.refused} == {"60123", "60752"}
        assert "kept changing" in next(r.reason for r in report.refused if r.deal == "60123")
        assert [e.type for e in stream("60123")][-3:] == ["NoteAdded"] * 3
        assert report.events_appended > 0
        assert not ImportedEvent.objects.filter(register_import=report.import_id, deal_id=target)


def add_note(deal_id: Any, version: int) -> None:
    try:
        record_event(
            deal_id=deal_id,
            event_type="NoteAdded",
            data={"text": "checked with the ministry"},
            occurred={"date": "2025-03-01", "precision": "day"},
            source={"title": "Analyst", "publisher": "unknown"},
            expected_version=version,
            actor="analyst",
        )
    finally:
        connections.close_all()
