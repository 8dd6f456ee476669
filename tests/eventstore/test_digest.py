"""Ledger digests: chained, append-only, consistent under concurrent appends, and the check that
catches a stream rewritten with its hashes recomputed, which the per-stream chain cannot."""

from __future__ import annotations

import io
import threading
from uuid import UUID, uuid4

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from tracker.eventstore.canonical import GENESIS_HASH, canonical_json, chain_hash
from tracker.eventstore.digest import (
    digest_document,
    digest_hash,
    heads_root,
    take_digest,
    verify_ledger,
)
from tracker.eventstore.feed import decode_cursor
from tracker.eventstore.models import LedgerDigest, Stream
from tracker.eventstore.store import (
    NewEvent,
    append,
    read_stream,
    stream_version,
    verify_stream,
)


def note(text: str) -> NewEvent:
    return NewEvent(type="NoteAdded", data={"text": text})


def new_stream(events: int, *, using: str = "default") -> UUID:
    stream = uuid4()
    append(stream, [note(str(n)) for n in range(events)], 0, using=using)
    return stream


def current_heads(using: str = "default") -> list[tuple[str, int, str]]:
    rows = (
        Stream.objects.using(using).filter(version__gt=0).values_list("id", "version", "head_hash")
    )
    return [(str(stream), version, head) for stream, version, head in rows]


def rewrite_and_rehash(stream: UUID, version: int, data: dict) -> None:
    """What an attacker with database access does: change an event, then re-chain the stream.

    Triggers are bypassed as any superuser can; every later hash and the stream's head are
    recomputed, so the stream's own chain is consistent again.
    """
    events = read_stream(stream)
    prev = events[version - 2].hash if version > 1 else GENESIS_HASH
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for event in events[version - 1 :]:
            fields = event.hashed_fields()
            if event.version == version:
                fields["data"] = data
            new_hash = chain_hash(prev, fields)
            cursor.execute(
                "UPDATE eventstore_event SET data = %s::jsonb, prev_hash = %s, hash = %s "
                "WHERE stream_id = %s AND version = %s",
                [canonical_json(fields["data"]), prev, new_hash, stream, event.version],
            )
            prev = new_hash
        cursor.execute("UPDATE eventstore_stream SET head_hash = %s WHERE id = %s", [prev, stream])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.mark.postgres
@pytest.mark.django_db
class TestTakeDigest:
    def test_digests_are_chained_and_commit_to_every_head(self):
        first = new_stream(3)
        new_stream(2)
        one = take_digest()
        append(first, [note("later")], 3)
        two = take_digest()
        three = take_digest()

        assert [d.sequence for d in (one, two, three)] == [1, 2, 3]
        assert one.prev_digest == GENESIS_HASH
        assert two.prev_digest == one.digest
        assert three.prev_digest == two.digest
        for digest in (one, two, three):
            assert digest_hash(digest.prev_digest, digest_document(digest)) == digest.digest
        assert (one.streams, one.events) == (2, 5)
        assert (three.streams, three.events) == (2, 6)
        assert three.heads_root == heads_root(current_heads())
        assert one.heads_root != two.heads_root
        assert two.heads_root == three.heads_root
        assert two.digest != three.digest

    def test_a_digest_stores_only_the_heads_that_changed_since_the_previous(self):
        first, second = new_stream(1), new_stream(1)
        one = take_digest()
        append(second, [note("later")], 1)
        two = take_digest()
        three = take_digest()
        assert one.full is True
        assert sorted(map(tuple, one.heads)) == sorted(current_heads_at(first, second, version=1))
        assert two.full is False
        assert two.heads == [[str(second), 2, read_stream(second)[-1].hash]]
        assert three.heads == []

    def test_every_hundredth_digest_stores_every_head_and_the_chain_still_verifies(
        self, monkeypatch
    ):
        monkeypatch.setattr("tracker.eventstore.digest.FULL_EVERY", 3)
        first, second = new_stream(1), new_stream(1)
        digests = []
        for n in range(5):
            append(first, [note(str(n))], 1 + n)
            digests.append(take_digest())
        assert [d.full for d in digests] == [True, False, False, True, False]
        assert [len(d.heads) for d in digests] == [2, 1, 1, 2, 1]
        assert digests[-1].heads_root == heads_root(current_heads())
        assert stream_version(second) == 1
        assert verify_ledger().valid is True

    def test_feed_cursor_leaves_out_events_of_a_transaction_still_running(self):
        stream = new_stream(2)
        digest = take_digest()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT txid::text, position FROM eventstore_event WHERE stream_id = %s "
                "ORDER BY txid DESC, position DESC LIMIT 1",
                [stream],
            )
            txid, position = cursor.fetchone()
        # Inside the test's transaction the appends have not ended, so they are not below the
        # snapshot's xmin yet: the cursor covers nothing. The concurrent test covers the rest.
        assert decode_cursor(digest.feed_cursor) < (int(txid), position)


def current_heads_at(*streams: UUID, version: int) -> list[tuple[str, int, str]]:
    return [(str(s), version, read_stream(s)[version - 1].hash) for s in streams]


@pytest.mark.postgres
@pytest.mark.django_db
class TestDigestsAreAppendOnly:
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE eventstore_ledgerdigest SET heads_root = repeat('1', 64)",
            "DELETE FROM eventstore_ledgerdigest",
            "TRUNCATE eventstore_ledgerdigest",
        ],
    )
    def test_changing_a_digest_is_refused(self, sql):
        new_stream(1)
        digest = take_digest()
        with (
            pytest.raises(DatabaseError, match="ledger digests are append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
        assert LedgerDigest.objects.get().heads_root == digest.heads_root


@pytest.mark.postgres
@pytest.mark.django_db
class TestVerifyLedger:
    def test_a_clean_ledger_passes(self):
        first = new_stream(3)
        new_stream(2)
        take_digest()
        append(first, [note("more")], 3)
        take_digest()
        result = verify_ledger()
        assert result.valid is True, [str(p) for p in result.problems]
        assert (result.streams, result.events, result.digests) == (2, 6, 2)
        out = io.StringIO()
        call_command("verify_ledger", stdout=out)
        assert out.getvalue().strip() == "OK 2 streams, 6 events, 2 digests"

    def test_a_rewritten_and_rehashed_stream_passes_its_own_chain_but_not_an_earlier_digest(self):
        target, other = new_stream(3), new_stream(2)
        take_digest()
        append(target, [note("after digest 1")], 3)
        take_digest()

        rewrite_and_rehash(target, 2, {"text": "forged"})

        assert read_stream(target)[1].data == {"text": "forged"}
        # The stream's own chain and row are consistent again: verify_stream alone is fooled.
        assert verify_stream(target).valid is True
        assert verify_stream(other).valid is True
        result = verify_ledger()
        assert result.valid is False
        assert [(p.stream_id, p.version, p.sequence) for p in result.problems] == [
            (target, 3, 1),
            (target, 4, 2),
        ]
        assert {p.reason for p in result.problems} == {
            "the event's hash is not the one the digest recorded"
        }

        out = io.StringIO()
        with pytest.raises(CommandError, match="2 problems in 2 streams, 6 events, 2 digests"):
            call_command("verify_ledger", stdout=out)
        assert f"FAILED digest 1, stream {target}, version 3:" in out.getvalue()

    def test_a_row_changed_without_rehashing_is_named_at_its_version(self):
        target = new_stream(3)
        take_digest()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                'UPDATE eventstore_event SET data = \'{"text": "forged"}\' '
                "WHERE stream_id = %s AND version = 2",
                [target],
            )
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        problems = verify_ledger().problems
        assert (problems[0].stream_id, problems[0].version) == (target, 2)
        assert problems[0].reason == "hash does not match the event's contents"

    def test_an_altered_digest_is_caught_at_its_sequence(self):
        new_stream(2)
        take_digest()
        take_digest()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "UPDATE eventstore_ledgerdigest SET events = events + 1 WHERE sequence = 1"
            )
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        problems = [(p.sequence, p.reason) for p in verify_ledger().problems]
        assert problems == [
            (1, "digest does not match its contents"),
            (1, "stream or event count does not match its heads"),
        ]

    def test_a_removed_stream_is_caught_by_the_digest_that_recorded_it(self):
        gone = new_stream(2)
        take_digest()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("DELETE FROM eventstore_event WHERE stream_id = %s", [gone])
            cursor.execute("DELETE FROM eventstore_stream WHERE id = %s", [gone])
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        problems = verify_ledger().problems
        assert [(p.stream_id, p.version, p.sequence, p.reason) for p in problems] == [
            (gone, 2, 1, "the event the digest recorded is missing")
        ]


@pytest.mark.django_db(databases=["sqlite"])
class TestDigestOnSqlite:
    def test_digests_chain_and_verify(self):
        stream = new_stream(2, using="sqlite")
        take_digest(using="sqlite")
        append(stream, [note("more")], 2, using="sqlite")
        two = take_digest(using="sqlite")
        assert (two.sequence, two.streams, two.events) == (2, 1, 3)
        assert two.heads_root == heads_root(current_heads("sqlite"))
        result = verify_ledger(using="sqlite")
        assert result.valid is True, [str(p) for p in result.problems]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestDigestUnderConcurrentAppends:
    def test_each_digest_matches_the_events_it_counts(self):
        streams = [uuid4() for _ in range(12)]
        writers, appends_each = 6, 40
        stop = threading.Event()
        start = threading.Barrier(writers + 1)
        errors: list[BaseException] = []

        def write(index: int) -> None:
            try:
                start.wait()
                mine = streams[index::writers]
                for n in range(appends_each):
                    stream = mine[n % len(mine)]
                    # Some appends write two events.
                    with transaction.atomic():
                        version = stream_version(stream)
                        append(
                            stream, [note(f"{index}.{n}.{k}") for k in range(1 + n % 2)], version
                        )
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        def digest() -> None:
            try:
                start.wait()
                while not stop.is_set():
                    take_digest()
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        taker = threading.Thread(target=digest)
        for thread in [*threads, taker]:
            thread.start()
        for thread in threads:
            thread.join(120)
        stop.set()
        taker.join(120)
        assert errors == []
        take_digest()

        digests = list(LedgerDigest.objects.order_by("sequence"))
        assert len(digests) > 5
        hashes = {}
        feed = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT stream_id, version, hash, txid::text, position FROM eventstore_event"
            )
            for stream, version, digest_of_event, txid, position in cursor.fetchall():
                hashes[(str(stream), version)] = digest_of_event
                feed[(str(stream), version)] = (int(txid), position)
        known: dict[str, tuple[int, str]] = {}
        covered_counts = set()
        for row in digests:
            for stream, version, head in row.heads:
                known[stream] = (version, head)
            assert row.events == sum(v for v, _ in known.values())
            assert row.heads_root == heads_root((s, v, h) for s, (v, h) in known.items())
            for stream, (version, head) in known.items():
                assert hashes[(stream, version)] == head
            cursor_at = decode_cursor(row.feed_cursor)
            for (stream, version), place in feed.items():
                if place <= cursor_at:
                    assert stream in known, (row.sequence, place)
                    assert version <= known[stream][0], (row.sequence, place)
            covered_counts.add(row.events)
        # Digests were taken while writers ran, not only before or after them.
        assert len(covered_counts) > 2
        assert verify_ledger().valid is True
