"""The deal pages of the admin through Django's test client: access, forms, escaping."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import pytest
from django.test import Client
from django.urls import reverse

from tracker.deals import services
from tracker.deals.events import EVENT_TYPES, META_TYPES
from tracker.eventstore.export import export_lines
from tracker.eventstore.models import Event
from tracker.eventstore.store import read_stream, stream_version
from tracker.projections.projector import project_deals

from .conftest import BAYKAR, LBA, LEONARDO, SOURCE, YEAR_2025, client_for, make_user

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script>'; DROP TABLE events; --"


def jv_form(shares: list[tuple[UUID, str]], **extra: str) -> dict[str, str]:
    form = {
        "data.venture": str(LBA),
        "data.headquarters_country": "IT",
        "data.scope": "",
        "occurred.date": "2025-06-17",
        "occurred.precision": "month",
        "source.title": "Report",
        "source.publisher": "unknown",
    }
    for index, (org, percent) in enumerate(shares):
        form[f"data.shares.{index}.organisation"] = str(org)
        form[f"data.shares.{index}.percent"] = percent
    form.update(extra)
    return form


def preview_then_save(client: Client, url: str, form: dict[str, str]) -> object:
    preview = client.post(url, {**form, "_preview": "1"})
    assert preview.status_code == 200
    assert preview.context["preview"] is not None, preview.context["form"].general_errors
    return client.post(url, {**form, "fingerprint": preview.context["fingerprint"], "_save": "1"})


class TestRecordEvent:
    def test_every_event_type_has_a_generated_form(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(superuser)
        for name in EVENT_TYPES:
            if name == "DealOpened":
                continue
            response = client.get(reverse("admin:deal_record", args=[deal, name]))
            assert response.status_code == 200, name
            assert b'name="expected_version" value="1"' in response.content
        opening = client.get(reverse("admin:deal_open"))
        assert b'name="data.parties.0.organisation"' in opening.content
        assert b'name="source.publisher"' in opening.content
        assert b'value="unknown"' in opening.content

    def test_preview_shows_the_changes_and_saves_nothing(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        url = reverse("admin:deal_record", args=[deal, "JointVentureFormed"])
        response = client_for(superuser).post(
            url,
            {
                **jv_form([(BAYKAR, "50"), (LEONARDO, "50")]),
                "expected_version": "2",
                "_preview": "1",
            },
        )
        preview = response.context["preview"]
        assert (preview["stage_before"], preview["stage_after"]) == ("mou_signed", "agreed")
        assert [c.field for c in preview["changes"]] == ["stage", "joint venture"]
        assert stream_version(deal) == 2

    def test_saves_after_preview_with_month_date_stored_as_first_of_month(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        url = reverse("admin:deal_record", args=[deal, "JointVentureFormed"])
        form = {**jv_form([(BAYKAR, "50"), (LEONARDO, "50")]), "expected_version": "2"}
        response = preview_then_save(client_for(superuser), url, form)
        assert response.status_code == 302
        stored = read_stream(deal)[-1]
        assert (stored.type, stored.actor, stored.occurred) == (
            "JointVentureFormed",
            "admin",
            {"date": "2025-06-01", "precision": "month"},
        )
        assert stored.data["shares"] == [
            {"organisation": str(BAYKAR), "percent": "50"},
            {"organisation": str(LEONARDO), "percent": "50"},
        ]

    def test_refuses_shares_summing_to_90_beside_the_shares_field_on_save(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        url = reverse("admin:deal_record", args=[deal, "JointVentureFormed"])
        form = {**jv_form([(BAYKAR, "50"), (LEONARDO, "40")]), "expected_version": "2"}
        response = client_for(superuser).post(url, {**form, "_save": "1"})
        fields = {f.path: f.errors for f in response.context["form"].data.fields}
        assert fields["data.shares"] == ["Shares must sum to exactly 100, not 90"]
        assert b'id="field-data-shares-errors"' in response.content
        assert stream_version(deal) == 2

    def test_an_unknown_organisation_is_named_beside_its_row(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        url = reverse("admin:deal_record", args=[deal, "JointVentureFormed"])
        stranger = "00000000-0000-4000-8000-0000000000ff"
        form = {
            **jv_form([(BAYKAR, "50"), (UUID(stranger), "50")]),
            "expected_version": "2",
            "_preview": "1",
        }
        response = client_for(superuser).post(url, form)
        rows = response.context["form"].data.fields[1].children
        assert rows[1].children[0].errors == ["Every shareholder must be a party to the deal"]
        assert stream_version(deal) == 2

    def test_a_stale_form_is_refused_and_shows_the_newer_event(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(superuser)
        url = reverse("admin:deal_record", args=[deal, "NoteAdded"])
        form = {
            "data.text": "mine",
            "occurred.date": "2025-03-01",
            "occurred.precision": "day",
            "source.title": "Report",
            "source.publisher": "unknown",
            "expected_version": "1",
        }
        preview = client.post(url, {**form, "_preview": "1"})
        services.record_event(
            deal_id=deal,
            event_type="NoteAdded",
            data={"text": "theirs"},
            occurred=YEAR_2025,
            source=SOURCE,
            expected_version=1,
            actor="someone-else",
        )
        response = client.post(
            url, {**form, "fingerprint": preview.context["fingerprint"], "_save": "1"}
        )
        assert response.status_code == 200
        assert response.context["conflict"].current_version == 2
        assert [row.event.actor for row in response.context["newer"]] == ["someone-else"]
        assert b"theirs" in response.content
        assert b">mine</textarea>" in response.content
        assert b'name="expected_version" value="2"' in response.content
        assert [e.data["text"] for e in read_stream(deal)[1:]] == ["theirs"]

    def test_retract_from_a_row_requires_a_reason_and_keeps_the_original_marked(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        mou = read_stream(deal)[1]
        client = client_for(superuser)
        url = reverse("admin:deal_record", args=[deal, "FactRetracted"])
        page = client.get(url + f"?event_id={mou.event_id}")
        assert f'value="{mou.event_id}" selected'.encode() in page.content
        form = {
            "data.event_id": str(mou.event_id),
            "data.reason": "",
            "occurred.date": "2025-07-01",
            "occurred.precision": "day",
            "source.title": "Correction notice",
            "source.publisher": "unknown",
            "expected_version": "2",
        }
        refused = client.post(url, {**form, "_preview": "1"})
        reason = next(f for f in refused.context["form"].data.fields if f.name == "data.reason")
        assert reason.errors == ["This field is required."]
        saved = preview_then_save(client, url, {**form, "data.reason": "misreported"})
        assert saved.status_code == 302
        page = client.get(reverse("admin:deal_page", args=[deal]))
        assert b"retracted by v3" in page.content
        assert [e.type for e in read_stream(deal)] == ["DealOpened", "MouSigned", "FactRetracted"]

    def test_correct_from_a_row_sends_only_what_changed(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        mou = read_stream(deal)[1]
        client = client_for(superuser)
        url = reverse("admin:deal_correct", args=[deal, mou.event_id])
        page = client.get(url)
        assert page.status_code == 200
        assert f'<option value="{BAYKAR}" selected'.encode() in page.content
        form = {
            "data.data.parties.0": str(BAYKAR),
            "data.data.parties.1": str(LEONARDO),
            "data.data.scope": "",
            "data.occurred.date": "2025-03-01",
            "data.occurred.precision": "month",
            "data.reason": "the MoU was signed in March",
            "occurred.date": "2025-07-01",
            "occurred.precision": "day",
            "source.title": "Follow-up report",
            "source.publisher": "unknown",
            "expected_version": "2",
        }
        saved = preview_then_save(client, url, form)
        assert saved.status_code == 302
        correction = read_stream(deal)[-1]
        assert (correction.type, correction.data["data"]) == ("FactCorrected", None)
        assert correction.data["event_id"] == str(mou.event_id)
        assert correction.data["occurred"] == {"date": "2025-03-01", "precision": "month"}
        assert correction.data["reason"] == "the MoU was signed in March"
        page = client.get(reverse("admin:deal_page", args=[deal]))
        assert b"corrected by v3" in page.content

    def test_a_correction_starts_from_the_fact_in_force_and_a_retracted_one_is_not(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        mou = read_stream(deal)[1]
        march, april = (
            {"date": f"2025-{month}-01", "precision": "month"} for month in ("03", "04")
        )
        for kind, data in (
            ("FactCorrected", {"event_id": str(mou.event_id), "occurred": march}),
            ("FactCorrected", {"event_id": str(mou.event_id), "occurred": april}),
        ):
            services.record_event(
                deal_id=deal,
                event_type=kind,
                data={**data, "reason": "re-dated"},
                occurred={"date": "2025-07-01", "precision": "day"},
                source=SOURCE,
                expected_version=stream_version(deal),
                actor="fixture",
            )
        april_correction = read_stream(deal)[-1]
        services.record_event(
            deal_id=deal,
            event_type="FactRetracted",
            data={"event_id": str(april_correction.event_id), "reason": "April was wrong"},
            occurred={"date": "2025-07-02", "precision": "day"},
            source=SOURCE,
            expected_version=4,
            actor="fixture",
        )
        client = client_for(superuser)
        form = client.get(reverse("admin:deal_correct", args=[deal, mou.event_id])).context["form"]
        occurred = form.extras[0].fields[0]
        # The date as corrected, and the estimate flag (the correction did not set it).
        assert [child.value for child in occurred.children] == ["2025-03-01", "month", "false"]
        rows = {
            row.event.version: row
            for row in client.get(reverse("admin:deal_page", args=[deal])).context["rows"]
        }
        assert (rows[2].corrected_by, rows[4].retracted_by) == ((3,), 5)
        bars = client.get(reverse("admin:deal_audit", args=[deal])).context["bars"]
        assert next(bar for bar in bars if bar.row.event.version == 2).label == "March 2025 (month)"


class TestAccess:
    def test_events_have_no_change_delete_or_history_view_for_a_superuser(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        open_deal()
        event = Event.objects.get()
        client = client_for(superuser)
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:eventstore_event_{view}", args=[event.pk])
            assert client.get(url).status_code == 403, view
            assert client.post(url, {"post": "yes"}).status_code == 403, view
        listing = client.get(reverse("admin:eventstore_event_changelist"))
        assert listing.status_code == 200
        assert b'name="action"' not in listing.content
        assert reverse("admin:eventstore_event_add").encode() not in listing.content
        assert client.get(reverse("admin:eventstore_event_add")).status_code == 403
        assert Event.objects.count() == 1

    def test_event_list_filters_by_deal_type_and_actor_and_searches(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        first = open_deal(mou=True)
        open_deal(title="Other")
        client = client_for(superuser)
        url = reverse("admin:eventstore_event_changelist")
        by_deal = client.get(url, {"stream__id__exact": str(first)})
        assert by_deal.context["cl"].result_count == 2
        by_type = client.get(url, {"type": "MouSigned", "actor": "fixture"})
        assert [e.type for e in by_type.context["cl"].result_list] == ["MouSigned"]
        searched = client.get(url, {"q": "MouSigned"})
        assert searched.context["cl"].result_count == 1

    def test_staff_without_a_role_cannot_see_deals_or_audit(
        self, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(make_user("staff-only"))
        assert client.get(reverse("admin:deal_audit", args=[deal])).status_code == 403
        assert client.get(reverse("admin:deal_page", args=[deal])).status_code == 403
        assert client.get(reverse("admin:deal_list")).status_code == 403

    def test_a_reader_is_sent_to_the_login_page(self, open_deal: Callable[..., UUID]) -> None:
        deal = open_deal()
        client = client_for(make_user("reader", groups=("reader",), staff=False))
        for url in (reverse("admin:index"), reverse("admin:deal_audit", args=[deal])):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))

    def test_an_auditor_may_audit_but_not_record(
        self, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(auditor)
        assert client.get(reverse("admin:deal_audit", args=[deal])).status_code == 200
        record = reverse("admin:deal_record", args=[deal, "NoteAdded"])
        assert client.get(record).status_code == 403
        assert client.get(reverse("admin:deal_open")).status_code == 403

    def test_an_editor_may_record_but_not_audit(
        self, editor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(editor)
        assert client.get(reverse("admin:deal_record", args=[deal, "NoteAdded"])).status_code == 200
        assert client.get(reverse("admin:deal_audit", args=[deal])).status_code == 403


class TestExport:
    def test_an_auditor_downloads_the_event_store_s_export_of_the_deal(
        self, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        response = client_for(auditor).get(reverse("admin:deal_export", args=[deal]))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-ndjson"
        assert response["Content-Disposition"] == f'attachment; filename="deal-{deal}.jsonl"'

        def lines(chunks: Iterable[bytes]) -> list[dict[str, Any]]:
            found = [json.loads(line) for line in b"".join(chunks).splitlines()]
            found[0].pop("exported_at")
            return found

        downloaded = lines(response.streaming_content)
        assert downloaded == lines(export_lines(deal))
        assert [line["version"] for line in downloaded[1:]] == [1, 2]

    def test_an_editor_may_not_export_and_an_unknown_deal_is_404(
        self, editor: object, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        assert client_for(editor).get(reverse("admin:deal_export", args=[deal])).status_code == 403
        unknown = reverse("admin:deal_export", args=["00000000-0000-4000-8000-000000000000"])
        assert client_for(auditor).get(unknown).status_code == 404


@pytest.mark.django_db(transaction=True)
class TestEscaping:
    def test_html_and_sql_in_text_render_escaped_everywhere(
        self, superuser: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(title=HOSTILE)
        services.record_event(
            deal_id=deal,
            event_type="NoteAdded",
            data={"text": HOSTILE},
            occurred=YEAR_2025,
            source={"title": HOSTILE, "publisher": HOSTILE},
            expected_version=1,
            actor="fixture",
        )
        client = client_for(superuser)
        pages = [
            reverse("admin:deal_page", args=[deal]),
            reverse("admin:deal_audit", args=[deal]),
            reverse("admin:eventstore_event_changelist"),
            reverse("admin:deal_list"),
            reverse("admin:deal_correct", args=[deal, read_stream(deal)[1].event_id]),
        ]
        for url in pages:
            body = client.get(url).content.decode()
            assert "<script>alert(" not in body, url
            assert "&lt;script&gt;alert(" in body, url


def test_meta_types_are_not_offered_in_the_record_menu(
    superuser: object, open_deal: Callable[..., UUID]
) -> None:
    deal = open_deal()
    page = client_for(superuser).get(reverse("admin:deal_page", args=[deal]))
    offered = page.context["event_types"]
    assert not set(offered) & set(META_TYPES)
    assert "JointVentureFormed" in offered


def test_an_organisation_with_an_unknown_country_is_refused(superuser: object) -> None:
    from tracker.deals.models import Organisation

    client = client_for(superuser)
    url = reverse("admin:deals_organisation_add")
    form = {"name": "Nowhere Aero", "short_name": "", "kind": "company", "country": "XX"}
    response = client.post(url, form)
    assert response.status_code == 200
    assert "XX is not an ISO 3166-1 alpha-2 country code" in response.content.decode()
    assert client.post(url, {**form, "country": "IT"}).status_code == 302
    assert list(Organisation.objects.values_list("name", "country")) == [("Nowhere Aero", "IT")]


PARTIES = '<td class="field-party_names">Baykar Technologies (Baykar), Leonardo</td>'


def test_the_deal_list_names_the_parties_in_queries_that_do_not_grow_with_the_page(
    superuser: object, open_deal: Callable[..., UUID], django_assert_max_num_queries: Any
) -> None:
    client = client_for(superuser)
    # Projected here: the on-commit dispatch does not run inside a test's transaction.
    project_deals([open_deal(title=f"Deal {n}") for n in range(3)], wait=True)
    with django_assert_max_num_queries(12) as few:
        response = client.get(reverse("admin:deal_list"))
    assert response.status_code == 200
    assert response.content.decode().count(PARTIES) == 3
    project_deals([open_deal(title=f"Deal {n}") for n in range(3, 12)], wait=True)
    with django_assert_max_num_queries(len(few)):
        response = client.get(reverse("admin:deal_list"))
    assert response.content.decode().count(PARTIES) == 12
