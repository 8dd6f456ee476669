"""Content negotiation: DRF's, with a `?format=` that no renderer has answered as what it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class FormatNegotiation(DefaultContentNegotiation):
    """DRF answers `?format=xml` with 404, which reads as "no such deal" (API.md's 404). It is
    406 `not_acceptable`, as an `Accept:` header that no renderer satisfies already is."""

    def filter_renderers(self, renderers: Sequence[Any], format: str) -> list[Any]:
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            offered = ", ".join(dict.fromkeys(renderer.format for renderer in renderers))
            raise NotAcceptable(f"No format {format[:50]!r} here; this endpoint has: {offered}.")
        return matching
