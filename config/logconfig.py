"""Logging: one JSON object per line in production, with the request id on every record.

The text format (development) is one line per record too: control characters in a record are
escaped, so that a request cannot forge a log line (a path holding `%0a` and a fake record)
or rewrite one on a terminal (CR, ANSI escapes, bidirectional overrides). JSON lines need no
escaping of their own: the JSON encoder escapes every control character.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and DEL, C1 (NEL among them), the line and paragraph separators that some viewers break
# lines at, and the bidirectional controls that reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_controls(text: str) -> str:
    """`text` with each control character written as a Python escape (`\\n`, `\\x1b`, `\\u2028`)."""
    return _UNSAFE.sub(_escape_one, text)


class OneLineFormatter(logging.Formatter):
    """A text formatter whose record starts each line at column 0, and nothing else does.

    The record itself is escaped; a traceback or stack that follows it keeps its lines, each
    indented and escaped, so that no text inside it can pass for the start of a record.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = escape_controls(self.formatMessage(record))
        # Not cached on the record: another handler's formatter may want it unindented.
        details = []
        if record.exc_info:
            details.append(self.formatException(record.exc_info))
        elif record.exc_text:
            details.append(record.exc_text)
        if record.stack_info:
            details.append(self.formatStack(record.stack_info))
        for block in details:
            for line in block.splitlines():
                text += "\n    " + escape_controls(line)
        return text


class RequestWithoutQuery(logging.Filter):
    """Django's request and security loggers attach the request to each record, and its repr
    holds the query string, where a client may have put a token (`?token=...`): a JSON
    formatter writes every such extra. The record keeps the method and path only, as the
    message and the access log do. On django.request itself (so that every handler gets the
    record so) and on the console handler (for django.security's child loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '')} {getattr(request, 'path', '')}"
        return True


class PipelineAbortedAfterAnError(logging.Filter):
    """Drops psycopg's warning that ending a pipeline failed because an error already ended it.

    The store sends a multi-stream append's statements in one pipeline; when one stream has
    moved on, its error is raised from the block (and answered 409), and psycopg then logs that
    closing the pipeline raised `PipelineAborted`: the same error said again, as a warning an
    operator would chase. Any other warning of psycopg's passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "error ignored terminating %r: %s"
            and len(args) == 2
            and isinstance(args[0], psycopg.Pipeline)
            and isinstance(args[1], psycopg.errors.PipelineAborted)
        )


def logging_config(*, json_lines: bool, level: str) -> dict[str, Any]:
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
        if json_lines
        else {
            "()": "config.logconfig.OneLineFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "django_guid.log_filters.CorrelationId",
                "correlation_id_field": "request_id",
            },
            "request_without_query": {"()": "config.logconfig.RequestWithoutQuery"},
            "pipeline_aborted": {"()": "config.logconfig.PipelineAbortedAfterAnError"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                # On the handler: django.security logs on a child logger per kind of
                # refusal (django.security.DisallowedHost, ...), which a filter on the parent
                # logger would never see.
                "filters": ["request_id", "request_without_query"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # The access log below says the same, with the request id and the deal.
            "django.server": {"level": "WARNING"},
            "django.request": {"level": "ERROR", "filters": ["request_without_query"]},
            "psycopg": {"filters": ["pipeline_aborted"]},
            "django_guid": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
        },
    }
