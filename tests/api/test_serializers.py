"""Input serializers (bodies and queries) share their bound fields per thread; each check still
stands alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rest_framework import serializers

from tracker.api.serializers import (
    AppendManySerializer,
    AppendOneSerializer,
    StateQuerySerializer,
)


def body(**changes: Any) -> dict[str, Any]:
    return {
        "type": "NoteAdded",
        "data": {"text": "a note"},
        "occurred": {"date": "2025-06-01", "precision": "month"},
        "source": {"title": "A report", "publisher": "unknown"},
        "expected_version": 3,
        **changes,
    }


def errors_of(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid()
    return serializer.errors


def test_a_check_after_a_refused_one_knows_nothing_of_it():
    refused = errors_of(AppendOneSerializer, body(occurred={"date": "June", "precision": "x"}))
    assert set(refused["occurred"]) == {"date", "precision"}
    good = AppendOneSerializer(data=body())
    assert good.is_valid(), good.errors
    assert good.validated_data["occurred"] == {"date": "2025-06-01", "precision": "month"}
    again = errors_of(AppendOneSerializer, body(actor="root", expected_version="3"))
    assert set(again) == {"actor", "expected_version"}
    assert "unknown field" in again["actor"][0]


def test_nested_lists_are_checked_item_by_item_each_time():
    events = [
        {k: v for k, v in body().items() if k != "expected_version"},
        {"type": "NoteAdded", "data": {}, "occurred": {}, "source": {}, "extra": 1},
    ]
    first = errors_of(AppendManySerializer, {"expected_version": 1, "events": events})
    assert set(first["events"]) == {1}  # DRF names the refused items only
    assert set(first["events"][1]) >= {"extra", "occurred", "source"}
    good = AppendManySerializer(data={"expected_version": 1, "events": events[:1]})
    assert good.is_valid(), good.errors


def test_threads_checking_at_once_get_their_own_answers():
    outcomes: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def check(number: int) -> None:
        for round_ in range(200):
            valid = (number + round_) % 2 == 0
            data = body() if valid else body(expected_version=-1)
            checked = AppendOneSerializer(data=data).is_valid() == valid  # threads at once
            with lock:
                outcomes.append((number, checked))

    threads = [threading.Thread(target=check, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 800
    assert all(ok for _, ok in outcomes)


@pytest.mark.parametrize("kwargs", [{"context": {"request": None}}, {"partial": True}])
def test_a_serializer_with_a_context_or_partial_binds_its_own_fields(kwargs):
    serializer = AppendOneSerializer(data=body(), **kwargs)
    assert serializer.fields["occurred"].root is serializer
    assert isinstance(serializer.fields["occurred"], serializers.Serializer)


def test_query_serializers_share_their_fields_and_still_check_each_query_alone():
    first = StateQuerySerializer(data={"as_of": "2025-06-01"})
    assert first.is_valid(), first.errors
    refused = StateQuerySerializer(data={"as_of": "June"})
    assert not refused.is_valid()
    assert set(refused.errors) == {"as_of"}
    again = StateQuerySerializer(data={})
    assert again.is_valid(), again.errors
    assert again.validated_data.get("as_of") is None
    assert again.fields is first.fields  # bound once for the thread, not per request
