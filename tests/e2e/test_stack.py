"""The production stack end to end, through HTTP only, with a worker killed and PostgreSQL
restarted on the way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.load import prepare
from bench.stack import Stack
from tests.sse import EventStream

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(420)]

SOURCE = {"title": "Stack test report", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}


@pytest.fixture
def stack(tmp_path: Path):
    stack = Stack(tmp_path)
    try:
        stack.start_services()
        stack.manage("migrate", "--no-input", "-v0")
        stack.editor = stack.manage("create_api_user", "editor", "--role", "editor").strip()
        stack.auditor = stack.manage("create_api_user", "auditor", "--role", "auditor").strip()
        for name in ("web", "stream", "worker", "beat"):
            stack.start(name)
        yield stack
    finally:
        stack.stop()


def open_deal(stack: Stack) -> str:
    """Two organisations and a contract deal between them, through HTTP as the load test does."""
    return prepare(stack, deals=1)[0]


def append_notes(stack: Stack, deal: str, count: int, wins: list[int], errors: list) -> None:
    """Append `count` notes, retrying on version conflicts with the version the 409 reports.

    Runs in a thread: whatever goes wrong, including no answer at all, lands in `errors`.
    """
    try:
        expected = stack.request("GET", f"/api/v1/deals/{deal}/state/", token=stack.editor)[1][
            "version"
        ]
        done = 0
        while done < count:
            status, body = stack.request(
                "POST",
                f"/api/v1/deals/{deal}/events/",
                {
                    "type": "NoteAdded",
                    "data": {"text": f"note {done}"},
                    "occurred": OCCURRED,
                    "source": SOURCE,
                    "expected_version": expected,
                },
                token=stack.editor,
            )
            if status == 201:
                wins.append(body["version"])
                expected = body["version"]
                done += 1
            elif status == 409:
                expected = body["current_version"]
            else:
                errors.append((status, body))
                return
    except Exception as error:
        errors.append(error)


def concurrently(stack, deal, clients: int, per_client: int):
    wins: list[int] = []
    errors: list = []
    threads = [
        threading.Thread(target=append_notes, args=(stack, deal, per_client, wins, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    return threads, wins, errors


def wait_for_projection(stack: Stack, deal: str, version: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = stack.request("GET", f"/api/v1/deals/{deal}/", token=stack.editor)
        if status == 200 and body["version"] == version:
            return body
        time.sleep(0.25)
    raise AssertionError(f"projection not at {version} after {timeout}s:\n{stack.dump_logs()}")


def replayed(stack: Stack, deal: str) -> dict:
    status, body = stack.request("GET", f"/api/v1/deals/{deal}/state/", token=stack.editor)
    assert status == 200
    return body["state"]


def the_feed(stack: Stack) -> tuple[list[str], str]:
    """Every event's id, paged through GET /events/, and the cursor after the last."""
    ids, after = [], ""
    while True:
        path = f"/api/v1/events/?limit=1000&after={after}"
        status, page = stack.request("GET", path, token=stack.editor)
        assert status == 200
        if not page["results"]:
            return ids, after
        ids += [event["event_id"] for event in page["results"]]
        after = page["next"]


def test_the_stack_projects_survives_a_killed_worker_and_a_database_restart(stack):
    deal = open_deal(stack)
    # Follows the feed from the stream server throughout, the database restart included.
    stream = EventStream(stack.stream_base, "/api/v1/events/stream/", token=stack.editor)
    assert stream.status == 200

    threads, wins, errors = concurrently(stack, deal, clients=4, per_client=50)
    for thread in threads:
        thread.join(180)
    assert errors == []
    assert sorted(wins) == list(range(2, 202))
    assert wait_for_projection(stack, deal, 201) == replayed(stack, deal)

    threads, more, errors = concurrently(stack, deal, clients=2, per_client=50)
    time.sleep(0.5)
    stack.kill("worker")
    for thread in threads:
        thread.join(180)
    stack.start("worker")
    assert errors == []
    assert sorted(more) == list(range(202, 302))
    assert wait_for_projection(stack, deal, 301) == replayed(stack, deal)
    status, verified = stack.request("GET", f"/api/v1/deals/{deal}/verify/", token=stack.auditor)
    assert (status, verified["valid"], verified["events"]) == (200, True, 301)

    stack.service("stop-postgres")
    try:
        status, body = stack.request(
            "POST",
            f"/api/v1/deals/{deal}/events/",
            {
                "type": "NoteAdded",
                "data": {"text": "while down"},
                "occurred": OCCURRED,
                "source": SOURCE,
                "expected_version": 301,
            },
            token=stack.editor,
        )
        assert (status, body["code"]) == (503, "unavailable")
        assert stack.get("/health/")[0] == 503
    finally:
        stack.service("start-postgres")
    stack.wait_for(lambda: stack.get("/health/")[0] == 200, what="recovery")
    status, body = stack.request(
        "POST",
        f"/api/v1/deals/{deal}/events/",
        {
            "type": "NoteAdded",
            "data": {"text": "after"},
            "occurred": OCCURRED,
            "source": SOURCE,
            "expected_version": 301,
        },
        token=stack.editor,
    )
    assert (status, body["version"]) == (201, 302), body
    assert wait_for_projection(stack, deal, 302) == replayed(stack, deal)
    assert '"status": 500' not in stack.log("web")

    with stream:
        received = stream.events(302, timeout=60)
        assert stream.quiet_for(0.5) is True
    ids, last = the_feed(stack)
    assert [m.json["event_id"] for m in received] == ids
    assert received[-1].id == last
    assert "Traceback" not in stack.log("stream")
