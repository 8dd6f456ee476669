"""The stream cache: what it folds equals a full replay, and a stream that changed under it
(the database emptied and refilled, a transaction rolled back) is read again, never trusted."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.deals import replay, services
from tracker.deals.cache import Snapshot, StreamCache, streams
from tracker.deals.errors import DealNotFound, InvalidEvent
from tracker.deals.models import Organisation
from tracker.deals.replay import (
    fold_on,
    replay_events,
    snapshot,
    state,
    timeline,
    timeline_events,
)
from tracker.deals.services import open_deal, preview_event, record_event
from tracker.eventstore.errors import VersionConflict
from tracker.eventstore.store import NewEvent, append, read_stream, stream_version

from .builders import BAYKAR, DEAL, LEONARDO, SOURCE, YEAR_2025, fact, opened, recorded
from .test_replay import fact_data, streams_with_late_facts


def month(day: str) -> dict[str, str]:
    return {"date": day, "precision": "month"}


def note(text: str, occurred: dict[str, str]) -> dict[str, Any]:
    return fact("NoteAdded", {"text": text}, occurred) | {"event_id": uuid4()}


def replayed(events: list[Any]) -> Snapshot:
    return snapshot(events, replay_events(events).state)


def grown(cached: Snapshot, new: list[Any]) -> Snapshot:
    """What `replay.load` keeps: the fold of `new` onto `cached`, else a full replay."""
    return fold_on(cached, new) or replayed([*cached.events, *new])


# --- pure: folding onto a snapshot -------------------------------------------------------------


class TestFoldOn:
    @settings(max_examples=300, deadline=None)
    @given(events=streams_with_late_facts(), data=st.data())
    def test_a_snapshot_grown_by_any_new_events_is_their_replay(
        self, events: list[Any], data: st.DataObject
    ) -> None:
        cut = data.draw(st.integers(1, len(events)))
        cached = replayed(events[:cut])
        assert grown(cached, events[cut:]).state == replay_events(events).state

    @settings(max_examples=200, deadline=None)
    @given(events=streams_with_late_facts(), data=st.data())
    def test_facts_dated_after_the_stream_are_folded_on_and_equal_the_replay(
        self, events: list[Any], data: st.DataObject
    ) -> None:
        # Later than any date the stream, or a correction in it, can hold.
        kinds = data.draw(st.lists(st.sampled_from(["NoteAdded", "QuoteRecorded"]), min_size=1))
        later = [
            fact(kind, fact_data(kind, n), month(f"{2027 + n}-01-01"))
            for n, kind in enumerate(kinds)
        ]
        new = recorded(later, first_version=len(events) + 1)
        cached = replayed(events)
        folded = fold_on(cached, new)
        if cached.state is None:  # the opening retracted: nothing to fold onto
            assert folded is None
            return
        assert folded is not None
        assert folded.state == replay_events([*events, *new]).state
        assert folded.version == len(events) + len(new)

    def test_a_fact_dated_before_the_latest_is_not_folded_on(self) -> None:
        events = recorded([opened(), note("june", month("2025-06-01"))])
        [march] = recorded([note("march", month("2025-03-01"))], first_version=3)
        cached = replayed(events)
        assert fold_on(cached, [march]) is None
        assert [n.text for n in grown(cached, [march]).state.notes] == ["march", "june"]

    def test_a_fact_dated_before_where_a_correction_moved_another_is_not_folded_on(self) -> None:
        moved = note("moved to September", month("2025-01-01"))
        correction = fact(
            "FactCorrected",
            {"event_id": str(moved["event_id"]), "occurred": month("2025-09-01")},
            YEAR_2025,
        )
        events = recorded([opened(), moved, correction])
        [may] = recorded([note("may", month("2025-05-01"))], first_version=4)
        cached = replayed(events)
        assert fold_on(cached, [may]) is None
        after = grown(cached, [may]).state
        assert [n.text for n in after.notes] == ["may", "moved to September"]
        assert after == replay_events([*events, may]).state

    def test_retractions_and_corrections_are_replayed_not_folded_on(self) -> None:
        june = note("june", month("2025-06-01"))
        events = recorded([opened(), june])
        [retraction] = recorded(
            [fact("FactRetracted", {"event_id": str(june["event_id"]), "reason": "r"}, YEAR_2025)],
            first_version=3,
        )
        cached = replayed(events)
        assert fold_on(cached, [retraction]) is None
        assert grown(cached, [retraction]).state.notes == ()

    def test_rows_continue_a_snapshot_only_from_its_own_last_event(self) -> None:
        events = recorded([opened(), note("a", month("2025-06-01"))])
        events = [e._replace(hash=f"hash {e.version}") for e in events]
        cached = replayed(events)
        assert cached.continued_by(events[1:]) is True
        assert cached.continued_by([events[1]._replace(hash="another stream's")]) is False
        assert cached.continued_by(events) is False
        assert cached.continued_by([]) is False


class TestTheCheckedStateIsTheReplay:
    def test_after_a_correction_moved_a_fact_later(self) -> None:
        """A new fact dated between a fact's first date and the one a correction gave it is
        folded before that fact by a replay, so the state after must be replayed too."""
        moved = note("moved to September", month("2025-01-01"))
        correction = fact(
            "FactCorrected",
            {"event_id": str(moved["event_id"]), "occurred": month("2025-09-01")},
            YEAR_2025,
        )
        existing = recorded([opened(), moved, correction])
        may = services.ProposedEvent("NoteAdded", {"text": "may"}, month("2025-05-01"), SOURCE)

        checked = services._check(
            DEAL, replayed(existing), services._parse([may], batch=True), actor="a"
        )

        assert checked.after == replay_events([*existing, *checked.drafts]).state
        assert [n.text for n in checked.after.notes] == ["may", "moved to September"]


# --- the cache's bounds --------------------------------------------------------------------------


def snapshot_of(length: int, stream_id: UUID = DEAL) -> Snapshot:
    events = recorded([opened()] + [note(str(n), YEAR_2025) for n in range(length - 1)])
    return replayed([e._replace(stream_id=stream_id) for e in events])


class TestStreamCache:
    def test_keeps_the_most_recently_used_streams(self) -> None:
        cache = StreamCache(max_streams=2, max_events=100)
        a, b, c = uuid4(), uuid4(), uuid4()
        for stream_id in (a, b):
            cache.put(stream_id, snapshot_of(2, stream_id))
        assert cache.get(a) is not None
        cache.put(c, snapshot_of(2, c))
        assert (cache.get(a) is not None, cache.get(b), cache.get(c) is not None) == (
            True,
            None,
            True,
        )
        assert cache.size == (2, 4)

    def test_holds_no_more_events_than_its_budget(self) -> None:
        cache = StreamCache(max_streams=10, max_events=10)
        a, b, c = uuid4(), uuid4(), uuid4()
        cache.put(a, snapshot_of(4, a))
        cache.put(b, snapshot_of(4, b))
        cache.put(c, snapshot_of(4, c))
        assert (cache.get(a), cache.size) == (None, (2, 8))

    def test_does_not_keep_a_stream_longer_than_its_budget(self) -> None:
        cache = StreamCache(max_streams=10, max_events=10)
        a = uuid4()
        cache.put(a, snapshot_of(3, a))
        cache.put(a, snapshot_of(11, a))
        assert (cache.get(a), cache.size) == (None, (0, 0))

    def test_a_later_snapshot_is_not_replaced_by_an_earlier_one_when_asked(self) -> None:
        cache = StreamCache()
        later, earlier = snapshot_of(5), snapshot_of(3)
        cache.put(DEAL, later)
        cache.put(DEAL, earlier, unless_later=True)
        assert cache.get(DEAL) is later
        cache.put(DEAL, earlier)  # a stream read again is what is stored, whatever was held
        assert cache.get(DEAL) is earlier

    def test_keeps_streams_of_each_database_apart(self) -> None:
        cache = StreamCache()
        cache.put(DEAL, snapshot_of(2), using="other")
        assert (cache.get(DEAL), cache.get(DEAL, using="other").version) == (None, 2)


# --- through the services, on the database --------------------------------------------------------

OPENING = {
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


def add_note(deal_id: UUID, text: str, occurred: dict[str, str], version: int) -> Any:
    return record_event(
        deal_id=deal_id,
        event_type="NoteAdded",
        data={"text": text},
        occurred=occurred,
        source=SOURCE,
        expected_version=version,
        actor="alice",
    )


def preview_note(deal_id: UUID) -> services.Preview:
    return preview_event(
        deal_id=deal_id,
        event_type="NoteAdded",
        data={"text": "preview"},
        occurred=month("2025-12-01"),
        source=SOURCE,
    )


def stored_state(deal_id: UUID) -> Any:
    return replay_events(read_stream(deal_id), deal_id=deal_id).state


def make_organisations() -> None:
    for org_id, name in ((BAYKAR, "Baykar"), (LEONARDO, "Leonardo")):
        Organisation.objects.get_or_create(
            id=org_id, defaults={"name": name, "kind": "company", "country": "TR"}
        )


def written_elsewhere(deal_id: UUID, title: str, notes: int) -> None:
    """What another process writing `deal_id` does: append without touching this cache."""
    opening = opened()["data"] | {"title": title}
    events = [NewEvent("DealOpened", opening, YEAR_2025, SOURCE)] + [
        NewEvent("NoteAdded", {"text": f"{title} {n}"}, month("2025-06-01"), SOURCE)
        for n in range(notes)
    ]
    append(deal_id, events, 0, actor="elsewhere")


def titled(deal_id: UUID, title: str, notes: int) -> None:
    """Open `deal_id` titled `title` and give it `notes` notes, all through the services."""
    open_deal(**OPENING, title=title, deal_id=deal_id)
    for n in range(notes):
        add_note(deal_id, f"{title} {n}", month("2025-06-01"), n + 1)


def cached_then_rolled_back(deal_id: UUID, notes: int) -> list[Any]:
    """Open `deal_id` with `notes` notes and have this process cache it, in a transaction
    then rolled back: the cache holds a stream that was never committed. Its events."""
    with transaction.atomic():
        savepoint = transaction.savepoint()
        titled(deal_id, "Rolled back", notes)
        events = read_stream(deal_id)
        assert preview_note(deal_id).version == notes + 1  # cached, never committed
        transaction.savepoint_rollback(savepoint)
    return events


@pytest.mark.django_db
class TestThroughTheServices:
    @pytest.fixture(autouse=True)
    def _organisations(self) -> None:
        make_organisations()

    def test_reads_only_the_events_after_the_cached_head(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 3)
        first = replay.load(deal_id)
        add_note(deal_id, "new", month("2025-07-01"), 4)

        second = replay.load(deal_id)

        assert second.version == 5
        # The first four events are those already held, not read again.
        assert all(a is b for a, b in zip(first.events, second.events[:4], strict=True))
        assert second.state == stored_state(deal_id)
        assert streams.get(deal_id) is second

    def test_a_late_event_after_the_cached_head_gives_the_replayed_state(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 2)
        assert preview_note(deal_id).version == 3  # cached at version 3
        add_note(deal_id, "reaches back", month("2025-02-01"), 3)

        preview = preview_note(deal_id)

        assert preview.before == stored_state(deal_id)
        assert [n.text for n in preview.before.notes] == ["reaches back", "Deal 0", "Deal 1"]

    def test_a_correction_after_the_cached_head_gives_the_replayed_state(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 2)
        first_note = read_stream(deal_id)[1].event_id
        assert preview_note(deal_id).version == 3
        record_event(
            deal_id=deal_id,
            event_type="FactCorrected",
            data={"event_id": str(first_note), "occurred": month("2025-09-01")},
            occurred=YEAR_2025,
            source=SOURCE,
            expected_version=3,
            actor="alice",
        )
        # Dated between the moved note's two dates: a replay folds it before that note.
        add_note(deal_id, "august", month("2025-08-01"), 4)

        preview = preview_note(deal_id)

        assert preview.before == stored_state(deal_id)
        assert [n.text for n in preview.before.notes] == ["Deal 1", "august", "Deal 0"]

    def test_a_stream_rolled_back_and_written_again_is_read_again(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 2)
        written_elsewhere(deal_id, "Stored", 2)

        preview = preview_note(deal_id)

        # Same id and versions; only the hash of version 3 tells the two streams apart.
        assert preview.version == 3
        assert preview.before.title == "Stored"
        assert preview.before == stored_state(deal_id)

    def test_state_and_timeline_read_the_events_after_the_cached_ones(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 2)
        assert preview_note(deal_id).version == 3  # cached at version 3
        late = NewEvent("NoteAdded", {"text": "elsewhere"}, month("2025-02-01"), SOURCE)
        append(deal_id, [late], 3, actor="elsewhere")
        stored = read_stream(deal_id)

        # The real read, watched: what it is asked for shows the cache was used.
        with mock.patch.object(replay, "read_stream", wraps=read_stream) as reads:
            assert state(deal_id) == replay_events(stored, deal_id=deal_id)
        assert [call.args[:2] for call in reads.call_args_list] == [(deal_id, 2)]
        as_of = date(2025, 3, 31)
        assert state(deal_id, as_of=as_of) == replay_events(stored, as_of=as_of, deal_id=deal_id)
        assert timeline(deal_id) == timeline_events(stored)
        assert [n.text for n in state(deal_id).state.notes] == ["elsewhere", "Deal 0", "Deal 1"]

    def test_state_of_a_stream_rolled_back_and_written_again_is_the_stored_one(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 2)
        written_elsewhere(deal_id, "Stored", 2)

        assert state(deal_id).state.title == "Stored"
        assert [e.event.data for e in timeline(deal_id)] == [e.data for e in read_stream(deal_id)]

    def test_a_stream_shorter_than_the_cached_one_is_read_again(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 3)
        written_elsewhere(deal_id, "Stored", 0)

        with pytest.raises(VersionConflict, match="expected 4, current 1"):
            add_note(deal_id, "at the cached version", month("2025-06-01"), 4)
        assert add_note(deal_id, "at the stored version", month("2025-06-01"), 1).version == 2
        assert stored_state(deal_id).title == "Stored"


@pytest.mark.django_db(transaction=True)
class TestAppendingOntoTheCachedHead:
    """Outside a transaction an append decides on the cached stream without reading it, and
    names its head to the store: committed data only, as in a web request."""

    @pytest.fixture(autouse=True)
    def _organisations(self) -> None:
        make_organisations()

    def test_an_append_at_the_cached_head_reads_nothing_and_keeps_the_new_head(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 2)
        assert streams.get(deal_id).version == 3  # kept by the last append

        with mock.patch.object(replay, "read_stream", wraps=read_stream) as reads:
            appended = add_note(deal_id, "from the cache", month("2025-07-01"), 3)

        assert reads.call_count == 0
        assert appended.version == 4
        kept = streams.get(deal_id)
        assert [e.event_id for e in kept.events] == [e.event_id for e in read_stream(deal_id)]
        assert kept.state == stored_state(deal_id)

    def test_a_cached_head_that_is_not_the_stored_one_is_refused_and_read_again(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 2)
        written_elsewhere(deal_id, "Stored", 2)

        assert add_note(deal_id, "after the stored ones", month("2025-07-01"), 3).version == 4

        assert stored_state(deal_id).title == "Stored"
        assert streams.get(deal_id).state == stored_state(deal_id)

    def test_rules_refusing_on_a_stale_copy_are_judged_again_on_the_stored_stream(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 2)
        written_elsewhere(deal_id, "Stored", 2)
        # Only the stored stream holds this note: the cached copy would refuse to retract it.
        stored_note = read_stream(deal_id)[1].event_id

        appended = retract(deal_id, stored_note, 3)

        assert appended.version == 4
        assert stored_note in stored_state(deal_id).retracted

    def test_rules_passing_on_a_stale_copy_are_refused_on_the_stored_stream(self) -> None:
        deal_id = uuid4()
        rolled_back_note = cached_then_rolled_back(deal_id, 2)[1].event_id
        written_elsewhere(deal_id, "Stored", 2)

        # The cached copy holds the note and lets it be retracted; the store refuses the copy,
        # and on the stored stream there is no such event.
        with pytest.raises(InvalidEvent, match=r"data\.event_id"):
            retract(deal_id, rolled_back_note, 3)
        assert stream_version(deal_id) == 3

    def test_a_cached_deal_that_was_never_stored_is_not_found(self) -> None:
        deal_id = uuid4()
        cached_then_rolled_back(deal_id, 1)

        with pytest.raises(DealNotFound):
            add_note(deal_id, "to a deal that is not there", month("2025-07-01"), 2)
        assert stream_version(deal_id) == 0

    def test_appends_in_a_transaction_managed_by_hand_are_not_kept(self) -> None:
        deal_id = uuid4()
        titled(deal_id, "Deal", 1)
        kept = streams.get(deal_id)
        transaction.set_autocommit(False)
        try:
            add_note(deal_id, "rolled back", month("2025-07-01"), 2)
            transaction.rollback()
        finally:
            transaction.set_autocommit(True)

        assert streams.get(deal_id) is kept
        assert add_note(deal_id, "stored", month("2025-07-01"), 2).version == 3


def retract(deal_id: UUID, event_id: UUID, version: int) -> Any:
    return record_event(
        deal_id=deal_id,
        event_type="FactRetracted",
        data={"event_id": str(event_id), "reason": "wrong"},
        occurred=YEAR_2025,
        source=SOURCE,
        expected_version=version,
        actor="alice",
    )


@pytest.mark.django_db(transaction=True)
def test_a_database_emptied_and_seeded_again_with_the_same_ids_is_read_again() -> None:
    deal_id = UUID("00000000-0000-4000-8000-00000000ca5e")
    make_organisations()
    titled(deal_id, "Before the flush", 2)
    assert preview_note(deal_id).before.title == "Before the flush"

    call_command("flush", interactive=False, verbosity=0)
    make_organisations()
    written_elsewhere(deal_id, "After the flush", 2)

    preview = preview_note(deal_id)
    assert preview.before.title == "After the flush"
    assert preview.before == stored_state(deal_id)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_at_one_cached_version_get_one_conflict() -> None:
    """The cache saves reads, not decisions: the store still refuses the second writer."""
    make_organisations()
    deal_id = uuid4()
    titled(deal_id, "Raced", 1)
    assert preview_note(deal_id).version == 2  # both writers find the stream cached
    rounds, writers = 5, 2
    outcomes: list[list[tuple[str, int]]] = [[] for _ in range(rounds)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            for round_number in range(rounds):
                barrier.wait(timeout=60)
                try:
                    text = f"w{n} r{round_number}"
                    stored = add_note(deal_id, text, month("2025-06-01"), 2 + round_number)
                    outcomes[round_number].append(("stored", stored.version))
                except VersionConflict as conflict:
                    outcomes[round_number].append(("conflict", conflict.current_version))
                barrier.wait(timeout=60)
        except BaseException as error:  # reported below: a thread's failure must fail the test
            failures.append(error)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    # Each round one writer stores the next version, and the other is told it is current.
    assert [sorted(round_) for round_ in outcomes] == [
        [("conflict", version), ("stored", version)] for version in range(3, rounds + 3)
    ]
    assert [e.version for e in read_stream(deal_id)] == list(range(1, rounds + 3))
    assert replay.load(deal_id).state == stored_state(deal_id)
