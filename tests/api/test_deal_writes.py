"""Writes are safe to retry and safe to race: idempotency keys and expected_version."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from tracker.eventstore.models import IdempotencyKey
from tracker.eventstore.store import read_stream, stream_version

from .conftest import client_for, make_organisation, make_user, note_event, opening

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DEALS = "/api/v1/deals/"


@pytest.fixture
def deal(editor) -> str:
    parties = [make_organisation("Acme Aero", "GB"), make_organisation("Beta Avionics", "IT")]
    response = editor.post(DEALS, opening(parties), format="json")
    assert response.status_code == 201
    return response.json()["id"]


class TestIdempotencyKey:
    def test_same_key_and_body_appends_once_and_returns_the_first_response(self, editor, deal):
        url = f"{DEALS}{deal}/events/"
        first = editor.post(url, note_event("once"), format="json", HTTP_IDEMPOTENCY_KEY="k1")
        again = editor.post(url, note_event("once"), format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert stream_version(deal) == 2

    def test_a_retry_after_every_connection_closed_returns_the_first_response(self, editor, deal):
        url = f"{DEALS}{deal}/events/"
        first = editor.post(url, note_event("once"), format="json", HTTP_IDEMPOTENCY_KEY="k2")
        connections.close_all()
        again = editor.post(url, note_event("once"), format="json", HTTP_IDEMPOTENCY_KEY="k2")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert [e.version for e in read_stream(deal)] == [1, 2]

    def test_a_retry_after_another_write_still_returns_the_first_response(self, editor, deal):
        url = f"{DEALS}{deal}/events/"
        first = editor.post(url, note_event("mine"), format="json", HTTP_IDEMPOTENCY_KEY="k3")
        assert editor.post(url, note_event("other", 2), format="json").status_code == 201
        again = editor.post(url, note_event("mine"), format="json", HTTP_IDEMPOTENCY_KEY="k3")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert stream_version(deal) == 3

    def test_same_key_with_another_body_is_422_and_appends_nothing(self, editor, deal):
        url = f"{DEALS}{deal}/events/"
        editor.post(url, note_event("once"), format="json", HTTP_IDEMPOTENCY_KEY="k4")
        other = editor.post(url, note_event("twice"), format="json", HTTP_IDEMPOTENCY_KEY="k4")
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"
        assert stream_version(deal) == 2

    def test_same_key_on_another_deal_is_422(self, editor, deal):
        parties = [make_organisation("Gamma", "FR")]
        other_deal = editor.post(DEALS, opening(parties), format="json").json()["id"]
        editor.post(
            f"{DEALS}{deal}/events/", note_event("a"), format="json", HTTP_IDEMPOTENCY_KEY="k5"
        )
        response = editor.post(
            f"{DEALS}{other_deal}/events/",
            note_event("a"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k5",
        )
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"

    def test_two_users_keys_never_collide(self, editor, deal):
        other = client_for(make_user("eve", "editor"))
        url = f"{DEALS}{deal}/events/"
        mine = editor.post(url, note_event("ed's"), format="json", HTTP_IDEMPOTENCY_KEY="same")
        theirs = other.post(url, note_event("eve's", 2), format="json", HTTP_IDEMPOTENCY_KEY="same")
        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert theirs.json()["events"][0]["data"] == {"text": "eve's"}
        assert stream_version(deal) == 3
        assert IdempotencyKey.objects.filter(key__endswith=":same").count() == 2

    def test_a_key_of_255_characters_is_accepted_and_replays(self, editor, deal):
        key = "k" * 255
        url = f"{DEALS}{deal}/events/"
        first = editor.post(url, note_event("long"), format="json", HTTP_IDEMPOTENCY_KEY=key)
        again = editor.post(url, note_event("long"), format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()

    @pytest.mark.parametrize("key", ["k" * 256, ""])
    def test_a_key_over_255_characters_or_empty_is_400(self, editor, deal, key):
        url = f"{DEALS}{deal}/events/"
        response = editor.post(url, note_event("x"), format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
        assert stream_version(deal) == 1


def test_eight_racing_writers_leave_versions_without_gaps(deal):
    """Each round, every writer reads the version over HTTP, then all append at it at once:
    one wins, the other seven get 409 with the version now current."""
    writers, rounds = 8, 4
    clients = [client_for(make_user(f"w{n}", "editor")) for n in range(writers)]
    barrier = threading.Barrier(writers)
    outcomes: list[tuple[int, int, int, dict]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            client = clients[n]
            for round_number in range(rounds):
                events = client.get(f"{DEALS}{deal}/events/", {"limit": 1000}).json()["results"]
                seen = events[-1]["version"]
                barrier.wait(timeout=60)  # everyone has read before anyone writes
                body = note_event(f"w{n}-{round_number}", seen)
                response = client.post(f"{DEALS}{deal}/events/", body, format="json")
                with lock:
                    outcomes.append((round_number, seen, response.status_code, response.json()))
                barrier.wait(timeout=60)  # every write of the round is done
        except BaseException as error:  # reported below: a thread's assertion must fail the test
            failures.append(error)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert len(outcomes) == writers * rounds
    for round_number in range(rounds):
        this_round = [o for o in outcomes if o[0] == round_number]
        assert sorted(status for _, _, status, _ in this_round) == [201] + [409] * (writers - 1)
        [(_, seen, _, won)] = [o for o in this_round if o[2] == 201]
        assert seen == round_number + 1
        assert won["version"] == seen + 1
        for _, lost_seen, status, body in this_round:
            if status == 409:
                assert lost_seen == seen
                assert body["code"] == "version_conflict"
                assert body["current_version"] == seen + 1
    assert [event.version for event in read_stream(deal)] == list(range(1, rounds + 2))
