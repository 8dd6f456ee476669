"""The diff between two replays: JSON Patch changes, and the events that explain each."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.deals.diff import Change, compare, deal_diff, diff, escape, tokens, value_at
from tracker.deals.errors import DealNotFound
from tracker.deals.events import META_TYPES, period_end
from tracker.deals.replay import fact_statuses, replay_events
from tracker.deals.services import open_deal, record_event

from .builders import (
    BAYKAR,
    LEONARDO,
    SOURCE,
    YEAR_2025,
    fact,
    joint_venture,
    mou,
    opened,
    recorded,
)
from .test_replay import correcting, streams_with_late_facts

MAY_2025 = date(2025, 5, 31)
NEW_YEAR_2026 = date(2026, 1, 1)


def deal2(*extra: dict[str, Any]) -> list[Any]:
    return recorded([opened(), mou(), joint_venture() | {"event_id": UUID(int=3)}, *extra])


def explained(change: Any) -> list[tuple[int, str]]:
    return [(e.version, e.type) for e in change.explained_by]


def patched(document: Any, changes: Iterable[Change | tuple[str, str, Any, Any]]) -> Any:
    """`document` with the changes applied in order, as JSON Patch would (a copy): what a
    client applying the diff would hold."""
    document = copy.deepcopy(document)
    for change in changes:
        op, path, _, new = (
            (change.op, change.path, change.old, change.new)
            if isinstance(change, Change)
            else change
        )
        parts = tokens(path)
        if not parts:
            document = copy.deepcopy(new)
            continue
        parent = document
        for token in parts[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = parts[-1]
        if isinstance(parent, list):
            if op == "add":
                parent.insert(int(last), copy.deepcopy(new))
            elif op == "remove":
                del parent[int(last)]
            else:
                parent[int(last)] = copy.deepcopy(new)
        elif op == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(new)
    return document


class TestDeal2:
    def test_may_2025_to_2026_is_the_joint_venture_formed(self) -> None:
        found = diff(deal2(), from_as_of=MAY_2025, to_as_of=NEW_YEAR_2026)
        changes = {c.path: c for c in found.changes}
        assert list(changes) == ["/stage", "/joint_venture", "/uncertain"]
        assert (changes["/stage"].old, changes["/stage"].new) == ("mou_signed", "agreed")
        assert changes["/joint_venture"].old is None
        assert changes["/joint_venture"].new["shares"] == [
            {"organisation": str(BAYKAR), "percent": "50"},
            {"organisation": str(LEONARDO), "percent": "50"},
        ]
        assert explained(changes["/stage"]) == [(3, "JointVentureFormed")]
        assert explained(changes["/joint_venture"]) == [(3, "JointVentureFormed")]
        # Both 2025 facts (the opening and the MoU) end with the year: the state is certain.
        assert explained(changes["/uncertain"]) == [(1, "DealOpened"), (2, "MouSigned")]
        assert (found.from_.version, found.to.version, found.exact) == (2, 3, True)

    def test_the_same_points_reversed_give_the_changes_reversed(self) -> None:
        events = deal2()
        forward = diff(events, from_as_of=MAY_2025, to_as_of=NEW_YEAR_2026)
        backward = diff(events, from_as_of=NEW_YEAR_2026, to_as_of=MAY_2025)
        assert [(c.path, c.new, c.old, c.explained_by) for c in backward.changes] == [
            (c.path, c.old, c.new, c.explained_by) for c in forward.changes
        ]

    def test_a_correction_between_two_known_at_moments_names_the_field_and_the_event(
        self,
    ) -> None:
        data = joint_venture("60", "40")["data"]
        events = deal2(correcting({"event_id": UUID(int=3)}, data=data, reason="misread"))
        before, after = events[2].recorded_at, events[3].recorded_at
        found = diff(events, from_known_at=before, to_known_at=after)
        assert [(c.op, c.path, c.old, c.new) for c in found.changes] == [
            ("replace", "/joint_venture/shares/0/percent", "50", "60"),
            ("replace", "/joint_venture/shares/1/percent", "50", "40"),
        ]
        (by,) = found.changes[0].explained_by
        assert (by.version, by.type, by.recorded_at) == (4, "FactCorrected", after)
        assert by.names is not None
        assert (by.names.event_id, by.names.version, by.names.type) == (
            UUID(int=3),
            3,
            "JointVentureFormed",
        )

    def test_before_the_opening_the_whole_document_is_replaced(self) -> None:
        found = diff(deal2(), from_as_of=date(2024, 12, 31))
        (change,) = found.changes
        assert (change.op, change.path, change.old) == ("replace", "", None)
        assert change.new == found.to.state
        assert explained(change) == [(1, "DealOpened")]
        assert found.from_.state is None
        assert "version" not in change.new
        assert "updated_at" not in change.new

    def test_the_same_point_twice_has_no_changes(self) -> None:
        found = diff(deal2(), from_as_of=MAY_2025, to_as_of=MAY_2025)
        assert found.changes == ()

    def test_a_note_recorded_later_is_an_add_and_its_retraction_a_remove(self) -> None:
        note = fact("NoteAdded", {"text": "later"}, YEAR_2025) | {"event_id": uuid4()}
        retraction = fact("FactRetracted", {"event_id": str(note["event_id"]), "reason": "r"}, {})
        events = deal2(note, retraction | {"occurred": YEAR_2025})
        added = diff(events, from_known_at=events[2].recorded_at, to_known_at=events[3].recorded_at)
        assert [(c.op, c.path, c.new, explained(c)) for c in added.changes] == [
            ("add", "/notes/0", {"text": "later"}, [(4, "NoteAdded")])
        ]
        removed = diff(events, from_known_at=events[3].recorded_at)
        assert [(c.op, c.path, c.old, explained(c)) for c in removed.changes] == [
            ("remove", "/notes/0", {"text": "later"}, [(5, "FactRetracted")])
        ]


class TestJsonPatch:
    def test_lists_compare_by_index_and_remove_from_the_end(self) -> None:
        assert compare({"a": [1, 2, 3]}, {"a": [1, 5]}) == [
            ("replace", "/a/1", 2, 5),
            ("remove", "/a/2", 3, None),
        ]
        old = {"a": [1, 2, 3, 4]}
        changes = compare(old, {"a": [9]})
        assert [path for _, path, _, _ in changes] == ["/a/0", "/a/3", "/a/2", "/a/1"]
        assert patched(old, changes) == {"a": [9]}
        assert old == {"a": [1, 2, 3, 4]}, "patched copies"

    def test_keys_on_one_side_are_added_or_removed(self) -> None:
        changes = compare({"d": {"x": 1}}, {"d": {"y": 1}})
        assert changes == [("remove", "/d/x", 1, None), ("add", "/d/y", None, 1)]
        assert patched({"d": {"x": 1}}, changes) == {"d": {"y": 1}}

    def test_true_is_not_one(self) -> None:
        assert compare({"a": True}, {"a": 1}) == [("replace", "/a", True, 1)]

    def test_pointer_tokens_escape_tilde_and_slash(self) -> None:
        path = "/" + escape("a/b~c")
        assert path == "/a~1b~0c"
        assert tokens(path) == ["a/b~c"]
        assert value_at({"a/b~c": 7}, path) == 7
        assert compare({"a/b": 1}, {"a/b": 2}) == [("replace", "/a~1b", 1, 2)]


def points(events: list[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    """(as_of, known_at): a date near the facts' periods or now; a recording moment or now."""
    moments = [e.recorded_at for e in events]
    known_at = st.one_of(
        st.none(),
        st.builds(
            lambda m, s: m + timedelta(seconds=s),
            st.sampled_from(moments),
            st.sampled_from([-1, 0]),
        ),
    )
    as_of = st.one_of(st.none(), st.dates(date(2023, 12, 1), date(2027, 1, 31)))
    return st.tuples(as_of, known_at)


def candidates(events: list[Any], start: tuple[Any, Any], end: tuple[Any, Any]) -> set[UUID]:
    """The events that may explain a change between the two points: recorded between their
    known_at moments, or facts in force whose period meets the time between their as_of dates."""
    found = set()
    (a1, k1), (a2, k2) = start, end
    if k1 != k2:
        low, high = sorted([k1, k2], key=lambda k: (k is None, k))
        found |= {
            e.event_id
            for e in events
            if low < e.recorded_at and (not high or e.recorded_at <= high)
        }
    if a1 != a2:
        low, high = sorted([a1, a2], key=lambda a: (a is None, a))
        known = [e for e in events if k2 is None or e.recorded_at <= k2]
        for status in fact_statuses(known).values():
            if status.event.type in META_TYPES or not status.occurred:
                continue
            first = date.fromisoformat(status.occurred["date"])
            last = period_end(first, status.occurred["precision"])
            if last > low and (high is None or first <= high):
                found.add(status.event.event_id)
    return found


class TestProperties:
    @settings(max_examples=400, deadline=None)
    @given(st.data())
    def test_the_changes_turn_from_into_to_and_each_is_explained(self, data: Any) -> None:
        events = data.draw(streams_with_late_facts())
        (a1, k1), (a2, k2) = data.draw(points(events)), data.draw(points(events))
        if data.draw(st.booleans()):
            a2 = a1  # only known_at differs
        elif data.draw(st.booleans()):
            k2 = k1  # only as_of differs
        found = diff(events, from_as_of=a1, from_known_at=k1, to_as_of=a2, to_known_at=k2)

        start = replay_events(events, as_of=a1, known_at=k1)
        end = replay_events(events, as_of=a2, known_at=k2)
        assert found.from_.version == start.version
        assert found.to.version == end.version
        assert patched(found.from_.state, found.changes) == found.to.state
        assert (found.changes == ()) == (found.from_.state == found.to.state)
        allowed = candidates(events, (a1, k1), (a2, k2))
        for change in found.changes:
            by = {e.event_id for e in change.explained_by}
            assert by <= allowed, change.path
            if a1 == a2 or k1 == k2:
                assert by, change.path
        assert found.exact is True

    @settings(max_examples=100, deadline=None)
    @given(streams_with_late_facts(), st.integers(1, 3))
    def test_steps_taken_together_still_give_to_and_credit_by_the_timeline(
        self, events: list[Any], max_steps: int
    ) -> None:
        found = diff(events, from_known_at=events[0].recorded_at, max_steps=max_steps)
        assert patched(found.from_.state, found.changes) == found.to.state
        window = {e.event_id for e in events[1:]}
        for change in found.changes:
            assert {e.event_id for e in change.explained_by} <= window
        if len(events) - 1 <= max_steps:
            assert found.exact is True


class TestGroupedSteps:
    def test_a_group_credits_the_events_whose_timeline_changed_the_field(self) -> None:
        note = fact("NoteAdded", {"text": "n"}, YEAR_2025)
        events = deal2(note)
        found = diff(events, from_known_at=events[0].recorded_at, max_steps=1)
        assert found.exact is False
        by_path = {c.path: explained(c) for c in found.changes}
        assert by_path["/stage"] == [(2, "MouSigned"), (3, "JointVentureFormed")]
        assert by_path["/joint_venture"] == [(3, "JointVentureFormed")]
        assert by_path["/notes/0"] == [(4, "NoteAdded")]

    def test_a_group_credits_at_most_twenty_events_those_nearest_to(self) -> None:
        notes = [fact("NoteAdded", {"text": f"n{i}"}, YEAR_2025) for i in range(50)]
        events = deal2(*notes)
        # 50 steps in two groups of 25 (v4-v28, v29-v53); only the first moves /notes/0.
        forward = diff(events, from_known_at=events[2].recorded_at, max_steps=2)
        assert forward.exact is False
        first = next(c for c in forward.changes if c.path == "/notes/0")
        assert [e.version for e in first.explained_by] == list(range(9, 29))
        backward = diff(events, to_known_at=events[2].recorded_at, max_steps=2)
        first = next(c for c in backward.changes if c.path == "/notes/0")
        assert first.op == "remove"
        assert [e.version for e in first.explained_by] == list(range(4, 24))


class TestEveryMove:
    def test_each_step_that_moved_the_value_is_named(self) -> None:
        jv = joint_venture() | {"event_id": uuid4()}
        retraction = fact(
            "FactRetracted", {"event_id": str(jv["event_id"]), "reason": "r"}, YEAR_2025
        )
        contract = fact(
            "ContractAwarded",
            {
                "buyer": str(BAYKAR),
                "supplier": str(LEONARDO),
                "item": "drones",
                "value": {"amount": "10", "currency": "EUR"},
            },
            YEAR_2025,
        )
        events = recorded([opened(), mou(), jv, retraction, contract])
        found = diff(events, from_known_at=events[1].recorded_at)
        stage = next(c for c in found.changes if c.path == "/stage")
        assert explained(stage) == [
            (3, "JointVentureFormed"),
            (4, "FactRetracted"),
            (5, "ContractAwarded"),
        ]
        assert "/joint_venture" not in {c.path for c in found.changes}


def _source() -> dict[str, Any]:
    return dict(SOURCE)


@pytest.mark.django_db
class TestFromTheStream:
    def test_an_unknown_deal_is_not_found(self) -> None:
        with pytest.raises(DealNotFound):
            deal_diff(uuid4())

    def test_the_stored_stream_is_diffed(self, organisations: dict[str, UUID]) -> None:
        appended = open_deal(**opened()["data"], occurred=YEAR_2025, source=_source(), actor="t")
        deal = appended.stream_id
        for version, item in enumerate([mou(), joint_venture()], start=1):
            record_event(
                deal_id=deal,
                event_type=item["type"],
                data=item["data"],
                occurred=item["occurred"],
                source=_source(),
                expected_version=version,
                actor="t",
            )
        found = deal_diff(deal, from_as_of=MAY_2025, to_as_of=NEW_YEAR_2026)
        assert found.deal_id == deal
        assert [(c.path, explained(c)) for c in found.changes][:2] == [
            ("/stage", [(3, "JointVentureFormed")]),
            ("/joint_venture", [(3, "JointVentureFormed")]),
        ]
        assert isinstance(found.changes[0].explained_by[0].recorded_at, datetime)
