"""Organisations (reference data, edited by editors) and the event catalogue."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest
from django.db import connections

from tracker.deals.events import EVENT_TYPES
from tracker.deals.models import Organisation

from ..threads import held_open
from .conftest import make_organisation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ORGS = "/api/v1/organisations/"


def errors(response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


class TestOrganisations:
    def test_creates_one_with_the_contract_shape(self, editor):
        body = {"name": "Leonardo", "short_name": "LDO", "kind": "company", "country": "IT"}
        response = editor.post(ORGS, body, format="json")
        assert response.status_code == 201
        created = response.json()
        assert created == {**body, "id": created["id"], "parent": None}
        assert Organisation.objects.get(id=created["id"]).name == "Leonardo"

    def test_an_unknown_country_is_422_naming_country(self, editor):
        body = {"name": "Nowhere Ltd", "kind": "company", "country": "XX"}
        response = editor.post(ORGS, body, format="json")
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_event"
        assert errors(response) == ["country"]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("name", "Forged\nsecond line"),
            ("name", "\u202eevil"),
            ("name", "\x1b[31mred"),
            ("name", "\u200b\u200b"),
            ("short_name", "A\u0085B"),
        ],
    )
    def test_a_name_that_is_not_one_plain_line_is_422(self, editor, field, value):
        body = {"name": "Plain", "kind": "company", "country": "GB", field: value}
        response = editor.post(ORGS, body, format="json")
        assert response.status_code == 422, response.content
        assert errors(response) == [field]
        assert not Organisation.objects.filter(name=body["name"]).exists()

    def test_a_parent_that_does_not_exist_is_422_naming_parent(self, editor):
        body = {"name": "Orphan", "kind": "company", "country": "GB", "parent": str(uuid4())}
        response = editor.post(ORGS, body, format="json")
        assert response.status_code == 422
        assert errors(response) == ["parent"]

    def test_patch_changes_the_fields_sent(self, editor):
        parent = make_organisation("BAE Systems", "GB")
        child = make_organisation("Malloy", "GB")
        response = editor.patch(f"{ORGS}{child}/", {"parent": str(parent)}, format="json")
        assert response.status_code == 200
        assert response.json()["parent"] == str(parent)
        assert response.json()["name"] == "Malloy"

    def test_patch_refuses_an_organisation_as_its_own_ancestor(self, editor):
        parent = make_organisation("Holding", "GB")
        child = make_organisation("Sub", "GB", parent_id=parent)
        response = editor.patch(f"{ORGS}{parent}/", {"parent": str(child)}, format="json")
        assert response.status_code == 422
        assert errors(response) == ["parent"]
        itself = editor.patch(f"{ORGS}{parent}/", {"parent": str(parent)}, format="json")
        assert itself.status_code == 422
        assert Organisation.objects.get(id=parent).parent_id is None

    def test_put_and_delete_are_not_allowed(self, editor):
        org = make_organisation()
        assert editor.put(f"{ORGS}{org}/", {}, format="json").status_code == 405
        assert editor.delete(f"{ORGS}{org}/").status_code == 405

    def test_an_unknown_organisation_is_404(self, editor):
        response = editor.get(f"{ORGS}{uuid4()}/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_lists_by_name_with_filters(self, editor):
        make_organisation("Zeta", "IT")
        make_organisation("Alpha", "GB")
        make_organisation("Beta", "IT")
        names = [o["name"] for o in editor.get(ORGS).json()["results"]]
        assert names == ["Alpha", "Beta", "Zeta"]
        italian = [o["name"] for o in editor.get(ORGS, {"country": "IT"}).json()["results"]]
        assert italian == ["Beta", "Zeta"]
        assert editor.get(ORGS, {"country": "Italy"}).status_code == 400

    def test_a_body_that_is_a_list_is_400(self, editor):
        response = editor.post(ORGS, [{"name": "x"}], format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"


class TestEventTypes:
    def test_lists_the_whole_catalogue_with_json_schemas(self, editor):
        response = editor.get("/api/v1/event-types/")
        assert response.status_code == 200
        results = response.json()["results"]
        assert {r["type"] for r in results} == set(EVENT_TYPES)
        jv = next(r for r in results if r["type"] == "JointVentureFormed")
        assert jv["schema_version"] == 1
        assert {"venture", "shares", "headquarters_country"} <= set(jv["schema"]["required"])

    def test_one_type(self, editor):
        body = editor.get("/api/v1/event-types/NoteAdded/").json()
        assert body["type"] == "NoteAdded"
        assert body["schema"]["properties"]["text"]["type"] == "string"

    def test_an_unknown_type_is_404(self, editor):
        response = editor.get("/api/v1/event-types/NoSuchThing/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


class TestOrganisationHierarchyEdits:
    def test_a_parent_set_while_another_edit_makes_the_loop_is_422_not_a_loop(self, editor):
        first = make_organisation("Holding A", "GB")
        second = make_organisation("Holding B", "GB")

        def set_first_parent() -> None:
            mine = Organisation.objects.get(pk=first)
            mine.parent_id = second
            mine.save()

        response = None

        def patch() -> None:
            nonlocal response
            try:
                response = editor.patch(f"{ORGS}{second}/", {"parent": str(first)}, format="json")
            finally:
                connections.close_all()

        request = threading.Thread(target=patch)
        with held_open(set_first_parent):
            # The request's own check passes (the other edit is not committed); its write
            # waits for that edit, then finds the loop.
            request.start()
            request.join(0.5)
            waited = request.is_alive()
        request.join(30)
        assert waited, "the request's write did not wait for the other edit"
        assert response is not None
        assert response.status_code == 422, response.content
        assert errors(response) == ["parent"]
        assert Organisation.objects.get(pk=first).parent_id == second
        assert Organisation.objects.get(pk=second).parent_id is None

    def test_a_parent_inside_a_stored_loop_is_422_at_once(self, editor):
        first = make_organisation("Loop A", "GB")
        second = make_organisation("Loop B", "GB", parent_id=first)
        Organisation.objects.filter(pk=first).update(parent=second)
        body = {"name": "Child", "kind": "company", "country": "GB", "parent": str(first)}
        created = editor.post(ORGS, body, format="json")
        assert created.status_code == 422, created.content
        assert errors(created) == ["parent"]
        third = make_organisation("Outside", "GB")
        moved = editor.patch(f"{ORGS}{third}/", {"parent": str(second)}, format="json")
        assert moved.status_code == 422
        mended = editor.patch(f"{ORGS}{second}/", {"parent": None}, format="json")
        assert mended.status_code == 200
        assert editor.post(ORGS, body, format="json").status_code == 201
