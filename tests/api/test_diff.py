"""GET /deals/{id}/diff/: what changed between two replays, and the events that explain it."""

from __future__ import annotations

from datetime import date, datetime
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import SOURCE, client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DEALS = "/api/v1/deals/"
POINT_PARAMS = ["from_as_of", "from_known_at", "to_as_of", "to_known_at"]


def diff(client, deal, **params) -> dict:
    response = client.get(f"{DEALS}{deal}/diff/", params)
    assert response.status_code == 200, response.content
    return response.json()


def explained(change: dict) -> list[tuple[int, str]]:
    return [(e["version"], e["type"]) for e in change["explained_by"]]


@pytest.fixture
def corrected(seeded, editor):
    """Demo deal 2 with its joint venture's shares corrected to 51/49 (version 4)."""
    deal = seeded["deal2"]
    events = editor.get(f"{DEALS}{deal}/events/").json()["results"]
    jv = events[2]
    assert jv["type"] == "JointVentureFormed"
    shares = [
        {"organisation": str(seeded["baykar"]), "percent": "51"},
        {"organisation": str(seeded["leonardo"]), "percent": "49"},
    ]
    response = editor.post(
        f"{DEALS}{deal}/events/",
        {
            "type": "FactCorrected",
            "data": {
                "event_id": jv["event_id"],
                "data": {**jv["data"], "shares": shares},
                "reason": "A later report gives Baykar 51%.",
            },
            "occurred": {"date": "2025-07-01", "precision": "day"},
            "source": SOURCE,
            "expected_version": 3,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return deal, jv, response.json()["events"][0]


class TestDeal2:
    def test_from_may_2025_to_2026_the_joint_venture_explains_stage_and_venture(
        self, reader, seeded
    ):
        deal = seeded["deal2"]
        body = diff(reader, deal, from_as_of="2025-05-31", to_as_of="2026-01-01")
        assert body["deal"] == str(deal)
        assert body["from"] == {"as_of": "2025-05-31", "known_at": None, "version": 2}
        assert body["to"] == {"as_of": "2026-01-01", "known_at": None, "version": 3}
        changes = {c["path"]: c for c in body["changes"]}
        assert list(changes) == ["/stage", "/joint_venture", "/uncertain"]
        stage, venture = changes["/stage"], changes["/joint_venture"]
        assert (stage["op"], stage["old"], stage["new"]) == ("replace", "mou_signed", "agreed")
        assert venture["old"] is None
        assert venture["new"]["venture"] == str(seeded["lba"])
        assert venture["new"]["shares"] == [
            {"organisation": str(seeded["baykar"]), "percent": "50"},
            {"organisation": str(seeded["leonardo"]), "percent": "50"},
        ]
        assert explained(stage) == explained(venture) == [(3, "JointVentureFormed")]
        (jv,) = venture["explained_by"]
        assert jv["occurred"] == {"date": "2025-06-01", "precision": "month"}
        assert jv["names"] is None
        assert jv["recorded_at"].endswith("Z")
        assert (changes["/uncertain"]["old"], changes["/uncertain"]["new"]) == (True, False)
        assert body["exact"] is True

    def test_between_two_known_at_moments_the_correction_names_the_shares(self, auditor, corrected):
        deal, jv, correction = corrected
        body = diff(
            auditor,
            deal,
            from_known_at=jv["recorded_at"],
            to_known_at=correction["recorded_at"],
        )
        assert body["from"]["known_at"] == jv["recorded_at"]
        assert (body["from"]["version"], body["to"]["version"]) == (3, 4)
        assert [(c["op"], c["path"], c["old"], c["new"]) for c in body["changes"]] == [
            ("replace", "/joint_venture/shares/0/percent", "50", "51"),
            ("replace", "/joint_venture/shares/1/percent", "50", "49"),
        ]
        for change in body["changes"]:
            (by,) = change["explained_by"]
            assert (by["type"], by["event_id"], by["version"]) == (
                "FactCorrected",
                correction["event_id"],
                4,
            )
            assert by["names"] == {
                "event_id": jv["event_id"],
                "version": 3,
                "type": "JointVentureFormed",
            }

    def test_from_a_known_at_to_now_is_the_same_diff(self, auditor, corrected):
        deal, jv, _ = corrected
        body = diff(auditor, deal, from_known_at=jv["recorded_at"])
        assert [c["path"] for c in body["changes"]] == [
            "/joint_venture/shares/0/percent",
            "/joint_venture/shares/1/percent",
        ]
        assert body["to"] == {"as_of": None, "known_at": None, "version": 4}

    def test_before_the_deal_opened_the_whole_state_is_replaced(self, reader, seeded):
        body = diff(reader, seeded["deal2"], from_as_of="2024-12-31")
        (change,) = body["changes"]
        assert (change["op"], change["path"], change["old"]) == ("replace", "", None)
        assert change["new"]["stage"] == "agreed"
        assert explained(change) == [(1, "DealOpened")]

    def test_without_points_nothing_differs(self, reader, seeded):
        body = diff(reader, seeded["deal2"])
        assert body["changes"] == []
        assert body["from"] == body["to"] == {"as_of": None, "known_at": None, "version": 3}


class TestAccess:
    def test_a_reader_may_not_use_known_at_at_either_end(self, reader, seeded):
        for param in ("from_known_at", "to_known_at"):
            response = reader.get(
                f"{DEALS}{seeded['deal2']}/diff/", {param: "2030-01-01T00:00:00Z"}
            )
            assert response.status_code == 403, param
            assert response.json()["code"] == "permission_denied"

    def test_an_editor_may_use_as_of(self, editor, seeded):
        body = diff(editor, seeded["deal2"], to_as_of="2025-05-31")
        assert [c["path"] for c in body["changes"]][:2] == ["/stage", "/joint_venture"]

    def test_anonymous_is_401(self, seeded):
        response = client_for(None).get(f"{DEALS}{seeded['deal2']}/diff/")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_an_unknown_deal_is_404(self, reader):
        response = reader.get(f"{DEALS}{uuid4()}/diff/", {"from_as_of": "2025-01-01"})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from_as_of": "2025-13-01"}, "from_as_of"),
            ({"to_as_of": "yesterday"}, "to_as_of"),
            ({"from_known_at": "not a time"}, "from_known_at"),
            ({"to_known_at": "2025-07-01T25:00:00Z"}, "to_known_at"),
        ],
    )
    def test_a_bad_date_is_400_naming_it(self, auditor, seeded, params, field):
        response = auditor.get(f"{DEALS}{seeded['deal2']}/diff/", params)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "malformed_request"
        assert [e["field"] for e in response.json()["errors"]] == [field]

    def test_a_bad_date_from_a_reader_is_400_before_403(self, reader, seeded):
        response = reader.get(f"{DEALS}{seeded['deal2']}/diff/", {"to_known_at": "soon"})
        assert response.status_code == 400


ANY_DATE = st.one_of(
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.text(max_size=30),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=st.dictionaries(st.sampled_from(POINT_PARAMS), ANY_DATE, max_size=4))
def test_no_query_is_a_server_error(auditor, seeded, params):
    response = auditor.get(f"{DEALS}{seeded['deal2']}/diff/", params)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        body = response.json()
        assert {"deal", "from", "to", "changes", "exact"} == set(body)
