"""Reads from the PostgreSQL replica `make test` starts: a real hot standby of the primary.

What a read saw is told from the replica's own state: with its replay paused (and so frozen),
an answer without a write made since came from the replica, one with it from the primary.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from django.db import connections, transaction
from rest_framework.test import APIClient

from config.routers import REPLICA
from tests.standby import primary_wal_position, wait_for_replay
from tracker.api import replica
from tracker.deals.models import Organisation
from tracker.eventstore.store import NewEvent, append, stream_version
from tracker.projections.models import DealState

from .conftest import SOURCE, client_for, make_organisation, make_user, note_event, opening

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.replica,
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
]
ROOT = Path(__file__).resolve().parents[2]
DEALS = "/api/v1/deals/"


@pytest.fixture(autouse=True)
def replica_reads(settings) -> Iterator[None]:
    """Reads go to the replica, which is up, replaying and caught up at the start."""
    settings.REPLICA_READS = True
    replica.replica_answered()
    yield
    replica.replica_answered()
    resume_replay()


@pytest.fixture
def editor() -> APIClient:
    return client_for(make_user("ed", "editor"))


@pytest.fixture
def auditor() -> APIClient:
    return client_for(make_user("audrey", "auditor"))


@pytest.fixture
def deal(editor: APIClient) -> UUID:
    """A deal at version 2, its projection too, replayed by the replica."""
    parties = [make_organisation("Acme Aero", "GB"), make_organisation("Beta Avionics", "IT")]
    opened = editor.post(DEALS, opening(parties), format="json")
    assert opened.status_code == 201, opened.content
    deal_id = UUID(opened.json()["id"])
    noted = editor.post(f"{DEALS}{deal_id}/events/", note_event("first"), format="json")
    assert noted.status_code == 201, noted.content
    assert DealState.objects.get(deal=deal_id).version == 2
    wait_for_replay()
    return deal_id


def on_replica(sql: str, params: list | None = None) -> tuple:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@contextmanager
def replay_paused() -> Iterator[None]:
    """The replica's replay paused: it answers as of now until the block ends."""
    wait_for_replay()
    on_replica("SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 30
    while on_replica("SELECT pg_get_wal_replay_pause_state()")[0] != "paused":
        assert time.monotonic() < deadline, "the replica's replay did not pause"
        time.sleep(0.01)
    try:
        yield
    finally:
        resume_replay()


def resume_replay() -> None:
    with connections[REPLICA]._nodb_cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_resume()")


def add_note(client: APIClient, deal_id: UUID, text: str, expected_version: int) -> int:
    response = client.post(
        f"{DEALS}{deal_id}/events/", note_event(text, expected_version), format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["version"]


def notes(state: dict) -> list[str]:
    return [note["text"] for note in state["notes"]]


def services(command: str) -> None:
    if "SERVICES_DIR" not in os.environ:
        pytest.skip("needs the replica of scripts/with-services.sh, to stop and start it")
    subprocess.run(
        [ROOT / "scripts/services.sh", command, os.environ["SERVICES_DIR"]],
        check=True,
        capture_output=True,
        timeout=90,
    )


@contextmanager
def replica_stopped() -> Iterator[None]:
    """The replica's server stopped, and started again (caught up) when the block ends."""
    services("stop-replica")
    try:
        yield
    finally:
        connections[REPLICA].close()
        services("start-replica")


class TestReadsFromTheReplica:
    def test_each_read_answers_as_the_replica_has_replayed(self, editor, auditor, deal):
        """With replay paused, a note and an organisation added on the primary are missing
        from every read the replica serves: the replica answered them."""
        with replay_paused():
            assert add_note(editor, deal, "second", expected_version=2) == 3
            make_organisation("Gamma Dynamics", "FR")
            detail = editor.get(f"{DEALS}{deal}/").json()
            listed = editor.get(DEALS).json()["results"]
            stream = editor.get(f"{DEALS}{deal}/events/").json()["results"]
            replayed = editor.get(f"{DEALS}{deal}/state/").json()
            timeline = auditor.get(f"{DEALS}{deal}/timeline/").json()
            feed = editor.get("/api/v1/events/").json()["results"]
            organisations = editor.get("/api/v1/organisations/").json()["results"]
        assert (detail["version"], notes(detail)) == (2, ["first"])
        assert [(d["id"], d["version"]) for d in listed] == [(str(deal), 2)]
        assert [e["version"] for e in stream] == [1, 2]
        assert replayed["version"] == 2
        assert len(timeline["entries"]) == 2
        assert [e["version"] for e in feed] == [1, 2]
        assert sorted(o["name"] for o in organisations) == ["Acme Aero", "Beta Avionics"]

        wait_for_replay()
        detail = editor.get(f"{DEALS}{deal}/").json()
        assert (detail["version"], notes(detail)) == (3, ["first", "second"])
        assert [e["version"] for e in editor.get("/api/v1/events/").json()["results"]] == [1, 2, 3]
        assert len(editor.get("/api/v1/organisations/").json()["results"]) == 3

    def test_the_replica_serves_the_reads_by_its_own_statistics(self, editor, deal):
        """The replica's own count of scans of the read model grows with each detail read.

        Nothing else reads the replica's tables. (The primary's count grows too, here: in
        embedded mode, as tests run, a read first heals projections left behind.)
        """

        def scans(alias: str) -> int:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_stat_force_next_flush()")
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
                    " WHERE relname = %s",
                    [DealState._meta.db_table],
                )
                return cursor.fetchone()[0]

        before = scans(REPLICA)
        for _ in range(5):
            assert editor.get(f"{DEALS}{deal}/").status_code == 200
        assert scans(REPLICA) - before >= 5


class TestReadYourWrites:
    def test_min_version_shows_the_write_while_replay_is_paused(self, editor, deal):
        with replay_paused():
            version = add_note(editor, deal, "second", expected_version=2)
            stale = editor.get(f"{DEALS}{deal}/").json()
            fresh = editor.get(f"{DEALS}{deal}/", {"min_version": version}).json()
            also_fresh = editor.get(f"{DEALS}{deal}/", {"min_version": version}).json()
        assert (stale["version"], notes(stale)) == (2, ["first"])
        assert (fresh["version"], notes(fresh)) == (3, ["first", "second"])
        assert also_fresh == fresh

    def test_a_deal_opened_while_replay_is_paused_is_found(self, editor, deal):
        with replay_paused():
            opened = editor.post(DEALS, opening([make_organisation("Delta", "DE")]), format="json")
            deal_id = opened.json()["id"]
            found = editor.get(f"{DEALS}{deal_id}/")
            stream = editor.get(f"{DEALS}{deal_id}/events/")
            state = editor.get(f"{DEALS}{deal_id}/state/")
        assert (found.status_code, found.json()["version"]) == (200, 1)
        assert [e["type"] for e in stream.json()["results"]] == ["DealOpened"]
        assert state.json()["version"] == 1
        assert editor.get(f"{DEALS}{uuid4()}/").status_code == 404

    def test_a_revoked_token_is_refused_at_once(self, deal):
        """Tokens are checked on the primary: the replica, paused, still holds the token."""
        user = make_user("revoked", "reader")
        client = client_for(user)
        with replay_paused():
            assert client.get(f"{DEALS}{deal}/").status_code == 200
            user.auth_token_set.all().delete()
            assert client.get(f"{DEALS}{deal}/").status_code == 401


class TestTheFeedOnTheReplica:
    def test_skips_no_commit_the_replica_has_not_replayed(self, editor):
        """A transaction that committed on the primary after the replica paused is still
        running in the replica's snapshot, so the replica's feed stops below it, even though
        a later transaction's events are there; a reader by position alone skips it."""
        first, second = uuid4(), uuid4()
        written = threading.Event()
        release = threading.Event()

        def slow_writer() -> None:
            try:
                with transaction.atomic():
                    append(first, [note()], 0, actor="slow")
                    written.set()
                    assert release.wait(30)
            finally:
                connections.close_all()

        writer = threading.Thread(target=slow_writer)
        writer.start()
        try:
            assert written.wait(30)
            append(second, [note()], 0, actor="fast")
            wait_for_replay()  # the replica has the fast commit, and the slow one's start
            with replay_paused():
                release.set()
                writer.join(30)
                on_primary = feed_streams(editor, read_from_replica=False)
                on_replica = feed_streams(editor, read_from_replica=True)
                by_position = on_replica_by_position()
        finally:
            release.set()
            writer.join(30)
        assert on_primary == [first, second]
        assert on_replica == []
        assert by_position == [second]  # a reader by position would pass `first` for good
        wait_for_replay()
        assert feed_streams(editor, read_from_replica=True) == [first, second]


def note() -> NewEvent:
    return NewEvent(
        type="NoteAdded",
        data={"text": "n"},
        occurred={"date": "2025-06-01", "precision": "month"},
        source=SOURCE,
    )


def feed_streams(client: APIClient, *, read_from_replica: bool) -> list[UUID]:
    from django.conf import settings

    saved = settings.REPLICA_READS
    settings.REPLICA_READS = read_from_replica
    try:
        response = client.get("/api/v1/events/")
    finally:
        settings.REPLICA_READS = saved
    assert response.status_code == 200, response.content
    return [UUID(e["deal"]) for e in response.json()["results"]]


def on_replica_by_position() -> list[UUID]:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT stream_id FROM eventstore_event ORDER BY position")
        return [UUID(str(row[0])) for row in cursor.fetchall()]


class TestWithTheReplicaDown:
    def test_reads_fall_back_to_the_primary_with_no_error(self, editor, auditor, deal):
        with replica_stopped():
            version = add_note(editor, deal, "while down", expected_version=2)
            paths = [
                DEALS,
                f"{DEALS}{deal}/",
                f"{DEALS}{deal}/events/",
                f"{DEALS}{deal}/state/",
                "/api/v1/events/",
                "/api/v1/organisations/",
            ]
            answers = [editor.get(path) for path in paths for _ in range(3)]
            timeline = auditor.get(f"{DEALS}{deal}/timeline/")
            health = APIClient().get("/health/")
        assert [a.status_code for a in answers] == [200] * len(answers)
        assert timeline.status_code == 200
        assert editor.get(f"{DEALS}{deal}/").json()["version"] == version == 3
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        assert health.json()["replica"] == "down"
        # Started again, the replica serves reads once more.
        assert APIClient().get("/health/").json()["replica"] == "ok"
        assert replica.read_alias() == REPLICA

    def test_a_replica_that_does_not_answer_is_tried_once_per_retry_period(self, editor, deal):
        """A server that takes connections and never answers costs the connect timeout once;
        the reads after it go to the primary without trying the replica again."""
        with silent_server() as attempts:
            for _ in range(4):
                response = editor.get(f"{DEALS}{deal}/")
                assert (response.status_code, response.json()["version"]) == (200, 2)
            assert attempts() == 1
            assert replica.read_alias() == "default"


@contextmanager
def silent_server() -> Iterator[Callable[[], int]]:
    """The replica's alias pointed at a port that accepts connections and never answers;
    yields a count of the connections made to it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    accepted: list[socket.socket] = []

    def attempts() -> int:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except BlockingIOError:
                return len(accepted)

    alias = connections[REPLICA]
    saved = alias.settings_dict["HOST"], alias.settings_dict["PORT"]
    alias.close()
    alias.settings_dict["HOST"], alias.settings_dict["PORT"] = listener.getsockname()
    try:
        yield attempts
    finally:
        alias.close()
        alias.settings_dict["HOST"], alias.settings_dict["PORT"] = saved
        for peer in accepted:
            peer.close()
        listener.close()


class TestTheServicesReplica:
    """What scripts/services.sh sets up, which the tests above stop and start."""

    def test_streams_through_a_slot_so_the_primary_keeps_the_wal_it_needs(self):
        if "SERVICES_DIR" not in os.environ:
            pytest.skip("a replica of scripts/with-services.sh's, not one set by hand")
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT slot_type, active FROM pg_replication_slots")
            assert cursor.fetchall() == [("physical", True)]

    def test_starts_again_from_where_it_stopped(self, editor, deal):
        """A stopped standby replays from its last restartpoint before it takes a connection:
        stopped after this run's writes, it restarts from past them, not from a checkpoint
        of the primary made long before (which once took more than the 30 s allowed)."""
        add_note(editor, deal, "before the stop", expected_version=2)
        written = primary_wal_position()
        with replica_stopped():
            pass
        redo, replayed = on_replica(
            "SELECT redo_lsn >= %s::pg_lsn, pg_last_wal_replay_lsn() >= %s::pg_lsn "
            "FROM pg_control_checkpoint()",
            [written, written],
        )
        assert (redo, replayed) == (True, True)


class TestHealth:
    def test_reports_the_replica_and_its_lag(self, editor, deal):
        healthy = APIClient().get("/health/").json()
        with replay_paused():
            add_note(editor, deal, "second", expected_version=2)
            primary_wal_position()
            behind = APIClient().get("/health/")
        assert healthy["replica"] == "ok"
        assert healthy["replica_lag_bytes"] >= 0
        assert healthy["replica_lag_seconds"] >= 0
        assert behind.status_code == 200
        assert behind.json()["replica"] == "ok"
        assert behind.json()["replica_lag_bytes"] > 0
        assert behind.json()["replica_lag_seconds"] > 0

    def test_without_a_replica_says_so(self, settings):
        settings.REPLICA_READS = False  # as settings.py leaves it without DATABASE_REPLICA_URL
        body = APIClient().get("/health/").json()
        assert (body["replica"], body["replica_lag_bytes"]) == ("not configured", None)


class TestRouter:
    def test_a_row_read_from_the_replica_is_saved_on_the_primary(self):
        organisation = make_organisation("Acme Aero", "GB")
        wait_for_replay()
        read = Organisation.objects.using(REPLICA).get(pk=organisation)
        read.name = "Acme Aerospace"
        read.save()
        assert Organisation.objects.get(pk=organisation).name == "Acme Aerospace"

    def test_nothing_is_migrated_on_the_replica(self):
        from django.db import router

        assert router.allow_migrate_model(REPLICA, Organisation) is False
        assert router.allow_migrate_model("default", Organisation) is True
        assert stream_version(uuid4(), using=REPLICA) == 0
