"""Forms generated from the catalogue: inputs chosen from schema metadata, errors by their type."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, WithJsonSchema

from tracker.backoffice.forms import Choice, Context, SchemaForm, analyst_message, event_form
from tracker.deals.errors import FieldError, InvalidEvent
from tracker.deals.events import CountryCode, parse_data, schema_for

ORGANISATIONS = Context(
    organisations=[Choice("00000000-0000-4000-8000-0000000000b1", "Baykar · TR")],
    events=[Choice("00000000-0000-4000-8000-0000000000e1", "v2 MouSigned · 2025 (year)")],
)


def widgets(form: SchemaForm) -> dict[str, str]:
    """Every input's name (rows by their first row) and widget."""
    return {
        item.name: item.widget
        for top in form.fields
        for item in top.walk()
        if ".1." not in item.name and not item.name.endswith(".1")
    }


class TestWidgets:
    def test_each_input_is_chosen_from_what_the_catalogue_says(self) -> None:
        form = event_form(
            "JointVentureFormed", schema_for("JointVentureFormed"), context=ORGANISATIONS
        )
        assert widgets(form.data) == {
            "data.venture": "organisation",
            "data.shares": "rows",
            "data.shares.0": "group",
            "data.shares.0.organisation": "organisation",
            "data.shares.0.percent": "decimal",
            "data.headquarters_country": "country",
            "data.scope": "textarea",
        }
        assert widgets(form.source) == {
            "source.title": "text",
            "source.publisher": "text",
            "source.url": "text",
            "source.published_on": "date",
        }

    def test_money_an_event_id_and_a_list_of_organisations(self) -> None:
        contract = SchemaForm(schema_for("ContractAwarded"), prefix="data", context=ORGANISATIONS)
        assert {k: v for k, v in widgets(contract).items() if k.startswith("data.value")} == {
            "data.value": "money",
            "data.value.amount": "decimal",
            "data.value.currency": "currency",
        }
        retraction = SchemaForm(schema_for("FactRetracted"), prefix="data", context=ORGANISATIONS)
        assert widgets(retraction) == {"data.event_id": "event", "data.reason": "textarea"}
        mou = SchemaForm(schema_for("MouSigned"), prefix="data", context=ORGANISATIONS)
        assert widgets(mou)["data.parties.0"] == "organisation"
        assert [c.label for c in mou.fields[0].children[0].choices] == ["Baykar · TR"]

    def test_a_pattern_alone_is_plain_text_and_a_format_alone_chooses(self) -> None:
        class Probe(BaseModel):
            code: Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$"})]
            where: CountryCode

        form = SchemaForm(Probe, prefix="data", context=Context())
        assert widgets(form) == {"data.code": "text", "data.where": "country"}


def errors_of(event_type: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as invalid:
        parse_data(event_type, data)
    return [(error.field, analyst_message(error)) for error in invalid.value.errors]


class TestMessages:
    def test_pydantic_errors_are_worded_by_their_type(self) -> None:
        assert errors_of("NoteAdded", {}) == [("data.text", "This field is required.")]
        assert errors_of("NoteAdded", {"text": " "}) == [("data.text", "This field is required.")]
        assert errors_of("NoteAdded", {"text": "x" * 2001}) == [
            ("data.text", "Too long: at most 2000 characters.")
        ]
        assert errors_of("MouSigned", {"parties": [ORGANISATIONS.organisations[0].value]}) == [
            ("data.parties", "Give at least 2 (one per row).")
        ]
        assert errors_of("StageChanged", {"stage": "won", "reason": "r"}) == [
            ("data.stage", "Choose 'negotiating', 'active', 'completed' or 'terminated'.")
        ]
        assert errors_of("NoteAdded", {"text": "t", "colour": "red"}) == [
            ("data.colour", "This field does not belong here.")
        ]

    def test_the_catalogue_s_own_rules_keep_their_words(self) -> None:
        org = ORGANISATIONS.organisations[0].value
        assert errors_of(
            "JointVentureFormed",
            {
                "venture": org,
                "shares": [{"organisation": org, "percent": "90"}],
                "headquarters_country": "IT",
            },
        ) == [("data.shares", "Shares must sum to exactly 100, not 90")]

    def test_the_type_decides_not_the_text(self) -> None:
        error = FieldError("data.text", "String should have at most 9 characters", "missing")
        assert analyst_message(error) == "This field is required."
        error = FieldError("data.x", "Input should be 'a' or 'b'", "", {"expected": "'a' or 'b'"})
        assert analyst_message(error) == "Input should be 'a' or 'b'"
