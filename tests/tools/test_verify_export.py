"""`tools/verify_export.py` on one deal's export: it checks every field's type and form as
docs/export-format.md's tables give them, answers any input with "OK" or "FAILED at line N"
(never a traceback), and with `--expect-head` catches a history rewritten with every hash
recomputed."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import client_for, make_user, write_stream
from tests.eventstore.test_digest import note, rewrite_and_rehash
from tracker.deals.management.commands.seed_demo import deal_id
from tracker.eventstore.digest import digest_document, take_digest
from tracker.eventstore.store import append, stream_version

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "verify_export.py"
DOC = ROOT / "docs" / "export-format.md"
GENESIS = "0" * 64
HASHED = (
    "actor",
    "data",
    "event_id",
    "occurred",
    "recorded_at",
    "schema_version",
    "source",
    "stream_id",
    "type",
    "version",
)


def run_tool(content: bytes, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "export.jsonl"
    path.write_bytes(content)
    # -I: isolated, so the tool cannot lean on this project being importable.
    result = subprocess.run(
        [sys.executable, "-I", str(TOOL), str(path), *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def assert_fails(content: bytes, tmp_path: Path, line: int, reason: str, *args: str) -> None:
    code, out, err = run_tool(content, tmp_path, *args)
    assert (code, err) == (1, ""), out + err
    assert out.startswith(f"FAILED at line {line}: {reason}"), out


def example() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The worked example of docs/export-format.md: its header and its two events."""
    block = re.findall(r"```jsonl\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)[0]
    header, *events = [json.loads(line) for line in block.splitlines()]
    return header, events


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rechain(header: dict[str, Any], events: list[dict[str, Any]]) -> bytes:
    """The export with every prev_hash, hash and the header's head recomputed, as a forger would.

    So a wrong value in a hashed field can only be caught by checking its type or form.
    """
    prev = GENESIS
    for event in events:
        event["prev_hash"] = prev
        body = canonical({name: event[name] for name in HASHED})
        event["hash"] = prev = hashlib.sha256((prev + body).encode("utf-8")).hexdigest()
    header = {**header, "events": len(events), "head": prev}
    return "".join(canonical(line) + "\n" for line in [header, *events]).encode("utf-8")


def example_with(line: int, field: str, value: Any) -> bytes:
    """The worked example with one field of one line (1: the header) changed, then rechained."""
    header, events = example()
    (header if line == 1 else events[line - 2])[field] = value
    return rechain(header, events)


def load_tool() -> Any:
    spec = importlib.util.spec_from_file_location("verify_export", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rechained_example_still_verifies(tmp_path):
    # The helpers above make a valid export; without this, a failure below could be theirs.
    header, events = example()
    code, out, _ = run_tool(rechain(header, events), tmp_path)
    assert (code, out.strip()) == (0, f"OK 2 events, head {header['head']}")


# --- any input: "FAILED at line N", never a traceback ------------------------------------


DEEP = "[" * 1000 + "]" * 1000
CRASHERS = {
    "lone high surrogate": ('"Quoted as', '"\\ud800 Quoted as', 3, "data.text holds an unpaired"),
    "lone low surrogate": ('"Quoted as', '"\\udc00 Quoted as', 3, "data.text holds an unpaired"),
    "surrogate in a key": ('{"text":', '{"\\ud800":1,"text":', 3, "a key in data holds an"),
    "U+0000": ('"Quoted as', '"\\u0000 Quoted as', 3, "data.text holds U+0000"),
    "1,000 deep": ('{"text":', '{"deep":' + DEEP + ',"text":', 3, "values nest more than 100"),
    "101 deep": ('{"text":', '{"deep":' + "[" * 99 + "]" * 99 + ',"text":', 3, "values nest"),
    "100,000 deep": ('{"text":', '{"deep":' + "[" * 10**5 + ',"text":', 3, "values nest"),
    "5,000 digits": ('{"text":', '{"n":' + "9" * 5000 + ',"text":', 3, "not valid JSON: integer"),
    "exponent": ('{"text":', '{"n":1e3,"text":', 3, "not valid JSON: number 1e3"),
    "NaN": ('{"text":', '{"n":NaN,"text":', 3, "not valid JSON: NaN is not JSON"),
}


@pytest.mark.parametrize(("old", "new", "line", "reason"), CRASHERS.values(), ids=CRASHERS)
def test_a_line_no_server_writes_fails_at_its_line(tmp_path, old, new, line, reason):
    content = rechain(*example()).decode()
    assert old in content.splitlines()[line - 1]
    lines = content.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    assert_fails("".join(lines).encode(), tmp_path, line, reason)


def test_an_escaped_surrogate_pair_is_one_character_and_verifies(tmp_path):
    header, events = example()
    events[1]["data"]["text"] = "drone \U0001f681"
    content = rechain(header, events).replace("\U0001f681".encode(), b"\\ud83d\\ude81")
    code, out, _ = run_tool(content, tmp_path)
    assert (code, out.startswith("OK 2 events")) == (0, True), out


GARBAGE = {
    "empty file": (b"", 1, "the export is empty"),
    "one LF": (b"\n", 1, "empty line"),
    "binary": (bytes(range(256)) * 4, 1, "not valid JSON"),
    "binary without LF": (bytes(range(11, 256)) * 4, 1, "the line does not end with LF"),
    "binary lines": (b"\xff\xfe\x00\x01\n\x80\n", 1, "not UTF-8"),
    "NUL bytes": (b"\x00\x00\x00\n", 1, "not valid JSON"),
    "byte order mark": (b"\xef\xbb\xbf{}\n", 1, "not valid JSON"),
    "a JSON array": (b"[1,2]\n", 1, "not a JSON object"),
    "deep arrays": (DEEP.encode() + b"\n", 1, "values nest more than 100 deep"),
    "deep objects": (b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"\n", 1, "values nest more"),
    "an empty object": (b"{}\n", 1, "header fields are []"),
    "a header of nulls": (
        json.dumps(
            dict.fromkeys(["deal", "events", "exported_at", "format", "format_version", "head"])
        ).encode()
        + b"\n",
        1,
        'format is null, expected "deal-tracker-export"',
    ),
}


@pytest.mark.parametrize(("content", "line", "reason"), GARBAGE.values(), ids=GARBAGE)
def test_a_file_that_is_no_export_fails_at_a_line(tmp_path, content, line, reason):
    assert_fails(content, tmp_path, line, reason)


# --- the type and form of every field ----------------------------------------------------


def test_booleans_and_strings_are_not_integers_in_the_header(tmp_path):
    assert_fails(
        example_with(1, "format_version", True), tmp_path, 1, "format_version true is not supp"
    )
    assert_fails(example_with(1, "format_version", "1"), tmp_path, 1, 'format_version "1" is')
    header, events = example()
    one_event = rechain(header, events[:1]).splitlines(keepends=True)
    head = json.loads(one_event[0])
    head["events"] = True
    assert_fails(canonical(head).encode() + b"\n" + one_event[1], tmp_path, 1, "events true is")


WRONG = {
    "position as a string": (3, "position", "6", 'position "6" is not a positive integer'),
    "position 0": (3, "position", 0, "position 0 is not a positive integer"),
    "version true": (2, "version", True, "version true is not a positive integer"),
    "schema_version true": (2, "schema_version", True, "schema_version true is not a positive"),
    "schema_version 0": (2, "schema_version", 0, "schema_version 0 is not a positive"),
    "event_id in upper case": (
        3,
        "event_id",
        "6C5D4E3F-2A1B-4C0D-9E8F-7A6B5C4D3E2F",
        'event_id "6C5D4E3F-2A1B-4C0D-9E8F-7A6B5C4D3E2F" is not a lowercase',
    ),
    "event_id without hyphens": (3, "event_id", "6c5d4e3f2a1b4c0d9e8f7a6b5c4d3e2f", "event_id"),
    "event_id in braces": (
        3,
        "event_id",
        "{6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f}",
        "event_id",
    ),
    "recorded_at on 30 February": (
        3,
        "recorded_at",
        "2026-02-30T10:00:00.000000Z",
        'recorded_at "2026-02-30T10:00:00.000000Z" is not a real time',
    ),
    "recorded_at at hour 24": (3, "recorded_at", "2026-01-01T24:00:00.000000Z", "recorded_at"),
    "recorded_at in milliseconds": (3, "recorded_at", "2025-07-02T09:15:00.000Z", "recorded_at"),
    "recorded_at with an offset": (
        3,
        "recorded_at",
        "2025-07-02T09:15:00.000005+00:00",
        "recorded_at",
    ),
    "recorded_at in other digits": (
        3,
        "recorded_at",
        "\u0662025-07-02T09:15:00.000005Z",
        "recorded_at",
    ),
    "type 5": (3, "type", 5, "type 5 is not an event type name"),
    "type empty": (3, "type", "", 'type "" is not an event type name'),
    "type with a space": (3, "type", "Note Added", "type"),
    "source a string": (3, "source", "x", "source is not null or an object of exactly"),
    "source without url": (
        3,
        "source",
        {"title": "t", "publisher": "p", "published_on": None},
        "source is not null or an object",
    ),
    "source published on 30 February": (
        3,
        "source",
        {"title": "t", "publisher": "p", "url": None, "published_on": "2025-02-30"},
        "source published_on is not a real",
    ),
    "source title a number": (
        3,
        "source",
        {"title": 1, "publisher": "p", "url": None, "published_on": None},
        "source title is not a string",
    ),
    "occurred a year": (3, "occurred", "2025", "occurred is not null or an object"),
    "occurred in month 13": (
        3,
        "occurred",
        {"date": "2025-13-01", "precision": "month"},
        "occurred date is not a real",
    ),
    "occurred by the week": (
        3,
        "occurred",
        {"date": "2025-01-01", "precision": "week"},
        "occurred precision is not",
    ),
    "occurred an estimate that is false": (
        3,
        "occurred",
        {"date": "2025-01-01", "estimate": False, "precision": "year"},
        "occurred estimate is not true",
    ),
    "occurred with another field": (
        3,
        "occurred",
        {"date": "2025-01-01", "precision": "year", "approx": True},
        "occurred is not null or an object",
    ),
    "actor null": (2, "actor", None, "actor null is not a string"),
    "data a list": (2, "data", ["text"], 'data ["text"] is not an object'),
    "stream_id in upper case": (
        2,
        "stream_id",
        "3F2A9C1E-7B4D-4E8A-9C61-2D5E8F0A1B2C",
        "stream_id",
    ),
    "2^60 in data": (3, "data", {"n": 2**60}, "not valid JSON: integer 1152921504606846976 is"),
    "2^53 in data": (3, "data", {"n": 2**53}, "not valid JSON: integer 9007199254740992 is"),
    "-2^53 in data": (3, "data", {"n": -(2**53)}, "not valid JSON: integer -9007199254740992"),
    "a float in data": (3, "data", {"n": 0.5}, "not valid JSON: number 0.5 is not an integer"),
}


@pytest.mark.parametrize(("line", "field", "value", "reason"), WRONG.values(), ids=WRONG)
def test_a_field_of_the_wrong_type_or_form_fails_though_every_hash_matches(
    tmp_path, line, field, value, reason
):
    assert_fails(example_with(line, field, value), tmp_path, line, reason)


def test_the_header_fields_have_their_forms(tmp_path):
    assert_fails(example_with(1, "exported_at", "2025-07-03"), tmp_path, 1, "exported_at")
    assert_fails(
        example_with(1, "deal", "3F2A9C1E-7B4D-4E8A-9C61-2D5E8F0A1B2C"), tmp_path, 1, "deal"
    )


def test_a_date_the_source_gives_as_its_estimate_verifies(tmp_path):
    occurred = {"date": "2019-01-01", "estimate": True, "precision": "year"}
    code, out, _ = run_tool(example_with(3, "occurred", occurred), tmp_path)
    assert (code, out.startswith("OK 2 events")) == (0, True), out


def test_the_largest_safe_integers_and_zero_verify(tmp_path):
    content = example_with(3, "data", {"max": 2**53 - 1, "min": -(2**53 - 1), "zero": 0})
    code, out, _ = run_tool(content, tmp_path)
    assert (code, out.startswith("OK 2 events")) == (0, True), out


def test_minus_zero_fails_although_it_hashes_as_zero(tmp_path):
    content = example_with(3, "data", {"zero": 0}).replace(b'"zero":0', b'"zero":-0')
    assert_fails(content, tmp_path, 3, "not valid JSON: -0 is not written")


def test_a_repeated_event_id_fails_though_every_hash_matches(tmp_path):
    header, events = example()
    events[1]["event_id"] = events[0]["event_id"]
    assert_fails(
        rechain(header, events),
        tmp_path,
        3,
        "event_id 0b7e4f9a-1c2d-4e3f-8a9b-0c1d2e3f4a5b is on an earlier line",
    )


def test_a_recorded_at_earlier_than_the_version_before_verifies(tmp_path):
    header, events = example()
    events[1]["recorded_at"] = "2025-07-02T09:14:03.119999Z"
    code, out, _ = run_tool(rechain(header, events), tmp_path)
    assert (code, out.startswith("OK 2 events")) == (0, True), out


def test_whitespace_between_tokens_is_allowed(tmp_path):
    header, events = example()
    content = "".join(json.dumps(line, indent=None) + "\n" for line in [header, *events])
    assert ", " in content
    code, out, _ = run_tool(content.encode(), tmp_path)
    assert (code, out.strip()) == (0, f"OK 2 events, head {header['head']}")


# --- line ends ---------------------------------------------------------------------------


def test_a_last_line_without_its_lf_fails(tmp_path):
    content = rechain(*example())
    assert_fails(content[:-1], tmp_path, 3, "the line does not end with LF")


def test_crlf_line_ends_fail(tmp_path):
    content = rechain(*example()).replace(b"\n", b"\r\n")
    assert_fails(content, tmp_path, 1, "the line ends with CR LF")


def test_an_empty_line_at_the_end_fails(tmp_path):
    assert_fails(rechain(*example()) + b"\n", tmp_path, 4, "the header declares only 2 events")


# --- the head of an empty stream ---------------------------------------------------------


def test_a_stream_without_events_is_a_header_with_64_zeros(tmp_path):
    header, _ = example()
    code, out, _ = run_tool(rechain(header, []), tmp_path)
    assert (code, out.strip()) == (0, f"OK 0 events, head {GENESIS}")
    other = canonical({**header, "events": 0, "head": "f" * 64}).encode() + b"\n"
    assert_fails(other, tmp_path, 1, "the head of a stream without events is 64 zeros")


# --- --expect-head on the example --------------------------------------------------------


def test_expect_head_accepts_the_head_and_any_earlier_hash(tmp_path):
    header, events = example()
    content = rechain(header, events)
    for head, version in ((events[1]["hash"], 2), (events[0]["hash"], 1), (GENESIS, 0)):
        code, out, _ = run_tool(content, tmp_path, "--expect-head", head.upper())
        expected = f"OK 2 events, head {header['head']}; expected head is version {version}"
        assert (code, out.strip()) == (0, expected)


def test_expect_head_refuses_a_hash_of_no_event(tmp_path):
    assert_fails(
        rechain(*example()),
        tmp_path,
        1,
        f"no event's hash is the expected head {'e' * 64}",
        "--expect-head",
        "e" * 64,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--expect-head", "abc"],
        ["--expect-head"],
        ["--ledger", "x.jsonl"],
        ["--digest", "x.json"],
        ["one", "two"],
    ],
)
def test_wrong_arguments_exit_2_with_usage(tmp_path, args):
    code, _, err = run_tool(rechain(*example()), tmp_path, *args)
    assert code == 2
    assert err.startswith("usage: verify_export.py")
    assert "Traceback" not in err


# --- arbitrary input: never an exception other than a failed line -----------------------


TOOL_MODULE = load_tool()
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["format", "format_version", "deal", "events", "head", "exported_at", *HASHED]
FIELDS += ["position", "prev_hash", "hash", "date", "precision", "title", "url", "text"]


def outcome(verify: Any, content: bytes) -> str:
    """ "OK" or "FAILED": anything else the verifier raises fails the test."""
    try:
        verify(io.BytesIO(content))
    except TOOL_MODULE.BadLine as error:
        number = error.number
    else:
        return "OK"
    assert number >= 1
    return "FAILED"


def ledger_of(content: bytes) -> bytes:
    """A whole-ledger export with no digests around a per-deal export, for the ledger reader."""
    header = {
        "format": "deal-tracker-ledger-export",
        "format_version": 1,
        "streams": 1,
        "events": 2,
        "digests": 0,
        "exported_at": "2025-07-03T08:00:00.000000Z",
    }
    return canonical(header).encode() + b"\n" + content


def both_outcomes(content: bytes) -> None:
    outcome(TOOL_MODULE.verify, content)
    outcome(TOOL_MODULE.verify_ledger, ledger_of(content))
    outcome(lambda stream: TOOL_MODULE.verify(stream, "a" * 64), content)


SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(st.binary(max_size=2000))
def test_any_bytes_give_ok_or_a_failed_line(content):
    both_outcomes(content)


@SLOW
@given(st.data())
def test_any_bytes_spliced_into_a_valid_export_give_ok_or_a_failed_line(data):
    content = rechain(*example())
    start = data.draw(st.integers(0, len(content)))
    end = data.draw(st.integers(start, min(len(content), start + 20)))
    splice = data.draw(
        st.binary(max_size=8)
        | st.sampled_from(
            [
                b"\\ud800",
                b"\\udfff",
                b"\\u0000",
                b"-0",
                b"1e9",
                b"[[[[",
                b"\r",
                b"\n",
                b"true",
                b'"',
            ]
        )
    )
    both_outcomes(content[:start] + splice + content[end:])


@SLOW
@given(st.data())
def test_any_json_value_in_any_field_of_a_rechained_export_gives_ok_or_a_failed_line(data):
    header, events = example()
    line = data.draw(st.sampled_from([header, *events]))
    path = data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3))
    target: Any = line
    for name in path[:-1]:
        if not isinstance(target.get(name), dict):
            break
        target = target[name]
    target[path[-1]] = data.draw(json_values)
    try:
        content = rechain(header, events)
    except (ValueError, UnicodeEncodeError):  # NaN, or text a server could never hash
        return
    both_outcomes(content)


def test_the_command_never_prints_a_traceback_for_the_worst_lines(tmp_path):
    # The in-process properties above call the functions; this runs the program itself.
    worst = [
        b'{"\xed\xa0\x80":1}\n',  # a surrogate encoded as UTF-8 bytes
        b'{"a":"\\ud800"}\n',
        b'{"\\ud800":"\\udc00\\ud800"}\n',
        DEEP.encode() + b"\n",
        b"9" * 100000 + b"\n",
        b'{"format":"deal-tracker-export","format_version":1,"deal":"\\ud800"}\n',
    ]
    for content in worst:
        code, out, err = run_tool(content, tmp_path)
        assert (code, err) == (1, ""), (content[:40], out, err)
        assert out.startswith("FAILED at line 1: ")


# --- real exports made by the app ---------------------------------------------------------


def auditor() -> Any:
    return client_for(make_user(f"auditor-{uuid4().hex[:8]}", "auditor"))


def auditor_export(deal: UUID) -> bytes:
    response = auditor().get(f"/api/v1/deals/{deal}/export/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def saved_head(deal: UUID) -> str:
    """What an auditor keeps: the head `/verify/` reports."""
    response = auditor().get(f"/api/v1/deals/{deal}/verify/")
    assert response.status_code == 200
    assert response.json()["valid"] is True
    return response.json()["head"]


def grow(deal: UUID, count: int) -> None:
    """Append `count` notes to an existing deal's stream, as the services would."""
    for n in range(count):
        append(deal, [note(f"later {n}")], stream_version(deal), actor="bob")


@pytest.mark.postgres
@pytest.mark.django_db
def test_every_demo_deal_exports_and_verifies_with_its_saved_head(tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    for n in range(1, 6):
        deal = deal_id(n)
        head = saved_head(deal)
        events = stream_version(deal)
        code, out, err = run_tool(auditor_export(deal), tmp_path, "--expect-head", head)
        assert (code, err) == (0, ""), out
        assert out.strip() == f"OK {events} events, head {head}; expected head is version {events}"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_demo_ledger_export_verifies_against_a_saved_digest(tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    saved = tmp_path / "digest.json"
    saved.write_text(json.dumps(digest_document(take_digest()), indent=2))
    grow(deal_id(1), 2)
    take_digest()
    path = tmp_path / "ledger.jsonl"
    call_command("export_ledger", output=str(path))
    result = subprocess.run(
        [sys.executable, "-I", str(TOOL), "--ledger", str(path), "--digest", str(saved)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(
        r"OK \d+ streams, \d+ events, 2 digests; digest 1 [0-9a-f]{64} matches\n",
        result.stdout.decode(),
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_saved_head_catches_a_rewrite_with_every_hash_recomputed(tmp_path):
    deal = write_stream(3)[0].stream_id
    head = saved_head(deal)
    grow(deal, 2)  # the deal goes on after the head was saved
    code, out, _ = run_tool(auditor_export(deal), tmp_path, "--expect-head", head)
    assert (code, out.split("; ")[-1]) == (0, "expected head is version 3\n")

    rewrite_and_rehash(deal, 2, {"text": "forged"})
    forged = auditor_export(deal)
    # The rewritten stream agrees with itself: only the head kept elsewhere can tell.
    code, out, _ = run_tool(forged, tmp_path)
    assert (code, out.startswith("OK 5 events")) == (0, True), out
    reason = f"no event's hash is the expected head {head}"
    assert_fails(forged, tmp_path, 1, reason, "--expect-head", head)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_rewrite_after_the_saved_head_passes_it(tmp_path):
    deal = write_stream(2)[0].stream_id
    head = saved_head(deal)
    grow(deal, 2)
    rewrite_and_rehash(deal, 4, {"text": "forged"})
    code, out, _ = run_tool(auditor_export(deal), tmp_path, "--expect-head", head)
    assert (code, out.split("; ")[-1]) == (0, "expected head is version 2\n")
