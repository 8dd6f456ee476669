"""The `server` the race and stream tests run against: once per module and mode (servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import Server

MODES = [
    pytest.param("embedded", id="embedded"),
    pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@pytest.fixture(params=MODES, scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per module and mode: its tests each open deals of their own, and starting a
    stack (a fresh database migrated, gunicorn, uvicorn, a worker and beat) costs seconds."""
    server = Server(tmp_path_factory.mktemp(f"server-{request.param}"), request.param)
    try:
        server.start()
        yield server
    finally:
        server.stop()
