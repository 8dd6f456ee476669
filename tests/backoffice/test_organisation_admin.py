"""Organisations in the admin: editors add and edit them; one that recorded facts name stays."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tracker.deals.models import Organisation

from .conftest import BAYKAR, client_for

pytestmark = pytest.mark.django_db


def fields(name: str, **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "short_name": "",
        "kind": "company",
        "country": "FR",
        "parent": "",
        **extra,
    }


def test_an_editor_adds_and_edits_organisations_but_does_not_delete_them(editor: object) -> None:
    client = client_for(editor)
    added = client.post(reverse("admin:deals_organisation_add"), fields("Dassault Aviation"))
    assert added.status_code == 302
    organisation = Organisation.objects.get(name="Dassault Aviation")
    change = reverse("admin:deals_organisation_change", args=[organisation.pk])
    assert client.post(change, fields("Dassault Aviation SA")).status_code == 302
    assert Organisation.objects.get(pk=organisation.pk).name == "Dassault Aviation SA"
    delete = reverse("admin:deals_organisation_delete", args=[organisation.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Organisation.objects.filter(pk=organisation.pk).exists()


def test_an_organisation_a_recorded_fact_names_cannot_be_deleted(
    superuser: object, open_deal: Callable[..., UUID]
) -> None:
    open_deal()  # Baykar is a party of its opening
    client = client_for(superuser)
    delete = reverse("admin:deals_organisation_delete", args=[BAYKAR])
    for response in (client.get(delete), client.post(delete, {"post": "yes"})):
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:deals_organisation_change", args=[BAYKAR])
        assert any("named in recorded facts" in str(m) for m in get_messages(response.wsgi_request))
    bulk = client.post(
        reverse("admin:deals_organisation_changelist"),
        {"action": "delete_selected", "_selected_action": [str(BAYKAR)], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)
    assert Organisation.objects.filter(pk=BAYKAR).exists()


def test_an_organisation_no_fact_names_can_be_deleted(
    superuser: object, open_deal: Callable[..., UUID]
) -> None:
    open_deal()
    spare = Organisation.objects.create(name="Registered by mistake", kind="company", country="FR")
    delete = reverse("admin:deals_organisation_delete", args=[spare.pk])
    response = client_for(superuser).post(delete, {"post": "yes"})
    assert response.status_code == 302
    assert not Organisation.objects.filter(pk=spare.pk).exists()
