"""The recorder contract on PostgreSQL, and what only the PostgreSQL recorder does."""

from __future__ import annotations

import json
from uuid import uuid4

import psycopg
import pytest
from django.db import connections

from tracker.eventstore.notify import connection_params
from tracker.eventstore.postgres import PostgresRecorder
from tracker.eventstore.store import append, read_all, read_stream, recorder

from .test_recorder import RecorderContract, event


@pytest.mark.postgres
@pytest.mark.django_db
class TestPostgresRecorder(RecorderContract):
    alias = "default"

    def test_the_store_appends_through_one_postgres_recorder(self):
        assert type(recorder(self.alias)) is PostgresRecorder
        assert recorder(self.alias) is recorder(self.alias)

    def test_recorded_at_comes_from_the_database_clock_even_on_a_raw_insert(self):
        stream = uuid4()
        self.append(stream, [event()], 0)
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                "INSERT INTO eventstore_event (stream_id, version, event_id, type, "
                "schema_version, data, actor, recorded_at, prev_hash, hash) "
                "VALUES (%s, 2, %s, 'T', 1, '{}', '', '2001-01-01T00:00:00Z', '', '') "
                "RETURNING recorded_at, now()",
                [stream, uuid4()],
            )
            recorded_at, now = cursor.fetchone()
        assert recorded_at == now

    @pytest.mark.django_db(transaction=True)
    def test_read_all_pages_through_every_event_once(self):
        # The feed shows only finished transactions, so this one must commit its appends.
        super().test_read_all_pages_through_every_event_once()

    def test_read_all_hides_events_of_transactions_still_running(self):
        self.append(uuid4(), [event()], 0)
        assert read_all(using=self.alias).events == ()

    def test_the_feed_query_reads_the_feed_index_in_order_without_sorting(self):
        # A page must cost the same at any depth of the feed: an index scan, never a sort of
        # every event (as when ORDER BY names a computed output column by mistake).
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(
                "EXPLAIN (FORMAT JSON) " + recorder(self.alias).select_feed, ["0", 0, 1000]
            )
            plan = json.dumps(cursor.fetchone()[0])
        assert "event_feed_idx" in plan
        assert '"Sort"' not in plan


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestAConnectionTheServerEnded:
    """A request's first statement may be the store's own (a kept token and a cached stream
    leave it no other): it checks the connection as Django's cursor would, so a connection
    that a restart of PostgreSQL ended while it sat idle is replaced, not used (503)."""

    def ended_between_requests(self) -> None:
        connection = connections["default"]
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with psycopg.connect(**connection_params(), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        # As the next request starts (Django's request_started), a connection kept for reuse.
        connection.close_at = None
        connection.close_if_unusable_or_obsolete()
        assert connection.connection is not None

    def test_a_read_of_the_stream_opens_a_new_connection(self):
        stream = uuid4()
        append(stream, [event()], 0)
        self.ended_between_requests()

        assert [e.version for e in read_stream(stream)] == [1]

    def test_an_append_opens_a_new_connection(self):
        stream = uuid4()
        append(stream, [event()], 0)
        self.ended_between_requests()

        assert append(stream, [event()], 1).version == 2
