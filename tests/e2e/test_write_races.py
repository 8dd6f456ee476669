"""Clients racing on one deal through HTTP get true answers, on the embedded default and on
PostgreSQL: no 5xx, every 201 is a stored event and every stored event was answered 201, and
the read model catches up with the replay by itself."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from .servers import Server

pytestmark = pytest.mark.timeout(300)

SOURCE = {"title": "Race test report", "publisher": "unknown", "url": None, "published_on": None}
OCCURRED = {"date": "2025-03-01", "precision": "month"}


def open_deal(server: Server) -> str:
    parties = []
    for name, kind, country, role in [
        ("Race buyer", "government", "TR", "buyer"),
        ("Race maker", "company", "GB", "supplier"),
    ]:
        status, body = server.request(
            "POST", "/api/v1/organisations/", {"name": name, "kind": kind, "country": country}
        )
        assert status == 201, body
        parties.append({"organisation": body["id"], "role": role})
    status, body = server.request(
        "POST",
        "/api/v1/deals/",
        {
            "title": "Raced deal",
            "kind": "contract",
            "summary": "",
            "parties": parties,
            "occurred": {"date": "2025-01-01", "precision": "year"},
            "source": SOURCE,
        },
    )
    assert status == 201, body
    return body["id"]


def race(threads: int, work: Callable[[int], None]) -> None:
    """Run `work(n)` in `threads` threads released together; any exception fails the test."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(30)
            work(n)
        except BaseException as error:  # reported below
            errors.append(error)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(240)
    assert not any(thread.is_alive() for thread in pool), "a client hung"
    assert errors == []


def note(text: str, expected_version: int) -> dict[str, Any]:
    return {
        "type": "NoteAdded",
        "data": {"text": text},
        "occurred": OCCURRED,
        "source": SOURCE,
        "expected_version": expected_version,
    }


def stream(server: Server, deal: str) -> list[dict[str, Any]]:
    status, body = server.request("GET", f"/api/v1/deals/{deal}/events/?limit=1000")
    assert status == 200, body
    return body["results"]


def test_six_clients_racing_on_one_deal_get_only_true_answers(server: Server):
    deal = open_deal(server)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for attempt in range(10):
            status, state = server.request("GET", f"/api/v1/deals/{deal}/state/")
            assert status == 200, state
            answer = server.request(
                "POST",
                f"/api/v1/deals/{deal}/events/",
                note(f"client {n} attempt {attempt}", state["version"]),
            )
            with lock:
                answers.append(answer)

    race(6, client)

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 409}, (statuses, [a for a in answers if a[0] not in (201, 409)])
    assert statuses[201] >= 1
    answered = {
        event["event_id"] for status, body in answers if status == 201 for event in body["events"]
    }
    stored = {event["event_id"] for event in stream(server, deal) if event["type"] == "NoteAdded"}
    assert answered == stored
    assert len(stored) == statuses[201]

    version = 1 + statuses[201]

    def caught_up() -> bool:
        status, projected = server.request("GET", f"/api/v1/deals/{deal}/")
        return status == 200 and projected["version"] == version

    server.wait_for(caught_up, what="the read model", timeout=60)
    projected = server.request("GET", f"/api/v1/deals/{deal}/")[1]
    replayed = server.request("GET", f"/api/v1/deals/{deal}/state/")[1]["state"]
    assert projected == replayed


def test_eight_requests_with_one_idempotency_key_store_one_event_and_answer_alike(server: Server):
    deal = open_deal(server)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()
    body = note("sent eight times", 1)

    def client(n: int) -> None:
        answer = server.request(
            "POST",
            f"/api/v1/deals/{deal}/events/",
            body,
            headers={"Idempotency-Key": f"race-{deal}"},
        )
        with lock:
            answers.append(answer)

    race(8, client)

    assert [status for status, _ in answers] == [201] * 8, answers
    assert all(answer == answers[0] for answer in answers)
    notes = [event for event in stream(server, deal) if event["type"] == "NoteAdded"]
    assert [event["event_id"] for event in notes] == [
        event["event_id"] for event in answers[0][1]["events"]
    ]


def test_a_read_model_left_behind_is_healed_without_another_append(server: Server):
    """The embedded mode heals as the stack does: a read model that missed an event (a lost
    dispatch, a crash after commit) catches up by itself, not at the deal's next append."""
    deal = open_deal(server)
    status, appended = server.request("POST", f"/api/v1/deals/{deal}/events/", note("one", 1))
    assert status == 201, appended

    def caught_up() -> bool:
        status, projected = server.request("GET", f"/api/v1/deals/{deal}/")
        return status == 200 and projected["version"] == 2

    # Projected first, so that what heals the row below can only be the embedded read or the
    # stack's sweep, not the projection of the append still under way.
    server.wait_for(caught_up, what="the read model", timeout=60)
    server.manage("shell", "-c", _FORGET_PROJECTION.format(deal=deal))
    server.wait_for(caught_up, what="the healed read model", timeout=60)


# Puts the deal's read model back at version 1, as if the projection of version 2 were lost.
_FORGET_PROJECTION = """
from tracker.projections.models import DealState
row = DealState.objects.get(deal_id="{deal}")
row.version = 1
row.state = dict(row.state, version=1)
row.save()
"""
