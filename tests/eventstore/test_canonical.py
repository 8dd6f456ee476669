"""Canonical JSON: one byte sequence per value, the same in any language."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tracker.eventstore.canonical import (
    _check_closely,
    _plainly_storable,
    canonical_json,
    check_storable,
    format_timestamp,
    split_at_recorded_at,
)
from tracker.eventstore.errors import UnstorableValue

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=10,
)


def test_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
        '{"a":{"c":null,"d":[1,2]},"b":1}'
    )


def test_keeps_unicode_as_utf8_and_escapes_only_what_json_requires():
    assert canonical_json({"name": "TUSAŞ", "q": 'a "b"\n\\'}) == (
        '{"name":"TUSAŞ","q":"a \\"b\\"\\n\\\\"}'
    )


def test_timestamps_are_utc_with_six_fraction_digits():
    moment = datetime(2025, 7, 2, 9, 14, 3, 120000, tzinfo=UTC)
    assert format_timestamp(moment) == "2025-07-02T09:14:03.120000Z"


@given(
    data=st.dictionaries(text, json_values, max_size=4),
    actor=text,
    occurred=st.none() | st.dictionaries(text, text, max_size=2),
)
def test_split_at_recorded_at_joins_back_to_the_canonical_form(data, actor, occurred):
    fields = {
        "actor": actor,
        "data": data,
        "event_id": "3f1c8a34-5b0e-4f0e-9d43-2a9a8f3c1e57",
        "occurred": occurred,
        "schema_version": 1,
        "source": None,
        "stream_id": "6f1c8a34-5b0e-4f0e-9d43-2a9a8f3c1e57",
        "type": "NoteAdded",
        "version": 7,
    }
    stamp = "2025-07-02T09:14:03.120000Z"
    prefix, suffix = split_at_recorded_at({name: canonical_json(v) for name, v in fields.items()})
    assert prefix + stamp + suffix == canonical_json({**fields, "recorded_at": stamp})


awkward_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.just("\ud800")
    | st.just("a\x00b"),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(st.text() | st.integers(), children, max_size=3)
    ),
    max_leaves=10,
)


@given(value=awkward_values)
def test_the_quick_check_refuses_exactly_what_the_close_check_refuses(value):
    try:
        _check_closely(value, "data")
    except UnstorableValue:
        refused_closely = True
    else:
        refused_closely = False
    try:
        check_storable(value)
    except UnstorableValue:
        refused = True
    else:
        refused = False
    assert refused == refused_closely


@given(value=json_values)
def test_every_plain_json_value_passes_the_quick_check(value):
    assert _plainly_storable(value)
