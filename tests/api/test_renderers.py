"""The API's JSON renderer writes the same bytes as DRF's, faster."""

from __future__ import annotations

import datetime
import decimal
import uuid
from types import SimpleNamespace

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer

from tracker.api.renderers import FastJSONRenderer, json_values
from tracker.projections.models import compact_json

VALUES = {
    "time": datetime.datetime(2025, 7, 2, 9, 14, 3, 120456, tzinfo=datetime.UTC),
    "date": datetime.date(2025, 6, 1),
    "decimal": decimal.Decimal("1.50"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": gettext_lazy("Not found."),
    "error": ErrorDetail("line\u2028separator\u2029", code="invalid"),
    "text": "TUSAŞ «çok» 日本",
    "number": 7,
    "float": 1.25,
    "nothing": None,
    "nested": [{"tuple": (1, 2), 3: "int key"}],
    "huge": 2**70,
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_writes_what_drf_writes(name):
    data = {name: VALUES[name]}
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_indented_answers_are_drf_s():
    data = {"a": [1, {"b": VALUES["time"]}]}
    media_type = "application/json; indent=4"
    assert FastJSONRenderer().render(data, media_type, {}) == JSONRenderer().render(
        data, media_type, {}
    )


def test_what_drf_refuses_is_refused():
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"x": object()})


# A state as the read model stores it (`StoredJSONField`): compact, separators and escapes in
# its strings, a line separator that DRF escapes.
STATE = {
    "id": "a1",
    "text": 'a, b: c " \\ \u001f \u2028 TUSAŞ',
    "n": [1, -2.5, None, True],
    "e": {},
}
STORED = compact_json(STATE)


def accepting(media_type: str) -> SimpleNamespace:
    """A request as json_values sees it after DRF's content negotiation."""
    renderer = FastJSONRenderer() if "json" in media_type else BrowsableAPIRenderer()
    return SimpleNamespace(accepted_renderer=renderer, accepted_media_type=media_type)


def test_stored_json_texts_are_spliced_as_the_bytes_of_their_decoded_values():
    request = accepting("application/json")
    spliced = {"results": json_values([STORED, STORED.encode()], request)}
    assert FastJSONRenderer().render(spliced) == JSONRenderer().render({"results": [STATE] * 2})


def test_a_state_in_jsonb_s_spaced_printing_is_spliced_compact():
    # What PostgreSQL's cast from jsonb leaves when a process of the version before writes.
    spaced = STORED.replace('","', '", "').replace('":', '": ').replace(',"', ', "')
    assert spaced != STORED
    request = accepting("application/json")
    spliced = {"results": json_values([spaced, spaced.encode()], request)}
    assert FastJSONRenderer().render(spliced) == JSONRenderer().render({"results": [STATE] * 2})


@pytest.mark.parametrize("media_type", ["application/json; indent=2", "text/html"])
def test_json_texts_are_decoded_for_drf_s_renderers(media_type):
    assert json_values([STORED], accepting(media_type)) == [STATE]
