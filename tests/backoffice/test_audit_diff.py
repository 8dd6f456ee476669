"""The audit page's diff between two points: picked on the timeline, or given in its form."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tracker.deals import services
from tracker.deals.management.commands.seed_demo import deal_id as demo_deal_id
from tracker.eventstore.store import read_stream, stream_version

from .conftest import BAYKAR, LBA, LEONARDO, SOURCE, client_for, make_user

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def deal2(db: None) -> UUID:
    call_command("seed_demo", verbosity=0)
    return demo_deal_id(2)


def audit(client: Client, deal: UUID, **params: Any) -> Any:
    response = client.get(reverse("admin:deal_audit", args=[deal]), params)
    assert response.status_code == 200
    return response


def shown(response: Any) -> list[tuple[str, list[str]]]:
    """(path, ["v3 JointVentureFormed", ...]) for each row of the diff table."""
    return [
        (change.path, [f"v{e.version} {e.type}" for e in change.explained_by])
        for change in response.context["compare"]["changes"]
    ]


def row(response: Any, path: str) -> str:
    body = response.content.decode()
    found = re.search(rf'<tr data-path="{re.escape(path)}".*?</tr>', body, re.S)
    assert found, path
    return found.group(0)


class TestPicksOnTheTimeline:
    def test_the_mou_and_the_venture_as_of_when_they_happened(
        self, auditor: object, deal2: UUID
    ) -> None:
        response = audit(client_for(auditor), deal2, pick_from=2, pick_to=3, pick_by="as_of")
        assert shown(response) == [
            ("/stage", ["v3 JointVentureFormed"]),
            ("/joint_venture", ["v3 JointVentureFormed"]),
        ]
        compare = response.context["compare"]
        assert compare["values"]["from_as_of"] == "2025-01-01"
        assert compare["values"]["to_as_of"] == "2025-06-01"
        assert compare["values"]["from_known_at"] == compare["values"]["to_known_at"] == ""
        stage = row(response, "/stage")
        assert "mou_signed" in stage
        assert "agreed" in stage
        assert '<a href="#event-v3" data-version="3">v3 JointVentureFormed</a>' in stage
        # Organisation ids are shown by their names, and the explaining row is marked.
        assert "LBA Systems" in row(response, "/joint_venture")
        body = response.content.decode()
        assert re.search(r'class="dt-tl-row[^"]*is-explaining"\s+id="event-v3"', body)
        assert 'id="pick-from-v2" aria-label="Compare from v2" checked' in body
        assert 'id="pick-to-v3" aria-label="Compare to v3" checked' in body

    # Each event in its own transaction: PostgreSQL's now() is the transaction's start.
    @pytest.mark.django_db(transaction=True)
    def test_two_events_as_known_when_each_was_recorded(
        self, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        services.record_event(
            deal_id=deal,
            event_type="JointVentureFormed",
            data={
                "venture": str(LBA),
                "shares": [
                    {"organisation": str(BAYKAR), "percent": "50"},
                    {"organisation": str(LEONARDO), "percent": "50"},
                ],
                "headquarters_country": "IT",
                "scope": "",
            },
            occurred={"date": "2025-06-01", "precision": "month"},
            source=SOURCE,
            expected_version=2,
            actor="fixture",
        )
        response = audit(client_for(auditor), deal, pick_from=2, pick_to=3)
        assert shown(response) == [
            ("/stage", ["v3 JointVentureFormed"]),
            ("/joint_venture", ["v3 JointVentureFormed"]),
        ]
        recorded = read_stream(deal)[2].recorded_at
        assert response.context["compare"]["to_label"] == (
            f"as known at {recorded:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC"
        )

    def test_events_recorded_together_stand_for_the_same_known_at(
        self, auditor: object, deal2: UUID
    ) -> None:
        # seed_demo appends each deal's events at once: one recorded_at for all three.
        response = audit(client_for(auditor), deal2, pick_from=2, pick_to=3)
        assert response.context["compare"]["changes"] == []
        assert "the two events were recorded together" in response.content.decode()

    def test_an_event_not_on_the_timeline_is_an_error_beside_the_picks(
        self, auditor: object, deal2: UUID
    ) -> None:
        response = audit(client_for(auditor), deal2, pick_from=99, pick_to=3)
        assert response.context["compare"]["diff"] is None
        assert "From: Pick an event of the timeline." in response.content.decode()


class TestTheForm:
    def test_end_of_may_2025_to_2026(self, auditor: object, deal2: UUID) -> None:
        response = audit(client_for(auditor), deal2, from_as_of="2025-05-31", to_as_of="2026-01-01")
        assert shown(response) == [
            ("/stage", ["v3 JointVentureFormed"]),
            ("/joint_venture", ["v3 JointVentureFormed"]),
            ("/uncertain", ["v1 DealOpened", "v2 MouSigned"]),
        ]
        assert response.context["compare"]["from_label"] == "as of 2025-05-31"

    @pytest.mark.django_db(transaction=True)
    def test_a_correction_between_two_moments_given_to_the_millisecond(
        self, auditor: object, deal2: UUID
    ) -> None:
        jv = read_stream(deal2)[2]
        shares = [dict(s, percent=p) for s, p in zip(jv.data["shares"], ("51", "49"), strict=True)]
        services.record_event(
            deal_id=deal2,
            event_type="FactCorrected",
            data={"event_id": str(jv.event_id), "data": {**jv.data, "shares": shares}},
            occurred={"date": "2025-07-01", "precision": "day"},
            source=SOURCE,
            expected_version=3,
            actor="fixture",
        )
        correction = read_stream(deal2)[3]
        # As the inputs show them: UTC, to the millisecond, which covers the event's own.
        moments = {
            "from_known_at": jv.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "to_known_at": correction.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        }
        response = audit(client_for(auditor), deal2, **moments)
        assert shown(response) == [
            ("/joint_venture/shares/0/percent", ["v4 FactCorrected"]),
            ("/joint_venture/shares/1/percent", ["v4 FactCorrected"]),
        ]
        assert "corrects v3 JointVentureFormed" in row(response, "/joint_venture/shares/0/percent")
        assert response.context["compare"]["values"] == {
            **moments,
            "from_as_of": "",
            "to_as_of": "",
        }

    @pytest.mark.django_db(transaction=True)
    def test_the_replay_as_known_at_a_millisecond_covers_the_events_within_it(
        self, auditor: object, deal2: UUID
    ) -> None:
        # As the page shows recorded_at: to the millisecond, which the event's own microseconds
        # (PostgreSQL keeps them) may pass; the replay panel reads it as the API does.
        last = read_stream(deal2)[-1]
        shown_time = last.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        response = audit(client_for(auditor), deal2, known_at=shown_time)
        assert response.context["asked"].version == last.version

    def test_bad_dates_are_named_and_nothing_is_compared(
        self, auditor: object, deal2: UUID
    ) -> None:
        response = audit(
            client_for(auditor), deal2, from_as_of="2025-13-01", to_known_at="yesterday"
        )
        assert response.context["compare"]["diff"] is None
        errors = response.context["param_errors"]
        assert set(errors) == {"from_as_of", "to_known_at"}
        body = response.content.decode()
        assert "From, as of: Give a date as YYYY-MM-DD." in body
        assert 'value="2025-13-01"' in body, "what was typed is kept"

    def test_the_whole_state_where_the_deal_had_not_opened(
        self, auditor: object, deal2: UUID
    ) -> None:
        response = audit(client_for(auditor), deal2, from_as_of="2024-12-31")
        assert shown(response) == [("(the whole state)", ["v1 DealOpened"])]

    def test_html_in_a_changed_value_is_escaped(
        self, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        services.record_event(
            deal_id=deal,
            event_type="NoteAdded",
            data={"text": HOSTILE},
            occurred={"date": "2025-03-01", "precision": "day"},
            source=SOURCE,
            expected_version=stream_version(deal),
            actor="fixture",
        )
        response = audit(client_for(auditor), deal, from_as_of="2025-02-01", to_as_of="2025-03-01")
        assert shown(response) == [("/notes/0", ["v2 NoteAdded"])]
        body = response.content.decode()
        assert "<script>alert(" not in body
        assert "&lt;script&gt;alert(" in row(response, "/notes/0")


class TestTheDefaultComparison:
    def test_without_points_the_page_shows_no_diff_and_asks_for_two(
        self, auditor: object, deal2: UUID
    ) -> None:
        response = audit(client_for(auditor), deal2)
        assert response.context["compare"]["diff"] is None
        assert 'id="diff-none"' in response.content.decode()

    def test_a_replay_is_still_compared_with_today_and_links_to_its_explanation(
        self, auditor: object, deal2: UUID
    ) -> None:
        client = client_for(auditor)
        response = audit(client, deal2, as_of="2025-05-31")
        assert [c.field for c in response.context["differences"]] == ["stage", "joint venture"]
        assert response.context["explain_url"] == "?as_of=2025-05-31&to_as_of=2025-05-31#compare"
        explained = audit(client, deal2, as_of="2025-05-31", to_as_of="2025-05-31")
        assert shown(explained) == [
            ("/stage", ["v3 JointVentureFormed"]),
            ("/joint_venture", ["v3 JointVentureFormed"]),
            ("/uncertain", ["v1 DealOpened", "v2 MouSigned"]),
        ]
        assert explained.context["compare"]["from_label"] == "now"

    def test_an_editor_may_not_compare(self, deal2: UUID) -> None:
        editor = make_user("an-editor", groups=("editor",))
        url = reverse("admin:deal_audit", args=[deal2])
        assert client_for(editor).get(url, {"pick_from": 2}).status_code == 403
