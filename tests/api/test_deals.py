"""Deals over HTTP: open, list with filters, detail with read-your-writes, the stream."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from django.utils import timezone

from tracker.eventstore.store import read_stream, stream_version
from tracker.projections import dispatch
from tracker.projections.models import DealState
from tracker.projections.projector import project_deal

from .conftest import make_organisation, note_event, opening

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DEALS = "/api/v1/deals/"


@pytest.fixture
def parties():
    return [make_organisation("Acme Aero", "GB"), make_organisation("Beta Avionics", "IT")]


def open_deal(client, parties, **kwargs) -> dict:
    response = client.post(DEALS, opening(parties, **kwargs), format="json")
    assert response.status_code == 201, response.content
    return response.json()


class TestOpenDeal:
    def test_returns_201_with_the_state_and_location(self, editor, parties):
        response = editor.post(DEALS, opening(parties), format="json")
        assert response.status_code == 201
        deal = response.json()
        assert deal["title"] == "Acme and Beta: drones"
        assert deal["stage"] == "announced"
        assert deal["version"] == 1
        assert deal["parties"] == [
            {"organisation": str(parties[0]), "role": "partner"},
            {"organisation": str(parties[1]), "role": "partner"},
        ]
        assert response["Location"] == f"http://testserver{DEALS}{deal['id']}/"
        [event] = read_stream(deal["id"])
        assert (event.type, event.actor) == ("DealOpened", "ed")

    def test_an_unknown_party_is_422_naming_the_field_without_data_prefix(self, editor, parties):
        body = opening([parties[0], uuid4()])
        response = editor.post(DEALS, body, format="json")
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_event"
        assert [e["field"] for e in response.json()["errors"]] == ["parties[1].organisation"]

    def test_a_missing_source_is_422(self, editor, parties):
        body = opening(parties)
        del body["source"]
        response = editor.post(DEALS, body, format="json")
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["source"]

    def test_a_month_date_not_on_the_first_is_422_on_occurred(self, editor, parties):
        body = {**opening(parties), "occurred": {"date": "2025-06-15", "precision": "month"}}
        response = editor.post(DEALS, body, format="json")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "occurred"

    def test_a_repeat_with_the_same_key_returns_the_same_deal(self, editor, parties):
        first = editor.post(DEALS, opening(parties), format="json", HTTP_IDEMPOTENCY_KEY="open-1")
        again = editor.post(DEALS, opening(parties), format="json", HTTP_IDEMPOTENCY_KEY="open-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again["Location"] == first["Location"]
        assert DealState.objects.count() == 1


class TestDealDetail:
    def test_shows_the_projected_state(self, editor, parties):
        deal = open_deal(editor, parties)
        response = editor.get(f"{DEALS}{deal['id']}/")
        assert response.status_code == 200
        assert response.json() == deal

    def test_an_unknown_deal_is_404(self, editor):
        response = editor.get(f"{DEALS}{uuid4()}/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_min_version_replays_when_the_projection_is_behind(self, editor, parties, monkeypatch):
        deal = open_deal(editor, parties)
        url = f"{DEALS}{deal['id']}/"
        assert editor.post(f"{url}events/", note_event("fresh"), format="json").status_code == 201
        # Hold the projection back at version 1, as a lagging worker would; as on the stack,
        # no read heals the lag in-process.
        monkeypatch.setattr(dispatch, "_embedded", lambda: False)
        DealState.objects.filter(deal_id=deal["id"]).update(version=1, state=deal)
        assert editor.get(url).json()["notes"] == []
        fresh = editor.get(url, {"min_version": 2}).json()
        assert fresh["version"] == 2
        assert fresh["notes"] == [{"text": "fresh"}]

    def test_min_version_replays_a_deal_with_no_projection_row_yet(self, editor, parties):
        deal = open_deal(editor, parties)
        DealState.objects.filter(deal_id=deal["id"]).delete()
        assert editor.get(f"{DEALS}{deal['id']}/").json()["id"] == deal["id"]

    def test_min_version_that_is_not_a_number_is_400(self, editor, parties):
        deal = open_deal(editor, parties)
        response = editor.get(f"{DEALS}{deal['id']}/", {"min_version": "two"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "min_version"


class TestDealList:
    @pytest.fixture
    def deals(self, seeded):
        return seeded

    def ids(self, client, **params) -> list[str]:
        response = client.get(DEALS, params)
        assert response.status_code == 200, response.content
        return [deal["id"] for deal in response.json()["results"]]

    def test_lists_every_projected_deal_newest_first(self, editor, deals):
        listed = self.ids(editor)
        assert set(listed) == {str(deals[f"deal{n}"]) for n in range(1, 6)}
        times = [d["updated_at"] for d in editor.get(DEALS).json()["results"]]
        assert times == sorted(times, reverse=True)

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"stage": "agreed"}, {2, 3, 5}),
            ({"stage": "mou_signed"}, {1}),
            ({"stage": "active"}, {4}),
            ({"kind": "acquisition"}, {3}),
            ({"kind": "joint_venture"}, {2}),
            ({"party": "bae"}, {1, 3, 4}),
            ({"party": "leonardo"}, {2}),
            ({"country": "IT"}, {2, 5}),
            ({"country": "TR"}, {1, 2, 3, 4}),
            ({"country": "FR"}, set()),
            ({"search": "typhoon"}, {3}),
            ({"search": "LBA"}, {2}),
            ({"kind": "mou", "party": "tusas"}, {1}),
        ],
    )
    def test_filters_return_the_right_deals(self, editor, deals, params, expected):
        if "party" in params:
            params = {**params, "party": str(deals[params["party"]])}
        assert set(self.ids(editor, **params)) == {str(deals[f"deal{n}"]) for n in expected}

    def test_updated_after_returns_the_deals_changed_since(self, editor, deals):
        before = timezone.now()
        editor.post(f"{DEALS}{deals['deal4']}/events/", note_event("later", 3), format="json")
        assert self.ids(editor, updated_after=before.isoformat()) == [str(deals["deal4"])]
        later = (timezone.now() + timedelta(seconds=1)).isoformat()
        assert self.ids(editor, updated_after=later) == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"party": "not-a-uuid"}, "party"),
            ({"updated_after": "garbage"}, "updated_after"),
            ({"updated_after": "20250601T000000Z"}, "updated_after"),
            ({"updated_after": "2025-06-01"}, "updated_after"),
            ({"kind": "unknown"}, "kind"),
            ({"stage": "signed"}, "stage"),
            ({"country": "Italy"}, "country"),
            ({"limit": "0"}, ""),
            ({"limit": "many"}, ""),
            ({"cursor": "not-a-cursor"}, ""),
        ],
    )
    def test_a_malformed_filter_is_400(self, editor, deals, params, field):
        response = editor.get(DEALS, params)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "malformed_request"
        if field:
            assert [e["field"] for e in body["errors"]] == [field]

    def test_pages_follow_the_cursor_and_cover_every_deal(self, editor, deals):
        seen: list[str] = []
        url = f"{DEALS}?limit=2"
        pages = 0
        while url:
            body = editor.get(url).json()
            assert len(body["results"]) <= 2
            seen.extend(deal["id"] for deal in body["results"])
            url = body["next"]
            pages += 1
        assert pages == 3
        assert sorted(seen) == sorted(str(deals[f"deal{n}"]) for n in range(1, 6))

    def test_a_forged_cursor_position_is_400_not_500(self, editor, deals):
        import base64

        forged = base64.b64encode(b"p=not-a-time").decode()
        response = editor.get(DEALS, {"cursor": forged})
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"

    def test_limit_above_200_is_read_as_200(self, editor, deals):
        assert len(self.ids(editor, limit=10_000)) == 5

    def test_rows_not_yet_projected_are_left_out(self, editor, deals):
        DealState.objects.filter(deal_id=deals["deal1"]).update(state=None)
        assert str(deals["deal1"]) not in self.ids(editor)


class TestDealStream:
    def test_reads_the_stream_in_pages(self, editor, parties):
        deal = open_deal(editor, parties)
        url = f"{DEALS}{deal['id']}/events/"
        for version in range(1, 5):
            body = note_event(f"n{version}", version)
            assert editor.post(url, body, format="json").status_code == 201
        first = editor.get(url, {"limit": 2}).json()
        assert [e["version"] for e in first["results"]] == [1, 2]
        assert first["results"][0]["type"] == "DealOpened"
        second = editor.get(first["next"]).json()
        assert [e["version"] for e in second["results"]] == [3, 4]
        rest = editor.get(url, {"after_version": 4}).json()
        assert [e["version"] for e in rest["results"]] == [5]
        assert rest["next"] is None

    def test_appends_one_event(self, editor, parties):
        deal = open_deal(editor, parties)
        response = editor.post(f"{DEALS}{deal['id']}/events/", note_event("hi"), format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["version"] == 2
        [event] = body["events"]
        assert (event["type"], event["version"], event["data"]) == ("NoteAdded", 2, {"text": "hi"})
        assert event["actor"] == "ed"
        assert stream_version(deal["id"]) == 2

    def test_appends_several_events_atomically(self, editor, parties):
        deal = open_deal(editor, parties)
        url = f"{DEALS}{deal['id']}/events/"
        mou = {
            "type": "MouSigned",
            "data": {"parties": [str(p) for p in parties], "scope": "drones"},
            "occurred": {"date": "2025-01-01", "precision": "year"},
            "source": note_event()["source"],
        }
        body = {"expected_version": 1, "events": [mou, note_event("after", None)]}
        response = editor.post(url, body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["version"] == 3
        assert [e["type"] for e in response.json()["events"]] == ["MouSigned", "NoteAdded"]
        project_deal(deal["id"])
        assert editor.get(f"{DEALS}{deal['id']}/").json()["stage"] == "mou_signed"

    def test_a_batch_with_one_bad_event_appends_nothing(self, editor, parties):
        deal = open_deal(editor, parties)
        bad = {**note_event(None, None), "data": {"text": ""}}
        body = {"expected_version": 1, "events": [note_event("fine", None), bad]}
        response = editor.post(f"{DEALS}{deal['id']}/events/", body, format="json")
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["events[1].data.text"]
        assert stream_version(deal["id"]) == 1

    def test_one_event_and_a_batch_hand_on_the_type_as_validated(self, editor, parties):
        deal = open_deal(editor, parties)
        url = f"{DEALS}{deal['id']}/events/"
        one = {**note_event("one"), "type": " NoteAdded "}
        batch = {
            "expected_version": 2,
            "events": [{**note_event("two", None), "type": one["type"]}],
        }
        assert editor.post(url, one, format="json").status_code == 201
        response = editor.post(url, batch, format="json")
        assert response.status_code == 201, response.content
        assert [e["type"] for e in response.json()["events"]] == ["NoteAdded"]
        assert stream_version(deal["id"]) == 3

    def test_a_domain_rule_is_422_naming_the_field(self, editor, parties):
        deal = open_deal(editor, parties)
        jv = {
            "type": "JointVentureFormed",
            "data": {
                "venture": str(parties[0]),
                "shares": [
                    {"organisation": str(parties[0]), "percent": "50"},
                    {"organisation": str(parties[1]), "percent": "40"},
                ],
                "headquarters_country": "IT",
            },
            "occurred": {"date": "2025-06-01", "precision": "month"},
            "source": note_event()["source"],
            "expected_version": 1,
        }
        response = editor.post(f"{DEALS}{deal['id']}/events/", jv, format="json")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "data.shares"

    def test_missing_expected_version_is_422_naming_it(self, editor, parties):
        deal = open_deal(editor, parties)
        body = note_event("x", expected_version=None)
        response = editor.post(f"{DEALS}{deal['id']}/events/", body, format="json")
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_event"
        assert [e["field"] for e in response.json()["errors"]] == ["expected_version"]

    def test_stale_expected_version_is_409_with_current_version(self, editor, parties):
        deal = open_deal(editor, parties)
        url = f"{DEALS}{deal['id']}/events/"
        assert editor.post(url, note_event("one", 1), format="json").status_code == 201
        response = editor.post(url, note_event("two", 1), format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "version_conflict"
        assert response.json()["current_version"] == 2
        assert stream_version(deal["id"]) == 2

    def test_an_event_for_an_unknown_deal_is_404(self, editor):
        response = editor.post(f"{DEALS}{uuid4()}/events/", note_event("x", 0), format="json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_the_stream_of_an_unknown_deal_is_404(self, editor):
        assert editor.get(f"{DEALS}{uuid4()}/events/").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0572-11-26T23:19:20-17:49", "0001-01-01T00:00:00+14:00"])
def test_updated_after_with_an_extreme_offset_is_read_in_utc_or_refused(client_as, value):
    response = client_as("reader").get("/api/v1/deals/", {"updated_after": value})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["code"] == "malformed_request"
