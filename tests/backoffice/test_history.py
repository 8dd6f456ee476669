"""Organisation history in the admin: who changed what and when, and the audit's past names."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tracker.deals import history, services
from tracker.deals.models import Organisation
from tracker.eventstore.store import read_stream

from .conftest import BAYKAR, LBA, SOURCE, YEAR_2025, client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def rename_in_admin(client: Client, org_id: UUID, name: str) -> None:
    org = Organisation.objects.get(id=org_id)
    response = client.post(
        reverse("admin:deals_organisation_change", args=[org_id]),
        {
            "name": name,
            "short_name": org.short_name,
            "kind": org.kind,
            "country": org.country,
            "parent": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Organisation.objects.get(id=org_id).name == name


def section(content: bytes, element_id: str, end: str = "</table>") -> str:
    """The HTML from the element with this id to the first `end` after it."""
    text = content.decode()
    start = text.index(f'id="{element_id}"')
    return text[start : text.index(end, start)]


class TestOrganisationHistory:
    def test_two_renames_in_the_admin_show_with_user_time_and_values(
        self, superuser: User, organisations: dict[str, UUID]
    ) -> None:
        client = client_for(superuser)
        rename_in_admin(client, BAYKAR, "Baykar Defence")
        rename_in_admin(client, BAYKAR, "Baykar Savunma")

        revisions = history.revisions(BAYKAR)
        updates = [r for r in revisions if r.label == "update"]
        assert [(r.actor, r.via, r.changes) for r in updates] == [
            ("admin", "admin", {"name": ("Baykar Technologies", "Baykar Defence")}),
            ("admin", "admin", {"name": ("Baykar Defence", "Baykar Savunma")}),
        ]
        assert revisions[0].label == "insert"
        assert revisions[0].at < updates[0].at < updates[1].at

        page = client.get(reverse("admin:deals_organisation_history", args=[BAYKAR]))
        assert page.status_code == 200
        table = section(page.content, "revisions", end='id="admin-log"')
        rows = table.split('class="dt-revision"')[1:]
        # Newest first.
        assert 'data-label="update"' in rows[0]
        assert 'Baykar Defence</td><td>→</td><td class="dt-after">Baykar Savunma' in rows[0]
        assert 'Baykar Technologies</td><td>→</td><td class="dt-after">Baykar Defence' in rows[1]
        assert 'data-label="insert"' in rows[2]
        for row, revision in zip(rows, reversed(revisions), strict=True):
            assert revision.at.strftime("%Y-%m-%d %H:%M:%S") in row
        assert rows[0].count('class="dt-who">admin') == 1
        assert rows[1].count('class="dt-who">admin') == 1
        # The fixture created the organisations outside the admin: on record, without a name.
        assert 'class="dt-who">—' in rows[2]
        # Django's own log of admin actions stays below.
        assert b'id="admin-log"' in page.content
        assert b'id="change-history"' in page.content

    def test_a_bulk_delete_from_the_change_list_is_attributed(
        self, superuser: User, organisations: dict[str, UUID]
    ) -> None:
        response = client_for(superuser).post(
            reverse("admin:deals_organisation_changelist"),
            {"action": "delete_selected", "_selected_action": [str(BAYKAR)], "post": "yes"},
        )
        assert response.status_code == 302
        assert not Organisation.objects.filter(id=BAYKAR).exists()
        last = history.revisions(BAYKAR)[-1]
        assert (last.label, last.actor, last.via) == ("delete", "admin", "admin")


class TestAuditNames:
    def test_replay_known_before_a_rename_shows_the_old_name(
        self, superuser: User, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        opened_at = read_stream(deal)[-1].recorded_at
        client = client_for(superuser)
        rename_in_admin(client, BAYKAR, "Baykar Defence")
        url = reverse("admin:deal_audit", args=[deal])

        then = client.get(url, {"known_at": opened_at.isoformat()})
        now = client.get(url)

        assert then.status_code == now.status_code == 200
        replayed_then = section(then.content, "replayed-state")
        assert "Baykar Technologies (Baykar)" in replayed_then
        assert "Baykar Defence" not in replayed_then
        assert b'id="names-known-at"' in then.content
        replayed_now = section(now.content, "replayed-state")
        assert "Baykar Defence (Baykar)" in replayed_now
        assert "Baykar Technologies" not in replayed_now
        assert b'id="names-known-at"' not in now.content

    def test_differences_name_today_by_todays_names_and_the_replay_by_then(
        self, superuser: User, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        opened_at = read_stream(deal)[-1].recorded_at
        services.record_event(
            deal_id=deal,
            event_type="PartyAdded",
            data={"organisation": str(LBA), "role": "venture"},
            occurred=YEAR_2025,
            source=SOURCE,
            expected_version=1,
            actor="fixture",
        )
        client = client_for(superuser)
        rename_in_admin(client, BAYKAR, "Baykar Defence")

        page = client.get(
            reverse("admin:deal_audit", args=[deal]), {"known_at": opened_at.isoformat()}
        )

        differences = section(page.content, "differences")
        today, replayed = differences.split('data-field="parties"')[1].split("</td><td>", 1)
        assert "Baykar Defence (Baykar)" in today
        assert "LBA Systems (LBA)" in today
        assert "Baykar Technologies (Baykar)" in replayed
        assert "Baykar Defence" not in replayed
        assert "LBA Systems" not in replayed
