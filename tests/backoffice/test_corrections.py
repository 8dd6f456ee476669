"""Correcting a fact in the admin while others write to the same deal: nothing of theirs is
undone, nothing of the analyst's is lost, and what cannot be saved says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tracker.deals import services
from tracker.eventstore.store import read_stream, stream_version

from .conftest import BAYKAR, LEONARDO, SOURCE, YEAR_2025, client_for

pytestmark = pytest.mark.django_db

CONTRACT = {
    "buyer": str(LEONARDO),
    "supplier": str(BAYKAR),
    "item": "TB2",
    "quantity": 10,
    "value": {"amount": "100000000", "currency": "EUR"},
}
THE_CORRECTION = {
    "occurred.date": "2025-07-01",
    "occurred.precision": "day",
    "source.title": "Follow-up report",
    "source.publisher": "unknown",
}


def as_shown(page: Any) -> dict[str, str]:
    """Every input of the page's form with the value it shows, as a browser would send it,
    and the version the page holds."""
    values = {
        item.name: item.value
        for part in page.context["form"].parts
        for top in part.fields
        for item in top.walk()
        if not item.children
    }
    return {**values, "expected_version": str(page.context["expected_version"])}


def open_correction(user: object, deal: UUID, event_id: UUID) -> tuple[Client, str, dict[str, str]]:
    """The fact's correction form opened by `user`: the client, the form's URL, its inputs."""
    client = client_for(user)
    url = reverse("admin:deal_correct", args=[deal, event_id])
    return client, url, as_shown(client.get(url))


def record(deal: UUID, event_type: str, data: dict[str, Any]) -> None:
    services.record_event(
        deal_id=deal,
        event_type=event_type,
        data=data,
        occurred=YEAR_2025,
        source=SOURCE,
        expected_version=stream_version(deal),
        actor="someone-else",
    )


@pytest.fixture
def contract(open_deal: Callable[..., UUID]) -> tuple[UUID, UUID]:
    deal = open_deal()
    record(deal, "ContractAwarded", CONTRACT)
    return deal, read_stream(deal)[-1].event_id


def test_a_correction_refused_as_stale_keeps_the_other_correction_when_saved_again(
    editor: object, contract: tuple[UUID, UUID]
) -> None:
    deal, event_id = contract
    client, url, shown = open_correction(editor, deal, event_id)
    mine = {
        **shown,
        **THE_CORRECTION,
        "data.data.quantity": "24",
        "data.reason": "quantity misread",
    }
    preview = client.post(url, {**mine, "_preview": "1"})
    assert preview.context["preview"] is not None
    # Meanwhile another analyst corrects the value of the same contract.
    theirs = {**CONTRACT, "value": {"amount": "200000000", "currency": "EUR"}}
    record(deal, "FactCorrected", {"event_id": str(event_id), "data": theirs, "reason": "MoD"})
    refused = client.post(
        url, {**mine, "fingerprint": preview.context["fingerprint"], "_save": "1"}
    )
    assert refused.context["conflict"].current_version == 3
    # The form now shows the contract as it stands, with the analyst's own change on it.
    shown = as_shown(refused)
    assert (shown["data.data.quantity"], shown["data.data.value.amount"]) == ("24", "200000000")
    assert (shown["data.reason"], shown["source.title"]) == ("quantity misread", "Follow-up report")
    again = client.post(url, {**shown, "_preview": "1"})
    saved = client.post(url, {**shown, "fingerprint": again.context["fingerprint"], "_save": "1"})
    assert saved.status_code == 302
    corrected = read_stream(deal)[-1].data["data"]
    assert (corrected["quantity"], corrected["value"]["amount"]) == (24, "200000000")


def test_a_fact_retracted_while_its_correction_was_open_is_said_so_and_nothing_saved(
    editor: object, contract: tuple[UUID, UUID]
) -> None:
    deal, event_id = contract
    client, url, shown = open_correction(editor, deal, event_id)
    mine = {**shown, **THE_CORRECTION, "data.reason": "quantity misread"}
    record(deal, "FactRetracted", {"event_id": str(event_id), "reason": "never signed"})
    response = client.post(url, {**mine, "data.data.quantity": "24", "_save": "1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:deal_page", args=[deal])
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "v2 ContractAwarded was retracted by v3" in message
    assert [e.type for e in read_stream(deal)][-1] == "FactRetracted"
    # Opened afresh, the form of a retracted fact is not found, as before.
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_correction_needs_its_reason(
    editor: object, contract: tuple[UUID, UUID], reason: str
) -> None:
    deal, event_id = contract
    client, url, shown = open_correction(editor, deal, event_id)
    mine = {**shown, **THE_CORRECTION, "data.data.quantity": "24"}
    response = client.post(url, {**mine, "data.reason": reason, "_save": "1"})
    assert response.status_code == 200
    reason_field = response.context["form"].extras[1].fields[0]
    assert reason_field.errors == ["Give the reason for this correction."]
    assert stream_version(deal) == 2


@pytest.mark.parametrize("version", ["99999999999999999999999999", "-5", "2147483648"])
def test_a_version_no_stream_can_have_is_refused_not_a_server_error(
    editor: object, open_deal: Callable[..., UUID], version: str
) -> None:
    deal = open_deal()
    form = {
        "data.text": "a note",
        "occurred.date": "2025-03-01",
        "occurred.precision": "day",
        "source.title": "Report",
        "source.publisher": "unknown",
        "expected_version": version,
    }
    url = reverse("admin:deal_record", args=[deal, "NoteAdded"])
    assert client_for(editor).post(url, form).status_code == 403
    assert stream_version(deal) == 1
