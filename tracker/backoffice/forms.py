"""Admin forms generated from the event catalogue's JSON Schemas, so a new type needs no code.

A form is a tree of `Field`s built from `model_json_schema()`: strings, decimals, dates,
enumerations, booleans, organisation and event ids, countries, currencies, money (amount +
currency), `occurred` (date + precision, and any flags beside them), nested objects and lists
(repeatable rows). Each input is chosen
from what the catalogue's types say in the schema (`format`, `x-refers-to`, `x-multiline`),
never from a pattern's text or a field's name.
HTML names are dotted ("data.shares.0.percent"); each field also knows the path the services use
in `FieldError`s ("data.shares[0].percent"), so a domain error is shown beside its field.

Values go back to the services as the JSON the catalogue expects: text stays text (decimals as
decimal strings, never floats); a blank optional field is left out so the schema's default
applies; a blank row of a list is ignored, and so is an optional group left all blank (sending
`{}` would ask for an object with nothing known). A boolean is a checkbox that sends true or false,
never the text "true" (the strict schemas refuse it), or, where it may be null ("not known"), a
choice of Yes, No or blank.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel

from tracker.deals.errors import FieldError
from tracker.deals.events import REFERS_TO, EventData, Occurred, Source
from tracker.deals.text import MULTILINE
from tracker.deals.values import COUNTRY_CODES

# Fields the services fill in themselves; an analyst never types them.
SERVICE_FILLED = frozenset({"data_schema_version"})
COMMON_CURRENCIES = ("EUR", "GBP", "USD", "TRY", "JPY", "CHF", "SEK", "NOK", "PLN", "CAD", "AUD")
_ABSENT = object()

_HELP = {
    "decimal": "Digits with an optional decimal point, e.g. 5400000000 or 12.5 (no spaces).",
    "country": "ISO 3166-1 alpha-2 country.",
    "currency": "ISO 4217 code in capitals, e.g. EUR, GBP, USD.",
    "occurred": (
        "Pick any day of the period for month or year precision: it is stored as the first day "
        "of that month or year, since the exact day is not known."
    ),
    "json": 'A JSON object, e.g. {"text": "..."}. Decimals as strings.',
}

# Pydantic's wording replaced by an analyst's, by the error's type and its parameters (pydantic's
# "Validation Errors" reference lists them); messages of the catalogue's own rules pass as they
# are (they are written for analysts already).
_MESSAGES = {
    "missing": "This field is required.",
    "string_too_short": "Too short: at least {min_length} characters.",
    "string_too_long": "Too long: at most {max_length} characters.",
    "too_short": "Give at least {min_length} (one per row).",
    "literal_error": "Choose {expected}.",
    "enum": "Choose {expected}.",
    "extra_forbidden": "This field does not belong here.",
    "int_type": "Give a whole number, e.g. 20.",
    "greater_than": "Give a number greater than {gt}.",
    "greater_than_equal": "Give a number of at least {ge}.",
    "less_than_equal": "Give a number of at most {le}.",
}


def analyst_message(error: FieldError) -> str:
    if error.code == "string_too_short" and error.params.get("min_length") == 1:
        return _MESSAGES["missing"]
    if error.code in _MESSAGES:
        return _MESSAGES[error.code].format_map(error.params)
    message = error.message
    return message[:1].upper() + message[1:] if message else message


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class Field:
    """One input (a leaf) or a group of inputs, with its bound value and errors."""

    name: str
    path: str
    label: str
    widget: str
    required: bool = False
    help: str = ""
    choices: list[Choice] = field(default_factory=list)
    value: str = ""
    max_length: int | None = None
    errors: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    prototype: Field | None = None
    min_rows: int = 0
    nullable: bool = False
    """A boolean that may be unknown: a choice of Yes, No or blank rather than a checkbox."""
    blank: Any = _ABSENT
    """What a blank input (an unticked checkbox) sends: nothing, so the schema's default
    applies, or this value (false for a checkbox whose default is not false)."""

    @property
    def is_group(self) -> bool:
        return self.widget in ("group", "money", "occurred")

    @property
    def is_rows(self) -> bool:
        return self.widget == "rows"

    @property
    def input_id(self) -> str:
        return "id_" + self.name.replace(".", "-")

    @property
    def dom_id(self) -> str:
        return "field-" + self.name.replace(".", "-")

    def walk(self) -> Iterable[Field]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Context:
    """What a form needs from the database: organisations and (for retractions) events."""

    organisations: Sequence[Choice] = ()
    events: Sequence[Choice] = ()


class SchemaForm:
    """A form for one pydantic model of the catalogue, under an HTML/error prefix ("data")."""

    def __init__(
        self,
        model: type[Any],
        *,
        prefix: str,
        context: Context,
        data: Mapping[str, Any] | None = None,
        initial: Mapping[str, Any] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.model = model
        self.prefix = prefix
        self.context = context
        self.bound = data is not None
        self._local_errors = False
        if data is not None:
            initial = unflatten(data, prefix)
        schema = model.model_json_schema()
        self._defs = schema.get("$defs", {})
        excluded = set(exclude) | SERVICE_FILLED
        required = set(schema.get("required", ()))
        self.fields = [
            self._build(
                sub,
                name=_join(prefix, key),
                path=_join(prefix, key),
                label=_label(key, sub),
                required=key in required,
                initial=(initial or {}).get(key, _ABSENT),
            )
            for key, sub in schema.get("properties", {}).items()
            if key not in excluded
        ]

    # --- building ----------------------------------------------------------------------------

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if ref:
            return self._defs[ref.rsplit("/", 1)[-1]]
        return schema

    def _build(
        self,
        schema: Mapping[str, Any],
        *,
        name: str,
        path: str,
        label: str,
        required: bool,
        initial: Any,
        nullable: bool = False,
    ) -> Field:
        options = schema.get("anyOf")
        if options:
            non_null = [o for o in options if o.get("type") != "null"]
            if len(non_null) == 1:
                merged = {**schema, **non_null[0]}
                merged.pop("anyOf", None)
                return self._build(
                    merged,
                    name=name,
                    path=path,
                    label=label,
                    required=False,
                    initial=initial,
                    nullable=True,
                )
        schema = {**self._resolve(schema), **{k: v for k, v in schema.items() if k != "$ref"}}
        kind = schema.get("type")
        # An unticked checkbox is not in the POST at all: in a bound form, its absence is the
        # analyst's "no", not a reason to show the schema's default.
        unticked = self.bound and kind == "boolean" and not nullable
        if initial is _ABSENT and "default" in schema and schema["default"] is not None:
            initial = _ABSENT if unticked else schema["default"]
        help_text = schema.get("description", "") if "$ref" not in schema else ""
        if kind == "object" and "properties" in schema:
            return self._build_object(schema, name, path, label, required, initial)
        if kind == "array":
            return self._build_rows(schema, name, path, label, required, initial)
        leaf = Field(name=name, path=path, label=label, widget="text", required=required)
        leaf.help = help_text if len(help_text) < 200 else ""
        if kind == "object":
            leaf.widget = "json"
            leaf.help = _HELP["json"]
        elif kind == "boolean":
            return self._build_boolean(leaf, schema, nullable, initial)
        elif "enum" in schema:
            leaf.widget = "select"
            leaf.choices = [Choice(str(v), str(v).replace("_", " ")) for v in schema["enum"]]
        elif schema.get(REFERS_TO) == "organisation":
            leaf.widget = "organisation"
            leaf.choices = list(self.context.organisations)
        elif schema.get(REFERS_TO) == "event" and self.context.events:
            leaf.widget = "event"
            leaf.choices = list(self.context.events)
        elif schema.get("format") == "date":
            leaf.widget = "date"
        elif schema.get("format") == "country":
            leaf.widget = "country"
            leaf.choices = [Choice(code, code) for code in sorted(COUNTRY_CODES)]
            leaf.help = _HELP["country"]
        elif schema.get("format") == "currency":
            leaf.widget = "currency"
            leaf.choices = [Choice(code, code) for code in COMMON_CURRENCIES]
            leaf.help = _HELP["currency"]
            leaf.max_length = 3
        elif schema.get("format") == "decimal":
            leaf.widget = "decimal"
            leaf.help = _HELP["decimal"]
        elif kind == "integer":
            leaf.widget = "integer"
        elif kind == "string" and "format" not in schema:
            leaf.max_length = schema.get("maxLength")
            if schema.get(MULTILINE):
                leaf.widget = "textarea"
        leaf.value = self._raw(name, initial)
        return leaf

    def _build_boolean(
        self, leaf: Field, schema: Mapping[str, Any], nullable: bool, initial: Any
    ) -> Field:
        leaf.widget = "boolean"
        leaf.nullable = nullable
        if nullable:
            leaf.choices = [Choice("true", "Yes"), Choice("false", "No")]
            # Blank is "not known": left out when the schema has a default (null), else null.
            leaf.blank = _ABSENT if "default" in schema else None
            if not leaf.help:
                leaf.help = "Blank when not known."
        else:
            leaf.blank = _ABSENT if schema.get("default") is False else False
        if initial is True or initial == "true":
            leaf.value = "true"
        elif initial is False or initial == "false":
            leaf.value = "false"
        return leaf

    def _build_object(
        self,
        schema: Mapping[str, Any],
        name: str,
        path: str,
        label: str,
        required: bool,
        initial: Any,
    ) -> Field:
        props = schema["properties"]
        widget = "group"
        if set(props) == {"amount", "currency"}:
            widget = "money"
        elif {"date", "precision"} <= set(props):
            # A date and its precision, and whatever the catalogue says beside them (whether
            # the source gives the date as an estimate).
            widget = "occurred"
        group = Field(name=name, path=path, label=label, widget=widget, required=required)
        if widget == "occurred":
            group.help = _HELP["occurred"]
        inner_required = set(schema.get("required", ()))
        values = initial if isinstance(initial, Mapping) else {}
        group.children = [
            self._build(
                sub,
                name=f"{name}.{key}",
                path=f"{path}.{key}",
                label=_label(key, sub),
                required=key in inner_required,
                initial=values.get(key, _ABSENT),
            )
            for key, sub in props.items()
            if key not in SERVICE_FILLED
        ]
        return group

    def _build_rows(
        self,
        schema: Mapping[str, Any],
        name: str,
        path: str,
        label: str,
        required: bool,
        initial: Any,
    ) -> Field:
        items = schema.get("items", {})
        rows = Field(name=name, path=path, label=label, widget="rows", required=required)
        rows.min_rows = int(schema.get("minItems", 0))
        values = list(initial) if isinstance(initial, list) else []
        # Rows are numbered from 0 on every render, so a row's number is the list index the
        # services name in their errors ("data.shares[1].percent").
        for position in range(max(len(values) + 1, rows.min_rows, 2)):
            rows.children.append(
                self._build(
                    items,
                    name=f"{name}.{position}",
                    path=f"{path}[{position}]",
                    label="",
                    required=True,
                    initial=values[position] if position < len(values) else _ABSENT,
                )
            )
        rows.prototype = self._build(
            items,
            name=f"{name}.__prefix__",
            path=f"{path}[__prefix__]",
            label="",
            required=True,
            initial=_ABSENT,
        )
        return rows

    def _raw(self, name: str, initial: Any) -> str:
        if initial is _ABSENT or initial is None:
            return ""
        if isinstance(initial, dict | list):
            return json.dumps(initial, indent=2, ensure_ascii=False)
        return str(initial)

    # --- reading -----------------------------------------------------------------------------

    def value(self) -> dict[str, Any]:
        """The JSON for the services; fields that cannot be read get a local error."""
        result: dict[str, Any] = {}
        for item in self.fields:
            parsed = self._parse(item)
            if parsed is not _ABSENT:
                result[item.name.rsplit(".", 1)[-1]] = parsed
        return result

    @property
    def has_local_errors(self) -> bool:
        return self._local_errors

    def _parse(self, item: Field) -> Any:
        if item.widget == "rows":
            rows = [self._parse(row) for row in item.children]
            return [row for row in rows if row is not _ABSENT]
        if item.is_group:
            values = {}
            for child in item.children:
                parsed = self._parse(child)
                if parsed is not _ABSENT:
                    values[child.name.rsplit(".", 1)[-1]] = parsed
            # A group nothing was entered in is left out, even where an unticked checkbox
            # would say false: an optional object is absent, not `{}` or `{"flag": false}`.
            if not values or not _entered(item):
                return _ABSENT
            if item.widget == "occurred":
                values = _first_of_period(values)
            return values
        text = item.value.strip()
        if item.widget == "boolean":
            return _boolean(text, item.blank)
        if not text:
            return _ABSENT
        if item.widget == "integer":
            try:
                return int(text)
            except ValueError:
                self._error(item, "Give a whole number, e.g. 20.")
                return _ABSENT
        if item.widget == "json":
            try:
                return json.loads(text)
            except ValueError as error:
                self._error(item, f"This is not valid JSON: {error}.")
                return _ABSENT
        if item.widget in ("country", "currency"):
            return text.upper()
        return text

    def refuse(self, key: str, message: str) -> None:
        """Mark the field `key` wrong with `message`: a check the page adds to the schema's."""
        item = next(item for item in self.fields if item.name.rsplit(".", 1)[-1] == key)
        self._error(item, message)

    def _error(self, item: Field, message: str) -> None:
        item.errors.append(message)
        self._local_errors = True

    # --- errors ------------------------------------------------------------------------------

    def attach(self, errors: Iterable[FieldError]) -> list[FieldError]:
        """Put each error beside the deepest field its path falls under; return the rest."""
        left = []
        for error in errors:
            target = self._owner(error.field)
            if target is None:
                left.append(error)
            else:
                target.errors.append(analyst_message(error))
        return left

    def _owner(self, path: str) -> Field | None:
        best: Field | None = None
        for top in self.fields:
            for item in top.walk():
                if _covers(item.path, path) and (best is None or len(item.path) > len(best.path)):
                    best = item
        return best


def unflatten(post: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Dotted POST names under `prefix` as nested JSON; numbered keys become lists.

    Blank rows are dropped and the rest renumbered, so the list sent matches the rows shown next.
    """
    tree: dict[str, Any] = {}
    start = prefix + "." if prefix else ""
    for key in post:
        if not key.startswith(start) or key.startswith("_"):
            continue
        value = post.get(key)
        node = tree
        parts = key[len(start) :].split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node.setdefault(parts[-1], "" if value is None else str(value))
    return _listify(tree)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        rows = [_listify(node[key]) for key in sorted(node, key=int)]
        return [row for row in rows if not _blank(row)]
    return {key: _listify(value) for key, value in node.items()}


def _blank(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return not str(value).strip()


def _entered(item: Field) -> bool:
    if item.children:
        return any(_entered(child) for child in item.children)
    return bool(item.value.strip())


def _boolean(text: str, blank: Any) -> Any:
    # A checkbox sends "true" when ticked and nothing otherwise; the Yes/No choice sends
    # "true", "false" or "". Anything else cannot come from the form and counts as blank.
    if text == "true":
        return True
    if text == "false":
        return False
    return blank


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _covers(owner: str, path: str) -> bool:
    return path == owner or path.startswith(owner + ".") or path.startswith(owner + "[")


def _label(key: str, schema: Mapping[str, Any]) -> str:
    return key.replace("_", " ").capitalize()


def _first_of_period(values: dict[str, Any]) -> dict[str, Any]:
    # An analyst who knows "June 2025" may pick any day of June; the catalogue stores the 1st.
    text, precision = values.get("date"), values.get("precision")
    try:
        day = date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return values
    if day is None:
        return values
    if precision == "month":
        values["date"] = day.replace(day=1).isoformat()
    elif precision == "year":
        values["date"] = day.replace(month=1, day=1).isoformat()
    return values


# --- the three parts of an event form ----------------------------------------------------------


@dataclass
class EventForm:
    """The data of one event type, when it happened, and where it was reported."""

    event_type: str
    data: SchemaForm
    occurred: SchemaForm
    source: SchemaForm
    general_errors: list[str] = field(default_factory=list)
    extras: list[SchemaForm] = field(default_factory=list)
    """Further parts of `data` that a page adds (a correction's new date and its reason)."""

    @property
    def parts(self) -> list[SchemaForm]:
        return [self.data, *self.extras, self.occurred, self.source]

    def payload(self) -> dict[str, Any]:
        return {
            "type": self.event_type,
            "data": self.data.value(),
            "occurred": self.occurred.value().get("occurred", {}),
            "source": self.source.value(),
        }

    @property
    def has_local_errors(self) -> bool:
        return any(part.has_local_errors for part in self.parts)

    def attach(self, errors: Iterable[FieldError]) -> None:
        left = list(errors)
        for part in self.parts:
            left = part.attach(left)
        for error in left:
            message = analyst_message(error)
            named = error.field not in ("", "type")
            self.general_errors.append(f"{error.field}: {message}" if named else message)


class OccurredHolder(BaseModel):
    """Wraps Occurred in one field, so that it renders as a date + precision group."""

    occurred: Occurred


def event_form(
    event_type: str,
    model: type[EventData],
    *,
    context: Context,
    data: Mapping[str, Any] | None = None,
    initial: Mapping[str, Any] | None = None,
    data_prefix: str = "data",
    exclude: Iterable[str] = (),
) -> EventForm:
    """The form of one event type, bound to POST `data` or filled from `initial`.

    `initial` may hold "data", "occurred" and "source" (the JSON the services take).
    """
    initial = initial or {}
    occurred_initial = initial.get("occurred") or {"precision": "day"}
    source_initial = initial.get("source") or {}
    return EventForm(
        event_type=event_type,
        data=SchemaForm(
            model,
            prefix=data_prefix,
            context=context,
            data=data,
            initial=initial.get("data"),
            exclude=exclude,
        ),
        occurred=SchemaForm(
            OccurredHolder,
            prefix="",
            context=context,
            data=data,
            initial={"occurred": occurred_initial},
        ),
        source=SchemaForm(
            Source, prefix="source", context=context, data=data, initial=source_initial
        ),
    )
