"""The export writer: one stream's export, and the ledger export made of the same sections."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from tracker.eventstore.canonical import HASHED_FIELDS
from tracker.eventstore.digest import digest_document, take_digest
from tracker.eventstore.errors import StreamNotFound
from tracker.eventstore.export import export_ledger_lines, export_lines
from tracker.eventstore.models import LedgerDigest
from tracker.eventstore.store import read_stream, stream_version

from .test_digest import new_stream


class ExportContract:
    alias: str

    def test_a_stream_exports_as_a_header_then_each_event_with_its_hashes(self):
        stream = new_stream(3, using=self.alias)
        events = read_stream(stream, using=self.alias)
        header, *lines = [json.loads(line) for line in export_lines(stream, using=self.alias)]
        assert {key: header[key] for key in ("format", "format_version", "deal", "events")} == {
            "format": "deal-tracker-export",
            "format_version": 1,
            "deal": str(stream),
            "events": 3,
        }
        assert header["head"] == events[-1].hash
        assert [line["version"] for line in lines] == [1, 2, 3]
        for line, event in zip(lines, events, strict=True):
            assert set(line) == {*HASHED_FIELDS, "position", "prev_hash", "hash"}
            assert (line["position"], line["prev_hash"], line["hash"]) == (
                event.position,
                event.prev_hash,
                event.hash,
            )

    def test_an_unknown_stream_is_refused_before_any_line_is_read(self):
        stream = uuid4()
        with pytest.raises(StreamNotFound, match=str(stream)):
            export_lines(stream, using=self.alias)

    def test_each_stream_section_is_the_per_deal_export(self):
        first, second = new_stream(3, using=self.alias), new_stream(1, using=self.alias)
        take_digest(using=self.alias)
        lines = [json.loads(line) for line in export_ledger_lines(using=self.alias)]
        header, digest, *rest = lines
        assert header["format"] == "deal-tracker-ledger-export"
        assert (header["streams"], header["events"], header["digests"]) == (2, 4, 1)
        stored = LedgerDigest.objects.using(self.alias).get()
        assert digest == {**digest_document(stored), "heads": digest["heads"]}
        for stream in sorted([first, second], key=str):
            version = stream_version(stream, using=self.alias)
            section, rest = rest[: version + 1], rest[version + 1 :]
            expected = [json.loads(line) for line in export_lines(stream, using=self.alias)]
            section[0].pop("exported_at")
            expected[0].pop("exported_at")
            assert section == expected
        assert rest == []


@pytest.mark.django_db(databases=["sqlite"])
class TestExportOnSqlite(ExportContract):
    alias = "sqlite"


@pytest.mark.postgres
@pytest.mark.django_db
class TestExportOnPostgres(ExportContract):
    alias = "default"
