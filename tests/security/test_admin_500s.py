"""The admin requests issue 12 found answering 500, as it gave them;
tests/backoffice/test_bad_input.py tries every admin, content type and parameter the same way."""

from __future__ import annotations

from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings

from tests.backoffice.test_bad_input import Everything
from tracker.deals import services
from tracker.deals.models import Organisation

pytestmark = pytest.mark.django_db(databases=["default", "sqlite"])


def staff(using: str = "default") -> Client:
    user = User.objects.db_manager(using).create_superuser("root", password="pw-root-long-enough")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def open_deal() -> UUID:
    a = Organisation.objects.create(name="Baykar", kind="company", country="TR")
    b = Organisation.objects.create(name="Leonardo", kind="company", country="IT")
    return services.open_deal(
        title="Baykar and Leonardo",
        kind="mou",
        summary="",
        parties=[
            {"organisation": str(a.id), "role": "partner"},
            {"organisation": str(b.id), "role": "partner"},
        ],
        occurred={"date": "2025-01-01", "precision": "year"},
        source={"title": "Report", "publisher": "unknown"},
        actor="test",
    ).stream_id


def test_the_content_type_shortcut_with_a_non_uuid_id_is_404() -> None:
    organisation = ContentType.objects.get(app_label="deals", model="organisation")
    assert staff().get(f"/admin/r/{organisation.id}/1/").status_code == 404


def test_the_audit_page_names_a_known_at_beyond_year_9999_in_utc() -> None:
    deal = open_deal()
    response = staff().get(
        f"/admin/projections/dealstate/{deal}/audit/",
        {"known_at": "9999-12-31T23:59:59-01:00"},
    )
    assert response.status_code == 200
    assert "known_at" in response.context["param_errors"]


def test_json_containment_on_events_redirects_on_sqlite() -> None:
    with override_settings(DATABASE_ROUTERS=[Everything("sqlite")]):
        response = staff("sqlite").get("/admin/eventstore/event/?data__contains=x")
    assert response.status_code == 302
    assert response["Location"] == "/admin/eventstore/event/?e=1"
