from __future__ import annotations

from rest_framework.renderers import JSONRenderer


class JSONLinesRenderer(JSONRenderer):
    """Lets clients ask for `application/x-ndjson` (the export); errors still render as JSON."""

    media_type = "application/x-ndjson"
    format = "jsonl"
