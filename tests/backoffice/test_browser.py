"""The admin in a real browser (headless Chromium) against a live server on PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tracker.deals import services
from tracker.deals.management.commands.seed_demo import deal_id as demo_deal_id
from tracker.eventstore.models import Event, Stream
from tracker.eventstore.store import read_stream, stream_version

from .conftest import BAYKAR, LBA, LEONARDO, SCREENSHOTS, SOURCE, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def fill_source(page: object, title: str = "Turkish drone makers court Europe") -> None:
    page.fill("#id_source-title", title)
    assert page.input_value("#id_source-publisher") == "unknown"


def preview(page: object) -> None:
    assert page.locator("#button-save").count() == 0
    page.click("#button-preview")
    page.wait_for_load_state()


def test_admin_opens_a_deal_and_records_mou_then_joint_venture(
    login: Callable[[User], object],
    superuser: User,
    organisations: dict[str, UUID],
    live_server: object,
) -> None:
    page = login(superuser)
    page.goto(f"{live_server.url}/admin/projections/dealstate/")
    page.click("#open-deal")
    # The filters work once the deferred admin.js has run, at the load event.
    page.wait_for_load_state()

    page.fill("#id_data-title", "Baykar and Leonardo: LBA Systems")
    page.select_option("#id_data-kind", "joint_venture")
    page.fill("[data-for=id_data-parties-0-organisation]", "baykar")
    assert page.input_value("#id_data-parties-0-organisation") == str(BAYKAR)
    page.fill("#id_data-parties-0-role", "partner")
    page.select_option("#id_data-parties-1-organisation", str(LEONARDO))
    page.fill("#id_data-parties-1-role", "partner")
    page.fill("#id_occurred-date", "2025-01-01")
    page.select_option("#id_occurred-precision", "year")
    fill_source(page)
    preview(page)
    assert page.text_content("#preview-stage") == "announced"
    page.click("#button-save")
    page.wait_for_load_state()
    deal = Stream.objects.get().id

    page.click("#record-MouSigned")
    page.wait_for_load_state()
    page.select_option("#id_data-parties-0", str(BAYKAR))
    page.select_option("#id_data-parties-1", str(LEONARDO))
    page.fill("#id_occurred-date", "2025-03-10")
    page.select_option("#id_occurred-precision", "year")
    fill_source(page)
    preview(page)
    assert page.text_content("#preview-stage") == "mou_signed"
    page.click("#button-save")
    page.wait_for_load_state()

    page.click("#record-JointVentureFormed")
    page.wait_for_load_state()
    page.select_option("#id_data-venture", str(LBA))
    page.select_option("#id_data-shares-0-organisation", str(BAYKAR))
    page.fill("#id_data-shares-0-percent", "50")
    page.select_option("#id_data-shares-1-organisation", str(LEONARDO))
    page.fill("#id_data-shares-1-percent", "50")
    page.fill("[data-for=id_data-headquarters_country]", "IT")
    page.select_option("#id_data-headquarters_country", "IT")
    page.fill("#id_data-scope", "The whole life cycle of unmanned systems.")
    page.fill("#id_occurred-date", "2025-06-15")
    page.select_option("#id_occurred-precision", "month")
    fill_source(page)
    preview(page)
    assert page.text_content("#preview-stage") == "agreed"
    changes = page.text_content("#preview-changes")
    assert "joint venture" in changes
    assert "LBA Systems" in changes
    assert stream_version(deal) == 2, "a preview appends nothing"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "record-event.png"), full_page=True)
    page.click("#button-save")
    page.wait_for_load_state()
    assert "Recorded JointVentureFormed as version 3" in page.text_content(".messagelist")

    page.goto(f"{live_server.url}/admin/projections/dealstate/")
    row = page.locator("#result_list tbody tr", has_text="Baykar and Leonardo: LBA Systems")
    assert row.locator("td.field-stage").text_content() == "agreed"
    assert "Baykar Technologies" in row.locator("td.field-party_names").text_content()
    assert [(e.type, e.actor) for e in read_stream(deal)] == [
        ("DealOpened", "admin"),
        ("MouSigned", "admin"),
        ("JointVentureFormed", "admin"),
    ]


def test_shares_summing_to_90_are_refused_beside_the_shares_field(
    login: Callable[[User], object],
    superuser: User,
    open_deal: Callable[..., UUID],
    live_server: object,
) -> None:
    deal = open_deal(mou=True)
    page = login(superuser)
    page.goto(f"{live_server.url}/admin/projections/dealstate/{deal}/record/JointVentureFormed/")
    page.select_option("#id_data-venture", str(LBA))
    page.select_option("#id_data-shares-0-organisation", str(BAYKAR))
    page.fill("#id_data-shares-0-percent", "50")
    page.select_option("#id_data-shares-1-organisation", str(LEONARDO))
    page.fill("#id_data-shares-1-percent", "40")
    page.select_option("#id_data-headquarters_country", "IT")
    page.fill("#id_occurred-date", "2025-06-01")
    page.select_option("#id_occurred-precision", "month")
    fill_source(page)
    page.click("#button-preview")
    page.wait_for_load_state()

    message = page.locator("#field-data-shares > .errorlist")
    assert message.text_content().strip() == "Shares must sum to exactly 100, not 90"
    assert page.locator("#preview").count() == 0
    assert page.locator("#button-save").count() == 0
    assert page.input_value("#id_data-shares-1-percent") == "40", "nothing typed is lost"
    assert stream_version(deal) == 2


def test_second_session_saving_the_same_deal_is_refused_with_the_newer_event(
    login: Callable[[User], object],
    superuser: User,
    editor: User,
    open_deal: Callable[..., UUID],
    live_server: object,
) -> None:
    deal = open_deal()
    url = f"{live_server.url}/admin/projections/dealstate/{deal}/record/NoteAdded/"
    first, second = login(superuser), login(editor)
    for page, text in ((first, "first analyst's note"), (second, "second analyst's note")):
        page.goto(url)
        page.fill("#id_data-text", text)
        page.fill("#id_occurred-date", "2025-07-01")
        fill_source(page)
        preview(page)

    first.click("#button-save")
    first.wait_for_load_state()
    second.click("#button-save")
    second.wait_for_load_state()

    assert "Not saved" in second.text_content("#conflict")
    newer = second.locator("#newer-events")
    assert "first analyst's note" in newer.text_content()
    assert "admin" in newer.text_content()
    assert second.input_value("#id_data-text") == "second analyst's note"
    assert [e.data["text"] for e in read_stream(deal)[1:]] == ["first analyst's note"]

    preview(second)
    second.click("#button-save")
    second.wait_for_load_state()
    assert [(e.data["text"], e.actor) for e in read_stream(deal)[1:]] == [
        ("first analyst's note", "admin"),
        ("second analyst's note", "editor"),
    ]


def test_event_change_and_delete_views_answer_403_for_a_superuser(
    login: Callable[[User], object],
    superuser: User,
    open_deal: Callable[..., UUID],
    live_server: object,
) -> None:
    open_deal(mou=True)
    page = login(superuser)
    event = Event.objects.order_by("position").last()
    for view in ("change", "delete"):
        response = page.goto(f"{live_server.url}/admin/eventstore/event/{event.pk}/{view}/")
        assert response.status == 403, view
    page.goto(f"{live_server.url}/admin/eventstore/event/")
    assert page.locator("select[name=action]").count() == 0
    assert page.locator("#result_list tbody tr").count() == 2
    assert page.locator("#result_list a[href$='/change/']").count() == 2, "deal links only"
    assert Event.objects.count() == 2


def test_auditor_replays_deal_2_as_of_may_2025_and_verifies_it(
    login: Callable[[User], object], auditor: User, live_server: object
) -> None:
    call_command("seed_demo", verbosity=0)
    deal = demo_deal_id(2)
    page = login(auditor)
    page.goto(f"{live_server.url}/admin/projections/dealstate/")
    page.click("text=Baykar and Leonardo: LBA Systems")
    page.click("#link-audit")
    assert page.locator(".dt-tl-row[data-type=JointVentureFormed][data-precision=month]").count()
    assert page.locator(".dt-tl-row[data-type=MouSigned][data-precision=year]").count()

    page.fill("#id_as_of", "2025-05-31")
    page.click("#button-replay")
    page.wait_for_load_state()
    assert page.text_content("#replayed-stage") == "mou_signed"
    assert page.text_content("#replayed-uncertain") == "yes"
    assert "joint venture" in page.text_content("#differences")
    assert page.text_content("#verify-result").strip() == "✔ valid"
    assert page.text_content("#head-hash") == Stream.objects.get(id=deal).head_hash
    assert page.get_attribute("#export-link", "href") == (
        f"/admin/projections/dealstate/{deal}/export/"
    )
    with page.expect_download() as download:
        page.click("#export-link")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert (header["deal"], header["head"]) == (str(deal), Stream.objects.get(id=deal).head_hash)
    assert [json.loads(line)["version"] for line in lines[1:]] == list(
        range(1, header["events"] + 1)
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "timeline.png"), full_page=True)


def test_auditor_compares_two_points_around_the_joint_venture_of_deal_2(
    login: Callable[[User], object], auditor: User, live_server: object
) -> None:
    call_command("seed_demo", verbosity=0)
    page = login(auditor)
    page.goto(f"{live_server.url}/admin/projections/dealstate/{demo_deal_id(2)}/audit/")
    assert page.locator("#diff-none").count() == 1

    # Picked on the timeline: the MoU and the joint venture, as of when each happened.
    page.check("#pick-from-v2")
    page.check("#pick-to-v3")
    page.select_option("#id_pick_by", "as_of")
    page.click("#button-compare-picks")
    page.wait_for_load_state()
    rows = page.locator("#diff tbody tr")
    assert [rows.nth(i).get_attribute("data-path") for i in range(rows.count())] == [
        "/stage",
        "/joint_venture",
    ]
    stage = page.locator("#diff tr[data-path='/stage']")
    assert "mou_signed" in stage.text_content()
    assert "agreed" in stage.text_content()
    venture = page.locator("#diff tr[data-path='/joint_venture']")
    assert "LBA Systems" in venture.text_content()
    for row in (stage, venture):
        assert row.locator(".dt-explained a").all_text_contents() == ["v3 JointVentureFormed"]
    assert page.input_value("#id_from_as_of") == "2025-01-01"
    assert page.input_value("#id_to_as_of") == "2025-06-01"
    assert page.is_checked("#pick-from-v2") is True
    assert page.is_checked("#pick-to-v3") is True

    # The explaining event links to its row on the timeline, which is marked.
    venture.locator(".dt-explained a").click()
    assert page.url.endswith("#event-v3")
    assert "is-explaining" in page.get_attribute("#event-v3", "class")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "audit-diff.png"), full_page=True)

    # The same through the form: the end of May 2025 against New Year 2026.
    page.fill("#id_from_as_of", "2025-05-31")
    page.fill("#id_to_as_of", "2026-01-01")
    page.click("#button-compare")
    page.wait_for_load_state()
    paths = page.locator("#diff tbody tr").evaluate_all("rows => rows.map(r => r.dataset.path)")
    assert paths == ["/stage", "/joint_venture", "/uncertain"]
    assert "JointVentureFormed" in page.text_content("#diff tr[data-path='/stage']")
    assert page.text_content("#compare-from") == "as of 2025-05-31"


def test_timeline_marks_retracted_and_corrected_facts(
    login: Callable[[User], object],
    auditor: User,
    open_deal: Callable[..., UUID],
    live_server: object,
) -> None:
    deal = open_deal(mou=True)
    note = services.record_event(
        deal_id=deal,
        event_type="NoteAdded",
        data={"text": "wrong"},
        occurred={"date": "2025-02-03", "precision": "day"},
        source=SOURCE,
        expected_version=2,
        actor="fixture",
    ).events[0]
    mou = read_stream(deal)[1]
    for kind, data in (
        ("FactRetracted", {"event_id": str(note.event_id), "reason": "misread"}),
        (
            "FactCorrected",
            {
                "event_id": str(mou.event_id),
                "occurred": {"date": "2025-03-01", "precision": "month"},
                "reason": "signed in March",
            },
        ),
    ):
        services.record_event(
            deal_id=deal,
            event_type=kind,
            data=data,
            occurred={"date": "2025-07-01", "precision": "day"},
            source=SOURCE,
            expected_version=stream_version(deal),
            actor="fixture",
        )
    page = login(auditor)
    page.goto(f"{live_server.url}/admin/projections/dealstate/{deal}/audit/")
    retracted = page.locator(".dt-tl-row.is-retracted")
    assert re.search(r"v3 NoteAdded\s+retracted by v4", retracted.text_content())
    corrected = page.locator(".dt-tl-row.is-corrected")
    assert "corrected by v5" in corrected.text_content()
    assert corrected.get_attribute("data-precision") == "month"
    assert corrected.locator(".dt-ghost").count() == 1, "the original year is drawn too"


def test_a_reader_cannot_reach_the_admin_or_the_auditor_pages(
    browser: object, open_deal: Callable[..., UUID], live_server: object
) -> None:
    deal = open_deal()
    make_user("reader", groups=("reader",), staff=False)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "reader")
        page.fill("#id_password", "a-long-test-password")
        page.click("input[type=submit]")
        assert "staff account" in page.text_content(".errornote")
        for path in ("/admin/", f"/admin/projections/dealstate/{deal}/audit/"):
            page.goto(live_server.url + path)
            assert page.url.startswith(f"{live_server.url}/admin/login/"), path
    finally:
        context.close()
