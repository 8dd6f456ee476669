"""A 10-second version of `make loadtest`, and the load client's counting of what goes wrong."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from bench.load import (
    APPEND,
    ERROR_KINDS,
    LIST,
    READ,
    REPLAY,
    check_after,
    prepare,
    run,
    start_stack,
)

NO_ERRORS = dict.fromkeys(ERROR_KINDS, 0)


def errors(counts: dict) -> dict[str, int]:
    return {kind: counts[kind] for kind in ERROR_KINDS}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(400)
def test_sixteen_clients_get_only_expected_answers_and_a_stopped_server_is_counted(
    tmp_path: Path,
):
    stack = start_stack(tmp_path)
    try:
        durability = stack.durability()
        deals = prepare(stack, 30)
        outcome = run(stack.base, stack.editor, deals, seconds=10, clients=16)
        checks = check_after(stack, deals)
        stack.kill("web")
        refused = run(stack.base, stack.editor, deals, seconds=2, clients=2)
    finally:
        stack.stop()

    total = outcome["total"]
    assert errors(total) == NO_ERRORS, outcome["figures"]
    assert (total["clients_finished"], total["clients_still_running"]) == (16, 0)
    by_endpoint = {f["endpoint"]: f for f in outcome["figures"]}
    assert set(by_endpoint) == {READ, LIST, REPLAY, APPEND}
    assert set(by_endpoint[READ]["statuses"]) == {"200"}
    appends = by_endpoint[APPEND]["statuses"]
    assert appends.get("201", 0) > 0
    assert appends.get("409", 0) > 0, "no deliberate conflict was provoked"
    assert checks == {"bad_chains": 0, "projections_not_equal_to_replay": 0}
    assert (durability["fsync"], durability["synchronous_commit"]) == ("on", "on")

    assert refused["total"]["requests"] > 0
    assert errors(refused["total"]) == {
        **NO_ERRORS,
        "connection_errors": refused["total"]["requests"],
    }
    assert refused["total"]["clients_finished"] == 2


class WrongAnswers(http.server.BaseHTTPRequestHandler):
    """Every GET gets 200 with a body of another deal; every POST gets a 500."""

    def do_GET(self) -> None:
        self.answer(200, {"id": str(uuid4()), "version": 1, "state": None, "results": []})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(500, {"code": "server_error"})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def wrong_answers() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WrongAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_wrong_statuses_and_bodies_are_counted_as_errors(wrong_answers: str):
    outcome = run(wrong_answers, "token", [str(uuid4())], seconds=1, clients=2)
    by_endpoint = {f["endpoint"]: f for f in outcome["figures"]}
    for name in (READ, LIST, REPLAY):
        requests = by_endpoint[name]["requests"]
        assert requests > 0
        assert errors(by_endpoint[name]) == {**NO_ERRORS, "failed_checks": requests}
    appends = by_endpoint[APPEND]
    assert appends["statuses"] == {"500": appends["requests"]}
    assert errors(appends) == {**NO_ERRORS, "unexpected_statuses": appends["requests"]}
    assert outcome["total"]["clients_finished"] == 2


def test_requests_that_get_no_answer_in_time_are_counted_as_timeouts(silent: str):
    outcome = run(silent, "token", [str(uuid4())], seconds=1, clients=2, timeout=0.3)
    total = outcome["total"]
    assert total["requests"] > 0
    assert errors(total) == {**NO_ERRORS, "timeouts": total["requests"]}
    assert total["statuses"] == {}
    assert total["clients_finished"] == 2
