"""The read model keeps each state as the compact JSON text written, on every database."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import orjson
import pytest
from django.apps import apps
from django.db import connection

from tests.projections.builders import deal_with_events, make_organisations
from tracker.projections import projector
from tracker.projections.models import DealState, compact_json

pytestmark = pytest.mark.django_db

STATE = {"id": "x", "text": 'a, b: c " \\ \u2028 TUSAŞ', "n": [1, -2.5, None, True], "e": {}}


def stored_text(deal_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CAST(state AS text) FROM projections_dealstate WHERE deal_id = %s",
            [deal_id.hex if connection.vendor == "sqlite" else deal_id],
        )
        return cursor.fetchone()[0]


def test_a_projected_state_is_stored_as_its_compact_json():
    deal_id, _ = deal_with_events(make_organisations(), notes=2)
    projector.project_deals([deal_id], wait=True)
    row = DealState.objects.get(deal_id=deal_id)
    assert row.state["version"] == 3
    assert stored_text(deal_id) == compact_json(row.state)


def test_a_state_saved_through_the_orm_is_stored_compact_and_read_back_equal():
    deal_id, _ = deal_with_events(make_organisations())
    projector.project_deals([deal_id], wait=True)
    DealState.objects.filter(deal_id=deal_id).update(state=STATE)
    assert stored_text(deal_id) == compact_json(STATE)
    assert DealState.objects.get(deal_id=deal_id).state == STATE


@pytest.mark.postgres
def test_postgresql_keeps_the_text_as_written_in_a_json_column():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'projections_dealstate' AND column_name = 'state'"
        )
        assert cursor.fetchone() == ("json",)


@pytest.mark.postgres
def test_the_migration_rewrites_jsonb_s_spaced_text_compact():
    deal_id, _ = deal_with_events(make_organisations())
    projector.project_deals([deal_id], wait=True)
    with connection.cursor() as cursor:
        # What the change of type left: jsonb's text, a space after every separator.
        cursor.execute(
            "UPDATE projections_dealstate SET state = %s::jsonb::text::json WHERE deal_id = %s",
            [compact_json(STATE), deal_id],
        )
    assert ", " in stored_text(deal_id)
    migration = importlib.import_module(
        "tracker.projections.migrations.0004_state_stored_as_written"
    )
    migration.write_compact(apps, SimpleNamespace(connection=connection))
    text = stored_text(deal_id)
    # The same value, compact (in jsonb's order of keys: the next projection writes its own).
    assert orjson.loads(text) == STATE
    assert text == compact_json(orjson.loads(text))


@pytest.mark.parametrize(
    ("lookup", "value"),
    [
        ("state", STATE),
        ("state__contains", {"n": [1]}),
        ("state__has_key", "text"),
        ("state__id", "x"),
        ("state__n__1", -2.5),
        ("state__e", {}),
    ],
)
def test_json_lookups_find_the_stored_state(lookup, value):
    deal_id, _ = deal_with_events(make_organisations())
    projector.project_deals([deal_id], wait=True)
    DealState.objects.filter(deal_id=deal_id).update(state=STATE)
    if connection.vendor == "sqlite" and lookup == "state__contains":
        pytest.skip("SQLite has no JSON containment")
    assert list(DealState.objects.filter(**{lookup: value}).values_list("deal_id", flat=True)) == [
        deal_id
    ]


def test_a_null_test_reads_the_column_without_parsing_it():
    sql = str(DealState.objects.filter(state__isnull=False).query)
    assert "IS NOT NULL" in sql
    assert "jsonb" not in sql
