"""`/imports/` and `/imports/{id}/`: imports of published registers and the events they appended."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from tracker.deals.models import ImportedEvent, Organisation, RegisterImport, RegisterName
from tracker.eventstore.store import RecordedEvent, read_stream

from .conftest import write_stream

pytestmark = [pytest.mark.django_db]

IMPORTS = "/api/v1/imports/"
ROLES = ["anonymous", "none", "reader", "editor", "auditor", "superuser"]
SAMPLES = Path(__file__).resolve().parents[2] / "tracker" / "deals" / "fixtures" / "sipri"
DIGEST = "ab" * 32


def record_import(
    events: list[RecordedEvent],
    *,
    edition: date = date(2025, 3, 10),
    finished_at: datetime | None = None,
    refused: list[dict] | None = None,
    unresolved: list[str] | None = None,
) -> RegisterImport:
    """An import as the importer records it: its row, and one row per event it appended."""
    finished_at = finished_at or datetime(2025, 3, 11, 9, 0, tzinfo=UTC)
    recorded = RegisterImport.objects.create(
        register="SIPRI",
        edition=edition,
        file_name="trade-register-2025.csv",
        file_format="csv",
        digest=DIGEST,
        actor="alice",
        started_at=finished_at - timedelta(seconds=3),
        finished_at=finished_at,
        counts={
            "rows": 5,
            "deals": 2,
            "deals_opened": 1,
            "deals_changed": 1,
            "deals_unchanged": 0,
            "deals_refused": 1,
            "rows_refused": len(refused or []),
            "appended": {"NoteAdded": len(events)},
        },
        refused=refused or [],
        unresolved=unresolved or [],
    )
    ImportedEvent.objects.bulk_create(
        ImportedEvent(register_import=recorded, event_id=e.event_id, deal_id=e.stream_id)
        for e in events
    )
    return recorded


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


class TestImportList:
    def test_lists_imports_newest_first_with_counts_and_refused_count(self, client_as) -> None:
        older = record_import(
            write_stream(1),
            edition=date(2024, 3, 11),
            finished_at=datetime(2024, 3, 12, tzinfo=UTC),
        )
        newer = record_import(
            write_stream(2),
            refused=[
                {"line": 14, "deal": "60917", "reason": "Order date: '20x9' is not a year"},
                {"line": 15, "deal": "60917", "reason": "Order date: '20x9' is not a year"},
            ],
            unresolved=["unknown supplier(s)"],
        )
        response = client_as("editor").get(IMPORTS)
        assert response.status_code == 200, response.content[:500]
        page = response.json()
        assert [row["id"] for row in page["results"]] == [str(newer.id), str(older.id)]
        first = page["results"][0]
        assert first == {
            "id": str(newer.id),
            "register": "SIPRI",
            "edition": "2025-03-10",
            "file_name": "trade-register-2025.csv",
            "file_format": "csv",
            "digest": DIGEST,
            "actor": "alice",
            "started_at": "2025-03-11T08:59:57.000Z",
            "finished_at": "2025-03-11T09:00:00.000Z",
            "counts": newer.counts,
            "refused_count": 2,
            "unresolved": ["unknown supplier(s)"],
        }
        assert "refused" not in first
        assert page["results"][1]["refused_count"] == 0

    def test_an_import_that_has_not_finished_is_listed_without_counts(self, client_as) -> None:
        running = RegisterImport.objects.create(
            edition=date(2025, 3, 10),
            file_format="csv",
            digest=DIGEST,
            actor="alice",
            started_at=datetime(2025, 3, 11, 9, 0, tzinfo=UTC),
        )
        (row,) = client_as("editor").get(IMPORTS).json()["results"]
        assert (row["id"], row["finished_at"], row["counts"]) == (str(running.id), None, {})
        body = client_as("editor").get(f"{IMPORTS}{running.id}/").json()
        assert (body["refused"], body["events"], body["events_next"]) == ([], [], None)

    def test_pages_are_linked_by_a_cursor(self, client_as) -> None:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        made = [record_import([], finished_at=start + timedelta(days=n)) for n in range(3)]
        client = client_as("auditor")
        first = client.get(IMPORTS, {"limit": 2}).json()
        assert [row["id"] for row in first["results"]] == [str(made[2].id), str(made[1].id)]
        second = client.get(first["next"]).json()
        assert [row["id"] for row in second["results"]] == [str(made[0].id)]
        assert second["next"] is None

    @pytest.mark.parametrize(
        "query", [{"cursor": "cD1ub3QtYS1kYXRl"}, {"cursor": "~~~"}, {"limit": "0"}]
    )
    def test_a_cursor_or_limit_it_did_not_issue_is_400(self, client_as, query) -> None:
        problem(client_as("editor").get(IMPORTS, query), 400, "malformed_request")

    @pytest.mark.parametrize(
        ("role", "status"), list(zip(ROLES, [401, 403, 403, 200, 200, 200], strict=True))
    )
    def test_editors_and_auditors_may_list_imports(self, client_as, role, status) -> None:
        record_import([])
        response = client_as(role).get(IMPORTS)
        if status == 200:
            assert response.status_code == 200
            assert len(response.json()["results"]) == 1
        else:
            problem(response, status, "not_authenticated" if status == 401 else "permission_denied")


class TestImportDetail:
    def test_shows_refused_rows_unresolved_names_and_the_events_in_ledger_order(
        self, client_as
    ) -> None:
        first, second = write_stream(2), write_stream(2)
        unrelated = write_stream(1)
        # Appended by the import in this ledger order: first[0], first[1], second[0], second[1].
        recorded = record_import(
            [second[1], first[0], second[0], first[1]],
            refused=[{"line": 14, "deal": "60917", "reason": "Order date: '20x9' is not a year"}],
            unresolved=["NATO**", "unknown supplier(s)"],
        )
        response = client_as("auditor").get(f"{IMPORTS}{recorded.id}/")
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert body["refused"] == [
            {"line": 14, "deal": "60917", "reason": "Order date: '20x9' is not a year"}
        ]
        assert (body["refused_count"], body["unresolved"]) == (1, ["NATO**", "unknown supplier(s)"])
        assert body["counts"]["appended"] == {"NoteAdded": 4}
        assert [e["event_id"] for e in body["events"]] == [
            str(e.event_id) for e in (first[0], first[1], second[0], second[1])
        ]
        assert str(unrelated[0].event_id) not in {e["event_id"] for e in body["events"]}
        assert body["events_next"] is None

    def test_events_are_in_the_shape_of_a_deal_s_events(self, client_as) -> None:
        events = write_stream(1)
        recorded = record_import(events)
        client = client_as("editor")
        shown = client.get(f"{IMPORTS}{recorded.id}/").json()["events"]
        stream = client.get(f"/api/v1/deals/{events[0].stream_id}/events/").json()["results"]
        assert shown == stream

    def test_events_come_limit_at_a_time_linked_by_events_next(self, client_as) -> None:
        events = write_stream(5)
        recorded = record_import(events)
        client = client_as("editor")
        url = f"{IMPORTS}{recorded.id}/"
        seen: list[str] = []
        page = client.get(url, {"limit": 2}).json()
        pages = 1
        while True:
            seen.extend(e["event_id"] for e in page["events"])
            if page["events_next"] is None:
                break
            assert page["events_next"].startswith(f"http://testserver{url}?after_position=")
            page = client.get(page["events_next"]).json()
            pages += 1
        assert seen == [str(e.event_id) for e in events]
        assert pages == 3

    def test_an_unknown_import_is_404(self, client_as) -> None:
        body = problem(client_as("editor").get(f"{IMPORTS}{uuid4()}/"), 404, "not_found")
        assert body["detail"].startswith("No import ")

    @pytest.mark.parametrize(
        "path", ["not-a-uuid/", "12345/", "00000000-0000-0000-0000-00000000000g/"]
    )
    def test_an_id_that_is_not_a_uuid_is_404(self, client_as, path) -> None:
        problem(client_as("editor").get(f"{IMPORTS}{path}"), 404, "not_found")

    @pytest.mark.parametrize(
        "query",
        [{"after_position": "-1"}, {"after_position": "x"}, {"limit": "0"}, {"limit": "1e3"}],
    )
    def test_a_bad_query_is_400(self, client_as, query) -> None:
        recorded = record_import([])
        problem(
            client_as("editor").get(f"{IMPORTS}{recorded.id}/", query), 400, "malformed_request"
        )

    @pytest.mark.parametrize(
        ("role", "status"), list(zip(ROLES, [401, 403, 403, 200, 200, 200], strict=True))
    )
    def test_editors_and_auditors_may_read_an_import(self, client_as, role, status) -> None:
        recorded = record_import([])
        response = client_as(role).get(f"{IMPORTS}{recorded.id}/")
        if status == 200:
            assert response.status_code == 200
            assert response.json()["id"] == str(recorded.id)
        else:
            problem(response, status, "not_authenticated" if status == 401 else "permission_denied")


class TestThroughTheImporter:
    """What `import_register` records is what the API shows."""

    def test_an_imported_edition_lists_the_events_it_appended(self, client_as) -> None:
        importer = pytest.importorskip("tracker.deals.registers.importer")
        for name, country, kind in [
            ("Government of Türkiye", "TR", "government"),
            ("Government of Ukraine", "UA", "government"),
            ("Government of Qatar", "QA", "government"),
        ]:
            organisation = Organisation.objects.create(name=name, kind=kind, country=country)
            RegisterName.objects.create(
                register="SIPRI", name=name.split(" of ")[1], organisation=organisation
            )
        RegisterName.objects.filter(name="Türkiye").update(name="Turkiye")
        content = (SAMPLES / "trade-register-2024.csv").read_bytes()
        report = importer.import_register(
            content, actor="alice", file_name="trade-register-2024.csv"
        )
        client = client_as("editor")
        listed = client.get(IMPORTS).json()["results"]
        assert [row["id"] for row in listed] == [str(report.import_id)]
        assert listed[0]["edition"] == report.edition.isoformat()
        assert listed[0]["digest"] == report.digest
        assert listed[0]["actor"] == "alice"
        assert listed[0]["refused_count"] == len(report.refused)
        assert listed[0]["unresolved"] == report.unresolved

        body = client.get(f"{IMPORTS}{report.import_id}/", {"limit": 1000}).json()
        deals = {UUID(e["deal"]) for e in body["events"]}
        in_ledger = sorted(
            (e for deal in deals for e in read_stream(deal)), key=lambda e: e.position
        )
        assert [e["event_id"] for e in body["events"]] == [str(e.event_id) for e in in_ledger]
        by_type: dict[str, int] = {}
        for event in body["events"]:
            by_type[event["type"]] = by_type.get(event["type"], 0) + 1
        assert by_type == report.appended
        assert all(e["actor"] == "alice" for e in body["events"])
