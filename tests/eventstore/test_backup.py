"""Backup, wipe, restore on PostgreSQL: the same projected states and a passing verify_ledger.

The restore goes into a scratch database created on the same server, migrated by
`manage.py migrate` as a fresh install would be, so nothing of the original survives there
but what the backup carried.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection, transaction

from tracker.api.auth import issue_token
from tracker.eventstore.digest import take_digest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Everything a restore must bring back (read models are rebuilt, so projected_at is not
# compared: it is when the row was written). JSON as text: Django's connection and a plain
# psycopg one decode jsonb differently.
SNAPSHOTS = {
    "deal_states": "SELECT deal_id, version, title, kind, stage, uncertain, updated_at, "
    "state::text FROM projections_dealstate ORDER BY deal_id",
    "organisation_deals": "SELECT organisation_id, deal_id, role FROM projections_organisationdeal "
    "ORDER BY organisation_id, deal_id, role",
    "events": "SELECT position, stream_id, version, event_id, type, data::text, occurred::text, "
    "source::text, actor, recorded_at, prev_hash, hash FROM eventstore_event ORDER BY position",
    "streams": "SELECT id, version, head_hash FROM eventstore_stream ORDER BY id",
    "digests": "SELECT sequence, digest, heads_root FROM eventstore_ledgerdigest ORDER BY sequence",
    "organisations": "SELECT * FROM deals_organisation ORDER BY id",
    "users": "SELECT u.username, u.password, g.name FROM auth_user u "
    "LEFT JOIN auth_user_groups ug ON ug.user_id = u.id LEFT JOIN auth_group g ON g.id = "
    "ug.group_id ORDER BY u.username, g.name",
    "tokens": (
        "SELECT t.digest, t.token_key, t.expiry, u.username FROM knox_authtoken t "
        "JOIN auth_user u ON u.id = t.user_id ORDER BY t.digest"
    ),
}


def database_url(name: str) -> str:
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT']}/{name}"


def snapshot(cursor: Any) -> dict[str, list[tuple]]:
    result = {}
    cursor.execute("SET TIME ZONE 'UTC'")
    for name, sql in SNAPSHOTS.items():
        cursor.execute(sql)
        result[name] = cursor.fetchall()
    return result


def run(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PG_BIN": PG_BIN,
        "PYTHON": sys.executable,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A new, migrated database on the test server, dropped afterwards."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    admin = database_url(connection.settings_dict["NAME"])
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        migrated = run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], url)
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_into_a_fresh_database_gives_the_same_states(tmp_path, scratch_url):
    call_command("seed_demo")
    auditor = User.objects.create_user("auditor1", password="not-a-real-password")
    auditor.groups.add(Group.objects.get(name="auditor"))
    issue_token(auditor)
    take_digest()
    # As if backed up from a cluster whose transaction ids are far ahead of this one's: the
    # feed hides events of ids at or above the oldest running one, so restored as they are,
    # these events would stay out of the feed until this cluster's ids caught up.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE eventstore_event SET txid = '9000000000'::xid8")
    with connection.cursor() as cursor:
        before = snapshot(cursor)
    assert len(before["deal_states"]) == 5
    assert all(row[7] is not None for row in before["deal_states"])
    events = len(before["events"])

    backup = tmp_path / "ledger.dump"
    made = run(
        [str(ROOT / "scripts" / "backup.sh"), str(backup)],
        database_url(connection.settings_dict["NAME"]),
    )
    assert made.returncode == 0, made.stderr
    restored = run([str(ROOT / "scripts" / "restore.sh"), str(backup)], scratch_url)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "Rebuilt 5 deals" in restored.stdout
    assert f"OK 5 streams, {events} events, 1 digests" in restored.stdout

    with psycopg.connect(scratch_url) as conn, conn.cursor() as cursor:
        after = snapshot(cursor)
    assert after == before

    # Restoring over a ledger is refused.
    again = run([str(ROOT / "scripts" / "restore.sh"), str(backup)], scratch_url)
    assert again.returncode == 1
    assert f"refusing to restore: the target already holds {events} events" in again.stderr

    # The restored ledger takes new events, and the feed delivers old and new, each once.
    script = (
        "from uuid import uuid4\n"
        "from tracker.eventstore.store import NewEvent, append, read_all\n"
        "new = append(uuid4(), [NewEvent(type='NoteAdded', data={'text': 'after'})], 0)\n"
        "seen, cursor = [], None\n"
        "while True:\n"
        "    page = read_all(cursor, limit=7)\n"
        "    if not page.events: break\n"
        "    seen += [e.event_id for e in page.events]\n"
        "    cursor = page.next\n"
        "print(len(seen), len(set(seen)), seen[-1] == new.events[0].event_id)\n"
    )
    fed = run([sys.executable, "manage.py", "shell", "-v0", "-c", script], scratch_url)
    assert fed.returncode == 0, fed.stderr
    assert fed.stdout.split() == [str(events + 1), str(events + 1), "True"]
