"""OpenAPI helpers: the problem-details responses every endpoint documents, event `data`
described by the catalogue's JSON Schemas, and a deal's state described by the reducer's types."""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse

from tracker.deals.events import json_schemas
from tracker.deals.reducer import deal_json_schema

from .problems import KINDS, PROBLEM_CONTENT_TYPE
from .serializers import ProblemSerializer

_WHEN = {
    400: "Malformed request (`malformed_request`).",
    401: "No or invalid credentials (`not_authenticated`).",
    403: "The user lacks the role (`permission_denied`).",
    404: "No such resource (`not_found`).",
    406: "No media type in Accept that the operation can answer with (`not_acceptable`).",
    409: "`expected_version` is stale (`version_conflict`, with `current_version`).",
    413: "Body over the configured limit (`payload_too_large`).",
    415: (
        "The body is not JSON in UTF-8: another Content-Type, or a charset other than UTF-8 "
        "(`unsupported_media_type`)."
    ),
    422: (
        "Fails validation (`invalid_event`) or reuses an idempotency key "
        "(`idempotency_key_reused`)."
    ),
    429: "Over the rate limit (`throttled`); see Retry-After.",
    503: "The database is down; nothing was written (`unavailable`).",
}
AUTHENTICATED = (401, 403, 429, 503)


NEGOTIATED = 406
"""Every operation: DRF picks the response's media type from Accept, or answers 406."""
BODY_IMPLIES = {413: 415}
"""An operation that reads a body (so may find it too large) may also find it not UTF-8 JSON."""


def problem_responses(*statuses: int) -> dict[Any, OpenApiResponse]:
    """`responses` entries for extend_schema: each status as `application/problem+json`.

    Adds the statuses that follow from the others, so that no view lists them: 406 everywhere
    and 415 wherever there is a body. 405 has no operation to be documented on: an operation is
    a method the path accepts.
    """
    known = {kind.status for kind in KINDS.values()}
    implied = {NEGOTIATED, *(BODY_IMPLIES[s] for s in statuses if s in BODY_IMPLIES)}
    responses: dict[Any, OpenApiResponse] = {}
    for status in sorted({*statuses, *implied}):
        if status not in known:
            raise ValueError(f"no problem kind has status {status}")
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            response=ProblemSerializer, description=_WHEN.get(status, "")
        )
    return responses


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>`: the header DRF's own token scheme documents."""

    target_class = "tracker.api.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                'An API token with the prefix "Token", e.g. `Token 9f86d0…`. Tokens come from '
                "`manage.py create_api_user`, are shown once, stored hashed, and expire."
            ),
        }


# --- event `data` in the schema: the catalogue's JSON Schemas, one variant per type ----------

CATALOGUE_PREFIX = "Catalogue"


def data_components() -> dict[str, dict[str, Any]]:
    """`{Type}Data` (and the catalogue's shared parts) as OpenAPI 3.0 component schemas.

    pydantic writes JSON Schema 2020-12; OpenAPI 3.0 wants `nullable` for `anyOf [X, null]`,
    `enum` for `const` and boolean `exclusiveMinimum`, and components for `$defs`.
    """
    components: dict[str, dict[str, Any]] = {}
    for name, entry in json_schemas().items():
        schema = copy.deepcopy(entry["schema"])
        for part, value in schema.pop("$defs", {}).items():
            converted = openapi30(value)
            existing = components.setdefault(CATALOGUE_PREFIX + part, converted)
            if existing != converted:
                raise ValueError(f"two catalogue types define {part!r} differently")
        schema = openapi30(schema)
        schema["description"] = f"`data` of {name} (schema version {entry['schema_version']})." + (
            f" {schema['description']}" if schema.get("description") else ""
        )
        components[data_component(name)] = schema
    return components


def data_component(type_name: str) -> str:
    return f"{type_name}Data"


def openapi30(schema: Any, prefix: str = CATALOGUE_PREFIX) -> Any:
    """A pydantic JSON Schema as OpenAPI 3.0; each `$defs` entry is the component `prefix`+name."""
    if isinstance(schema, list):
        return [openapi30(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: openapi30(value, prefix) for key, value in schema.items()}
    ref = result.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        result["$ref"] = "#/components/schemas/" + prefix + ref[len("#/$defs/") :]
    if "const" in result:
        result["enum"] = [result.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = result.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            result[plain] = value
            result[bound] = True
    variants = result.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        others = [v for v in variants if v != {"type": "null"}]
        del result["anyOf"]
        if len(others) == 1 and "$ref" not in others[0]:
            result = {**others[0], **result}
        elif len(others) == 1:
            result["allOf"] = others
        else:
            result["anyOf"] = others
        result["nullable"] = True
    if "$ref" in result and len(result) > 1:
        # Siblings of $ref are ignored in OpenAPI 3.0.
        result = {"allOf": [{"$ref": result.pop("$ref")}], **result}
    return result


def _register(auto_schema: Any, name: str, schema: dict[str, Any]) -> dict[str, str]:
    component = ResolvedComponent(
        name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
    )
    auto_schema.registry.register_on_missing(component)
    return component.ref


class _ByTypeExtension(OpenApiSerializerExtension):
    """The serializer's object, once per event type, with `type` fixed and `data` typed.

    Rendered as a `oneOf` discriminated by `type`, so a client (or a generator such as
    schemathesis) sees each type's `data` schema.
    """

    suffix: str

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        for name, schema in data_components().items():
            _register(auto_schema, name, schema)
        mapping: dict[str, str] = {}
        for type_name in json_schemas():
            variant = copy.deepcopy(base)
            # Wrapped in allOf so that drf-spectacular's enum hook leaves each one inline.
            variant["properties"]["type"] = {"allOf": [{"type": "string", "enum": [type_name]}]}
            variant["properties"]["data"] = {
                "$ref": f"#/components/schemas/{data_component(type_name)}"
            }
            suffix = self.suffix + ("Request" if direction == "request" else "")
            mapping[type_name] = _register(auto_schema, type_name + suffix, variant)["$ref"]
        return {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "type", "mapping": mapping},
        }


class EventSchema(_ByTypeExtension):
    target_class = "tracker.api.serializers.EventSerializer"
    suffix = "Event"


class ProposedEventSchema(_ByTypeExtension):
    target_class = "tracker.api.serializers.ProposedEventSerializer"
    suffix = "Proposed"


class AppendOneSchema(_ByTypeExtension):
    target_class = "tracker.api.serializers.AppendOneSerializer"
    suffix = "Append"


# --- a deal's state: the reducer's types, through pydantic -----------------------------------

DEAL_PREFIX = "Deal"


class DealSchema(OpenApiSerializerExtension):
    """`Deal` (the reducer's state type) wherever a view or field names it, its parts as
    `Deal{Part}` components: the one description of what `reducer.deal_json` writes."""

    target_class = "tracker.deals.reducer.Deal"

    def get_name(self, auto_schema: Any, direction: Any) -> str:
        return DEAL_PREFIX

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = deal_json_schema(ref_template="#/$defs/{model}")
        for part, value in schema.pop("$defs", {}).items():
            _register(auto_schema, DEAL_PREFIX + part, openapi30(value, DEAL_PREFIX))
        return openapi30(schema, DEAL_PREFIX)
