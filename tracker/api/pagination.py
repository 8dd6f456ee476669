"""Cursor pagination for lists read from tables: stable under inserts, opaque to clients."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from tracker.projections.models import DealState

from .prepared import PreparedStatement
from .problems import MalformedRequest

MAX_PAGE_SIZE = 200
_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{1,4000}")


class ApiCursorPagination(CursorPagination):
    """`?cursor=` (the `next` or `previous` link) and `?limit=` (default 50, at most 200).

    A cursor this API did not issue, or a limit that is not a positive integer, is 400
    `malformed_request` rather than DRF's 404 or a silent default.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = f"Results per page, at most {MAX_PAGE_SIZE}."
    cursor_query_description = "The `next` or `previous` link's cursor, as given."

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise MalformedRequest(f"`limit` must be a positive integer, not {raw[:50]!r}.")
        return min(size, self.max_page_size)

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None
        # base64 decoding skips characters outside its alphabet, which would read "%00" or
        # "~~~" as the first page's cursor instead of one this API never issued.
        if not _BASE64.fullmatch(encoded):
            raise MalformedRequest("The cursor was not issued by this API.")
        try:
            cursor = super().decode_cursor(request)
        except NotFound as error:
            raise MalformedRequest("The cursor was not issued by this API.") from error
        if cursor is None or cursor.position is None:
            return cursor
        # The position reaches the database as a value of the ordering field: a forged one
        # must fail here, not as a 500 in the query.
        position = self.clean_position(cursor.position)
        if position is None:
            raise MalformedRequest("The cursor was not issued by this API.")
        return cursor._replace(position=position)

    def clean_position(self, position: str) -> str | None:
        """The position as the query should use it, or None if this API cannot have issued it.

        NUL cannot be stored in PostgreSQL text, so no issued position holds one (and the
        driver refuses to send it).
        """
        if len(position) > 1000 or "\x00" in position:
            return None
        return position


class UtcTimePagination(ApiCursorPagination):
    """Cursor pages ordered first by a time (`ordering[0]`)."""

    def clean_position(self, position: str) -> str | None:
        """The time in UTC, written as DRF writes the positions it issues (`str()`).

        A naive time would be read in the server's zone, so it cannot be one of ours. Any other
        offset is converted here: in the query, SQLite's adapter converts in Python (an
        OverflowError past year 1 or 9999) and PostgreSQL refuses offsets beyond 15:59.
        """
        if super().clean_position(position) is None:
            return None
        try:
            moment = parse_datetime(position)
            if moment is None or moment.utcoffset() is None:
                return None
            return str(moment.astimezone(UTC))
        except (ValueError, OverflowError):
            return None


class DealPagination(UtcTimePagination):
    """Pages of `(updated_at, state as JSON text)` rows, from a queryset or a ProjectedStates."""

    # The newest first; the deal id breaks ties between deals updated at the same instant.
    ordering = ("-updated_at", "deal_id")

    def _get_position_from_instance(self, instance: Any, ordering: tuple[str, ...]) -> str:
        updated_at = instance[0]
        if isinstance(updated_at, str):
            # ProjectedStates' ISO text of the time in UTC: the position is what DRF writes
            # from the datetime the ORM would have read, str() of it in UTC.
            updated_at = datetime.fromisoformat(updated_at).replace(tzinfo=UTC)
        return str(updated_at)


class OrganisationPagination(ApiCursorPagination):
    ordering = ("name", "id")


def _page_statement(reverse: bool, comparison: str | None) -> PreparedStatement:
    table = DealState._meta.db_table
    updated_at, state, deal = (
        f"{table}.{DealState._meta.get_field(name).column}"
        for name in ("updated_at", "state", "deal")
    )
    bound = f" AND {updated_at} {comparison} %s" if comparison else ""
    newest, ties = ("ASC", "DESC") if reverse else ("DESC", "ASC")
    # Qualified names throughout: a bare `updated_at` in ORDER BY would be the text column of
    # the same name, sorted as text, without the index.
    return PreparedStatement(
        f"deal_page_{'back' if reverse else 'forth'}{'_from' if comparison else ''}",
        # The time as ISO text in UTC, whatever the session's DateStyle and TimeZone.
        f"SELECT to_char({updated_at} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),"
        f" {state}::text FROM {table}"
        f" WHERE {state} IS NOT NULL{bound}"
        f" ORDER BY {updated_at} {newest}, {deal} {ties} LIMIT %s OFFSET %s",
        [*(["timestamptz"] if comparison else []), "bigint", "bigint"],
    )


# DRF's CursorPagination reads forwards from a position with `__lt` (the newest first), and
# backwards (the `previous` link) in the reverse order from one with `__gt`.
_FORWARD = DealPagination.ordering
_BACKWARD = tuple(name[1:] if name[0] == "-" else f"-{name}" for name in _FORWARD)
_PAGE_STATEMENTS = {
    (False, None): _page_statement(False, None),
    (False, "updated_at__lt"): _page_statement(False, "<"),
    (True, None): _page_statement(True, None),
    (True, "updated_at__gt"): _page_statement(True, ">"),
}


class ProjectedStates:
    """Every projected deal state, read by DealPagination in SQL prepared once (PostgreSQL).

    Stands in for `DealState.objects.filter(state__isnull=False).values_list("updated_at",
    Cast("state", TextField()))` where DRF's CursorPagination uses it: one `order_by` (its
    ordering or the reverse), at most one filter on the position, one slice. Compiling that
    queryset cost more than running it, and reading `updated_at` as datetimes cost more than
    the few positions the page needs. Rows are `(updated_at, state)`, both as PostgreSQL's
    text, read from the database `using`.
    """

    def __init__(
        self,
        reverse: bool = False,
        bound: tuple[str, str] | None = None,
        *,
        using: str = DEFAULT_DB_ALIAS,
    ) -> None:
        self._reverse = reverse
        self._bound = bound
        self._using = using

    def order_by(self, *ordering: str) -> ProjectedStates:
        if ordering not in (_FORWARD, _BACKWARD):
            raise ValueError(f"not an ordering of DealPagination: {ordering}")
        return ProjectedStates(ordering == _BACKWARD, self._bound, using=self._using)

    def filter(self, **lookup: str) -> ProjectedStates:
        ((name, position),) = lookup.items()
        if (self._reverse, name) not in _PAGE_STATEMENTS:
            raise ValueError(f"not a position filter of DealPagination: {name}")
        return ProjectedStates(self._reverse, (name, position), using=self._using)

    def __getitem__(self, rows: slice) -> list[tuple[str, str]]:
        if rows.step is not None or rows.start is None or rows.stop is None:
            raise ValueError("only a slice with a start and a stop")
        name, position = self._bound or (None, None)
        params: list[Any] = [] if position is None else [position]
        with connections[self._using].cursor() as cursor:
            _PAGE_STATEMENTS[(self._reverse, name)].execute(
                cursor, [*params, rows.stop - rows.start, rows.start]
            )
            return cursor.fetchall()
