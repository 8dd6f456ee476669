"""Errors of the deal domain. Each has a stable `code`; none knows about HTTP.

Django-free, so the catalogue and the reducer may raise them. The event store's own errors
(`VersionConflict`, `IdempotencyKeyReused`) pass through the services unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID


class DomainError(Exception):
    code = "domain_error"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of a request, e.g. ("data.shares", "shares must sum to 100").

    A problem found by a schema also carries pydantic's error `code` ("missing",
    "string_too_long", ...) and its `params` ({"max_length": 300}), so that an edge may word it
    for its readers by what it is rather than by its English text.
    """

    field: str
    message: str
    code: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidEvent(DomainError):
    """The event fails its type's schema or a rule of the domain; `errors` says which."""

    code = "invalid_event"

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        if not self.errors:
            raise ValueError("InvalidEvent needs at least one FieldError")
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> InvalidEvent:
        return cls([FieldError(field, message)])


class DealNotFound(DomainError):
    code = "not_found"

    def __init__(self, deal_id: UUID) -> None:
        self.deal_id = deal_id
        super().__init__(f"no deal with id {deal_id}")


class UnknownEventType(DomainError):
    """A type name that the catalogue does not hold (looked up by name, e.g. /event-types/X)."""

    code = "not_found"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no event type named {name[:100]!r}")
