"""Registers in the admin: the names' mapping, the imports' records and the upload page."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tracker.backoffice import imports
from tracker.deals.models import ImportedEvent, Organisation, RegisterImport, RegisterName
from tracker.deals.registers.importer import deal_id_for, import_register
from tracker.eventstore.store import read_stream

from .conftest import client_for, make_user

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "tracker" / "deals" / "fixtures" / "sipri"
EDITION_2024 = SAMPLES / "trade-register-2024.csv"
EDITION_2025 = SAMPLES / "trade-register-2025.csv"
UPLOAD = reverse("admin:register_import_upload")
IMPORTS = reverse("admin:deals_registerimport_changelist")
NAMES = reverse("admin:deals_registername_changelist")
UNKNOWN = "unknown supplier(s)"
# The sample's names as SIPRI spells them, each a government (the sample's own mapping).
GOVERNMENTS = {
    "Turkiye": ("Government of Türkiye", "TR"),
    "Italy": ("Government of Italy", "IT"),
    "Poland": ("Government of Poland", "PL"),
    "Ukraine": ("Government of Ukraine", "UA"),
    "Qatar": ("Government of Qatar", "QA"),
    "Germany": ("Government of Germany", "DE"),
}


@pytest.fixture
def names() -> dict[str, Organisation]:
    """The sample's names mapped to organisations, but for "unknown supplier(s)"."""
    found = {}
    for name, (organisation, country) in GOVERNMENTS.items():
        found[name] = Organisation.objects.create(
            name=organisation, kind="government", country=country
        )
        RegisterName.objects.create(register="SIPRI", name=name, organisation=found[name])
    return found


def upload(client: Client, path: Path, **extra: str) -> object:
    file = SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv")
    return client.post(UPLOAD, {"file": file, **extra})


def form_errors(response: object) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


class TestUploadPage:
    def test_an_editor_imports_an_edition_and_reads_the_command_s_report(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        assert client.get(UPLOAD).status_code == 200
        response = upload(client, EDITION_2024)
        assert response.status_code == 200
        report = response.context["report"]
        assert response.context["report_lines"] == report.lines()
        content = response.content.decode()
        for line in report.lines():
            assert html.escape(line) in content
        recorded = RegisterImport.objects.get()
        assert (recorded.id, recorded.actor, recorded.file_name) == (
            report.import_id,
            "editor",
            "trade-register-2024.csv",
        )
        assert recorded.edition.isoformat() == "2024-03-11"
        # What the services appended: the deals of the file, by the editor, each in its stream.
        tb2 = read_stream(deal_id_for("SIPRI:60123"))
        assert [e.type for e in tb2] == [
            "DealOpened",
            "ContractAwarded",
            "DeliveryRecorded",
            "DeliveryRecorded",
            "DeliveryRecorded",
        ]
        assert {e.actor for e in tb2} == {"editor"}
        assert ImportedEvent.objects.filter(register_import=recorded).count() == sum(
            report.appended.values()
        )
        assert reverse("admin:deals_registerimport_change", args=[recorded.id]) in content

    def test_unresolved_names_link_to_the_mapping_s_add_form_prefilled(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        response = upload(client, EDITION_2024)
        assert response.context["report"].unresolved == [UNKNOWN]
        add = reverse("admin:deals_registername_add")
        link = f"{add}?{urlencode({'register': 'SIPRI', 'name': UNKNOWN})}"
        assert response.context["unresolved"] == [(UNKNOWN, link)]
        assert html.escape(link) in response.content.decode()
        # The deal naming it was refused, with its rows' lines and the reason.
        assert read_stream(deal_id_for("SIPRI:60752")) == []
        refused = response.context["report"].refused
        assert [(r.line, r.deal) for r in refused] == [(23, "60752"), (24, "60752")]

        form = client.get(link)
        assert form.status_code == 200
        assert form.context["adminform"].form.initial == {"register": "SIPRI", "name": UNKNOWN}
        assert f'value="{html.escape(UNKNOWN)}"' in form.content.decode()

    def test_mapping_the_name_then_importing_again_imports_the_refused_deal(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        upload(client, EDITION_2024)
        unknown = Organisation.objects.create(name="Unknown supplier", kind="company", country="")
        added = client.post(
            reverse("admin:deals_registername_add"),
            {"register": "SIPRI", "name": UNKNOWN, "organisation": str(unknown.id)},
        )
        assert added.status_code == 302, added.context["adminform"].form.errors
        again = upload(client, EDITION_2024)
        report = again.context["report"]
        assert (report.unresolved, report.refused, report.deals_opened) == ([], [], 1)
        assert read_stream(deal_id_for("SIPRI:60752"))[0].type == "DealOpened"

    def test_the_edition_given_overrides_the_file_s(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        response = upload(client_for(editor), EDITION_2024, edition="2024-04-30")
        assert response.context["report"].edition.isoformat() == "2024-04-30"
        assert RegisterImport.objects.get().edition.isoformat() == "2024-04-30"

    def test_a_file_that_is_no_register_is_a_form_error_and_imports_nothing(
        self, editor: object
    ) -> None:
        file = SimpleUploadedFile("notes.csv", b"just,some\ncsv,text\n", content_type="text/csv")
        response = client_for(editor).post(UPLOAD, {"file": file})
        assert response.status_code == 200
        assert response.context["report"] is None
        (error,) = form_errors(response)["file"]
        assert error.startswith("The file was refused, nothing was imported: ")
        assert error.endswith("'Deal ID'.")
        assert RegisterImport.objects.count() == 0

    def test_an_edition_older_than_one_imported_is_refused(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        upload(client, EDITION_2025)
        response = upload(client, EDITION_2024)
        (error,) = form_errors(response)["file"]
        assert "2025-03-10 is already imported" in error
        assert RegisterImport.objects.count() == 1

    def test_a_file_over_the_limit_is_refused_before_it_is_read(
        self, editor: object, names: dict[str, Organisation], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", EDITION_2024.stat().st_size - 1)
        response = upload(client_for(editor), EDITION_2024)
        (error,) = form_errors(response)["file"]
        assert error.startswith("This file is 0.0 MB: the limit is 50 MB.")
        assert RegisterImport.objects.count() == 0

    def test_the_limit_is_50_megabytes(self) -> None:
        assert imports.MAX_UPLOAD_BYTES == 50 * 1024 * 1024
        over = imports.RegisterUploadForm(
            files={"file": SimpleUploadedFile("big.csv", b"x")}, data={}
        )
        over.files["file"].size = imports.MAX_UPLOAD_BYTES + 1
        assert over.is_valid() is False
        assert over.errors["file"] == ["This file is 50.0 MB: the limit is 50 MB."]

    def test_a_missing_file_or_a_bad_date_is_a_form_error(self, editor: object) -> None:
        response = client_for(editor).post(UPLOAD, {"edition": "11 March"})
        assert form_errors(response) == {
            "file": ["This field is required."],
            "edition": ["Enter a valid date."],
        }

    def test_only_editors_may_import(self, auditor: object) -> None:
        assert client_for(auditor).get(UPLOAD).status_code == 403
        file = SimpleUploadedFile("x.csv", EDITION_2024.read_bytes())
        assert client_for(auditor).post(UPLOAD, {"file": file}).status_code == 403
        assert client_for(make_user("staff-only")).get(UPLOAD).status_code == 403
        assert RegisterImport.objects.count() == 0


class TestImportRecords:
    def test_the_list_links_the_upload_page_for_editors_only(
        self, editor: object, auditor: object, names: dict[str, Organisation]
    ) -> None:
        import_register(EDITION_2024.read_bytes(), actor="alice", file_name="a.csv")
        for user, linked in ((editor, True), (auditor, False)):
            response = client_for(user).get(IMPORTS)
            assert response.status_code == 200
            assert response.context["cl"].result_count == 1
            assert (f'href="{UPLOAD}"' in response.content.decode()) is linked
            assert reverse("admin:deals_registerimport_add") not in response.content.decode()

    def test_an_import_shows_its_counts_refused_rows_unresolved_names_and_deals(
        self, editor: object, auditor: object, names: dict[str, Organisation]
    ) -> None:
        report = import_register(EDITION_2024.read_bytes(), actor="alice", file_name="a.csv")
        url = reverse("admin:deals_registerimport_change", args=[report.import_id])
        response = client_for(editor).get(url)
        assert response.status_code == 200
        content = response.content.decode()
        assert "Kirpi" not in content  # the refused deal has no page to link
        assert "<td>23</td><td>60752</td>" in content
        assert html.escape(f"no organisation answers to '{UNKNOWN}'") in content
        add = reverse("admin:deals_registername_add")
        assert html.escape(f"{add}?{urlencode({'register': 'SIPRI', 'name': UNKNOWN})}") in content
        assert reverse("admin:deal_page", args=[deal_id_for("SIPRI:60123")]) in content
        assert "DeliveryRecorded" in content
        assert 'name="_save"' not in content
        # An auditor reads the same record, without the link to a form they may not use.
        audited = client_for(auditor).get(url)
        assert audited.status_code == 200
        assert audited.context["unresolved"] == [(UNKNOWN, "")]
        assert add not in audited.content.decode()

    def test_an_import_that_did_not_finish_says_so(self, auditor: object) -> None:
        stopped = RegisterImport.objects.create(
            edition="2025-03-10",
            file_format="csv",
            digest="ab" * 32,
            actor="alice",
            started_at="2025-03-11T09:00:00Z",
        )
        client = client_for(auditor)
        assert client.get(IMPORTS).context["cl"].result_count == 1
        page = client.get(reverse("admin:deals_registerimport_change", args=[stopped.id]))
        assert page.status_code == 200
        assert "Not finished: running, or stopped before its end" in page.content.decode()

    def test_nobody_adds_changes_or_deletes_an_import_by_hand(
        self, superuser: object, names: dict[str, Organisation]
    ) -> None:
        report = import_register(EDITION_2024.read_bytes(), actor="alice", file_name="a.csv")
        client = client_for(superuser)
        change = reverse("admin:deals_registerimport_change", args=[report.import_id])
        delete = reverse("admin:deals_registerimport_delete", args=[report.import_id])
        assert client.get(reverse("admin:deals_registerimport_add")).status_code == 403
        assert client.post(change, {"actor": "mallory"}).status_code == 403
        assert client.get(delete).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        listing = client.get(IMPORTS)
        assert b'name="action"' not in listing.content
        assert RegisterImport.objects.get().actor == "alice"

    def test_staff_without_a_role_cannot_see_imports_or_names(self) -> None:
        client = client_for(make_user("staff-only"))
        assert client.get(IMPORTS).status_code == 403
        assert client.get(NAMES).status_code == 403


class TestRegisterNames:
    def test_an_editor_maps_a_name_and_searches_by_name(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        listing = client.get(NAMES, {"q": "turk"})
        assert [str(n) for n in listing.context["cl"].result_list] == ["SIPRI: Turkiye"]
        added = client.post(
            reverse("admin:deals_registername_add"),
            {"register": "SIPRI", "name": "Türkiye", "organisation": str(names["Turkiye"].id)},
        )
        assert added.status_code == 302
        assert RegisterName.objects.get(name="Türkiye").organisation == names["Turkiye"]

    def test_the_organisation_is_chosen_by_autocomplete(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(editor)
        form = client.get(reverse("admin:deals_registername_add"))
        assert b'class="admin-autocomplete' in form.content
        found = client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": "deals",
                "model_name": "registername",
                "field_name": "organisation",
                "term": "Ital",
            },
        )
        assert found.status_code == 200
        assert [r["text"] for r in found.json()["results"]] == ["Government of Italy"]

    def test_a_name_is_mapped_once_per_register(
        self, editor: object, names: dict[str, Organisation]
    ) -> None:
        response = client_for(editor).post(
            reverse("admin:deals_registername_add"),
            {"register": "SIPRI", "name": "Turkiye", "organisation": str(names["Italy"].id)},
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
        assert RegisterName.objects.get(name="Turkiye").organisation == names["Turkiye"]

    def test_an_auditor_reads_the_mapping_but_may_not_change_it(
        self, auditor: object, names: dict[str, Organisation]
    ) -> None:
        client = client_for(auditor)
        assert client.get(NAMES).status_code == 200
        assert client.get(reverse("admin:deals_registername_add")).status_code == 403
        mapped = RegisterName.objects.get(name="Turkiye")
        change = reverse("admin:deals_registername_change", args=[mapped.pk])
        client.post(change, {"register": "SIPRI", "name": "X", "organisation": str(mapped.pk)})
        assert RegisterName.objects.get(pk=mapped.pk).name == "Turkiye"
