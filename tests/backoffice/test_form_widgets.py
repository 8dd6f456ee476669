"""Widgets generated from the catalogue for booleans, `occurred` with its estimate flag, optional
nested objects and references to events: chosen from the schema, parsed to the JSON it takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from django.test import Client
from django.urls import reverse
from pydantic import BaseModel

from tracker.backoffice.forms import Choice, Context, SchemaForm, event_form
from tracker.deals import services
from tracker.deals.events import parse_data, schema_for
from tracker.eventstore.store import read_stream, stream_version

from .conftest import BAYKAR, LEONARDO, SOURCE, YEAR_2025, client_for

CONTEXT = Context(organisations=[Choice(str(BAYKAR), "Baykar · TR")])


def widgets(form: SchemaForm) -> dict[str, tuple[str, bool]]:
    return {item.name: (item.widget, item.nullable) for top in form.fields for item in top.walk()}


def contract_post(**extra: str) -> dict[str, str]:
    """A ContractAwarded form as a browser sends it: every input, blank unless filled, and no
    key at all for an unticked checkbox."""
    form = {
        "data.buyer": str(LEONARDO),
        "data.supplier": str(BAYKAR),
        "data.item": "Bayraktar TB2",
        "data.quantity": "",
        "data.value.amount": "",
        "data.value.currency": "",
        "data.weapon.designation": "",
        "data.weapon.description": "",
        "data.weapon.category": "",
        "data.weapon.status": "",
        "data.weapon.local_production": "",
        "data.tiv_unit": "",
        "occurred.date": "2019-05-17",
        "occurred.precision": "year",
        "source.title": "SIPRI trade register",
        "source.publisher": "SIPRI",
    }
    form.update(extra)
    return form


def payload(event_type: str, post: dict[str, str]) -> dict[str, Any]:
    return event_form(event_type, schema_for(event_type), context=CONTEXT, data=post).payload()


class TestBooleans:
    def test_a_boolean_is_a_checkbox_and_a_nullable_one_a_yes_no_or_blank_choice(self) -> None:
        form = SchemaForm(schema_for("ContractAwarded"), prefix="data", context=CONTEXT)
        found = widgets(form)
        assert found["data.quantity_estimate"] == ("boolean", False)
        assert found["data.weapon"] == ("group", False)
        assert found["data.weapon.local_production"] == ("boolean", True)
        assert found["data.weapon.status"] == ("select", False)
        local = next(i for i in form.fields[-2].walk() if i.name.endswith("local_production"))
        assert [(c.value, c.label) for c in local.choices] == [("true", "Yes"), ("false", "No")]

    def test_ticked_is_true_and_unticked_leaves_the_default_false_to_the_schema(self) -> None:
        ticked = payload("ContractAwarded", contract_post(**{"data.quantity_estimate": "true"}))
        assert ticked["data"]["quantity_estimate"] is True
        unticked = payload("ContractAwarded", contract_post())
        assert "quantity_estimate" not in unticked["data"]
        assert parse_data("ContractAwarded", unticked["data"]).quantity_estimate is False

    def test_yes_no_and_not_known(self) -> None:
        def local_production(choice: str) -> Any:
            post = contract_post(
                **{"data.weapon.designation": "TB2", "data.weapon.local_production": choice}
            )
            return payload("ContractAwarded", post)["data"]["weapon"].get("local_production", "-")

        assert local_production("true") is True
        assert local_production("false") is False
        assert local_production("") == "-"  # left out: the schema's null, "not known"

    def test_a_boolean_without_a_false_default_sends_false_when_unticked(self) -> None:
        class Probe(BaseModel):
            confirmed: bool
            public: bool = True
            known: bool | None
            flag: bool = False

        def parsed(post: dict[str, str]) -> dict[str, Any]:
            return SchemaForm(Probe, prefix="data", context=Context(), data=post).value()

        assert parsed({"data.known": ""}) == {"confirmed": False, "public": False, "known": None}
        assert parsed({"data.confirmed": "true", "data.public": "true", "data.known": "false"}) == {
            "confirmed": True,
            "public": True,
            "known": False,
        }
        # Text a form never sends is no answer, not the string "yes".
        assert parsed({"data.flag": "yes", "data.known": "yes"}) == {
            "confirmed": False,
            "public": False,
            "known": None,
        }

    def test_an_unbound_form_shows_the_default_and_a_bound_one_what_was_sent(self) -> None:
        class Probe(BaseModel):
            public: bool = True

        unbound = SchemaForm(Probe, prefix="data", context=Context())
        assert unbound.fields[0].value == "true"
        bound = SchemaForm(Probe, prefix="data", context=Context(), data={})
        assert bound.fields[0].value == ""
        assert bound.value() == {"public": False}


class TestOccurred:
    def test_occurred_is_one_group_with_its_estimate_as_a_checkbox(self) -> None:
        form = event_form("NoteAdded", schema_for("NoteAdded"), context=CONTEXT)
        (occurred,) = form.occurred.fields
        assert occurred.widget == "occurred"
        assert [(c.name, c.widget) for c in occurred.children] == [
            ("occurred.date", "date"),
            ("occurred.precision", "select"),
            ("occurred.estimate", "boolean"),
        ]

    def test_the_estimate_is_sent_only_when_ticked(self) -> None:
        ticked = payload("ContractAwarded", contract_post(**{"occurred.estimate": "true"}))
        assert ticked["occurred"] == {"date": "2019-01-01", "precision": "year", "estimate": True}
        assert payload("ContractAwarded", contract_post())["occurred"] == {
            "date": "2019-01-01",
            "precision": "year",
        }


class TestOptionalGroups:
    def test_an_all_blank_optional_object_is_left_out_not_sent_empty(self) -> None:
        sent = payload("ContractAwarded", contract_post())
        assert sent["data"] == {
            "buyer": str(LEONARDO),
            "supplier": str(BAYKAR),
            "item": "Bayraktar TB2",
        }
        parse_data("ContractAwarded", sent["data"])

    def test_a_filled_weapon_is_sent_with_what_was_filled(self) -> None:
        sent = payload(
            "ContractAwarded",
            contract_post(
                **{
                    "data.weapon.designation": "Bayraktar TB2",
                    "data.weapon.category": "Aircraft",
                    "data.weapon.status": "second_hand",
                }
            ),
        )
        assert sent["data"]["weapon"] == {
            "designation": "Bayraktar TB2",
            "category": "Aircraft",
            "status": "second_hand",
        }


# --- through the pages -------------------------------------------------------------------------


def preview_then_save(client: Client, url: str, form: dict[str, str]) -> Any:
    preview = client.post(url, {**form, "_preview": "1"})
    assert preview.status_code == 200
    assert preview.context["preview"] is not None, [
        (f.path, f.errors)
        for part in preview.context["form"].parts
        for top in part.fields
        for f in top.walk()
        if f.errors
    ] + preview.context["form"].general_errors
    return client.post(url, {**form, "fingerprint": preview.context["fingerprint"], "_save": "1"})


@pytest.mark.django_db
class TestContractsAndDeliveriesInTheAdmin:
    def test_the_contract_form_renders_its_checkboxes_choices_and_weapon(
        self, editor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        response = client_for(editor).get(
            reverse("admin:deal_record", args=[deal, "ContractAwarded"])
        )
        content = response.content.decode()
        assert (
            '<input type="checkbox" name="data.quantity_estimate" '
            'id="id_data-quantity_estimate" value="true" class="dt-boolean">'
        ) in content
        assert (
            '<input type="checkbox" name="occurred.estimate" id="id_occurred-estimate" '
            'value="true" class="dt-boolean">'
        ) in content
        assert (
            '<select name="data.weapon.local_production" id="id_data-weapon-local_production" '
            'class="dt-select dt-boolean"><option value="">Not known</option>'
            '<option value="true">Yes</option><option value="false">No</option></select>'
        ) in content
        assert 'name="data.weapon.designation"' in content

    def test_a_contract_then_a_delivery_under_it_are_recorded_from_the_forms(
        self, editor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        client = client_for(editor)
        contract_url = reverse("admin:deal_record", args=[deal, "ContractAwarded"])
        saved = preview_then_save(
            client,
            contract_url,
            {
                **contract_post(
                    **{
                        "data.quantity": "6",
                        "data.quantity_estimate": "true",
                        "data.weapon.designation": "Bayraktar TB2",
                        "data.weapon.local_production": "false",
                        "data.tiv_unit": "1.5",
                        "occurred.estimate": "true",
                    }
                ),
                "expected_version": "1",
            },
        )
        assert saved.status_code == 302
        contract = read_stream(deal)[-1]
        assert contract.type == "ContractAwarded"
        assert contract.data["quantity_estimate"] is True
        assert contract.data["weapon"]["local_production"] is False
        assert contract.data["weapon"]["designation"] == "Bayraktar TB2"
        assert contract.occurred == {"date": "2019-01-01", "precision": "year", "estimate": True}

        delivery_url = reverse("admin:deal_record", args=[deal, "DeliveryRecorded"])
        page = client.get(delivery_url)
        (picker,) = [f for f in page.context["form"].data.fields if f.name == "data.contract"]
        assert picker.widget == "event"
        assert str(contract.event_id) in [c.value for c in picker.choices]
        delivery = {
            "data.contract": str(contract.event_id),
            "data.quantity": "4",
            "data.tiv": "6",
            "occurred.date": "2021-01-01",
            "occurred.precision": "year",
            "source.title": "SIPRI trade register",
            "source.publisher": "SIPRI",
            "expected_version": "2",
        }
        assert preview_then_save(client, delivery_url, delivery).status_code == 302
        recorded = read_stream(deal)[-1]
        assert (recorded.type, recorded.data) == (
            "DeliveryRecorded",
            {
                "contract": str(contract.event_id),
                "quantity": 4,
                "quantity_estimate": False,
                "tiv": "6",
            },
        )

        # Two more than ordered: refused beside the quantity, nothing appended.
        over = client.post(
            delivery_url, {**delivery, "data.quantity": "3", "expected_version": "3", "_save": "1"}
        )
        fields = {f.path: f.errors for f in over.context["form"].data.fields}
        assert fields["data.quantity"], over.context["form"].general_errors
        assert stream_version(deal) == 3

    def test_a_correction_starts_from_the_contract_s_flags(
        self, editor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal()
        appended = services.record_event(
            deal_id=deal,
            event_type="ContractAwarded",
            data={
                "buyer": str(LEONARDO),
                "supplier": str(BAYKAR),
                "item": "TB2",
                "quantity": 6,
                "quantity_estimate": True,
                "weapon": {"designation": "TB2", "local_production": True},
            },
            occurred={**YEAR_2025, "estimate": True},
            source=SOURCE,
            expected_version=1,
            actor="fixture",
        )
        event = appended.events[-1]
        page = client_for(editor).get(reverse("admin:deal_correct", args=[deal, event.event_id]))
        values = {
            f.name: f.value
            for part in page.context["form"].parts
            for top in part.fields
            for f in top.walk()
        }
        assert values["data.data.quantity_estimate"] == "true"
        assert values["data.data.weapon.local_production"] == "true"
        assert values["data.occurred.estimate"] == "true"
