"""A request cannot forge or rewrite a log line: text lines escape control characters."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from config.logconfig import escape_controls, logging_config

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORGED = "2026-12-03 07:00:00,000 INFO tracker.access [x] POST /api/v1/deals/ 201"
# The path as a client sends it: a newline, then a whole record of its own.
FORGING_PATH = "/health/%0a" + FORGED.replace(" ", "%20")


@pytest.fixture
def log_output() -> Iterator[Callable[[bool], io.StringIO]]:
    """The project's console handler (text or JSON), writing to a buffer, on the root logger."""
    root = logging.getLogger()
    attached: list[logging.Handler] = []
    access = logging.getLogger("tracker.access")
    level = access.level
    access.setLevel(logging.INFO)

    def attach(json_lines: bool) -> io.StringIO:
        config = logging_config(json_lines=json_lines, level="INFO")
        configurator = logging.config.DictConfigurator(config)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(configurator.configure_formatter(config["formatters"]["main"]))
        handler.addFilter(configurator.configure_filter(config["filters"]["request_id"]))
        root.addHandler(handler)
        attached.append(handler)
        return stream

    yield attach
    access.setLevel(level)
    for handler in attached:
        root.removeHandler(handler)


def access_lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if "tracker.access" in line]


def test_a_newline_in_the_path_cannot_forge_a_text_log_line(log_output):
    stream = log_output(False)
    response = Client().get(FORGING_PATH)
    assert response.status_code == 404
    lines = stream.getvalue().splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    [line] = [line for line in lines if "/health/" in line]
    assert line.endswith(f"GET /health/\\n{FORGED} 404")
    assert [line] == access_lines(stream)


@pytest.mark.parametrize(
    ("encoded", "escaped"),
    [
        ("%0d", "\\r"),
        ("%0d%0a", "\\r\\n"),
        ("%1b%5b2K", "\\x1b[2K"),  # an ANSI sequence that erases the terminal's line
        ("%00", "\\x00"),
        ("%c2%85", "\\x85"),  # NEL, a C1 line break
        ("%e2%80%a8", "\\u2028"),  # the line separator
        ("%e2%80%a9", "\\u2029"),  # the paragraph separator
        ("%e2%80%ae", "\\u202e"),  # right-to-left override
    ],
)
def test_control_characters_in_the_path_are_escaped_in_text_logs(log_output, encoded, escaped):
    stream = log_output(False)
    assert Client().get(f"/health/{encoded}x").status_code == 404
    [line] = access_lines(stream)
    assert line.endswith(f"GET /health/{escaped}x 404")
    assert stream.getvalue().count("\n") == len(stream.getvalue().splitlines())


def test_json_log_lines_stay_json_and_keep_the_path_as_sent(log_output):
    stream = log_output(True)
    assert Client().get(FORGING_PATH + "%0d%e2%80%a8").status_code == 404
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    [record] = [r for r in records if r.get("logger") == "tracker.access"]
    assert record["path"] == f"/health/\n{FORGED}\r\u2028"
    assert record["status"] == 404


def test_a_traceback_keeps_its_lines_but_none_can_pass_for_a_record(log_output):
    stream = log_output(False)
    try:
        raise ValueError(f"bad input\n{FORGED}")
    except ValueError:
        logging.getLogger("tracker.test").exception("failed on %s", "x\ny")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("failed on x\\ny")
    assert rest[0] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") for line in rest)
    assert f"    {FORGED}" in rest


def test_escaping_leaves_printable_text_alone():
    text = "T\u00fcrkiye \u2013 TUSA\u015e \u201cquoted\u201d \\n \U0001f680 \u2211"
    assert escape_controls(text) == text
