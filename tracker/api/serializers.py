"""Input and output shapes of the API (and, through drf-spectacular, of its OpenAPI schema)."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings
from rest_framework.utils.serializer_helpers import BindingDict

from tracker.deals.events import DEAL_KINDS
from tracker.deals.models import Organisation
from tracker.deals.reducer import Deal
from tracker.eventstore.records import MAX_VERSION


def format_api_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds: `2025-07-02T09:14:03.120Z` (API.md)."""
    moment = moment.astimezone(UTC)
    # isoformat, not strftime: "%Y" does not pad years before 1000 to four digits on glibc.
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class ApiTimeField(serializers.DateTimeField):
    def to_representation(self, value: datetime) -> str:
        return format_api_time(value)


# --- strict input -----------------------------------------------------------------------------
# DRF turns a JSON number into text for a CharField and a string into a number for an
# IntegerField, and ignores fields it does not know. Requests are refused instead: a client that
# sends `"title": 0.1` or `"actor": "root"` learns at once that it is not what it meant.


class TextField(serializers.CharField):
    """A CharField that takes JSON strings only (a number is refused, not turned into text)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    """An IntegerField that takes JSON integers only (not `1.0`, `"1"` or `true`)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# The forms API.md gives: dates `YYYY-MM-DD`, times RFC 3339 (an offset as `Z` or `±HH:MM`;
# without one, UTC; seconds may be left out). DRF parses both with Python's `fromisoformat`,
# which also reads `20250601`, week dates (`2025-W23-1`), `+0100` and, through Django's
# patterns, any script's digits: a typo there would replay another day without a word.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_RFC_3339_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
RFC_3339_FORMAT = "YYYY-MM-DDThh:mm:ss[.ffffff]Z (or an offset ±hh:mm)"


def rfc_3339_time(value: Any) -> str | None:
    """`value` as Python's parser reads an RFC 3339 time (RFC 3339 allows `t` and `z`, which
    it does not); None if `value` is not one."""
    if not isinstance(value, str) or not _RFC_3339_TIME.fullmatch(value):
        return None
    return value.upper()


class IsoDateField(serializers.DateField):
    """A DateField that takes `YYYY-MM-DD` and nothing else."""

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class Rfc3339TimeField(serializers.DateTimeField):
    """A DateTimeField that takes an RFC 3339 time (a date alone is not a moment)."""

    def to_internal_value(self, value: Any) -> Any:
        moment = rfc_3339_time(value)
        if moment is None:
            self.fail("invalid", format=RFC_3339_FORMAT)
        return super().to_internal_value(moment)


_bound_fields = threading.local()
"""Per thread: each InputSerializer class's fields, bound to one instance of it."""


class InputSerializer(serializers.Serializer):
    """A serializer that checks a request's input (its body or its query), whose fields are
    bound once per class and thread."""

    @cached_property
    def fields(self) -> BindingDict:
        """The fields, bound once per class and thread for a top-level input serializer.

        DRF deep-copies every declared field (nested serializers and theirs too) for each
        serializer made, a fifth of a millisecond for an append's body, a tenth of the
        request. Checking input leaves fields as they were, so a thread's requests, one after
        the other, can share one bound set; the context and `partial` they would read from
        their root are the defaults, as in every request that checks a body.
        """
        if self.parent is not None or self.instance is not None or self._context or self.partial:
            return super().fields
        templates = _bound_fields.__dict__
        fields = templates.get(type(self))
        if fields is None:
            template = type(self)()
            fields = templates[type(self)] = serializers.Serializer.fields.func(template)
        return fields


class ClosedSerializer(InputSerializer):
    """Refuses every field it does not declare, each named in the 422's `errors`.

    So a client cannot set what the server sets (`actor`, `recorded_at`, `position`,
    `version`, `event_id`, `hash`): sending one is an error, never silently dropped.
    """

    # The error of a name it does not take (given the names it does), and names it lets
    # through that are not fields.
    stranger: ClassVar[str] = "unknown field (this object takes: {})"
    passed: ClassVar[frozenset[str]] = frozenset()

    def to_internal_value(self, data: Any) -> Any:
        fields = self.fields
        strangers = (
            [
                key
                for key in data
                if (key not in fields or fields[key].read_only) and key not in self.passed
            ]
            if isinstance(data, Mapping)
            else []
        )
        unknown: dict[str, list[str]] = {}
        if strangers:
            known = ", ".join(name for name, field in fields.items() if not field.read_only)
            unknown = {str(key)[:100]: [self.stranger.format(known)] for key in strangers}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, Mapping):
                raise serializers.ValidationError({**error.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


UNKNOWN_PARAMETER = "unknown parameter (this endpoint takes: {})"


class QuerySerializer(ClosedSerializer):
    """An endpoint's query parameters: one it does not take is 400 `malformed_request` (through
    `parse_query`), so that a misspelt `?asof=` is not answered as if it were absent."""

    stranger = UNKNOWN_PARAMETER
    # DRF's choice of renderer, which any endpoint takes.
    passed = frozenset({api_settings.URL_FORMAT_OVERRIDE})


class NoQuerySerializer(QuerySerializer):
    """An endpoint that takes no query parameters: `?known_at=` on the timeline is refused
    rather than answered with the whole of it, as if it had been applied."""

    stranger = "unknown parameter (this endpoint takes none)"


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the field, e.g. `data.shares`.")
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, served as `application/problem+json`."""

    type = serializers.CharField(help_text="URI reference naming the problem type.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.ChoiceField(
        choices=[
            "malformed_request",
            "not_authenticated",
            "permission_denied",
            "not_found",
            "method_not_allowed",
            "not_acceptable",
            "version_conflict",
            "payload_too_large",
            "unsupported_media_type",
            "invalid_event",
            "idempotency_key_reused",
            "throttled",
            "internal_error",
            "unavailable",
        ],
        help_text="Stable machine-readable code (API.md).",
    )
    errors = FieldErrorSerializer(many=True)
    instance = serializers.CharField(required=False, help_text="The request path.")
    current_version = serializers.IntegerField(
        required=False, help_text="With `version_conflict`: the stream's version now."
    )


class AsSentSerializer(ClosedSerializer):
    # Checks a JSON object field by field, then hands on the object itself: the service parses
    # it once into the catalogue's type (`Occurred`, `Source`, a party), so the dates and UUIDs
    # DRF would make of its fields would only be turned back into text. (No docstring: the
    # schema shows ClosedSerializer's to clients.)

    def to_internal_value(self, data: Any) -> Any:
        super().to_internal_value(data)
        return dict(data)


class OccurredSerializer(AsSentSerializer):
    date = IsoDateField()
    precision = serializers.ChoiceField(choices=["day", "month", "year"])
    estimate = serializers.BooleanField(
        required=False, help_text="The source gives this date as an estimate (shown when true)."
    )


class SourceSerializer(serializers.Serializer):
    title = serializers.CharField()
    publisher = serializers.CharField()
    url = serializers.URLField(allow_null=True)
    published_on = serializers.DateField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """An event as the API shows it (API.md); reads a `RecordedEvent`."""

    event_id = serializers.UUIDField()
    deal = serializers.UUIDField(source="stream_id")
    version = serializers.IntegerField(min_value=1)
    position = serializers.IntegerField(min_value=1, help_text="Insertion order, across deals.")
    type = serializers.CharField()
    schema_version = serializers.IntegerField(min_value=1)
    data = serializers.JSONField(help_text="The event's data; its shape depends on `type`.")
    occurred = OccurredSerializer(allow_null=True)
    source = SourceSerializer(allow_null=True)
    actor = serializers.CharField(allow_blank=True)
    recorded_at = ApiTimeField(help_text="Ledger time, set by the server.")
    prev_hash = serializers.CharField(min_length=64, max_length=64)
    hash = serializers.CharField(min_length=64, max_length=64)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return event_json(instance)


def event_json(event: Any) -> dict[str, Any]:
    """A `RecordedEvent` as EventSerializer shows it, without making a serializer (a list
    serializer and its child cost more than the answer's few events took to write)."""
    # The stored JSON is returned as stored; field serializers would re-format dates.
    return {
        "event_id": str(event.event_id),
        "deal": str(event.stream_id),
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": event.data,
        "occurred": event.occurred,
        "source": event.source,
        "actor": event.actor,
        "recorded_at": format_api_time(event.recorded_at),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


class FeedQuerySerializer(QuerySerializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The `next` cursor of the previous page; omit it to start at the beginning.",
    )
    limit = serializers.IntegerField(
        required=False, default=100, min_value=1, help_text="Events per page, at most 1000."
    )


class FeedPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.CharField(
        help_text="Opaque cursor to pass back as `after`; the same cursor when nothing is new."
    )


class VerificationSerializer(serializers.Serializer):
    deal = serializers.UUIDField(source="stream_id")
    valid = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Events in the stream.")
    head = serializers.CharField(help_text="Hash of the last event checked.")
    first_bad_version = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


class LedgerDigestSerializer(serializers.Serializer):
    """A ledger digest document (docs/export-format.md, "The digest document")."""

    format = serializers.ChoiceField(choices=["deal-tracker-ledger-digest"])
    format_version = serializers.IntegerField(min_value=1)
    sequence = serializers.IntegerField(min_value=1, help_text="1, then +1 per digest, no gaps.")
    taken_at = serializers.CharField(help_text="RFC 3339 UTC with microseconds.")
    feed_cursor = serializers.CharField(
        help_text="The feed's cursor at the digest: every event before it is covered."
    )
    streams = serializers.IntegerField(min_value=0, help_text="Streams covered.")
    events = serializers.IntegerField(min_value=0, help_text="Events covered, over all streams.")
    heads_root = serializers.CharField(
        min_length=64,
        max_length=64,
        help_text="sha256 over `<stream> <version> <head hash>` lines sorted by stream.",
    )
    prev_digest = serializers.CharField(
        min_length=64, max_length=64, help_text="The previous digest; 64 zeros for the first."
    )
    digest = serializers.CharField(
        min_length=64,
        max_length=64,
        help_text="sha256 over `prev_digest` and the canonical JSON of the fields above.",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The document as the event store wrote it: its fields are hashed, so none is re-formatted.
        return dict(instance)


HEALTH_STATES = ["ok", "unavailable"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=HEALTH_STATES)
    database = serializers.ChoiceField(choices=HEALTH_STATES)
    broker = serializers.ChoiceField(choices=["ok", "unavailable", "embedded"])
    projection_lag = serializers.IntegerField(
        allow_null=True, help_text="Events recorded but not yet projected; null if unknown."
    )


# --- deals: the state (read model or replay) -------------------------------------------------


@extend_schema_field(Deal)
class DealStateField(serializers.JSONField):
    """A deal's state as `deals.reducer.deal_json` writes it; documented by the reducer's types."""


# --- deals: requests -------------------------------------------------------------------------


class PartySerializer(AsSentSerializer):
    organisation = serializers.UUIDField()
    role = TextField()


class SourceInputSerializer(AsSentSerializer):
    title = TextField(max_length=2000)
    publisher = TextField(
        max_length=300, required=False, help_text='"unknown" when not known; never empty.'
    )
    url = TextField(max_length=2000, required=False, allow_null=True)
    published_on = IsoDateField(required=False, allow_null=True)


class OpenDealSerializer(ClosedSerializer):
    """`POST /deals/`: a DealOpened event's fields. The service checks the data in depth."""

    title = TextField(max_length=300)
    kind = serializers.ChoiceField(choices=list(DEAL_KINDS))
    summary = TextField(max_length=10000, required=False, allow_blank=True, default="")
    parties = PartySerializer(many=True, allow_empty=False)
    occurred = OccurredSerializer()
    source = SourceInputSerializer()


EXPECTED_VERSION_HELP = "The version the client last saw (0 for a new stream)."
EVENT_TYPE_HELP = "An event type of /event-types/."


class ProposedEventSerializer(ClosedSerializer):
    """One event to append. `data`, `occurred` and `source` are checked by the service."""

    # validated_data holds `services.ProposedEvent`'s fields; the objects are handed on as sent.
    type = TextField(max_length=100, help_text=EVENT_TYPE_HELP)
    data = serializers.DictField(help_text="The event's data; its shape depends on `type`.")
    occurred = OccurredSerializer(help_text="When it happened, to the precision known.")
    source = SourceInputSerializer(help_text="Where it was reported.")


class AppendOneSerializer(ProposedEventSerializer):
    # validated_data holds `services.record_event`'s arguments: `type` is its `event_type`.
    type = TextField(max_length=100, source="event_type", help_text=EVENT_TYPE_HELP)
    expected_version = WholeNumberField(
        min_value=0, max_value=MAX_VERSION, help_text=EXPECTED_VERSION_HELP
    )


class AppendManySerializer(ClosedSerializer):
    expected_version = WholeNumberField(
        min_value=0, max_value=MAX_VERSION, help_text=EXPECTED_VERSION_HELP
    )
    events = ProposedEventSerializer(many=True, allow_empty=False, max_length=1000)


class AppendedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    version = serializers.IntegerField(help_text="The deal's version after the append.")


class DealQuerySerializer(QuerySerializer):
    min_version = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_VERSION,
        help_text=(
            "Read-your-writes: when the projection is behind this version, the state is "
            "replayed from the stream."
        ),
    )


class StreamQuerySerializer(QuerySerializer):
    after_version = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_VERSION
    )
    limit = serializers.IntegerField(
        required=False,
        default=100,
        min_value=1,
        max_value=MAX_VERSION,
        help_text="Events per page, at most 1000 (larger values are read as 1000).",
    )


class StreamPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null at the end.")


class StateQuerySerializer(QuerySerializer):
    as_of = IsoDateField(
        required=False, help_text="Business date T: facts whose period starts on or before it."
    )
    known_at = Rfc3339TimeField(
        required=False,
        help_text="Ledger time K (RFC 3339; without an offset, UTC): what was recorded by then. "
        "Needs the auditor role.",
    )


class ReplayedStateSerializer(serializers.Serializer):
    deal = serializers.UUIDField()
    as_of = serializers.DateField(allow_null=True)
    known_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(help_text="Last event applied; 0 with no state.")
    uncertain = serializers.BooleanField()
    state = DealStateField(allow_null=True, help_text="null where the deal had not opened.")


class TimelineEntrySerializer(serializers.Serializer):
    event = EventSerializer()
    state = DealStateField(allow_null=True, help_text="The current state just after the event.")
    changed = serializers.ListField(
        child=serializers.CharField(), help_text="State fields the event changed."
    )


class TimelineSerializer(serializers.Serializer):
    deal = serializers.UUIDField()
    version = serializers.IntegerField()
    entries = TimelineEntrySerializer(many=True)


# --- reference data --------------------------------------------------------------------------


class EventTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    schema_version = serializers.IntegerField(min_value=1)
    schema = serializers.DictField(help_text="JSON Schema (draft 2020-12) of the event's `data`.")


class EventTypeListSerializer(serializers.Serializer):
    results = EventTypeSerializer(many=True)


class OrganisationSerializer(ClosedSerializer, serializers.ModelSerializer):
    """An organisation (API.md). `country` is checked against ISO 3166-1 alpha-2 by the model."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
    }

    parent = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        allow_null=True,
        required=False,
        help_text="The id of the organisation that owns or contains this one, or null.",
    )

    class Meta:
        model = Organisation
        fields = ["id", "name", "short_name", "kind", "country", "parent"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The model's own rules (no organisation its own ancestor), as the admin applies them.
        candidate = copy.copy(self.instance) if self.instance is not None else Organisation()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        return attrs

    def save(self, **kwargs: Any) -> Organisation:
        # The model checks the hierarchy again as it writes (another edit may have changed it
        # since `validate`): what it refuses then is the same 422.
        try:
            return super().save(**kwargs)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None


# --- imports of published registers ----------------------------------------------------------


class ImportCountsSerializer(serializers.Serializer):
    """What an import read and what it did (documents `counts`); empty until it finishes."""

    rows = serializers.IntegerField(required=False, help_text="Rows read, refused ones too.")
    rows_refused = serializers.IntegerField(required=False)
    deals = serializers.IntegerField(required=False, help_text="Deals (register ids) read.")
    deals_opened = serializers.IntegerField(required=False)
    deals_changed = serializers.IntegerField(required=False)
    deals_unchanged = serializers.IntegerField(required=False)
    deals_refused = serializers.IntegerField(
        required=False, help_text="Deals with a refused row: nothing of theirs was appended."
    )
    appended = serializers.DictField(
        required=False,
        child=serializers.IntegerField(),
        help_text="Events appended, by event type.",
    )


@extend_schema_field(ImportCountsSerializer)
class ImportCountsField(serializers.JSONField):
    """`counts` as the import stored it."""


class RefusalSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line of the file, counted from 1.")
    deal = serializers.CharField(allow_null=True, help_text="The register's id of the deal.")
    reason = serializers.CharField()


class ImportSerializer(serializers.Serializer):
    """One import of one edition of a published register (a row of `/imports/`)."""

    id = serializers.UUIDField()
    register = serializers.CharField(help_text="e.g. SIPRI.")
    edition = serializers.DateField(help_text="The edition's publication date.")
    file_name = serializers.CharField(allow_blank=True)
    file_format = serializers.CharField(help_text="The file's format, as the importer read it.")
    digest = serializers.CharField(
        min_length=64, max_length=64, help_text="SHA-256 of the file, hex."
    )
    actor = serializers.CharField(help_text="Who imported it.")
    started_at = ApiTimeField()
    finished_at = ApiTimeField(
        allow_null=True, help_text="null while the import runs, or if it stopped before its end."
    )
    counts = ImportCountsField()
    refused_count = serializers.IntegerField(help_text="Rows refused (listed in the detail).")
    unresolved = serializers.ListField(
        child=serializers.CharField(),
        help_text="Register names no organisation answers to, sorted.",
    )


class ImportQuerySerializer(QuerySerializer):
    after_position = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=2**63 - 1,
        help_text="Only the events after this ledger position (the `events_next` link's).",
    )
    limit = serializers.IntegerField(
        required=False,
        default=100,
        min_value=1,
        max_value=MAX_VERSION,
        help_text="Events per page, at most 1000 (larger values are read as 1000).",
    )


class ImportDetailSerializer(ImportSerializer):
    """An import with its refused rows and the events it appended, in ledger order."""

    refused = RefusalSerializer(many=True, help_text="Refused rows, in line order.")
    events = EventSerializer(
        many=True, help_text="Events it appended, by position, `limit` at a time."
    )
    events_next = serializers.URLField(
        allow_null=True, help_text="The next page of `events`, or null at the end."
    )


# --- deals: the diff between two points in time ----------------------------------------------


class DiffQuerySerializer(QuerySerializer):
    """`/state/`'s `as_of` and `known_at` (StateQuerySerializer's fields, so one rule parses
    both) for each end of the diff: `from_as_of`, `from_known_at`, `to_as_of`, `to_known_at`."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {}
        for end, label in (("from", "From"), ("to", "To")):
            for name, field in StateQuerySerializer().get_fields().items():
                field.help_text = f"{label} point; omitted: now. {field.help_text}"
                fields[f"{end}_{name}"] = field
        return fields


class DiffPointSerializer(serializers.Serializer):
    as_of = serializers.DateField(allow_null=True)
    known_at = ApiTimeField(allow_null=True)
    version = serializers.IntegerField(help_text="Last event applied; 0 with no state.")


class NamedEventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    version = serializers.IntegerField(allow_null=True)
    type = serializers.CharField(allow_null=True)


class ExplainingEventSerializer(serializers.Serializer):
    """An event that moved the path on the way from one point to the other."""

    event_id = serializers.UUIDField()
    version = serializers.IntegerField(min_value=1)
    type = serializers.CharField()
    occurred = OccurredSerializer(allow_null=True, help_text="As recorded.")
    recorded_at = ApiTimeField()
    names = NamedEventSerializer(
        allow_null=True, help_text="A retraction's or correction's event; null for a fact."
    )


class ChangeSerializer(serializers.Serializer):
    op = serializers.ChoiceField(
        choices=["add", "remove", "replace"],
        help_text="JSON Patch (RFC 6902): applied in order to `from`'s state, the changes "
        "give `to`'s (without `version` and `updated_at`, which are not compared).",
    )
    path = serializers.CharField(
        allow_blank=True,
        help_text="RFC 6901 JSON Pointer into the state, e.g. `/joint_venture/shares/0/percent`; "
        '"" is the whole state, where the deal had none at one of the points. Lists are '
        "compared by index: items past the shorter one's end are added or removed.",
    )
    old = serializers.JSONField(allow_null=True, help_text="At `from`; null for `add`.")
    new = serializers.JSONField(allow_null=True, help_text="At `to`; null for `remove`.")
    explained_by = ExplainingEventSerializer(many=True, help_text="In version order.")


class DiffSerializer(serializers.Serializer):
    """What differs between two replays of a deal, and the events that explain each change;
    reads a `deals.diff.Diff`."""

    deal = serializers.UUIDField(source="deal_id")
    to = DiffPointSerializer()
    changes = ChangeSerializer(many=True)
    exact = serializers.BooleanField(
        help_text="True when each event between the points was examined on its own; false "
        "when they were too many (over 200, fewer on long streams) and were examined in "
        "groups, each event credited with the fields the timeline says it changed."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so it cannot be declared above.
        fields = super().get_fields()
        start = DiffPointSerializer(source="from_")
        return {"deal": fields.pop("deal"), "from": start, **fields}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        def point(p: Any) -> dict[str, Any]:
            return {
                "as_of": p.as_of.isoformat() if p.as_of else None,
                "known_at": format_api_time(p.known_at) if p.known_at else None,
                "version": p.version,
            }

        def event(e: Any) -> dict[str, Any]:
            names = e.names and {
                "event_id": str(e.names.event_id),
                "version": e.names.version,
                "type": e.names.type,
            }
            return {
                "event_id": str(e.event_id),
                "version": e.version,
                "type": e.type,
                "occurred": e.occurred,
                "recorded_at": format_api_time(e.recorded_at),
                "names": names,
            }

        return {
            "deal": str(instance.deal_id),
            "from": point(instance.from_),
            "to": point(instance.to),
            "changes": [
                {
                    "op": c.op,
                    "path": c.path,
                    "old": c.old,
                    "new": c.new,
                    "explained_by": [event(e) for e in c.explained_by],
                }
                for c in instance.changes
            ],
            "exact": instance.exact,
        }
