"""The pure reducer: one step per event, folds, and the JSON of a deal's state."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import tracker.deals.events
import tracker.deals.reducer
from tracker.deals import reducer
from tracker.deals.errors import UnknownEventType
from tracker.deals.events import register_event_type, register_upcaster, unregister_event_type
from tracker.deals.reducer import STATE_FIELDS, Deal, apply, changed_fields, deal_json, fold

from .builders import (
    BAYKAR,
    DEAL,
    LBA,
    LEONARDO,
    YEAR_2025,
    fact,
    joint_venture,
    mou,
    opened,
    recorded,
)
from .test_events import SpeechNoted, speech_v1_to_v2


def folded(*facts: dict[str, Any]) -> Deal:
    deal = fold(recorded([opened(), *facts]))
    assert deal is not None
    return deal


class TestPurity:
    @pytest.mark.parametrize("module", [tracker.deals.reducer, tracker.deals.events])
    def test_imports_nothing_from_django_or_the_database(self, module: Any) -> None:
        tree = ast.parse(inspect.getsource(module))
        imported = [
            name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
        ]
        assert not [n for n in imported if n.split(".")[0] in {"django", "celery", "psycopg"}]
        assert not [n for n in imported if "eventstore" in n or "models" in n]


class TestFold:
    def test_deal_opened_starts_at_announced_with_its_parties(self) -> None:
        deal = folded()
        assert deal.id == DEAL
        assert deal.stage == "announced"
        assert deal.party_ids() == {BAYKAR, LEONARDO}
        assert deal.version == 1
        assert deal.opened_on.to_json() == YEAR_2025

    def test_mou_then_joint_venture_reach_agreed_with_the_shares(self) -> None:
        deal = folded(mou(), joint_venture())
        assert deal.stage == "agreed"
        assert deal.mou is not None
        assert deal.mou.parties == (BAYKAR, LEONARDO)
        assert deal.joint_venture is not None
        assert [(h.organisation, h.percent) for h in deal.joint_venture.shares] == [
            (BAYKAR, Decimal(50)),
            (LEONARDO, Decimal(50)),
        ]

    def test_a_later_mou_does_not_move_an_agreed_deal_back(self) -> None:
        assert folded(joint_venture(), mou()).stage == "agreed"

    def test_stage_changed_sets_the_stage(self) -> None:
        deal = folded(
            mou(), fact("StageChanged", {"stage": "negotiating", "reason": "x"}, YEAR_2025)
        )
        assert deal.stage == "negotiating"

    def test_nothing_moves_a_terminated_deal_forward(self) -> None:
        terminated = fact("StageChanged", {"stage": "terminated", "reason": "x"}, YEAR_2025)
        assert folded(terminated, joint_venture()).stage == "terminated"

    def test_parties_are_added_once_and_removed(self) -> None:
        added = fact("PartyAdded", {"organisation": str(LBA), "role": "venture"}, YEAR_2025)
        removed = fact("PartyRemoved", {"organisation": str(BAYKAR), "reason": "left"}, YEAR_2025)
        deal = folded(added, added, removed)
        assert [(p.organisation, p.role) for p in deal.parties] == [
            (LEONARDO, "partner"),
            (LBA, "venture"),
        ]

    def test_apply_is_one_step_of_fold(self) -> None:
        events = recorded([opened(), mou(), joint_venture()])
        deal = None
        for event in events:
            deal = apply(deal, event)
        assert deal == fold(events)

    def test_apply_leaves_the_previous_state_unchanged(self) -> None:
        events = recorded([opened(), fact("NoteAdded", {"text": "a"}, YEAR_2025)])
        before = apply(None, events[0])
        after = apply(before, events[1])
        assert before.notes == ()
        assert [n.text for n in after.notes] == ["a"]
        with pytest.raises(dataclasses.FrozenInstanceError):
            after.stage = "active"  # type: ignore[misc]

    def test_an_event_before_the_opening_is_refused(self) -> None:
        with pytest.raises(ValueError, match="before the deal was opened"):
            apply(None, recorded([mou()])[0])

    def test_an_unknown_type_is_refused(self) -> None:
        with pytest.raises(UnknownEventType):
            fold(recorded([opened(), fact("DealExploded", {}, YEAR_2025)]))

    def test_version_and_updated_at_follow_the_highest_version(self) -> None:
        events = recorded([opened(), mou(), joint_venture()])
        deal = fold([events[0], events[2], events[1]])
        assert deal is not None
        assert deal.version == 3
        assert deal.updated_at == events[2].recorded_at


class TestUpcastFold:
    def test_a_v1_event_folds_the_same_as_its_v2_form(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        register_event_type(SpeechNoted)
        register_upcaster("SpeechNoted", 1)(speech_v1_to_v2)
        monkeypatch.setitem(reducer.HANDLERS, "SpeechNoted", reducer.HANDLERS["QuoteRecorded"])
        try:
            v1 = fact("SpeechNoted", {"line": "Dave Holmes: an alliance"}, YEAR_2025) | {
                "schema_version": 1
            }
            v2 = fact(
                "SpeechNoted", {"speaker": "Dave Holmes", "text": "an alliance"}, YEAR_2025
            ) | {"schema_version": 2}
            from_v1, from_v2 = folded(v1), folded(v2)
        finally:
            unregister_event_type("SpeechNoted")
        assert from_v1.quotes[0].speaker == "Dave Holmes"
        assert deal_json(from_v1) == deal_json(from_v2)


class TestJson:
    def test_has_exactly_the_state_fields_in_order_without_the_retracted_ids(self) -> None:
        deal = dataclasses.replace(folded(), retracted=frozenset({BAYKAR}))
        assert list(deal_json(deal)) == list(STATE_FIELDS)
        assert "retracted" not in STATE_FIELDS

    def test_writes_money_shares_and_dates_as_strings(self) -> None:
        value = {"amount": "5400000000", "currency": "GBP"}
        deal = folded(
            joint_venture(),
            fact(
                "ContractAwarded",
                {
                    "buyer": str(BAYKAR),
                    "supplier": str(LEONARDO),
                    "item": "UAV",
                    "quantity": 20,
                    "value": value,
                },
                YEAR_2025,
            ),
        )
        body = deal_json(deal)
        assert body["contracts"] == [
            {
                "id": str(deal.contracts[0].id),
                "buyer": str(BAYKAR),
                "supplier": str(LEONARDO),
                "item": "UAV",
                "quantity": 20,
                "value": value,
                "ordered_on": {"date": "2025-01-01", "precision": "year"},
                "quantity_estimate": False,
                "weapon": None,
                "tiv_unit": None,
                "ordered": 20,
                "delivered": 0,
                "deliveries": [],
            }
        ]
        assert body["joint_venture"]["shares"][0] == {"organisation": str(BAYKAR), "percent": "50"}
        assert body["opened_on"] == {"date": "2025-01-01", "precision": "year"}
        assert body["updated_at"].endswith("Z")
        assert datetime.fromisoformat(body["updated_at"].replace("Z", "+00:00")).tzinfo == UTC

    def test_writes_every_field_byte_for_byte_with_edge_values(self) -> None:
        money = {"amount": "5400000000", "currency": "GBP"}
        facts = [
            joint_venture(baykar="1E+2", leonardo="0.50"),
            fact(
                "ContractAwarded",
                {
                    "buyer": str(BAYKAR),
                    "supplier": str(LEONARDO),
                    "item": "UAV",
                    "quantity": None,
                    "value": {"amount": "5.4E+9", "currency": "GBP"},
                },
                YEAR_2025,
            ),
            fact(
                "BudgetAllocated",
                {
                    "authority": str(BAYKAR),
                    "purpose": "UAVs",
                    "amount": {"amount": "-0.10", "currency": "EUR"},
                    "earmarks": [{"purpose": "Armed", "amount": money}],
                },
                YEAR_2025,
            ),
            fact(
                "SupportAgreed",
                {"provider": str(LBA), "recipient": str(BAYKAR), "programme": "P"},
                YEAR_2025,
            ),
            fact("QuoteRecorded", {"speaker": "A", "organisation": None, "text": "t"}, YEAR_2025),
            fact(
                "QuoteRecorded",
                {"speaker": "B", "speaker_role": "CEO", "organisation": str(LBA), "text": "u"},
                YEAR_2025,
            ),
            fact("NoteAdded", {"text": 'é \u2028 "quoted"'}, YEAR_2025),
        ]
        # Microseconds, in another zone: the JSON shows them in UTC.
        start = datetime(2025, 7, 1, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        opening = opened()
        deal = fold(recorded([opening, mou(), *facts], start=start))
        assert deal is not None
        expected = {
            "id": str(DEAL),
            "title": opening["data"]["title"],
            "kind": "joint_venture",
            "stage": "agreed",
            "summary": "",
            "parties": opening["data"]["parties"],
            "mou": {"parties": [str(BAYKAR), str(LEONARDO)], "scope": "initial MoU"},
            "joint_venture": {
                "venture": str(LBA),
                "shares": [
                    {"organisation": str(BAYKAR), "percent": "100"},
                    {"organisation": str(LEONARDO), "percent": "0.50"},
                ],
                "headquarters_country": "IT",
                "scope": "unmanned systems",
            },
            "contracts": [
                {
                    "id": str(deal.contracts[0].id),
                    "buyer": str(BAYKAR),
                    "supplier": str(LEONARDO),
                    "item": "UAV",
                    "quantity": None,
                    "value": money,
                    "ordered_on": YEAR_2025,
                    "quantity_estimate": False,
                    "weapon": None,
                    "tiv_unit": None,
                    "ordered": None,
                    "delivered": 0,
                    "deliveries": [],
                }
            ],
            "budgets": [
                {
                    "authority": str(BAYKAR),
                    "purpose": "UAVs",
                    "amount": {"amount": "-0.10", "currency": "EUR"},
                    "earmarks": [{"purpose": "Armed", "amount": money}],
                }
            ],
            "support": [
                {"provider": str(LBA), "recipient": str(BAYKAR), "programme": "P", "scope": ""}
            ],
            "quotes": [
                {"speaker": "A", "speaker_role": "", "organisation": None, "text": "t"},
                {"speaker": "B", "speaker_role": "CEO", "organisation": str(LBA), "text": "u"},
            ],
            "notes": [{"text": 'é \u2028 "quoted"'}],
            "uncertain": False,
            "version": 9,
            "opened_on": YEAR_2025,
            "updated_at": "2025-07-01T09:09:00.123456Z",
            "external_ids": [],
        }
        assert json.dumps(deal_json(deal)) == json.dumps(expected)


class TestChangedFields:
    def test_names_what_an_event_changed(self) -> None:
        before = folded(mou())
        after = folded(mou(), joint_venture())
        assert changed_fields(before, after) == ["stage", "joint_venture"]

    def test_an_opening_changes_what_it_sets(self) -> None:
        assert changed_fields(None, folded()) == [
            "id",
            "title",
            "kind",
            "stage",
            "parties",
            "opened_on",
        ]
