"""Cursor pagination for lists read from tables: stable under inserts, opaque to clients."""

from __future__ import annotations

import re
from datetime import UTC

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

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


class DealPagination(ApiCursorPagination):
    # The newest first; the deal id breaks ties between deals updated at the same instant.
    ordering = ("-updated_at", "deal_id")

    def clean_position(self, position: str) -> str | None:
        """`updated_at` in UTC, written as DRF writes the positions it issues (`str()`).

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


class OrganisationPagination(ApiCursorPagination):
    ordering = ("name", "id")
