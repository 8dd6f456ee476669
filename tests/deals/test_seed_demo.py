"""`manage.py seed_demo`: DOMAIN.md's organisations and five deals, loaded once."""

from __future__ import annotations

import json
import re
from datetime import date
from io import StringIO
from pathlib import Path
from uuid import UUID

import pytest
from django.core.management import call_command

from tracker.deals.management.commands.seed_demo import deal_id, org_id
from tracker.deals.models import Organisation
from tracker.deals.reducer import deal_json
from tracker.deals.replay import state
from tracker.eventstore.store import read_stream, verify_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DEMO_STATES = Path(__file__).with_name("demo_states.json")
"""The JSON of the five demo deals' current states, less `updated_at` (ledger time)."""


@pytest.fixture
def seeded() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_running_twice_adds_nothing(seeded: str) -> None:
    versions = {n: len(read_stream(deal_id(n))) for n in range(1, 6)}
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "0 organisations and 0 events added" in again.getvalue()
    assert {n: len(read_stream(deal_id(n))) for n in range(1, 6)} == versions
    assert Organisation.objects.count() == 9


def test_every_event_cites_the_report_with_an_unknown_publisher(seeded: str) -> None:
    for number in range(1, 6):
        events = read_stream(deal_id(number))
        assert events
        assert {e.source["publisher"] for e in events} == {"unknown"}
        assert all(e.source["title"] for e in events)
        assert verify_stream(deal_id(number)).valid is True


def test_deal_2_replays_give_domain_md_answers(seeded: str) -> None:
    baykar, leonardo = str(org_id("baykar")), str(org_id("leonardo"))
    before = state(deal_id(2), as_of=date(2024, 12, 31))
    may = state(deal_id(2), as_of=date(2025, 5, 31))
    june = state(deal_id(2), as_of=date(2025, 6, 15))
    next_year = state(deal_id(2), as_of=date(2026, 1, 1))
    assert before.state is None
    assert (may.state.stage, may.uncertain, may.state.joint_venture) == ("mou_signed", True, None)
    fifty_fifty = [
        {"organisation": baykar, "percent": "50"},
        {"organisation": leonardo, "percent": "50"},
    ]
    assert (june.state.stage, june.uncertain) == ("agreed", True)
    assert deal_json(june.state)["joint_venture"]["shares"] == fifty_fifty
    assert (next_year.state.stage, next_year.uncertain) == ("agreed", False)
    assert deal_json(next_year.state)["joint_venture"]["shares"] == fifty_fifty
    assert deal_json(next_year.state)["joint_venture"]["headquarters_country"] == "IT"
    assert deal_json(next_year.state)["joint_venture"]["venture"] == str(org_id("lba"))


def test_deal_2_occurred_precisions(seeded: str) -> None:
    events = read_stream(deal_id(2))
    assert [(e.type, e.occurred) for e in events] == [
        ("DealOpened", {"date": "2025-01-01", "precision": "year"}),
        ("MouSigned", {"date": "2025-01-01", "precision": "year"}),
        ("JointVentureFormed", {"date": "2025-06-01", "precision": "month"}),
    ]


def test_deal_3_shows_20_aircraft_for_gbp_5_4_billion(seeded: str) -> None:
    body = deal_json(state(deal_id(3)).state)
    (contract,) = body["contracts"]
    assert contract["quantity"] == 20
    assert contract["value"] == {"amount": "5400000000", "currency": "GBP"}
    assert contract["item"] == "Eurofighter Typhoon"
    assert contract["buyer"] == str(org_id("turkiye"))


def test_deal_5_shows_eur_3_2_billion_with_2_4_billion_for_armed_uavs(seeded: str) -> None:
    (budget,) = deal_json(state(deal_id(5)).state)["budgets"]
    assert budget["amount"] == {"amount": "3200000000", "currency": "EUR"}
    assert budget["earmarks"] == [
        {"purpose": "Armed UAVs", "amount": {"amount": "2400000000", "currency": "EUR"}}
    ]


def test_deal_1_has_its_mou_and_two_quotes(seeded: str) -> None:
    deal = state(deal_id(1)).state
    assert deal.stage == "mou_signed"
    assert [q.speaker for q in deal.quotes] == ["Dave Holmes", "Mehmet Demiroglu"]
    assert deal.quotes[0].text == "the start of a deep and meaningful alliance"


def test_deal_4_is_an_active_support_relationship(seeded: str) -> None:
    deal = state(deal_id(4)).state
    assert deal.stage == "active"
    assert deal.support[0].programme == "Kaan"


def test_malloy_is_owned_by_bae(seeded: str) -> None:
    assert Organisation.objects.get(id=org_id("malloy")).parent_id == org_id("bae")


def test_the_demo_deals_json_is_as_pinned_byte_for_byte(seeded: str) -> None:
    pinned = json.loads(DEMO_STATES.read_text())
    for number, expected in pinned.items():
        body = deal_json(state(deal_id(int(number))).state)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body.pop("updated_at"))
        # A contract is named by its event, whose id the store makes afresh on every seed.
        for contract in body["contracts"]:
            assert UUID(contract["id"])
            contract["id"] = "<the ContractAwarded event's id>"
        assert json.dumps(body, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
