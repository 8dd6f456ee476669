"""After an append commits, nothing that projects it can turn its answer into an error; the
embedded mode heals the read model that fell behind at the next read."""

from __future__ import annotations

import os
import threading
from typing import Any
from uuid import uuid4

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tracker.deals.signals import events_recorded
from tracker.eventstore.store import read_stream
from tracker.projections import dispatch, pending
from tracker.projections.models import DealState

from .builders import OCCURRED, SOURCE, deal_with_events, make_organisations, read_models_missing
from .conftest import QUEUE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def editor() -> APIClient:
    user = User.objects.create_user("dispatch-editor", password="x")
    user.groups.add(Group.objects.get_or_create(name="editor")[0])
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_note(editor: APIClient, deal: object, version: int) -> Any:
    return editor.post(
        f"/api/v1/deals/{deal}/events/",
        {
            "type": "NoteAdded",
            "data": {"text": "stored whatever happens after the commit"},
            "occurred": OCCURRED,
            "source": SOURCE,
            "expected_version": version,
        },
        format="json",
    )


def test_a_committed_append_is_answered_201_when_its_projection_fails(editor: APIClient):
    deal, version = deal_with_events(make_organisations())

    # The projection after the commit fails for real: its table is away.
    with read_models_missing():
        response = post_note(editor, deal, version)

    assert response.status_code == 201, response.content
    stored = read_stream(deal)
    assert [str(e.event_id) for e in stored[version:]] == [
        e["event_id"] for e in response.json()["events"]
    ]
    assert DealState.objects.get(deal_id=deal).version == version


def test_a_committed_append_is_answered_201_when_dispatching_raises(
    editor: APIClient, monkeypatch: pytest.MonkeyPatch
):
    deal, version = deal_with_events(make_organisations())

    def broken(deal_id: str) -> None:
        raise RuntimeError("the dispatcher broke")

    monkeypatch.setattr(dispatch, "dispatch", broken)
    response = post_note(editor, deal, version)

    assert response.status_code == 201, response.content
    assert read_stream(deal)[-1].version == response.json()["version"] == version + 1


def test_the_next_read_heals_a_read_model_left_behind(editor: APIClient):
    deal, version = deal_with_events(make_organisations(), notes=1)
    DealState.objects.filter(deal_id=deal).update(version=version - 1)

    response = editor.get(f"/api/v1/deals/{deal}/")

    assert response.status_code == 200
    assert response.json()["version"] == version
    assert DealState.objects.get(deal_id=deal).version == version


def test_healing_is_only_for_the_embedded_mode(settings, monkeypatch: pytest.MonkeyPatch):
    deal, version = deal_with_events(make_organisations(), notes=1)
    DealState.objects.filter(deal_id=deal).update(version=version - 1)
    monkeypatch.setattr(dispatch, "_embedded", lambda: False)

    dispatch.heal_if_embedded(deal)

    assert DealState.objects.get(deal_id=deal).version == version - 1


@pytest.mark.redis
def test_deals_committed_while_the_publisher_is_busy_go_out_together_once_each(
    dispatch_to_broker: None,
):
    deals = [uuid4() for _ in range(20)]
    gate = threading.Event()
    # The publisher is one thread: a job waiting on the gate keeps it busy, as a slow broker
    # round trip would.
    blocker = dispatch._publisher.submit(gate.wait, 30)
    for version in (1, 2):
        for deal in deals:
            with transaction.atomic():
                events_recorded.send(sender=None, deal_id=deal, version=version, events=[])
    gate.set()
    blocker.result()
    dispatch._publisher.submit(lambda: None).result()  # everything queued has been published

    assert queued_tasks() == ["tracker.projections.tasks.project_pending"]
    assert waiting_deals() == {str(deal): 2 for deal in deals}


@pytest.mark.redis
def test_deals_committed_from_many_processes_share_one_task(dispatch_to_broker: None):
    deals = [str(uuid4()) for _ in range(8)]
    children = []
    for deal in deals:  # each child is a web process with its own publisher
        child = os.fork()
        if child == 0:  # the child touches neither the database nor pytest, and exits hard
            code = 1
            try:
                dispatch.dispatch(deal, 3)
                dispatch._publisher.submit(lambda: None).result(timeout=20)
                code = 0
            finally:
                os._exit(code)
        children.append(child)
    statuses = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children]

    assert statuses == [0] * len(deals)
    assert queued_tasks() == ["tracker.projections.tasks.project_pending"]
    assert waiting_deals() == {deal: 3 for deal in deals}


def queued_tasks() -> list[str]:
    with celery_app.connection_for_write() as conn:
        names = []
        while (message := conn.default_channel.basic_get(QUEUE, no_ack=True)) is not None:
            names.append(message.headers["task"])
    return names


def waiting_deals() -> dict[str, int]:
    with celery_app.connection_for_write() as conn:
        stored = conn.default_channel.client.hgetall(pending.PENDING)
    return {key.decode(): int(value) for key, value in stored.items()}
