"""Bitemporal replay by DOMAIN.md's four-step rule, pure and from the stored stream."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.deals.errors import DealNotFound
from tracker.deals.reducer import deal_json
from tracker.deals.replay import ReplayedState, fact_statuses, replay_events, state, timeline
from tracker.deals.services import open_deal, record_event
from tracker.eventstore.store import read_stream

from .builders import (
    BAYKAR,
    DEAL,
    LEONARDO,
    SOURCE,
    START,
    YEAR_2025,
    deal2_facts,
    fact,
    joint_venture,
    mou,
    opened,
    recorded,
)


def deal2() -> list[Any]:
    return recorded([opened(), mou(), joint_venture()])


def without_ledger(replayed: ReplayedState) -> dict[str, Any] | None:
    if replayed.state is None:
        return None
    return deal_json(replayed.state) | {"version": None, "updated_at": None}


def shares(replayed: ReplayedState) -> list[tuple[Any, Decimal]] | None:
    assert replayed.state is not None
    jv = replayed.state.joint_venture
    return None if jv is None else [(h.organisation, h.percent) for h in jv.shares]


class TestDeal2Replays:
    """DOMAIN.md's four expected answers for the demo's deal 2."""

    def test_before_the_opening_there_is_no_state(self) -> None:
        replayed = replay_events(deal2(), as_of=date(2024, 12, 31))
        assert replayed.state is None
        assert (replayed.version, replayed.uncertain) == (0, False)

    def test_end_of_may_2025_is_mou_signed_and_uncertain(self) -> None:
        replayed = replay_events(deal2(), as_of=date(2025, 5, 31))
        assert replayed.state is not None
        assert replayed.state.stage == "mou_signed"
        assert replayed.state.joint_venture is None
        assert replayed.uncertain is True
        assert replayed.state.uncertain is True
        assert replayed.version == 2

    def test_mid_june_2025_is_agreed_50_50_and_uncertain(self) -> None:
        replayed = replay_events(deal2(), as_of=date(2025, 6, 15))
        assert replayed.state is not None
        assert replayed.state.stage == "agreed"
        assert shares(replayed) == [(BAYKAR, Decimal(50)), (LEONARDO, Decimal(50))]
        assert replayed.uncertain is True
        assert replayed.version == 3

    def test_new_year_2026_is_agreed_and_certain(self) -> None:
        replayed = replay_events(deal2(), as_of=date(2026, 1, 1))
        assert replayed.state is not None
        assert replayed.state.stage == "agreed"
        assert shares(replayed) == [(BAYKAR, Decimal(50)), (LEONARDO, Decimal(50))]
        assert replayed.uncertain is False

    def test_current_state_is_certain_and_at_the_stream_version(self) -> None:
        replayed = replay_events(deal2())
        assert replayed.state is not None
        assert (replayed.state.stage, replayed.version, replayed.uncertain) == ("agreed", 3, False)


class TestRecordingOrder:
    @given(st.permutations(deal2_facts()))
    def test_any_recording_order_of_the_same_facts_gives_the_same_state(
        self, facts: list[dict[str, Any]]
    ) -> None:
        expected = replay_events(recorded([opened(), *deal2_facts()])).state
        assert replay_events(recorded([opened(), *facts])).state == expected

    @given(st.permutations(deal2_facts()), st.dates(date(2024, 6, 1), date(2026, 6, 1)))
    def test_any_recording_order_gives_the_same_state_as_of_any_date(
        self, facts: list[dict[str, Any]], as_of: date
    ) -> None:
        expected = replay_events(recorded([opened(), *deal2_facts()]), as_of=as_of)
        replayed = replay_events(recorded([opened(), *facts]), as_of=as_of)
        # Which version was applied last depends on the recording order; the facts do not.
        assert without_ledger(replayed) == without_ledger(expected)


class TestAsOf:
    @given(st.dates(date(1900, 1, 1), date(2024, 12, 31)))
    def test_before_the_opening_there_is_no_state(self, as_of: date) -> None:
        assert replay_events(recorded([opened(), *deal2_facts()]), as_of=as_of).state is None

    def test_keeps_facts_whose_period_starts_on_or_before_the_date(self) -> None:
        replayed = replay_events(deal2(), as_of=date(2025, 6, 1))
        assert replayed.state is not None
        assert replayed.state.stage == "agreed"

    def test_a_fact_dated_before_the_opening_is_folded_after_it(self) -> None:
        early = fact("NoteAdded", {"text": "rumour"}, {"date": "2024-11-01", "precision": "month"})
        replayed = replay_events(recorded([opened(), early]), as_of=date(2025, 3, 1))
        assert replayed.state is not None
        assert [n.text for n in replayed.state.notes] == ["rumour"]


class TestKnownAt:
    @given(
        target=st.integers(min_value=0, max_value=len(deal2_facts()) - 1),
        offset=st.integers(min_value=-5, max_value=5),
    )
    def test_a_retraction_shows_from_the_moment_it_was_recorded(
        self, target: int, offset: int
    ) -> None:
        facts = [fact_ | {"event_id": uuid4()} for fact_ in deal2_facts()]
        retraction = fact(
            "FactRetracted",
            {"event_id": str(facts[target]["event_id"]), "reason": "wrong"},
            YEAR_2025,
        )
        events = recorded([opened(), *facts, retraction])
        retracted_at = events[-1].recorded_at
        known_at = retracted_at + timedelta(seconds=offset)
        replayed = replay_events(events, known_at=known_at)
        without = replay_events([e for e in events if e.event_id != facts[target]["event_id"]][:-1])
        with_it = replay_events(events[:-1])
        assert replayed.state is not None
        if known_at >= retracted_at:
            assert deal_json(replayed.state) | {"version": 0, "updated_at": ""} == deal_json(
                without.state
            ) | {"version": 0, "updated_at": ""}
            assert facts[target]["event_id"] in replayed.state.retracted
            assert replayed.version == events[-1].version
        else:
            assert replayed.state == with_it.state

    @given(
        percent=st.integers(min_value=1, max_value=99),
        offset=st.integers(min_value=-5, max_value=5),
    )
    def test_a_correction_shows_from_the_moment_it_was_recorded(
        self, percent: int, offset: int
    ) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        corrected = joint_venture(str(percent), str(100 - percent))["data"]
        correction = fact(
            "FactCorrected",
            {"event_id": str(jv["event_id"]), "data": corrected, "data_schema_version": 1},
            YEAR_2025,
        )
        events = recorded([opened(), mou(), jv, correction])
        known_at = events[-1].recorded_at + timedelta(seconds=offset)
        replayed = replay_events(events, known_at=known_at)
        expected = (
            (Decimal(percent), Decimal(100 - percent))
            if offset >= 0
            else (Decimal(50), Decimal(50))
        )
        assert tuple(p for _, p in shares(replayed)) == expected

    def test_before_the_first_event_there_is_no_state(self) -> None:
        replayed = replay_events(deal2(), known_at=START)
        assert (replayed.state, replayed.version) == (None, 0)


class TestCorrections:
    def test_the_latest_correction_wins(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}

        def correcting(a: str, b: str) -> dict[str, Any]:
            return fact(
                "FactCorrected",
                {"event_id": str(jv["event_id"]), "data": joint_venture(a, b)["data"]},
                YEAR_2025,
            )

        replayed = replay_events(
            recorded([opened(), jv, correcting("60", "40"), correcting("70", "30")])
        )
        assert tuple(p for _, p in shares(replayed)) == (Decimal(70), Decimal(30))

    def test_a_corrected_occurred_moves_the_fact_in_business_time(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        moved = fact(
            "FactCorrected",
            {
                "event_id": str(jv["event_id"]),
                "occurred": {"date": "2025-09-01", "precision": "month"},
            },
            YEAR_2025,
        )
        events = recorded([opened(), mou(), jv, moved])
        in_june = replay_events(events, as_of=date(2025, 6, 15))
        assert in_june.state is not None
        assert in_june.state.stage == "mou_signed"
        # The correction took the fact out of June, so it is what shaped that answer last.
        assert in_june.version == 4
        # In March the fact was outside the period before and after the correction.
        assert replay_events(events, as_of=date(2025, 3, 1)).version == 2
        in_september = replay_events(events, as_of=date(2025, 9, 2))
        assert in_september.state is not None
        assert in_september.state.stage == "agreed"

    def test_a_retracted_correction_restores_the_original(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        correction = fact(
            "FactCorrected",
            {"event_id": str(jv["event_id"]), "data": joint_venture("60", "40")["data"]},
            YEAR_2025,
        ) | {"event_id": uuid4()}
        undo = fact(
            "FactRetracted", {"event_id": str(correction["event_id"]), "reason": "x"}, YEAR_2025
        )
        replayed = replay_events(recorded([opened(), jv, correction, undo]))
        assert tuple(p for _, p in shares(replayed)) == (Decimal(50), Decimal(50))
        assert replayed.version == 4


SEPTEMBER_2025 = {"date": "2025-09-01", "precision": "month"}


def correcting(target: dict[str, Any], **change: Any) -> dict[str, Any]:
    """A FactCorrected of `target` (a fact with its event_id), with an event_id of its own."""
    body = {"event_id": str(target["event_id"]), **change}
    return fact("FactCorrected", body, YEAR_2025) | {"event_id": uuid4()}


class TestFactStatuses:
    """Each event as the correction rule leaves it, for pages that list events."""

    def test_the_latest_correction_is_in_force_for_data_and_occurred_separately(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        events = recorded(
            [
                opened(),
                jv,
                correcting(jv, data=joint_venture("60", "40")["data"]),
                correcting(jv, occurred=SEPTEMBER_2025),
                correcting(jv, data=joint_venture("70", "30")["data"]),
            ]
        )
        statuses = fact_statuses(events)
        status = statuses[jv["event_id"]]
        assert [s["percent"] for s in status.data["shares"]] == ["70", "30"]
        assert status.occurred == SEPTEMBER_2025
        assert (status.retracted_by, status.corrected_by) == (None, (3, 4, 5))
        assert [statuses[e.event_id].names for e in events[2:]] == [jv["event_id"]] * 3

    def test_a_retracted_correction_is_not_in_force(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        correction = correcting(jv, occurred=SEPTEMBER_2025)
        undo = fact(
            "FactRetracted", {"event_id": str(correction["event_id"]), "reason": "x"}, YEAR_2025
        )
        statuses = fact_statuses(recorded([opened(), jv, correction, undo]))
        original = statuses[jv["event_id"]]
        assert (original.occurred, original.corrected_by) == (jv["occurred"], ())
        assert statuses[correction["event_id"]].retracted_by == 4

    def test_a_retracted_fact_names_its_retraction_and_others_are_untouched(self) -> None:
        note = fact("NoteAdded", {"text": "wrong"}, YEAR_2025) | {"event_id": uuid4()}
        undo = fact("FactRetracted", {"event_id": str(note["event_id"]), "reason": "x"}, YEAR_2025)
        events = recorded([opened(), mou(), note, undo])
        statuses = fact_statuses(events)
        assert list(statuses) == [e.event_id for e in events]
        assert statuses[note["event_id"]].retracted_by == 4
        untouched = [statuses[e.event_id] for e in events[:2]]
        assert [(s.retracted_by, s.corrected_by, s.names) for s in untouched] == [
            (None, (), None)
        ] * 2
        assert [s.data for s in untouched] == [e.data for e in events[:2]]

    def test_agrees_with_replay_on_what_is_folded(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        events = recorded(
            [opened(), mou(), jv, correcting(jv, data=joint_venture("60", "40")["data"])]
        )
        in_force = fact_statuses(events)[jv["event_id"]]
        replayed = replay_events(events)
        assert [str(p) for _, p in shares(replayed)] == [
            s["percent"] for s in in_force.data["shares"]
        ]


def _source() -> dict[str, Any]:
    return dict(SOURCE)


@pytest.mark.postgres
@pytest.mark.django_db
class TestFromTheStream:
    def open_deal2(self) -> Any:
        opened_ = opened()["data"]
        appended = open_deal(**opened_, occurred=YEAR_2025, source=_source(), actor="t")
        deal_id = appended.stream_id
        for version, item in enumerate([mou(), joint_venture()], start=1):
            record_event(
                deal_id=deal_id,
                event_type=item["type"],
                data=item["data"],
                occurred=item["occurred"],
                source=_source(),
                expected_version=version,
                actor="t",
            )
        return deal_id

    def test_state_gives_the_four_demo_answers(self, organisations: dict[str, Any]) -> None:
        deal_id = self.open_deal2()
        answers = [
            (s.state.stage if s.state else None, s.uncertain)
            for s in (
                state(deal_id, as_of=date(2024, 12, 31)),
                state(deal_id, as_of=date(2025, 5, 31)),
                state(deal_id, as_of=date(2025, 6, 15)),
                state(deal_id, as_of=date(2026, 1, 1)),
            )
        ]
        assert answers == [(None, False), ("mou_signed", True), ("agreed", True), ("agreed", False)]

    def test_state_of_an_unknown_deal_is_not_found(self) -> None:
        with pytest.raises(DealNotFound):
            state(uuid4())

    def test_timeline_shows_each_event_with_the_state_after_it(
        self, organisations: dict[str, Any]
    ) -> None:
        deal_id = self.open_deal2()
        entries = timeline(deal_id)
        assert [e.event.type for e in entries] == ["DealOpened", "MouSigned", "JointVentureFormed"]
        assert [e.state_after.stage for e in entries] == ["announced", "mou_signed", "agreed"]
        assert entries[1].changed == ["stage", "mou"]
        assert entries[2].changed == ["stage", "joint_venture"]
        assert [e.state_after.version for e in entries] == [1, 2, 3]

    def test_timeline_of_a_retraction_removes_the_fact(self, organisations: dict[str, Any]) -> None:
        deal_id = self.open_deal2()
        jv_id = timeline(deal_id)[2].event.event_id
        record_event(
            deal_id=deal_id,
            event_type="FactRetracted",
            data={"event_id": str(jv_id), "reason": "misreported"},
            occurred=YEAR_2025,
            source=_source(),
            expected_version=3,
            actor="t",
        )
        last = timeline(deal_id)[-1]
        assert last.state_after.stage == "mou_signed"
        assert last.changed == ["stage", "joint_venture"]
        assert state(deal_id).state == last.state_after

    def test_timeline_of_an_unknown_deal_is_not_found(self) -> None:
        with pytest.raises(DealNotFound):
            timeline(uuid4())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_state_known_at_a_past_moment_leaves_out_later_records(
    organisations: dict[str, Any],
) -> None:
    # Each append commits on its own here, so each has its own ledger time.
    deal_id = TestFromTheStream().open_deal2()
    events = read_stream(deal_id)
    assert events[1].recorded_at < events[2].recorded_at
    earlier = state(deal_id, known_at=events[1].recorded_at)
    assert earlier.state is not None
    assert (earlier.version, earlier.state.stage, earlier.state.joint_venture) == (
        2,
        "mou_signed",
        None,
    )
    assert earlier.known_at == events[1].recorded_at


def test_the_replayed_deal_id_is_the_stream_id() -> None:
    assert replay_events(deal2()).deal_id == DEAL
