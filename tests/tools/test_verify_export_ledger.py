"""`tools/verify_export.py --ledger` checks a whole-ledger export against a digest saved earlier,
so a history rewritten with every hash recomputed, digests included, is still caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from tests.eventstore.test_digest import note, rewrite_and_rehash
from tracker.eventstore.canonical import GENESIS_HASH
from tracker.eventstore.digest import digest_document, digest_hash, heads_root, take_digest
from tracker.eventstore.models import LedgerDigest
from tracker.eventstore.store import append, read_stream, verify_stream

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def run_tool(*args: str | Path) -> tuple[int, str]:
    # -I: isolated, so the tool cannot lean on this project being importable.
    result = subprocess.run(
        [sys.executable, "-I", str(TOOL), *map(str, args)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode, (result.stdout + result.stderr).decode().strip()


def export(tmp_path: Path, name: str = "ledger.jsonl") -> Path:
    path = tmp_path / name
    call_command("export_ledger", output=str(path))
    return path


def save_digest(tmp_path: Path, sequence: int) -> Path:
    """What an auditor keeps: the digest document, stored outside the database."""
    path = tmp_path / f"digest-{sequence}.json"
    path.write_text(json.dumps(digest_document(LedgerDigest.objects.get(sequence=sequence))))
    return path


def forge_digests() -> None:
    """Re-take every stored digest from the (rewritten) events, as a thorough attacker would."""
    known: dict[str, tuple[int, str]] = {}
    prev = GENESIS_HASH
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for row in LedgerDigest.objects.order_by("sequence"):
            heads = []
            for stream, version, _ in row.heads:
                head = read_stream(UUID(stream))[version - 1].hash
                heads.append([stream, version, head])
                known[stream] = (version, head)
            root = heads_root((s, v, h) for s, (v, h) in known.items())
            body = {**digest_document(row), "heads_root": root}
            digest = digest_hash(prev, body)
            cursor.execute(
                "UPDATE eventstore_ledgerdigest SET heads = %s::jsonb, heads_root = %s, "
                "prev_digest = %s, digest = %s WHERE sequence = %s",
                [json.dumps(heads), root, prev, digest, row.sequence],
            )
            prev = digest
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.fixture
def ledger() -> tuple[UUID, UUID]:
    """Two streams and two digests; the target gets an event between them."""
    target, other = uuid4(), uuid4()
    append(target, [note(f"t{n}") for n in range(3)], 0)
    append(other, [note(f"o{n}") for n in range(2)], 0)
    take_digest()
    append(target, [note("t3")], 3)
    take_digest()
    return target, other


def test_a_clean_export_matches_a_saved_digest(ledger, tmp_path):
    saved = save_digest(tmp_path, 1)
    code, out = run_tool("--ledger", export(tmp_path), "--digest", saved)
    digest = json.loads(saved.read_text())["digest"]
    assert (code, out) == (0, f"OK 2 streams, 6 events, 2 digests; digest 1 {digest} matches")
    code, out = run_tool("--ledger", export(tmp_path))
    assert (code, out) == (0, "OK 2 streams, 6 events, 2 digests")


def test_a_rewritten_and_rehashed_stream_is_caught_by_the_stored_digests(ledger, tmp_path):
    target, _ = ledger
    rewrite_and_rehash(target, 2, {"text": "forged"})
    assert verify_stream(target).valid is True
    path = export(tmp_path)
    lines = path.read_bytes().splitlines()
    # Header, two digests, then the target's or the other stream's section first.
    first = json.loads(lines[3])["deal"]
    line = 4 + 3 if first == str(target) else 4 + 3 + 3
    code, out = run_tool("--ledger", path)
    assert code == 1
    assert out == f"FAILED at line {line}: version 3's hash is not the one digest 1 recorded"


def test_rewritten_digests_too_pass_the_database_but_not_the_saved_digest(ledger, tmp_path):
    target, _ = ledger
    saved = save_digest(tmp_path, 1)
    rewrite_and_rehash(target, 2, {"text": "forged"})
    forge_digests()

    # With its digests re-taken, the database agrees with itself: only a copy kept elsewhere
    # can tell.
    call_command("verify_ledger")
    path = export(tmp_path)
    assert run_tool("--ledger", path) == (0, "OK 2 streams, 6 events, 2 digests")
    code, out = run_tool("--ledger", path, "--digest", saved)
    assert (code, out) == (1, "FAILED at line 2: digest differs from the saved digest's")


def test_a_saved_digest_that_was_edited_is_refused(ledger, tmp_path):
    saved = save_digest(tmp_path, 2)
    document = json.loads(saved.read_text())
    document["events"] = 7
    saved.write_text(json.dumps(document))
    code, out = run_tool("--ledger", export(tmp_path), "--digest", saved)
    assert (code, out) == (1, "FAILED: the saved digest's hash does not match its own fields")


def test_a_missing_event_line_is_caught(ledger, tmp_path):
    path = export(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[5]
    path.write_bytes(b"".join(lines))
    code, out = run_tool("--ledger", path)
    assert code == 1
    assert out.startswith("FAILED at line 6: ")
