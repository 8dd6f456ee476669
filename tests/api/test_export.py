"""GET /api/v1/deals/{id}/export/ and tools/verify_export.py, which checks it offline."""

from __future__ import annotations

import json
import re
from uuid import uuid4

import pytest

from tracker.eventstore.canonical import HASHED_FIELDS

from .conftest import run_tool, write_stream
from .test_verify import forge

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def export_url(stream) -> str:
    return f"/api/v1/deals/{stream}/export/"


@pytest.fixture
def exported(client_as):
    events = write_stream(4)
    response = client_as("auditor").get(export_url(events[0].stream_id))
    assert response.status_code == 200
    return events, response, b"".join(response.streaming_content)


def change_one_byte(line: bytes, old: bytes, new: bytes) -> bytes:
    at = line.index(old)
    assert len(old) == len(new) == 1
    return line[:at] + new + line[at + 1 :]


class TestExport:
    def test_export_is_a_header_then_every_event_with_hashes(self, exported):
        events, response, content = exported
        assert response["Content-Type"] == "application/x-ndjson"
        assert "attachment" in response["Content-Disposition"]
        header, *lines = [json.loads(line) for line in content.splitlines()]
        assert header["format"] == "deal-tracker-export"
        assert header["format_version"] == 1
        assert header["deal"] == str(events[0].stream_id)
        assert header["events"] == 4
        assert header["head"] == events[-1].hash
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", header["exported_at"])
        assert [line["version"] for line in lines] == [1, 2, 3, 4]
        for line, event in zip(lines, events, strict=True):
            assert set(line) == {*HASHED_FIELDS, "position", "prev_hash", "hash"}
            assert line["hash"] == event.hash
            assert line["prev_hash"] == event.prev_hash
            assert line["position"] == event.position
            assert line["data"] == event.data

    def test_export_verifies_offline_from_a_file_and_from_stdin(self, exported, tmp_path):
        events, _, content = exported
        for stdin in (False, True):
            result = run_tool(content, tmp_path, stdin=stdin)
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.decode().strip() == f"OK 4 events, head {events[-1].hash}"

    @pytest.mark.parametrize("line_number", [2, 3, 4, 5])
    def test_one_byte_changed_in_an_event_fails_at_that_line(self, exported, tmp_path, line_number):
        _, _, content = exported
        lines = content.splitlines(keepends=True)
        lines[line_number - 1] = change_one_byte(lines[line_number - 1], b"q", b"Q")
        result = run_tool(b"".join(lines), tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith(f"FAILED at line {line_number}: hash does not")

    @pytest.mark.parametrize(
        ("field", "reason"),
        [
            ("actor", "hash does not match"),
            ("recorded_at", "hash does not match"),
            ("event_id", "hash does not match"),
            ("hash", "hash does not match"),
            ("prev_hash", "prev_hash is not"),
            ("stream_id", "stream_id"),
        ],
    )
    def test_a_change_in_any_hashed_field_fails_at_that_line(
        self, exported, tmp_path, field, reason
    ):
        _, _, content = exported
        lines = content.splitlines(keepends=True)
        record = json.loads(lines[2])
        value = record[field]
        # Swap one character for another of the same kind, keeping the line well-formed.
        index = next(i for i, c in enumerate(value) if c.isalnum())
        swapped = {"0": "1", "a": "b"}.get(value[index], "0" if value[index] != "0" else "1")
        record[field] = value[:index] + swapped + value[index + 1 :]
        lines[2] = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        result = run_tool(b"".join(lines), tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith(f"FAILED at line 3: {reason}")

    def test_a_missing_last_event_fails_on_the_count(self, exported, tmp_path):
        _, _, content = exported
        result = run_tool(b"".join(content.splitlines(keepends=True)[:-1]), tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith(
            "FAILED at line 5: the header declares 4 events but the export has 3"
        )

    def test_a_header_with_another_head_fails(self, exported, tmp_path):
        _, _, content = exported
        header, rest = content.split(b"\n", 1)
        record = json.loads(header)
        record["head"] = "f" * 64
        result = run_tool(json.dumps(record).encode() + b"\n" + rest, tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith("FAILED at line 1: the header's head")

    def test_a_line_that_is_not_json_fails_at_that_line(self, exported, tmp_path):
        _, _, content = exported
        lines = content.splitlines(keepends=True)
        lines[3] = lines[3].replace(b"{", b"[", 1)
        result = run_tool(b"".join(lines), tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith("FAILED at line 4: not valid JSON")

    def test_an_export_of_a_row_altered_in_the_database_fails_at_it(self, client_as, tmp_path):
        stream = write_stream(3)[0].stream_id
        forge(stream, 3)
        content = b"".join(client_as("auditor").get(export_url(stream)).streaming_content)
        result = run_tool(content, tmp_path)
        assert result.returncode == 1
        assert result.stdout.decode().startswith("FAILED at line 4: hash does not match")

    def test_a_date_given_as_an_estimate_exports_and_verifies_offline(
        self, client_as, seeded, tmp_path
    ):
        deal = seeded["deal1"]
        version = client_as("editor").get(f"/api/v1/deals/{deal}/").json()["version"]
        estimated = {"date": "2019-01-01", "precision": "year", "estimate": True}
        body = {
            "type": "NoteAdded",
            "data": {"text": "order date given by the register as an estimate"},
            "occurred": estimated,
            "source": {"title": "SIPRI Trade Register", "publisher": "SIPRI"},
            "expected_version": version,
        }
        appended = client_as("editor").post(f"/api/v1/deals/{deal}/events/", body, format="json")
        assert appended.status_code == 201, appended.content
        content = b"".join(client_as("auditor").get(export_url(deal)).streaming_content)
        assert json.loads(content.splitlines()[-1])["occurred"] == estimated
        result = run_tool(content, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.decode().startswith(f"OK {version + 1} events")

    def test_clients_may_ask_for_json_lines(self, client_as):
        stream = write_stream(1)[0].stream_id
        response = client_as("auditor").get(export_url(stream), HTTP_ACCEPT="application/x-ndjson")
        assert response.status_code == 200
        assert len(b"".join(response.streaming_content).splitlines()) == 2

    def test_an_unknown_deal_is_404(self, client_as):
        response = client_as("auditor").get(export_url(uuid4()))
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
