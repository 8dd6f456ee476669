"""The event catalogue: strict schemas, value objects, the registry and upcasting."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from tracker.deals.errors import InvalidEvent, UnknownEventType
from tracker.deals.events import (
    EVENT_TYPES,
    EventData,
    Money,
    Occurred,
    Source,
    json_schemas,
    parse_data,
    parse_occurred,
    parse_source,
    register_event_type,
    register_upcaster,
    schema_for,
    unregister_event_type,
    upcast,
)

DOMAIN_TYPES = {
    "DealOpened",
    "PartyAdded",
    "PartyRemoved",
    "MouSigned",
    "JointVentureFormed",
    "ContractAwarded",
    "BudgetAllocated",
    "SupportAgreed",
    "StageChanged",
    "QuoteRecorded",
    "NoteAdded",
    "FactRetracted",
    "FactCorrected",
}
A = "00000000-0000-4000-8000-00000000000a"
B = "00000000-0000-4000-8000-00000000000b"


def fields_of(error: pytest.ExceptionInfo[InvalidEvent]) -> list[str]:
    return [e.field for e in error.value.errors]


def contract(value: Any) -> dict[str, Any]:
    return {"buyer": A, "supplier": B, "item": "Typhoon", "quantity": 20, "value": value}


class TestMoney:
    @pytest.mark.parametrize("amount", [5400000000, 5.4e9, 0.1, True])
    def test_refuses_json_numbers(self, amount: Any) -> None:
        with pytest.raises(InvalidEvent, match="not a JSON number") as error:
            parse_data("ContractAwarded", contract({"amount": amount, "currency": "GBP"}))
        assert fields_of(error) == ["data.value.amount"]

    @pytest.mark.parametrize("amount", ["NaN", "Infinity", "-inf", "1e9", "5,4", "", " 5"])
    def test_refuses_text_that_is_not_a_plain_decimal(self, amount: str) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("ContractAwarded", contract({"amount": amount, "currency": "GBP"}))
        assert fields_of(error) == ["data.value.amount"]

    def test_refuses_non_finite_decimals_from_python(self) -> None:
        with pytest.raises(ValidationError, match="finite"):
            Money(amount=Decimal("NaN"), currency="EUR")

    @pytest.mark.parametrize("currency", ["gbp", "XXX", "ABC", "GB"])
    def test_refuses_unknown_currencies(self, currency: str) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("ContractAwarded", contract({"amount": "1", "currency": currency}))
        assert fields_of(error) == ["data.value.currency"]

    def test_keeps_every_digit(self) -> None:
        data = contract({"amount": "5400000000.000000000000000001", "currency": "GBP"})
        assert parse_data("ContractAwarded", data).to_json()["value"] == {
            "amount": "5400000000.000000000000000001",
            "currency": "GBP",
        }

    def test_writes_python_decimals_without_exponent(self) -> None:
        assert Money(amount=Decimal("5.4E+9"), currency="GBP").to_json() == {
            "amount": "5400000000",
            "currency": "GBP",
        }


class TestOccurred:
    def test_accepts_the_first_of_a_month_with_month_precision(self) -> None:
        occurred = Occurred(date(2025, 6, 1), "month")
        assert (occurred.start, occurred.end) == (date(2025, 6, 1), date(2025, 6, 30))

    def test_refuses_the_15th_with_month_precision(self) -> None:
        with pytest.raises(InvalidEvent, match="first of its month") as error:
            parse_occurred({"date": "2025-06-15", "precision": "month"})
        assert fields_of(error) == ["occurred"]

    def test_refuses_a_year_precision_date_not_on_1_january(self) -> None:
        with pytest.raises(InvalidEvent, match="1st of January"):
            parse_occurred({"date": "2025-06-01", "precision": "year"})

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            ({"date": "2025-02-30", "precision": "day"}, "occurred.date"),
            ({"date": 20250601, "precision": "day"}, "occurred.date"),
            ({"date": "2025-06-01T00:00:00", "precision": "day"}, "occurred.date"),
            ({"date": "2025-06-01", "precision": "week"}, "occurred.precision"),
            ({"date": "2025-06-01"}, "occurred.precision"),
            ({"date": "2025-06-01", "precision": "day", "tz": "UTC"}, "occurred.tz"),
        ],
    )
    def test_refuses_malformed_values(self, value: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_occurred(value)
        assert fields_of(error) == [field]

    def test_a_year_ends_on_31_december(self) -> None:
        assert Occurred(date(2025, 1, 1), "year").end == date(2025, 12, 31)


class TestSource:
    def test_publisher_defaults_to_unknown(self) -> None:
        assert parse_source({"title": "Report"}).publisher == "unknown"

    def test_refuses_an_empty_publisher(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_source({"title": "Report", "publisher": "   "})
        assert fields_of(error) == ["source.publisher"]

    def test_refuses_a_missing_source(self) -> None:
        with pytest.raises(InvalidEvent, match="cite its source") as error:
            parse_source(None)
        assert fields_of(error) == ["source"]

    def test_refuses_a_url_that_is_not_http(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_source({"title": "Report", "url": "javascript:alert(1)"})
        assert fields_of(error) == ["source.url"]

    def test_is_frozen(self) -> None:
        source = Source(title="Report")
        with pytest.raises(ValidationError):
            source.title = "Other"  # type: ignore[misc]


class TestSchemas:
    def test_every_domain_type_is_registered(self) -> None:
        assert set(EVENT_TYPES) >= DOMAIN_TYPES
        schemas = json_schemas()
        for name in DOMAIN_TYPES:
            assert schemas[name]["schema_version"] == 1
            assert schemas[name]["schema"]["additionalProperties"] is False

    def test_money_is_a_string_in_the_json_schema(self) -> None:
        schema = json_schemas()["ContractAwarded"]["schema"]
        assert schema["$defs"]["Money"]["properties"]["amount"]["type"] == "string"

    def test_schema_for_an_unknown_type_is_not_found(self) -> None:
        with pytest.raises(UnknownEventType) as error:
            schema_for("DealExploded")
        assert error.value.code == "not_found"

    def test_parse_data_names_an_unknown_type_as_the_type_field(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("DealExploded", {})
        assert fields_of(error) == ["type"]

    def test_refuses_unknown_fields(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("NoteAdded", {"text": "x", "colour": "red"})
        assert fields_of(error) == ["data.colour"]

    @pytest.mark.parametrize(
        ("quantity", "ok"), [("20", False), (20.0, False), (True, False), (0, False), (20, True)]
    )
    def test_quantity_is_a_strict_positive_integer(self, quantity: Any, ok: bool) -> None:
        data = contract({"amount": "1", "currency": "GBP"}) | {"quantity": quantity}
        if ok:
            assert parse_data("ContractAwarded", data).to_json()["quantity"] == 20
        else:
            with pytest.raises(InvalidEvent) as error:
                parse_data("ContractAwarded", data)
            assert fields_of(error) == ["data.quantity"]

    def test_refuses_an_organisation_id_that_is_not_a_uuid(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("PartyAdded", {"organisation": 12, "role": "x"})
        assert fields_of(error) == ["data.organisation"]


class SpeechNoted(EventData):
    """Test-only type: v1 stored "line" as "Speaker: text"; v2 splits it."""

    schema_version = 2
    speaker: str
    text: str


def speech_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    speaker, _, text = data["line"].partition(": ")
    return {"speaker": speaker, "text": text}


@pytest.fixture
def speech_type():
    register_event_type(SpeechNoted)
    register_upcaster("SpeechNoted", 1)(speech_v1_to_v2)
    yield SpeechNoted
    unregister_event_type("SpeechNoted")


class TestUpcasting:
    def test_upcasts_a_v1_event_to_the_current_version(self, speech_type: type) -> None:
        old = {"line": "Dave Holmes: a deep and meaningful alliance"}
        data, version = upcast("SpeechNoted", 1, old)
        assert version == 2
        assert data == {"speaker": "Dave Holmes", "text": "a deep and meaningful alliance"}
        assert old == {"line": "Dave Holmes: a deep and meaningful alliance"}

    def test_leaves_current_data_alone(self, speech_type: type) -> None:
        data = {"speaker": "A", "text": "b"}
        assert upcast("SpeechNoted", 2, data) == (data, 2)

    def test_refuses_a_version_newer_than_the_code(self, speech_type: type) -> None:
        with pytest.raises(ValueError, match="newer"):
            upcast("SpeechNoted", 3, {})

    def test_a_missing_upcaster_is_an_error(self) -> None:
        register_event_type(SpeechNoted)
        try:
            with pytest.raises(LookupError, match="no upcaster"):
                upcast("SpeechNoted", 1, {"line": "a: b"})
        finally:
            unregister_event_type("SpeechNoted")
        assert "SpeechNoted" not in EVENT_TYPES
