"""The services: each rule of DOMAIN.md's table broken gets InvalidEvent naming the field."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.deals import replay, services
from tracker.deals.errors import DealNotFound, InvalidEvent
from tracker.deals.reducer import deal_json
from tracker.deals.replay import replay_events, snapshot, state
from tracker.deals.services import (
    DealChanges,
    ProposedEvent,
    open_deal,
    preview_event,
    record_event,
    record_events,
)
from tracker.deals.signals import events_recorded
from tracker.eventstore.errors import IdempotencyKeyReused, VersionConflict
from tracker.eventstore.store import NewEvent, append, read_stream

from .builders import (
    BAYKAR,
    DEAL,
    JUNE_2025,
    LBA,
    LEONARDO,
    SOURCE,
    YEAR_2025,
    deal2_facts,
    joint_venture,
    mou,
    opened,
    recorded,
)
from .conftest import OTHER

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DAY = {"date": "2025-07-02", "precision": "day"}
GBP = {"amount": "5400000000", "currency": "GBP"}


def new_deal(**changes: Any) -> UUID:
    values = {
        "title": "Baykar and Leonardo",
        "kind": "joint_venture",
        "summary": "",
        "parties": [
            {"organisation": str(BAYKAR), "role": "partner"},
            {"organisation": str(LEONARDO), "role": "partner"},
        ],
        "occurred": YEAR_2025,
        "source": SOURCE,
        "actor": "alice",
    }
    return open_deal(**(values | changes)).stream_id


def record(deal_id: UUID, event_type: str, data: dict[str, Any], **changes: Any) -> Any:
    values = {
        "deal_id": deal_id,
        "event_type": event_type,
        "data": data,
        "occurred": YEAR_2025,
        "source": SOURCE,
        "expected_version": read_stream(deal_id)[-1].version if read_stream(deal_id) else 0,
        "actor": "alice",
    }
    return record_event(**(values | changes))


def refused(deal_id: UUID, event_type: str, data: dict[str, Any], **changes: Any) -> dict[str, str]:
    """Record an event that must be refused; the errors by field. Nothing may be appended."""
    before = len(read_stream(deal_id))
    with pytest.raises(InvalidEvent) as error:
        record(deal_id, event_type, data, **changes)
    assert error.value.code == "invalid_event"
    assert len(read_stream(deal_id)) == before
    return {e.field: e.message for e in error.value.errors}


def contract(**changes: Any) -> dict[str, Any]:
    base = {
        "buyer": str(BAYKAR),
        "supplier": str(LEONARDO),
        "item": "UAV",
        "quantity": 20,
        "value": GBP,
    }
    return base | changes


def budget(amount: str, *earmarks: tuple[str, str]) -> dict[str, Any]:
    return {
        "authority": str(LEONARDO),
        "purpose": "unmanned systems",
        "amount": {"amount": amount, "currency": "EUR"},
        "earmarks": [
            {"purpose": "armed UAVs", "amount": {"amount": a, "currency": c}} for a, c in earmarks
        ],
    }


@pytest.fixture
def deal(organisations: dict[str, UUID]) -> UUID:
    return new_deal()


class TestOpenDeal:
    def test_opens_a_deal_at_version_1(self, organisations: dict[str, UUID]) -> None:
        deal_id = new_deal()
        stored = read_stream(deal_id)
        assert [(e.type, e.version, e.actor) for e in stored] == [("DealOpened", 1, "alice")]
        assert stored[0].occurred == YEAR_2025
        assert stored[0].source == SOURCE
        assert state(deal_id).state.stage == "announced"

    def test_refuses_a_deal_without_parties(self, organisations: dict[str, UUID]) -> None:
        with pytest.raises(InvalidEvent) as error:
            new_deal(parties=[])
        assert [e.field for e in error.value.errors] == ["data.parties"]

    def test_refuses_an_unknown_kind(self, organisations: dict[str, UUID]) -> None:
        with pytest.raises(InvalidEvent) as error:
            new_deal(kind="merger")
        assert [e.field for e in error.value.errors] == ["data.kind"]

    def test_refuses_a_party_that_does_not_exist(self, organisations: dict[str, UUID]) -> None:
        missing = uuid4()
        with pytest.raises(InvalidEvent, match="no organisation") as error:
            new_deal(parties=[{"organisation": str(missing), "role": "partner"}])
        assert [e.field for e in error.value.errors] == ["data.parties[0].organisation"]

    def test_refuses_deal_opened_on_an_open_deal(self, deal: UUID) -> None:
        errors = refused(deal, "DealOpened", read_stream(deal)[0].data)
        assert errors == {"type": "DealOpened must be the first event of a deal, and only there"}

    def test_the_same_key_opens_the_deal_once(self, organisations: dict[str, UUID]) -> None:
        first = open_deal(
            title="T",
            kind="other",
            summary="",
            parties=[{"organisation": str(BAYKAR), "role": "p"}],
            occurred=YEAR_2025,
            source=SOURCE,
            actor="a",
            idempotency_key="open-1",
        )
        again = open_deal(
            title="T",
            kind="other",
            summary="",
            parties=[{"organisation": str(BAYKAR), "role": "p"}],
            occurred=YEAR_2025,
            source=SOURCE,
            actor="a",
            idempotency_key="open-1",
        )
        assert again.replayed is True
        assert again.stream_id == first.stream_id
        assert [e.event_id for e in again.events] == [e.event_id for e in first.events]


class TestParties:
    def test_adds_an_existing_organisation(self, deal: UUID) -> None:
        record(deal, "PartyAdded", {"organisation": str(LBA), "role": "venture"})
        assert LBA in state(deal).state.party_ids()

    def test_refuses_an_organisation_that_does_not_exist(self, deal: UUID) -> None:
        errors = refused(deal, "PartyAdded", {"organisation": str(uuid4()), "role": "x"})
        assert list(errors) == ["data.organisation"]
        assert errors["data.organisation"].startswith("no organisation with id")

    def test_refuses_adding_a_party_twice(self, deal: UUID) -> None:
        errors = refused(deal, "PartyAdded", {"organisation": str(BAYKAR), "role": "x"})
        assert errors == {"data.organisation": "the organisation is already a party to the deal"}

    def test_removes_a_party(self, deal: UUID) -> None:
        record(deal, "PartyRemoved", {"organisation": str(BAYKAR), "reason": "left"})
        assert state(deal).state.party_ids() == {LEONARDO}

    def test_refuses_removing_an_organisation_that_is_not_a_party(self, deal: UUID) -> None:
        errors = refused(deal, "PartyRemoved", {"organisation": str(OTHER), "reason": "x"})
        assert errors == {"data.organisation": "the organisation is not a party to the deal"}


class TestMouSigned:
    def test_refuses_fewer_than_two_parties(self, deal: UUID) -> None:
        errors = refused(deal, "MouSigned", {"parties": [str(BAYKAR)], "scope": ""})
        assert list(errors) == ["data.parties"]
        assert "at least 2" in errors["data.parties"]

    def test_refuses_a_party_that_is_not_a_party_of_the_deal(self, deal: UUID) -> None:
        errors = refused(deal, "MouSigned", {"parties": [str(BAYKAR), str(OTHER)], "scope": ""})
        assert errors == {"data.parties[1]": "every MoU party must be a party to the deal"}

    def test_refuses_the_same_party_twice(self, deal: UUID) -> None:
        errors = refused(deal, "MouSigned", {"parties": [str(BAYKAR), str(BAYKAR)], "scope": ""})
        assert list(errors) == ["data.parties"]


class TestJointVentureFormed:
    def test_records_50_50_shares(self, deal: UUID) -> None:
        record(
            deal,
            "JointVentureFormed",
            joint_venture()["data"],
            occurred=joint_venture()["occurred"],
        )
        shares = state(deal).state.joint_venture.shares
        assert [(h.organisation, str(h.percent)) for h in shares] == [
            (BAYKAR, "50"),
            (LEONARDO, "50"),
        ]

    def test_refuses_shares_not_summing_to_100(self, deal: UUID) -> None:
        errors = refused(deal, "JointVentureFormed", joint_venture("50", "49.99")["data"])
        assert errors == {"data.shares": "shares must sum to exactly 100, not 99.99"}

    def test_refuses_shares_given_as_numbers(self, deal: UUID) -> None:
        data = joint_venture()["data"]
        data["shares"][0]["percent"] = 50
        errors = refused(deal, "JointVentureFormed", data)
        assert list(errors) == ["data.shares[0].percent"]

    def test_refuses_a_holder_that_is_not_a_party(self, deal: UUID) -> None:
        data = joint_venture()["data"]
        data["shares"][1]["organisation"] = str(OTHER)
        errors = refused(deal, "JointVentureFormed", data)
        assert errors == {
            "data.shares[1].organisation": "every shareholder must be a party to the deal"
        }

    def test_refuses_an_unknown_headquarters_country(self, deal: UUID) -> None:
        errors = refused(
            deal, "JointVentureFormed", joint_venture()["data"] | {"headquarters_country": "XX"}
        )
        assert list(errors) == ["data.headquarters_country"]


class TestContractAwarded:
    def test_records_quantity_and_value_exactly(self, deal: UUID) -> None:
        record(deal, "ContractAwarded", contract())
        (awarded,) = state(deal).state.contracts
        assert (awarded.quantity, awarded.value.to_json()) == (20, GBP)

    @pytest.mark.parametrize("amount", ["0", "-5"])
    def test_refuses_an_amount_not_above_zero(self, deal: UUID, amount: str) -> None:
        errors = refused(
            deal, "ContractAwarded", contract(value={"amount": amount, "currency": "GBP"})
        )
        assert errors == {"data.value.amount": "the contract value must be more than 0"}

    def test_refuses_an_amount_sent_as_a_number(self, deal: UUID) -> None:
        errors = refused(
            deal, "ContractAwarded", contract(value={"amount": 5.4e9, "currency": "GBP"})
        )
        assert list(errors) == ["data.value.amount"]

    def test_refuses_a_zero_quantity(self, deal: UUID) -> None:
        assert list(refused(deal, "ContractAwarded", contract(quantity=0))) == ["data.quantity"]


class TestBudgetAllocated:
    def test_records_the_amount_and_earmarks(self, deal: UUID) -> None:
        record(deal, "BudgetAllocated", budget("3200000000", ("2400000000", "EUR")))
        (allocated,) = state(deal).state.budgets
        assert allocated.amount.to_json() == {"amount": "3200000000", "currency": "EUR"}
        assert allocated.earmarks[0].amount.to_json() == {"amount": "2400000000", "currency": "EUR"}

    def test_refuses_an_earmark_in_another_currency(self, deal: UUID) -> None:
        errors = refused(deal, "BudgetAllocated", budget("3200000000", ("2400000000", "USD")))
        assert list(errors) == ["data.earmarks[0].amount.currency"]
        assert "never converted" in errors["data.earmarks[0].amount.currency"]

    def test_refuses_earmarks_above_the_amount(self, deal: UUID) -> None:
        errors = refused(deal, "BudgetAllocated", budget("100", ("60", "EUR"), ("40.01", "EUR")))
        assert errors == {"data.earmarks": "earmarks sum to 100.01, more than the allocated 100"}

    def test_accepts_earmarks_equal_to_the_amount(self, deal: UUID) -> None:
        record(deal, "BudgetAllocated", budget("100", ("60", "EUR"), ("40", "EUR")))
        assert state(deal).state.stage == "agreed"


class TestStageChanged:
    @pytest.mark.parametrize("stage", ["announced", "mou_signed", "agreed", "closed"])
    def test_refuses_a_stage_it_may_not_set(self, deal: UUID, stage: str) -> None:
        assert list(refused(deal, "StageChanged", {"stage": stage, "reason": "x"})) == [
            "data.stage"
        ]

    @pytest.mark.parametrize("final", ["terminated", "completed"])
    def test_only_corrections_retractions_and_notes_follow_a_final_stage(
        self, deal: UUID, final: str
    ) -> None:
        quote = {"speaker": "A", "text": "b"}
        record(deal, "QuoteRecorded", quote)
        record(deal, "StageChanged", {"stage": final, "reason": "x"})
        errors = refused(deal, "ContractAwarded", contract())
        assert errors == {
            "type": f"the deal is {final}: only corrections, retractions and notes may follow"
        }
        assert list(refused(deal, "StageChanged", {"stage": "active", "reason": "x"})) == ["type"]
        record(deal, "NoteAdded", {"text": "still on file"})
        quote_id = read_stream(deal)[1].event_id
        record(
            deal,
            "FactCorrected",
            {"event_id": str(quote_id), "data": {"speaker": "A", "text": "c"}},
        )
        assert [q.text for q in state(deal).state.quotes] == ["c"]


class TestFactRetracted:
    def test_retracts_a_fact(self, deal: UUID) -> None:
        record(deal, "MouSigned", mou()["data"])
        mou_id = read_stream(deal)[1].event_id
        record(deal, "FactRetracted", {"event_id": str(mou_id), "reason": "misreported"})
        current = state(deal)
        assert (current.state.stage, current.state.mou, current.version) == ("announced", None, 3)

    def test_refuses_an_event_of_another_stream(
        self, deal: UUID, organisations: dict[str, UUID]
    ) -> None:
        elsewhere = read_stream(new_deal())[0].event_id
        errors = refused(deal, "FactRetracted", {"event_id": str(elsewhere), "reason": "x"})
        assert errors == {"data.event_id": "no event with this id in this deal"}

    def test_refuses_retracting_twice(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        note = read_stream(deal)[1].event_id
        record(deal, "FactRetracted", {"event_id": str(note), "reason": "x"})
        errors = refused(deal, "FactRetracted", {"event_id": str(note), "reason": "again"})
        assert errors == {"data.event_id": "that event is already retracted"}

    def test_refuses_retracting_a_retraction(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        record(
            deal, "FactRetracted", {"event_id": str(read_stream(deal)[1].event_id), "reason": "x"}
        )
        retraction = read_stream(deal)[2].event_id
        errors = refused(deal, "FactRetracted", {"event_id": str(retraction), "reason": "x"})
        assert errors == {"data.event_id": "a retraction cannot itself be retracted"}

    def test_refuses_retracting_the_opening(self, deal: UUID) -> None:
        opening = read_stream(deal)[0].event_id
        errors = refused(deal, "FactRetracted", {"event_id": str(opening), "reason": "x"})
        assert list(errors) == ["data.event_id"]


class TestFactCorrected:
    def test_a_repeated_correction_gets_the_first_answer(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        note = str(read_stream(deal)[1].event_id)
        correction = {"event_id": note, "data": {"text": "y"}}
        first = record(deal, "FactCorrected", correction, idempotency_key="k-correct")
        again = record(
            deal, "FactCorrected", correction, idempotency_key="k-correct", expected_version=2
        )
        assert again.replayed is True
        assert again.events == first.events
        assert len(read_stream(deal)) == 3

    def test_replaces_the_data_and_the_latest_correction_wins(self, deal: UUID) -> None:
        record(deal, "JointVentureFormed", joint_venture()["data"])
        jv = str(read_stream(deal)[1].event_id)
        record(deal, "FactCorrected", {"event_id": jv, "data": joint_venture("60", "40")["data"]})
        record(deal, "FactCorrected", {"event_id": jv, "data": joint_venture("51", "49")["data"]})
        shares = state(deal).state.joint_venture.shares
        assert [str(h.percent) for h in shares] == ["51", "49"]
        assert read_stream(deal)[-1].data["data_schema_version"] == 1

    def test_refuses_a_schema_version_the_corrected_type_does_not_have(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        note = str(read_stream(deal)[1].event_id)
        data = {"event_id": note, "data": {"text": "y"}, "data_schema_version": 99}
        errors = refused(deal, "FactCorrected", data)
        assert errors == {
            "data.data_schema_version": (
                "must be 1, the current schema version of NoteAdded, or omitted"
            )
        }
        record(deal, "FactCorrected", {**data, "data_schema_version": 1})
        assert read_stream(deal)[-1].data["data_schema_version"] == 1

    def test_refuses_data_invalid_for_the_corrected_type(self, deal: UUID) -> None:
        record(deal, "JointVentureFormed", joint_venture()["data"])
        jv = str(read_stream(deal)[1].event_id)
        errors = refused(
            deal, "FactCorrected", {"event_id": jv, "data": joint_venture("60", "30")["data"]}
        )
        assert errors == {"data.data.shares": "shares must sum to exactly 100, not 90"}

    def test_refuses_corrected_data_naming_an_unknown_organisation(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        record(deal, "QuoteRecorded", {"speaker": "A", "text": "b"})
        quote = str(read_stream(deal)[2].event_id)
        data = {"speaker": "A", "text": "b", "organisation": str(uuid4())}
        errors = refused(deal, "FactCorrected", {"event_id": quote, "data": data})
        assert list(errors) == ["data.data.organisation"]

    def test_refuses_a_correction_that_changes_nothing(self, deal: UUID) -> None:
        opening = str(read_stream(deal)[0].event_id)
        errors = refused(deal, "FactCorrected", {"event_id": opening})
        assert list(errors) == ["data"]

    def test_refuses_an_unknown_target(self, deal: UUID) -> None:
        errors = refused(deal, "FactCorrected", {"event_id": str(uuid4()), "occurred": DAY})
        assert errors == {"data.event_id": "no event with this id in this deal"}

    def test_refuses_correcting_a_retracted_fact(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        note = str(read_stream(deal)[1].event_id)
        record(deal, "FactRetracted", {"event_id": note, "reason": "x"})
        errors = refused(deal, "FactCorrected", {"event_id": note, "data": {"text": "y"}})
        assert errors == {"data.event_id": "that event is already retracted"}

    def test_corrects_when_the_opening_happened(self, deal: UUID) -> None:
        opening = str(read_stream(deal)[0].event_id)
        record(deal, "FactCorrected", {"event_id": opening, "occurred": JUNE})
        assert state(deal).state.opened_on.to_json() == JUNE

    def test_a_correction_of_the_opening_keeps_the_registers_keys(self, deal: UUID) -> None:
        opening = read_stream(deal)[0]
        claimed = {**opening.data, "external_ids": ["SIPRI:60123"]}
        correction = {"event_id": str(opening.event_id), "data": claimed}
        assert refused(deal, "FactCorrected", correction) == {
            "data.data.external_ids": (
                "a correction keeps the deal's register keys as they are (none)"
            )
        }
        retitled = {**opening.data, "title": "Baykar and Leonardo: drones"}
        record(deal, "FactCorrected", {"event_id": str(opening.event_id), "data": retitled})
        assert state(deal).state.title == "Baykar and Leonardo: drones"
        assert state(deal).state.external_ids == ()

    def test_a_register_deals_keys_must_be_repeated_when_its_opening_is_corrected(
        self, organisations: dict[str, UUID]
    ) -> None:
        opening = read_stream(new_deal())[0]
        keyed = {**opening.data, "external_ids": ["SIPRI:60123"]}
        # Only imports open deals with keys: one is stored here as an import stores it.
        keyed_deal = uuid4()
        stored = NewEvent("DealOpened", keyed, opening.occurred, opening.source, schema_version=2)
        append(keyed_deal, [stored], 0, actor="import")
        opened_keyed = read_stream(keyed_deal)[0]
        dropped = {**keyed, "external_ids": []}
        errors = refused(
            keyed_deal, "FactCorrected", {"event_id": str(opened_keyed.event_id), "data": dropped}
        )
        assert errors == {
            "data.data.external_ids": (
                "a correction keeps the deal's register keys as they are (SIPRI:60123)"
            )
        }
        record(
            keyed_deal,
            "FactCorrected",
            {"event_id": str(opened_keyed.event_id), "data": {**keyed, "title": "Renamed"}},
        )
        assert state(keyed_deal).state.external_ids == ("SIPRI:60123",)


JUNE = {"date": "2025-06-01", "precision": "month"}


class TestOccurredAndSource:
    def test_refuses_a_month_date_that_is_not_the_first(self, deal: UUID) -> None:
        errors = refused(
            deal, "NoteAdded", {"text": "x"}, occurred={"date": "2025-06-15", "precision": "month"}
        )
        assert errors == {"occurred": "a month-precision date must be the first of its month"}

    def test_refuses_an_occurred_in_the_future(self, deal: UUID) -> None:
        later = timezone.now().date().replace(day=1).toordinal() + 70
        from datetime import date

        future = date.fromordinal(later).replace(day=1)
        errors = refused(
            deal,
            "NoteAdded",
            {"text": "x"},
            occurred={"date": future.isoformat(), "precision": "month"},
        )
        assert list(errors) == ["occurred"]
        assert "in the future" in errors["occurred"]

    @override_settings(DEAL_FUTURE_TOLERANCE_DAYS=5)
    def test_accepts_the_configured_tolerance(self, deal: UUID) -> None:
        from datetime import timedelta

        soon = timezone.now().date() + timedelta(days=5)
        record(
            deal,
            "NoteAdded",
            {"text": "x"},
            occurred={"date": soon.isoformat(), "precision": "day"},
        )
        assert len(read_stream(deal)) == 2

    @override_settings(DEAL_FUTURE_TOLERANCE_DAYS=5)
    def test_a_source_published_within_the_configured_tolerance_is_accepted(
        self, deal: UUID
    ) -> None:
        from datetime import timedelta

        today = timezone.now().date()
        source = {"title": "Early edition", "publisher": "unknown"}
        soon = {**source, "published_on": (today + timedelta(days=5)).isoformat()}
        record(deal, "NoteAdded", {"text": "x"}, source=soon)
        too_late = {**source, "published_on": (today + timedelta(days=6)).isoformat()}
        errors = refused(deal, "NoteAdded", {"text": "y"}, source=too_late)
        assert list(errors) == ["source.published_on"]

    def test_refuses_a_fact_without_a_source(self, deal: UUID) -> None:
        assert refused(deal, "NoteAdded", {"text": "x"}, source=None) == {
            "source": "every fact must cite its source"
        }

    def test_refuses_an_empty_publisher(self, deal: UUID) -> None:
        errors = refused(deal, "NoteAdded", {"text": "x"}, source={"title": "T", "publisher": ""})
        assert list(errors) == ["source.publisher"]

    def test_stores_an_unknown_publisher_as_unknown(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"}, source={"title": "T"})
        assert read_stream(deal)[-1].source == {
            "title": "T",
            "publisher": "unknown",
            "url": None,
            "published_on": None,
        }

    def test_reports_every_field_at_once(self, deal: UUID) -> None:
        errors = refused(
            deal,
            "NoteAdded",
            {"text": ""},
            occurred={"date": "2025-06-15", "precision": "year"},
            source={"publisher": "x"},
        )
        assert set(errors) == {"data.text", "occurred", "source.title"}


class TestRequests:
    def test_refuses_an_unknown_type_as_the_type_field(self, deal: UUID) -> None:
        errors = refused(deal, "DealExploded", {})
        assert errors == {"type": "unknown event type 'DealExploded'"}

    def test_an_unknown_deal_is_not_found(self, organisations: dict[str, UUID]) -> None:
        missing = uuid4()
        with pytest.raises(DealNotFound) as error:
            record(missing, "NoteAdded", {"text": "x"}, expected_version=0)
        assert error.value.code == "not_found"
        assert read_stream(missing) == []

    def test_a_deal_opened_at_an_unknown_id_is_not_found(
        self, organisations: dict[str, UUID]
    ) -> None:
        """Only open_deal (or a caller that made the id) opens deals; a client's id does not."""
        missing = uuid4()
        opening = read_stream(new_deal())[0].data
        with pytest.raises(DealNotFound):
            record(missing, "DealOpened", opening, expected_version=0)
        assert read_stream(missing) == []

    def test_expected_version_0_on_an_open_deal_is_a_conflict_not_a_rule(self, deal: UUID) -> None:
        with pytest.raises(VersionConflict) as error:
            record(deal, "NoteAdded", {"text": "stale"}, expected_version=0)
        assert error.value.current_version == 1

    def test_a_stale_expected_version_is_a_conflict(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"})
        with pytest.raises(VersionConflict, match="expected 1, current 2") as error:
            record(deal, "NoteAdded", {"text": "y"}, expected_version=1)
        assert error.value.current_version == 2

    @pytest.mark.parametrize("version", [-1, "1", True])
    def test_refuses_a_malformed_expected_version(self, deal: UUID, version: Any) -> None:
        assert list(refused(deal, "NoteAdded", {"text": "x"}, expected_version=version)) == [
            "expected_version"
        ]

    def test_the_same_key_and_body_appends_once(self, deal: UUID) -> None:
        first = record(deal, "NoteAdded", {"text": "x"}, idempotency_key="k1")
        again = record(deal, "NoteAdded", {"text": "x"}, idempotency_key="k1", expected_version=1)
        assert again.replayed is True
        assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
        assert len(read_stream(deal)) == 2

    def test_the_same_key_with_another_body_is_refused(self, deal: UUID) -> None:
        record(deal, "NoteAdded", {"text": "x"}, idempotency_key="k2")
        with pytest.raises(IdempotencyKeyReused):
            record(deal, "NoteAdded", {"text": "other"}, idempotency_key="k2", expected_version=1)

    def test_a_nul_character_is_an_invalid_event(self, deal: UUID) -> None:
        errors = refused(deal, "NoteAdded", {"text": "a\x00b"})
        assert list(errors) == ["data.text"]


class TestRecordEvents:
    def test_appends_several_events_atomically(self, deal: UUID) -> None:
        appended = record_events(
            deal_id=deal,
            events=[
                ProposedEvent("MouSigned", mou()["data"], YEAR_2025, SOURCE),
                ProposedEvent("JointVentureFormed", joint_venture()["data"], JUNE, SOURCE),
            ],
            expected_version=1,
            actor="alice",
        )
        assert [e.version for e in appended.events] == [2, 3]
        assert state(deal).state.stage == "agreed"

    def test_appends_nothing_when_one_event_breaks_a_rule(self, deal: UUID) -> None:
        with pytest.raises(InvalidEvent) as error:
            record_events(
                deal_id=deal,
                events=[
                    ProposedEvent("NoteAdded", {"text": "x"}, YEAR_2025, SOURCE),
                    ProposedEvent(
                        "PartyAdded", {"organisation": str(BAYKAR), "role": "x"}, YEAR_2025, SOURCE
                    ),
                ],
                expected_version=1,
                actor="alice",
            )
        assert [e.field for e in error.value.errors] == ["events[1].data.organisation"]
        assert len(read_stream(deal)) == 1

    def test_checks_each_event_against_the_state_the_earlier_ones_leave(self, deal: UUID) -> None:
        record_events(
            deal_id=deal,
            events=[
                ProposedEvent(
                    "PartyAdded", {"organisation": str(OTHER), "role": "x"}, YEAR_2025, SOURCE
                ),
                ProposedEvent(
                    "MouSigned", {"parties": [str(BAYKAR), str(OTHER)]}, YEAR_2025, SOURCE
                ),
            ],
            expected_version=1,
            actor="alice",
        )
        assert state(deal).state.mou.parties == (BAYKAR, OTHER)

    def test_opens_a_deal_with_its_first_facts(self, organisations: dict[str, UUID]) -> None:
        deal_id = uuid4()
        opening = read_stream(new_deal())[0].data
        record_events(
            deal_id=deal_id,
            events=[
                ProposedEvent("DealOpened", opening, YEAR_2025, SOURCE),
                ProposedEvent("MouSigned", mou()["data"], YEAR_2025, SOURCE),
            ],
            expected_version=0,
            actor="alice",
            opens_deal=True,
        )
        assert state(deal_id).state.stage == "mou_signed"

    def test_refuses_an_empty_batch(self, deal: UUID) -> None:
        with pytest.raises(InvalidEvent) as error:
            record_events(deal_id=deal, events=[], expected_version=1, actor="alice")
        assert [e.field for e in error.value.errors] == ["events"]


class TestSignal:
    @pytest.fixture
    def received(self) -> Any:
        calls: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            calls.append(kwargs)

        events_recorded.connect(receiver)
        yield calls
        events_recorded.disconnect(receiver)

    def test_is_sent_with_the_deal_and_its_new_version(
        self, deal: UUID, received: list[dict[str, Any]]
    ) -> None:
        record(deal, "NoteAdded", {"text": "x"}, idempotency_key="s1")
        assert [(c["deal_id"], c["version"]) for c in received] == [(deal, 2)]
        assert [e.type for e in received[0]["events"]] == ["NoteAdded"]

    def test_is_not_sent_for_a_replay_or_a_refusal(
        self, deal: UUID, received: list[dict[str, Any]]
    ) -> None:
        record(deal, "NoteAdded", {"text": "x"}, idempotency_key="s2")
        record(deal, "NoteAdded", {"text": "x"}, idempotency_key="s2", expected_version=1)
        refused(deal, "NoteAdded", {"text": ""})
        assert len(received) == 1


class TestPreview:
    def test_shows_the_state_after_without_appending(self, deal: UUID) -> None:
        preview = preview_event(
            deal_id=deal,
            event_type="MouSigned",
            data=mou()["data"],
            occurred=YEAR_2025,
            source=SOURCE,
        )
        assert (preview.before.stage, preview.after.stage) == ("announced", "mou_signed")
        assert preview.changed == ["stage", "mou"]
        assert preview.version == 1
        assert len(read_stream(deal)) == 1

    def test_raises_what_record_event_would(self, deal: UUID) -> None:
        with pytest.raises(InvalidEvent):
            preview_event(
                deal_id=deal,
                event_type="MouSigned",
                data={"parties": []},
                occurred=YEAR_2025,
                source=SOURCE,
            )


class TestUpcastFromTheStore:
    def test_a_stored_v1_event_replays_the_same_as_its_v2_form(
        self, deal: UUID, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tracker.deals import reducer
        from tracker.deals.events import (
            register_event_type,
            register_upcaster,
            unregister_event_type,
        )
        from tracker.deals.reducer import deal_json

        from .test_events import SpeechNoted, speech_v1_to_v2

        register_event_type(SpeechNoted)
        register_upcaster("SpeechNoted", 1)(speech_v1_to_v2)
        monkeypatch.setitem(reducer.HANDLERS, "SpeechNoted", reducer.HANDLERS["QuoteRecorded"])
        try:
            # An event written by the code of schema version 1, stored as it was then.
            append(
                deal,
                [
                    NewEvent(
                        "SpeechNoted",
                        {"line": "Dave Holmes: an alliance"},
                        YEAR_2025,
                        SOURCE,
                        schema_version=1,
                    )
                ],
                1,
            )
            other = new_deal()
            record(other, "SpeechNoted", {"speaker": "Dave Holmes", "text": "an alliance"})
            stored = read_stream(other)[-1]
            from_v1, from_v2 = state(deal).state, state(other).state
        finally:
            unregister_event_type("SpeechNoted")
        assert stored.schema_version == 2
        assert read_stream(deal)[-1].data == {"line": "Dave Holmes: an alliance"}
        assert from_v1.quotes == from_v2.quotes
        assert deal_json(from_v1) | {"id": "", "updated_at": ""} == deal_json(from_v2) | {
            "id": "",
            "updated_at": "",
        }


class TestRecordingOrderThroughTheServices:
    @settings(
        max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(facts=st.permutations(deal2_facts()))
    def test_any_recording_order_gives_the_same_current_state(
        self, organisations: dict[str, UUID], facts: list[dict[str, Any]]
    ) -> None:
        states = []
        for order in (deal2_facts(), facts):
            deal_id = new_deal()
            for item in order:
                record(deal_id, item["type"], item["data"], occurred=item["occurred"])
            states.append(deal_json(state(deal_id).state) | {"id": None, "updated_at": None})
        assert states[0] == states[1]
        assert states[0]["stage"] == "active"
        assert states[0]["version"] == 1 + len(facts)


class TestOneFold:
    """The service computes the state after new events with one replay of the stream, not one
    per event, and that state is DOMAIN.md's replay with the events in place."""

    def test_a_100_event_batch_reads_and_replays_the_stream_once(
        self, deal: UUID, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = {"read_stream": 0, "replay_events": 0}
        # The service loads the stream through `replay.load`: count wherever either is called.
        for module, name in [(m, n) for m in (services, replay) for n in calls]:
            if not hasattr(module, name):
                continue
            real = getattr(module, name)

            def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                calls[_name] += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, name, counted)
        notes = [
            ProposedEvent("NoteAdded", {"text": f"note {n}"}, YEAR_2025, SOURCE) for n in range(100)
        ]
        appended = record_events(deal_id=deal, events=notes, expected_version=1, actor="alice")

        assert appended.version == 101
        assert calls == {"read_stream": 1, "replay_events": 1}
        assert len(state(deal).state.notes) == 100

    def test_a_batch_costs_the_same_queries_whatever_its_length(
        self, organisations: dict[str, UUID], django_assert_num_queries: Any
    ) -> None:
        def batch(size: int) -> list[ProposedEvent]:
            return [ProposedEvent("NoteAdded", {"text": "n"}, YEAR_2025, SOURCE)] * size

        short, long = new_deal(), new_deal()
        record_events(deal_id=short, events=batch(1), expected_version=1, actor="a")
        record_events(deal_id=long, events=batch(1), expected_version=1, actor="a")
        with CaptureQueriesContext(connection) as few:
            record_events(deal_id=short, events=batch(2), expected_version=2, actor="a")
        with django_assert_num_queries(len(few.captured_queries)):
            record_events(deal_id=long, events=batch(100), expected_version=2, actor="a")

    def test_a_correction_breaking_a_state_rule_is_refused_with_the_rules_error(
        self, deal: UUID
    ) -> None:
        record(deal, "JointVentureFormed", joint_venture()["data"])
        jv = str(read_stream(deal)[1].event_id)
        shares = joint_venture()["data"] | {
            "shares": [
                {"organisation": str(BAYKAR), "percent": "50"},
                {"organisation": str(OTHER), "percent": "50"},
            ]
        }
        errors = refused(deal, "FactCorrected", {"event_id": jv, "data": shares})
        assert errors == {
            "data.data.shares[1].organisation": "every shareholder must be a party to the deal"
        }

    def test_a_correction_may_keep_what_its_own_fact_made_true(self, deal: UUID) -> None:
        record(deal, "PartyAdded", {"organisation": str(OTHER), "role": "adviser"})
        added = str(read_stream(deal)[1].event_id)
        record(
            deal,
            "FactCorrected",
            {"event_id": added, "data": {"organisation": str(OTHER), "role": "prime"}},
        )
        roles = {p.organisation: p.role for p in state(deal).state.parties}
        assert roles[OTHER] == "prime"


# Events a client might add to deal 2, dated anywhere from before its opening to after its
# last fact: some sort after the stream, some reach back.
def _period(day: date, precision: str) -> dict[str, str]:
    start = {"day": day, "month": day.replace(day=1), "year": day.replace(month=1, day=1)}
    return {"date": start[precision].isoformat(), "precision": precision}


_DATES = st.builds(
    _period,
    st.dates(date(2023, 1, 1), date(2026, 6, 30)),
    st.sampled_from(["day", "month", "year"]),
)


def _candidates(existing: list[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    jv = next(e for e in existing if e.type == "JointVentureFormed")
    note = next(e for e in existing if e.type == "NoteAdded")
    one = st.one_of(
        st.builds(lambda d: ProposedEvent("NoteAdded", {"text": "later"}, d, SOURCE), _DATES),
        st.builds(
            lambda d: ProposedEvent("QuoteRecorded", {"speaker": "A", "text": "q"}, d, SOURCE),
            _DATES,
        ),
        st.builds(
            lambda p, d: ProposedEvent(
                "FactCorrected",
                {"event_id": str(jv.event_id), "data": joint_venture(str(p), str(100 - p))["data"]},
                d,
                SOURCE,
            ),
            st.integers(1, 99),
            _DATES,
        ),
        st.builds(
            lambda d: ProposedEvent(
                "FactCorrected", {"event_id": str(jv.event_id), "occurred": d}, d, SOURCE
            ),
            _DATES,
        ),
        st.just(
            ProposedEvent(
                "FactRetracted", {"event_id": str(note.event_id), "reason": "wrong"}, DAY, SOURCE
            )
        ),
    )
    return st.lists(one, min_size=1, max_size=6)


class TestTheCheckedStateIsTheReplay:
    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_for_any_new_events_back_dated_or_not(
        self, organisations: dict[str, UUID], data: st.DataObject
    ) -> None:
        existing = recorded([opened(), *deal2_facts()])
        proposed = data.draw(_candidates(existing))
        retractions = [p for p in proposed if p.type == "FactRetracted"]
        proposed = [p for p in proposed if p.type != "FactRetracted"] + retractions[:1]

        parsed = services._parse(proposed, batch=True)
        known = snapshot(existing, replay_events(existing, deal_id=DEAL).state)
        checked = services._check(DEAL, known, parsed, actor="alice")

        replayed = replay_events([*existing, *checked.drafts], deal_id=DEAL).state
        assert checked.after == replayed


class TestRecordMany:
    """Many deals in one transaction: each judged alone, appended together or not at all."""

    def opening(self, **data: Any) -> ProposedEvent:
        body = opened()["data"] | data
        return ProposedEvent("DealOpened", body, YEAR_2025, SOURCE)

    def test_opens_and_moves_on_many_deals_each_checked_as_record_events_checks_it(
        self, organisations: dict[str, UUID]
    ) -> None:
        existing = new_deal()
        fresh = uuid4()
        told: list[tuple[UUID, int]] = []

        def listen(sender: Any, deal_id: UUID, version: int, **kwargs: Any) -> None:
            told.append((deal_id, version))

        events_recorded.connect(listen)
        try:
            result = services.record_many(
                [
                    DealChanges(fresh, [self.opening()], [], opens_deal=True),
                    DealChanges(
                        existing,
                        [ProposedEvent("MouSigned", mou()["data"], YEAR_2025, SOURCE)],
                        read_stream(existing),
                    ),
                ],
                actor="importer",
            )
        finally:
            events_recorded.disconnect(listen)

        assert list(result.appended) == [fresh, existing]
        assert result.refused == {}
        assert sorted(told) == sorted([(fresh, 1), (existing, 2)])
        assert state(existing).state.stage == "mou_signed"
        assert [e.actor for e in read_stream(fresh)] == ["importer"]

    def test_a_deal_breaking_a_rule_is_refused_alone_with_the_error_record_events_gives(
        self, organisations: dict[str, UUID]
    ) -> None:
        good, unknown_party, bad_rule = uuid4(), uuid4(), new_deal()
        unknown = [{"organisation": str(uuid4()), "role": "partner"}]
        shares = joint_venture("60", "60")

        result = services.record_many(
            [
                DealChanges(good, [self.opening()], [], opens_deal=True),
                DealChanges(unknown_party, [self.opening(parties=unknown)], [], opens_deal=True),
                DealChanges(
                    bad_rule,
                    [ProposedEvent(shares["type"], shares["data"], JUNE_2025, SOURCE)],
                    read_stream(bad_rule),
                ),
            ],
            actor="importer",
        )

        assert list(result.appended) == [good]
        assert set(result.refused) == {unknown_party, bad_rule}
        assert [e.field for e in result.refused[unknown_party].errors] == [
            "events[0].data.parties[0].organisation"
        ]
        with pytest.raises(InvalidEvent) as alone:
            record_events(
                deal_id=bad_rule,
                events=[ProposedEvent(shares["type"], shares["data"], JUNE_2025, SOURCE)],
                expected_version=1,
                actor="alice",
            )
        assert result.refused[bad_rule].errors == alone.value.errors
        assert read_stream(unknown_party) == []
        assert len(read_stream(bad_rule)) == 1

    def test_a_deal_moved_on_since_it_was_read_appends_nothing_of_any(
        self, organisations: dict[str, UUID]
    ) -> None:
        moved, fresh = new_deal(), uuid4()
        as_read = read_stream(moved)
        record(moved, "MouSigned", mou()["data"])

        with pytest.raises(VersionConflict) as raised:
            services.record_many(
                [
                    DealChanges(fresh, [self.opening()], [], opens_deal=True),
                    DealChanges(
                        moved,
                        [ProposedEvent("NoteAdded", {"text": "x"}, YEAR_2025, SOURCE)],
                        as_read,
                    ),
                ],
                actor="importer",
            )

        assert raised.value.stream_id == moved
        assert read_stream(fresh) == []
        assert len(read_stream(moved)) == 2

    def test_events_to_a_deal_that_does_not_exist_need_its_opening(
        self, organisations: dict[str, UUID]
    ) -> None:
        with pytest.raises(DealNotFound):
            services.record_many(
                [
                    DealChanges(
                        uuid4(), [ProposedEvent("NoteAdded", {"text": "x"}, YEAR_2025, SOURCE)], []
                    )
                ],
                actor="importer",
            )

    def test_takes_each_deal_once(self, organisations: dict[str, UUID]) -> None:
        deal = uuid4()
        opening = self.opening()
        with pytest.raises(ValueError, match="each deal once"):
            services.record_many(
                [
                    DealChanges(deal, [opening], [], opens_deal=True),
                    DealChanges(deal, [opening], [], opens_deal=True),
                ],
                actor="importer",
            )
        assert read_stream(deal) == []


def test_a_receiver_that_fails_is_logged_and_the_append_answered(
    organisations: dict[str, UUID], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver broke")

    deal = new_deal()
    events_recorded.connect(broken)
    try:
        appended = record(deal, "MouSigned", mou()["data"])
    finally:
        events_recorded.disconnect(broken)

    assert appended.version == 2
    assert len(read_stream(deal)) == 2
    assert any(
        "broken" in r.getMessage() and r.exc_info and "receiver broke" in str(r.exc_info[1])
        for r in caplog.records
    )
