"""Writing many read-model rows at once.

On PostgreSQL each operation is one statement with its values bound as binary arrays and
expanded by `unnest`: Django's bulk_update compiles a CASE per row and column, and its
bulk_create an expression per value, which for a batch of 200 deals cost several times the
replays being written (bulk_update alone: 2 s for 400 deals). Elsewhere (the embedded SQLite
database) the ORM does the same work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from django.db import connection
from django.utils import timezone

from tracker.eventstore.models import Stream
from tracker.eventstore.postgres import native

from .models import (
    DealContract,
    DealDelivery,
    DealExternalId,
    DealState,
    DealText,
    OrganisationDeal,
    compact_json,
)

WRITTEN = ["version", "title", "kind", "stage", "uncertain", "updated_at", "state", "projected_at"]
_TYPES = ["integer", "text", "text", "text", "boolean", "timestamptz", "json", "timestamptz"]
# JSON goes over as text; the `json` column keeps it as written (`models.StoredJSONField`).
_ARRAY = {"json": "%b::text[]::json[]"}


def write_states(rows: list[DealState]) -> None:
    """Every row's projected fields, in one UPDATE."""
    if connection.vendor != "postgresql":
        DealState.objects.bulk_update(rows, WRITTEN)
        return
    columns = [_column(DealState, name) for name in WRITTEN]
    params: list[list[Any]] = [[row.deal_id for row in rows]]
    for name in WRITTEN:
        values = [getattr(row, name) for row in rows]
        if name == "state":
            values = [None if v is None else compact_json(v) for v in values]
        params.append(values)
    arrays = ", ".join(_ARRAY.get(kind, f"%b::{kind}[]") for kind in _TYPES)
    _execute(
        f"UPDATE {_table(DealState)} AS d "
        f"SET {', '.join(f'{c} = v.{c}' for c in columns)} "
        f"FROM unnest(%b::uuid[], {arrays}) AS v(id, {', '.join(columns)}) "
        f"WHERE d.{_column(DealState, 'deal')} = v.id",
        params,
    )


def create_rows(deal_ids: list[UUID]) -> list[UUID]:
    """Empty rows for those of the deals that have a stream (and no row yet); returns every
    one of them that has a stream."""
    if connection.vendor != "postgresql":
        with_stream = list(Stream.objects.filter(id__in=deal_ids).values_list("id", flat=True))
        DealState.objects.bulk_create(
            [DealState(deal_id=deal_id) for deal_id in with_stream], ignore_conflicts=True
        )
        return with_stream
    rows = _execute(
        f"WITH made AS ({_insert_empty_rows('WHERE s.id = ANY(%b::uuid[])')}) "
        f"SELECT id FROM {_table(Stream)} WHERE id = ANY(%b::uuid[])",
        [timezone.now(), deal_ids, deal_ids],
    )
    return [row[0] for row in rows]


def create_missing_rows(limit: int) -> None:
    """Empty rows for up to `limit` streams that have none, oldest first."""
    if connection.vendor != "postgresql":
        missing = Stream.objects.filter(dealstate__isnull=True).order_by("updated_at")
        DealState.objects.bulk_create(
            [DealState(deal_id=i) for i in missing.values_list("id", flat=True)[:limit]],
            ignore_conflicts=True,
        )
        return
    deal = _column(DealState, "deal")
    _execute(
        _insert_empty_rows(
            f"WHERE NOT EXISTS (SELECT 1 FROM {_table(DealState)} AS d WHERE d.{deal} = s.id) "
            "ORDER BY s.updated_at LIMIT %b"
        ),
        [timezone.now(), limit],
    )


def replace_parties(parties: Mapping[UUID, set[tuple[UUID, str]]]) -> None:
    """Each deal's organisation rows replaced by the parties given for it."""
    _replace(
        OrganisationDeal,
        ["organisation", "role"],
        ["uuid", "text"],
        {deal_id: sorted(after) for deal_id, after in parties.items()},
    )


CONTRACT_COLUMNS = [
    "position",
    "buyer",
    "supplier",
    "category",
    "order_year",
    "value_amount",
    "value_currency",
]
"""The values of a contract row, in this order, as the projector gives them."""
_CONTRACT_TYPES = ["smallint", "uuid", "uuid", "text", "smallint", "numeric", "text"]


def replace_contracts(contracts: Mapping[UUID, Sequence[tuple[Any, ...]]]) -> None:
    """Each deal's contract rows replaced by those given for it (values in CONTRACT_COLUMNS
    order)."""
    _replace(DealContract, CONTRACT_COLUMNS, _CONTRACT_TYPES, contracts)


def replace_deliveries(years: Mapping[UUID, Sequence[int]]) -> None:
    """Each deal's delivery years replaced by those given for it."""
    _replace(
        DealDelivery,
        ["year"],
        ["smallint"],
        {deal_id: [(year,) for year in given] for deal_id, given in years.items()},
    )


def replace_external_ids(external_ids: Mapping[UUID, Sequence[str]]) -> None:
    """Each deal's external ids replaced by those given for it."""
    _replace(
        DealExternalId,
        ["external_id"],
        ["text"],
        {deal_id: [(key,) for key in given] for deal_id, given in external_ids.items()},
    )


def replace_texts(texts: Mapping[UUID, str]) -> None:
    """Each deal's search text replaced by the one given for it (none if empty)."""
    _replace(
        DealText,
        ["search_text"],
        ["text"],
        {deal_id: [(text,)] if text else [] for deal_id, text in texts.items()},
    )


def _replace(
    model: Any,
    names: list[str],
    types: list[str],
    rows: Mapping[UUID, Sequence[tuple[Any, ...]]],
) -> None:
    """Delete the rows of `model` of the deals given, then insert the rows given for each
    (the values of `names`, whose PostgreSQL types are `types`): two statements on
    PostgreSQL, or one if no row is left to insert, or none for no deal.

    Each deal's rows are deleted even where its stored state had none of them: a deal's row
    sent back to version 0 without its state (to have it projected again) keeps the rows
    beside it."""
    if not rows:
        return
    deal_ids = list(rows)
    fresh = [(deal_id, *values) for deal_id, given in rows.items() for values in given]
    if connection.vendor != "postgresql":
        model.objects.filter(deal_id__in=deal_ids).delete()
        fields = [model._meta.get_field(name).attname for name in ("deal", *names)]
        model.objects.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in fresh])
        return
    table = _table(model)
    _execute(f"DELETE FROM {table} WHERE {_column(model, 'deal')} = ANY(%b::uuid[])", [deal_ids])
    if fresh:
        columns = ", ".join(_column(model, name) for name in ("deal", *names))
        arrays = ", ".join(f"%b::{kind}[]" for kind in ("uuid", *types))
        _execute(
            f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})",
            [list(column) for column in zip(*fresh, strict=True)],
        )


def _insert_empty_rows(where: str) -> str:
    """INSERT of an empty row per stream chosen by `where` (on streams `s`); its first
    placeholder is the time recorded as `projected_at`."""
    columns = [_column(DealState, name) for name in ("deal", *WRITTEN)]
    empty = "s.id, 0, '', '', '', false, NULL, NULL, %b"  # in the order of WRITTEN
    return (
        f"INSERT INTO {_table(DealState)} ({', '.join(columns)}) "
        f"SELECT {empty} FROM {_table(Stream)} AS s {where} "
        f"ON CONFLICT ({columns[0]}) DO NOTHING"
    )


def _execute(sql: str, params: list[Any]) -> list[Any]:
    # Parameters in binary (%b): psycopg's text form of an array escapes each element with a
    # regular expression, which for 200 states costs more than the statement.
    with connection.wrap_database_errors, psycopg.Cursor(native(connection)) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: Any, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)
