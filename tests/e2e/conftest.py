"""The `server` the race and stream tests run against, once per mode (tests/e2e/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import Server

MODES = [
    pytest.param("embedded", id="embedded"),
    pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, request.param)
    try:
        server.start()
        yield server
    finally:
        server.stop()
