"""GET /api/v1/ledger/digest/: the latest ledger digest, for an auditor to save and check later."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tracker.eventstore.canonical import GENESIS_HASH
from tracker.eventstore.digest import digest_hash, heads_root, take_digest
from tracker.eventstore.models import LedgerDigest
from tracker.eventstore.store import verify_stream
from tracker.projections import dispatch

from .conftest import client_for, write_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/ledger/digest/"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"
FIELDS = {
    "format",
    "format_version",
    "sequence",
    "taken_at",
    "feed_cursor",
    "streams",
    "events",
    "heads_root",
    "prev_digest",
    "digest",
}


def test_the_first_request_takes_a_digest_committing_to_every_head(auditor):
    streams = [write_stream(count)[0].stream_id for count in (1, 2, 3)]
    assert LedgerDigest.objects.count() == 0
    response = auditor.get(URL)
    assert response.status_code == 200
    document = response.json()
    assert set(document) == FIELDS
    assert document["format"] == "deal-tracker-ledger-digest"
    assert document["sequence"] == 1
    assert document["prev_digest"] == GENESIS_HASH
    assert (document["streams"], document["events"]) == (3, 6)
    heads = [(str(s), verify_stream(s).events, verify_stream(s).head) for s in streams]
    assert document["heads_root"] == heads_root(heads)
    assert document["digest"] == digest_hash(document["prev_digest"], document)
    assert LedgerDigest.objects.count() == 1


def test_a_request_returns_the_latest_digest_and_takes_none(auditor):
    write_stream(2)
    first = take_digest()
    write_stream(1)
    second = take_digest()
    for _ in range(2):
        document = auditor.get(URL).json()
        assert document["sequence"] == second.sequence == 2
        assert document["prev_digest"] == first.digest
        assert document["digest"] == second.digest
        assert document["events"] == 3
    assert LedgerDigest.objects.count() == 2


def test_an_empty_ledger_has_a_digest_of_nothing(auditor):
    document = auditor.get(URL).json()
    assert (document["sequence"], document["streams"], document["events"]) == (1, 0, 0)
    assert document["heads_root"] == heads_root([])


@pytest.mark.parametrize(("role", "status"), [("reader", 403), ("editor", 403), ("none", 403)])
def test_only_auditors_may_read_it(client_as, role, status):
    response = client_as(role).get(URL)
    assert response.status_code == status
    assert response.json()["code"] == "permission_denied"
    assert client_as("anonymous").get(URL).status_code == 401
    assert LedgerDigest.objects.count() == 0


def test_the_saved_document_checks_a_later_export_offline(auditor, tmp_path):
    write_stream(3)
    saved = tmp_path / "digest.json"
    saved.write_text(json.dumps(auditor.get(URL).json()))
    write_stream(2)
    ledger = tmp_path / "ledger.jsonl"
    call_command("export_ledger", output=str(ledger))
    result = subprocess.run(
        [sys.executable, "-I", str(TOOL), "--ledger", str(ledger), "--digest", str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK")


def test_it_is_in_the_openapi_schema():
    response = client_for(None).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    operation = schema["paths"]["/api/v1/ledger/digest/"]["get"]
    assert operation["operationId"] == "ledger_digest"
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/LedgerDigest"}
    component = schema["components"]["schemas"]["LedgerDigest"]
    assert set(component["properties"]) == FIELDS
    assert {"401", "403"} <= set(operation["responses"])
    assert {"tokenAuth": []} in operation["security"]
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


def test_embedded_a_request_past_the_period_gets_a_new_digest(auditor, settings, monkeypatch):
    # The embedded mode has no beat: without this the first digest would be the only one.
    client = auditor
    write_stream(2)
    first = client.get(URL).json()
    again = client.get(URL).json()
    assert again["sequence"] == first["sequence"]
    write_stream(3)
    settings.LEDGER_DIGEST_SECONDS = 0
    later = client.get(URL).json()
    assert (later["sequence"], later["events"]) == (first["sequence"] + 1, first["events"] + 3)
    assert later["prev_digest"] == first["digest"]
    # With a scheduler (a broker), the beat takes them, not requests.
    monkeypatch.setattr(dispatch, "_embedded", lambda: False)
    write_stream(1)
    assert client.get(URL).json()["sequence"] == later["sequence"]
