"""The logging configuration's filters, on the records they are for."""

from __future__ import annotations

import io
import logging
import logging.config

import psycopg
import pytest
from django.db import connection

from config.logconfig import logging_config


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


@pytest.mark.parametrize("logger", ["django.security.DisallowedHost", "django.security.csrf"])
def test_the_configured_output_writes_no_query_string_of_a_security_record(rf, logger):
    """django.security logs on a child logger per refusal: the console handler scrubs it."""
    config = logging_config(json_lines=True, level="INFO")
    configurator = logging.config.DictConfigurator(config)
    out = io.StringIO()
    # The console handler as configured, writing here.
    handler = logging.StreamHandler(out)
    handler.setFormatter(configurator.configure_formatter(dict(config["formatters"]["main"])))
    for name in config["handlers"]["console"]["filters"]:
        handler.addFilter(configurator.configure_filter(dict(config["filters"][name])))
    request = rf.get("/api/v1/events/?token=SECRETTOKEN")
    record = logging.getLogger(logger).makeRecord(
        logger,
        logging.ERROR,
        __file__,
        1,
        "Invalid HTTP_HOST header",
        (),
        None,
        extra={"request": request, "status_code": 400},
    )
    handler.handle(record)
    written = out.getvalue()
    assert "Invalid HTTP_HOST header" in written
    assert "SECRETTOKEN" not in written
    assert "GET /api/v1/events/" in written
