"""The logging configuration's filters, on the records they are for."""

from __future__ import annotations

import logging

import psycopg
import pytest
from django.db import connection


@pytest.mark.postgres
@pytest.mark.django_db
def test_psycopg_saying_again_that_a_pipeline_ended_in_an_error_is_dropped(caplog):
    """What psycopg logs when a pipelined append's conflict (raised from the block, answered
    409) leaves the pipeline aborted as it closes; whether it does depends on when the error
    arrives, so the record is made here as psycopg makes it."""
    connection.ensure_connection()
    pipeline = psycopg.Pipeline(connection.connection)
    psycopg_log = logging.getLogger("psycopg")
    with caplog.at_level(logging.WARNING):
        psycopg_log.warning(
            "error ignored terminating %r: %s", pipeline, psycopg.errors.PipelineAborted()
        )
        # Its other warnings still pass.
        psycopg_log.warning("error ignored terminating %r: %s", pipeline, ValueError("other"))
        psycopg_log.warning("something else")
    assert [r.getMessage().rsplit(": ", 1)[-1] for r in caplog.records] == [
        "other",
        "something else",
    ]


def test_a_request_on_a_record_keeps_its_method_and_path_only(rf, caplog):
    request = rf.get("/api/v1/events/?token=" + "a" * 64)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        logging.getLogger("django.request").error(
            "Bad: %s", request.path, extra={"request": request}
        )
    assert [r.request for r in caplog.records] == ["GET /api/v1/events/"]
