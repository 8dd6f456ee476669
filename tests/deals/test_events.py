"""The event catalogue: strict schemas, value objects, the registry and upcasting."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from tracker.deals.errors import InvalidEvent, UnknownEventType
from tracker.deals.events import (
    EARLIEST_DATE,
    EVENT_TYPES,
    EventData,
    Money,
    Occurred,
    Source,
    json_schemas,
    latest_date,
    parse_data,
    parse_occurred,
    parse_source,
    register_event_type,
    register_upcaster,
    schema_for,
    unregister_event_type,
    upcast,
)
from tracker.deals.text import text_problem

DOMAIN_TYPES = {
    "DealOpened",
    "PartyAdded",
    "PartyRemoved",
    "MouSigned",
    "JointVentureFormed",
    "ContractAwarded",
    "DeliveryRecorded",
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
PARTY = {"organisation": A, "role": "partner"}


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

    @pytest.mark.parametrize(
        "value",
        [
            {"date": "0001-01-01", "precision": "day"},
            {"date": "0202-06-01", "precision": "month"},
            {"date": "1899-12-31", "precision": "day"},
            {"date": "1899-01-01", "precision": "year"},
        ],
    )
    def test_refuses_a_date_before_1900(self, value: dict[str, str]) -> None:
        with pytest.raises(InvalidEvent, match="earliest date the tracker records") as error:
            parse_occurred(value)
        assert fields_of(error) == ["occurred.date"]

    def test_accepts_1900_and_the_first_sipri_year(self) -> None:
        assert parse_occurred({"date": "1900-01-01", "precision": "year"}).start == EARLIEST_DATE
        assert parse_occurred({"date": "1950-01-01", "precision": "day"}).end == date(1950, 1, 1)

    def test_a_correction_names_its_own_occurred_date(self) -> None:
        data = {"event_id": A, "occurred": {"date": "0001-01-01", "precision": "day"}}
        with pytest.raises(InvalidEvent) as error:
            parse_data("FactCorrected", data)
        assert fields_of(error) == ["data.occurred.date"]


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

    @pytest.mark.parametrize("published_on", ["0001-01-01", "1899-12-31"])
    def test_refuses_a_publication_date_before_1900(self, published_on: str) -> None:
        with pytest.raises(InvalidEvent, match="before 1900-01-01") as error:
            parse_source({"title": "Report", "published_on": published_on})
        assert fields_of(error) == ["source.published_on"]

    def test_refuses_a_publication_date_after_tomorrow_by_default(self) -> None:
        tomorrow = latest_date()
        assert tomorrow == datetime.now(UTC).date() + timedelta(days=1)
        assert parse_source({"title": "R", "published_on": str(tomorrow)}).published_on == tomorrow
        for late in (tomorrow + timedelta(days=1), date(9999, 12, 31)):
            with pytest.raises(InvalidEvent, match="is in the future") as error:
                parse_source({"title": "Report", "published_on": late.isoformat()})
            assert fields_of(error) == ["source.published_on"]

    def test_the_caller_sets_the_latest_publication_date(self) -> None:
        source = {"title": "Report", "published_on": "2030-01-01"}
        assert parse_source(source, latest=date(2030, 1, 1)).published_on == date(2030, 1, 1)
        with pytest.raises(InvalidEvent, match=r"latest date accepted today is 2029-12-31"):
            parse_source(source, latest=date(2029, 12, 31))

    def test_a_publication_date_may_be_left_out(self) -> None:
        assert parse_source({"title": "Report", "published_on": None}).published_on is None

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com/a\x1b[31m",
            "https://example.com/\u202egnp.exe",
            "https://example.com/a b",
            "https://example.com/\u200b",
            "https://example.com/\ud800",
            "https://example.com/\n",
        ],
    )
    def test_refuses_a_url_with_controls_format_characters_or_spaces(self, url: str) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_source({"title": "Report", "url": url})
        assert fields_of(error) == ["source.url"]

    def test_keeps_an_international_url(self) -> None:
        url = "https://örnek.com.tr/haber/uçak?q=İnsansız"  # noqa: RUF001 (Turkish)
        assert parse_source({"title": "Report", "url": url}).url == url

    def test_is_frozen(self) -> None:
        source = Source(title="Report")
        with pytest.raises(ValidationError):
            source.title = "Other"  # type: ignore[misc]


class TestText:
    """One rule for every free-text field: verbatim, except what only deceives (events.py)."""

    @pytest.mark.parametrize(
        "text",
        [
            "Türkiye'nin İnsansız Hava Aracı ihracatı: ğüşıöç",  # noqa: RUF001 (Turkish)
            "بايكار وليوناردو تؤسسان مشروعاً مشتركاً",
            "عربي \u200f(RLM) and \u061c(ALM) marks",
            "土耳其无人机制造商 ・ 日本語 ・ 한국어",
            "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 (ZWJ sequence)",
            "Scotland: \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
            "£5.4\u00a0billion, 20\u202fTyphoons",
            "soft\u00adhyphen and zero\u200bwidth space inside",
            "🛩️",
        ],
    )
    def test_keeps_legitimate_text_verbatim(self, text: str) -> None:
        assert parse_data("NoteAdded", {"text": text}).to_json() == {"text": text}
        assert parse_data("PartyAdded", {"organisation": A, "role": text}).role == text

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("\u200b", "has no visible character"),
            ("\u202e", "bidirectional control U+202E"),
            ("\u200b\u2060\ufeff \u00a0\u3164\u2800\u0301", "has no visible character"),
            ("evil\u202egnp.exe", "bidirectional control U+202E"),
            ("a\u2066b\u2069", "bidirectional control U+2066"),
            ("a\u202ab", "bidirectional control U+202A"),
            ("\x1b[31mred\x1b[0m", "ESC (U+001B)"),
            ("a\x85b", "control character U+0085"),
            ("a\x9bb", "control character U+009B"),
            ("a\x7fb", "control character U+007F"),
            ("a\x00b", "control character U+0000"),
            ("a\x08b", "control character U+0008"),
            ("a\x0bb", "control character U+000B"),
            ("a\ud800b", "U+D800, half of a surrogate pair"),
            ("a\udfffb", "U+DFFF, half of a surrogate pair"),
        ],
    )
    def test_refuses_controls_bidi_overrides_lone_surrogates_and_invisible_text(
        self, text: str, message: str
    ) -> None:
        for type_, data, field in (
            ("NoteAdded", {"text": text}, "data.text"),
            ("PartyAdded", {"organisation": A, "role": text}, "data.role"),
        ):
            with pytest.raises(InvalidEvent, match=re.escape(message)) as error:
                parse_data(type_, data)
            assert fields_of(error) == [field]

    @pytest.mark.parametrize("text", ["one\ntwo", "one\r\ntwo", "a\tb", "a\u2028b", "a\u2029b"])
    def test_one_line_fields_refuse_line_breaks_and_tabs(self, text: str) -> None:
        with pytest.raises(InvalidEvent, match="must be one line") as error:
            parse_data("DealOpened", {"title": text, "kind": "mou", "parties": [PARTY]})
        assert fields_of(error) == ["data.title"]
        with pytest.raises(InvalidEvent, match="must be one line") as error:
            parse_source({"title": text, "publisher": "unknown"})
        assert fields_of(error) == ["source.title"]

    @pytest.mark.parametrize("text", ["one\ntwo", "one\r\ntwo", "a\tb", "para\u2029graph"])
    def test_multi_line_fields_keep_line_breaks_and_tabs(self, text: str) -> None:
        assert parse_data("NoteAdded", {"text": text}).text == text
        assert parse_data("StageChanged", {"stage": "active", "reason": text}).reason == text

    def test_an_optional_text_may_be_empty_but_not_invisible(self) -> None:
        assert parse_data("MouSigned", {"parties": [A, B], "scope": ""}).scope == ""
        with pytest.raises(InvalidEvent, match="no visible character") as error:
            parse_data("MouSigned", {"parties": [A, B], "scope": "\u200b\u200b"})
        assert fields_of(error) == ["data.scope"]

    def test_a_speaker_role_is_one_line(self) -> None:
        quote = {"speaker": "Dave Holmes", "speaker_role": "MD\nBAE", "text": "An alliance"}
        with pytest.raises(InvalidEvent, match="must be one line") as error:
            parse_data("QuoteRecorded", quote)
        assert fields_of(error) == ["data.speaker_role"]

    def test_every_error_of_an_event_is_named_at_once(self) -> None:
        data = {"title": "a\nb", "kind": "mou", "summary": "\u202e", "parties": [PARTY]}
        with pytest.raises(InvalidEvent) as error:
            parse_data("DealOpened", data)
        assert fields_of(error) == ["data.title", "data.summary"]

    def test_text_problem_is_the_rule_for_text_outside_the_catalogue(self) -> None:
        assert text_problem("Turkish Aerospace (TUSAŞ)", one_line=True) is None
        assert text_problem("", one_line=True) is None
        assert text_problem("a\nb", one_line=False) is None
        assert text_problem("a\nb", one_line=True) == (
            "must be one line: it contains a line feed (U+000A)"
        )


class TestFactCorrectedSchemaVersion:
    """Whether it is the corrected type's current version the services check, knowing the type."""

    def test_a_version_without_data_is_refused(self) -> None:
        data = {
            "event_id": A,
            "occurred": {"date": "2025-01-01", "precision": "year"},
            "data_schema_version": 1,
        }
        with pytest.raises(InvalidEvent, match="give it with data") as error:
            parse_data("FactCorrected", data)
        assert fields_of(error) == ["data.data_schema_version"]

    @pytest.mark.parametrize("version", [0, -1, "1", 1.0, True])
    def test_a_version_that_is_not_a_positive_integer_is_refused(self, version: Any) -> None:
        data = {"event_id": A, "data": {"text": "x"}, "data_schema_version": version}
        with pytest.raises(InvalidEvent) as error:
            parse_data("FactCorrected", data)
        assert fields_of(error) == ["data.data_schema_version"]


class TestSchemas:
    def test_every_domain_type_is_registered(self) -> None:
        assert set(EVENT_TYPES) >= DOMAIN_TYPES
        schemas = json_schemas()
        for name in DOMAIN_TYPES:
            # DealOpened gained external ids, ContractAwarded registers' fields (upcast from 1).
            latest = 2 if name in ("DealOpened", "ContractAwarded") else 1
            assert schemas[name]["schema_version"] == latest
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

    def test_says_what_each_string_is_for_a_form_to_choose_its_input(self) -> None:
        jv = json_schemas()["JointVentureFormed"]["schema"]
        share = jv["$defs"]["Share"]["properties"]
        assert (share["organisation"]["format"], share["organisation"]["x-refers-to"]) == (
            "uuid",
            "organisation",
        )
        assert share["percent"]["format"] == "decimal"
        assert jv["properties"]["headquarters_country"]["format"] == "country"
        assert jv["properties"]["scope"]["x-multiline"] is True
        money = json_schemas()["ContractAwarded"]["schema"]["$defs"]["Money"]["properties"]
        assert money["currency"]["format"] == "currency"
        retraction = json_schemas()["FactRetracted"]["schema"]["properties"]
        assert retraction["event_id"]["x-refers-to"] == "event"
        assert "x-multiline" not in json_schemas()["DealOpened"]["schema"]["properties"]["title"]

    def test_schema_errors_carry_pydantic_s_type_and_parameters(self) -> None:
        with pytest.raises(InvalidEvent) as error:
            parse_data("NoteAdded", {"text": "x" * 2001})
        [found] = error.value.errors
        assert (found.field, found.code, found.params) == (
            "data.text",
            "string_too_long",
            {"max_length": 2000},
        )
        with pytest.raises(InvalidEvent) as error:
            parse_data("MouSigned", {"parties": [A, A]})
        [found] = error.value.errors
        assert (found.message, found.code) == (f"a party appears twice: {A}", "value_error")

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
