"""Bitemporal replay by DOMAIN.md's four-step rule, pure and from the stored stream."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.deals.errors import DealNotFound
from tracker.deals.events import CHANGEABLE_STAGES, META_TYPES
from tracker.deals.reducer import HANDLERS, changed_fields, deal_json
from tracker.deals.replay import (
    _ADVANCES,
    _APPENDS,
    _LATEST,
    _PARTIES,
    ReplayedState,
    fact_statuses,
    replay_events,
    state,
    timeline,
    timeline_events,
)
from tracker.deals.services import open_deal, record_event
from tracker.eventstore.store import read_stream

from .builders import (
    BAYKAR,
    DEAL,
    LBA,
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


ORGANISATIONS = [str(BAYKAR), str(LEONARDO), str(LBA)]
JANUARY_2025 = {"date": "2025-01-01", "precision": "day"}
PRECISIONS = ["day", "month", "year"]


@st.composite
def occurred_values(draw: st.DrawFn) -> dict[str, str]:
    # Few distinct starts, so that facts are often late, back-dated or tied on their date.
    precision = draw(st.sampled_from(PRECISIONS))
    year = draw(st.integers(2024, 2026))
    month = 1 if precision == "year" else draw(st.integers(1, 12))
    day = draw(st.integers(1, 28)) if precision == "day" else 1
    return {"date": date(year, month, day).isoformat(), "precision": precision}


def fact_data(kind: str, n: int) -> dict[str, Any]:
    """Valid data of one fact type; `n` varies what it says."""
    a, b = ORGANISATIONS[n % 3], ORGANISATIONS[(n + 1) % 3]
    money = {"amount": str(1000 + n), "currency": "EUR"}
    return {
        "DealOpened": {
            "title": f"Deal {n}",
            "kind": "joint_venture",
            "summary": "",
            "parties": [{"organisation": a, "role": "partner"}],
        },
        "PartyAdded": {"organisation": a, "role": "partner"},
        "PartyRemoved": {"organisation": a},
        "MouSigned": {"parties": [a, b], "scope": f"scope {n}"},
        "JointVentureFormed": {
            "venture": str(LBA),
            "shares": [
                {"organisation": a, "percent": str(n % 99 + 1)},
                {"organisation": b, "percent": str(99 - n % 99)},
            ],
            "headquarters_country": "IT",
            "scope": "",
        },
        "ContractAwarded": (
            {"buyer": a, "supplier": b, "item": f"item {n}", "value": money}
            if n % 2
            else {
                "buyer": a,
                "supplier": b,
                "item": f"item {n}",
                "quantity": 10 + n,
                "weapon": {"designation": f"D-{n}", "category": "Aircraft", "status": "new"},
                "tiv_unit": str(n),
            }
        ),
        "DeliveryRecorded": {
            # Streams made by streams_with_late_facts name one of their own contracts.
            "contract": str(UUID(int=2 + n % 5)),
            "quantity": 1 + n % 4,
            "quantity_estimate": n % 3 == 0,
            **({"tiv": str(n)} if n % 2 else {}),
        },
        "BudgetAllocated": {"authority": a, "purpose": f"purpose {n}", "amount": money},
        "SupportAgreed": {"provider": a, "recipient": b, "programme": f"programme {n}"},
        "StageChanged": {"stage": CHANGEABLE_STAGES[n % len(CHANGEABLE_STAGES)], "reason": "r"},
        "QuoteRecorded": {"speaker": "S", "text": f"quote {n}"},
        "NoteAdded": {"text": f"note {n}"},
    }[kind]


FACT_TYPES = [kind for kind in HANDLERS if kind not in META_TYPES and kind != "DealOpened"]


@st.composite
def streams_with_late_facts(draw: st.DrawFn) -> list[Any]:
    """A stream opened first, then facts of every type at random dates, retractions of any
    earlier event (facts, corrections, retractions, the opening) and corrections of earlier
    facts' data, `occurred` or both."""
    opening = fact("DealOpened", fact_data("DealOpened", 0), draw(occurred_values()))
    items = [opening | {"event_id": UUID(int=1)}]
    # A few types per stream, so that facts of one type often meet in the fold.
    kinds = draw(st.lists(st.sampled_from(FACT_TYPES), min_size=1, max_size=4, unique=True))
    if "DeliveryRecorded" in kinds:
        kinds.append("ContractAwarded")
    for _ in range(draw(st.integers(1, 30))):
        action = draw(st.sampled_from(["fact"] * 4 + ["retract", "correct"]))
        if action == "retract":
            target = draw(st.sampled_from(items))
            body = {"event_id": str(target["event_id"]), "reason": "wrong"}
            item = fact("FactRetracted", body, YEAR_2025)
        elif action == "correct":
            target = draw(st.sampled_from([i for i in items if i["type"] not in META_TYPES]))
            body = {"event_id": str(target["event_id"])}
            if draw(st.booleans()):
                body["data"] = _naming_contracts(
                    fact_data(target["type"], draw(st.integers(0, 99))), items, draw
                )
            if "data" not in body or draw(st.booleans()):
                body["occurred"] = draw(occurred_values())
            item = fact("FactCorrected", body, YEAR_2025)
        else:
            kind = draw(st.sampled_from(kinds))
            data = _naming_contracts(fact_data(kind, draw(st.integers(0, 99))), items, draw)
            item = fact(kind, data, draw(occurred_values()))
        items.append(item | {"event_id": UUID(int=len(items) + 1)})
    return recorded(items)


def _naming_contracts(data: dict[str, Any], items: list[Any], draw: st.DrawFn) -> dict[str, Any]:
    """A delivery's data naming one of the stream's contracts, where it has one."""
    contracts = [i["event_id"] for i in items if i["type"] == "ContractAwarded"]
    if "contract" not in data or not contracts:
        return data
    return data | {"contract": str(draw(st.sampled_from(contracts)))}


class TestTimelineEvents:
    @settings(max_examples=300, deadline=None)
    @given(streams_with_late_facts())
    def test_each_entry_is_the_replay_of_the_stream_up_to_its_event(
        self, events: list[Any]
    ) -> None:
        entries = timeline_events(events)
        assert [entry.event for entry in entries] == events
        before = None
        for index, entry in enumerate(entries):
            expected = replay_events(events[: index + 1]).state
            assert entry.state_after == expected, index
            assert entry.changed == changed_fields(before, expected), index
            before = expected

    def test_every_fact_type_has_its_place_in_the_incremental_fold(self) -> None:
        placed = {"DealOpened", *_APPENDS, *_ADVANCES, *_LATEST, *_PARTIES}
        assert placed == {kind for kind in HANDLERS if kind not in META_TYPES}

    def test_a_fact_moved_later_by_a_correction_stays_after_one_dated_between(self) -> None:
        # The former timeline appended the June MoU after the moved one and showed it in force.
        early = fact("MouSigned", fact_data("MouSigned", 1), JANUARY_2025) | {"event_id": uuid4()}
        moved = correcting(early, occurred={"date": "2025-12-01", "precision": "day"})
        june = fact(
            "MouSigned", fact_data("MouSigned", 2), {"date": "2025-06-01", "precision": "day"}
        )
        events = recorded([opened(), early, moved, june])
        last = timeline_events(events)[-1].state_after
        assert last is not None
        assert last.mou is not None
        assert last.mou.scope == "scope 1"
        assert last == replay_events(events).state

    def test_a_back_dated_fact_is_folded_before_the_later_ones(self) -> None:
        late = fact("StageChanged", {"stage": "negotiating", "reason": "r"}, YEAR_2025)
        events = recorded([opened(), joint_venture(), late])
        entries = timeline_events(events)
        # The stage set in January is advanced by June's venture, so it stays "agreed".
        assert [e.state_after.stage for e in entries] == ["announced", "agreed", "agreed"]
        assert entries[-1].state_after == replay_events(events).state


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
