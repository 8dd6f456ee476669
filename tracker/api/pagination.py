"""Cursor pagination for lists read from tables: stable under inserts, opaque to clients."""

from __future__ import annotations

import re

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
        # The position reaches the database as a value of the ordering field: a forged one
        # must fail here, not as a 500 in the query.
        position = cursor.position if cursor is not None else None
        if position is not None and not self.valid_position(position):
            raise MalformedRequest("The cursor was not issued by this API.")
        return cursor

    def valid_position(self, position: str) -> bool:
        return len(position) <= 1000


class DealPagination(ApiCursorPagination):
    # The newest first; the deal id breaks ties between deals updated at the same instant.
    ordering = ("-updated_at", "deal_id")

    def valid_position(self, position: str) -> bool:
        # Issued positions are `updated_at` with its offset; a naive time would be read in the
        # server's zone (and warned about), so it cannot be one of ours.
        try:
            moment = parse_datetime(position)
        except ValueError:
            return False
        return moment is not None and moment.utcoffset() is not None


class OrganisationPagination(ApiCursorPagination):
    ordering = ("name", "id")
