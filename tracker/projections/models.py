"""Read models: disposable caches of replay, one row per deal, rebuilt from the events at will.

Beside each deal's row, the rows the list's filters read (its parties, search text,
contracts, delivery years and external ids), written by the projector in the same transaction
as the state they come from. Organisations appear by id only: they are edited in place, so
their country is read at query time, never copied here.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.backends.ddl_references import Statement
from psycopg.types.json import Json

from tracker.deals.models import Organisation
from tracker.eventstore.models import Stream

SEARCH_CONFIG = "english"
"""The text search configuration of `DealText.search_text` (PostgreSQL). English stemming,
because titles, summaries and notes are analysts' English prose: "typhoon" finds "Typhoons"
and "delivery" finds "Deliveries", where 'simple' would ask for the very inflection. Query
words are stemmed alike, so a designation ("TB2", "F-35B") still matches as itself; the cost
is English stop words, so a query of only "the" or "it" finds nothing."""


def search_vector() -> SearchVector:
    """`to_tsvector` of the search text: the GIN index's expression, and the one a query
    must name for PostgreSQL to use that index."""
    return SearchVector("search_text", config=SEARCH_CONFIG)


class PostgresGinIndex(GinIndex):
    """A GIN index on PostgreSQL, and nothing on other databases (SQLite has no GIN; its
    search is a plain contains)."""

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return Statement("")
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model: Any, schema_editor: Any, **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "postgresql":
            return Statement("")
        return super().remove_sql(model, schema_editor, **kwargs)


def compact_json(value: Any) -> str:
    """`value` as the compact JSON text the read models store."""
    return orjson.dumps(value).decode()


class StoredJSONField(models.JSONField):
    """JSON kept as the compact text it was written as, so that reads serve it as it is.

    On PostgreSQL the column is `json`, not `jsonb`: `jsonb` keeps a parsed tree and prints it
    back with a space after every separator, so each answer had to decode and re-encode every
    state to write it compact (a tenth of the CPU of a page of deals). Nothing queries inside
    these values; the filters read their own columns. Written compact by orjson on every
    database, as `projections.bulk` writes it.
    """

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if connection.vendor == "postgresql":
            return Json(value, dumps=compact_json)
        return compact_json(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg decodes `json` itself (Django has it hand over `jsonb` as text only).
        if value is None or not isinstance(value, str | bytes):
            return value
        return orjson.loads(value)

    # `json` has no operators of its own (not even equality): JSONField's lookups and key
    # transforms, which are jsonb's, take the column cast to jsonb (and their values as
    # JSONField makes them, jsonb).

    def get_lookup(self, lookup_name: str) -> Any:
        lookup = super().get_lookup(lookup_name)
        if lookup is None or lookup_name == "isnull":
            return lookup  # `IS NULL` needs no operator, and a cast would parse every row
        return _on_jsonb(lookup)

    def get_transform(self, name: str) -> Any:
        transform = super().get_transform(name)
        return None if transform is None else _on_jsonb(transform)


def _on_jsonb(make: Any) -> Any:
    return lambda lhs, *args, **kwargs: make(_AsJsonb(lhs), *args, **kwargs)


class _QueriedJSONField(models.JSONField):
    """The values lookups compare with: jsonb on PostgreSQL, text as StoredJSONField writes it
    elsewhere (SQLite compares the texts)."""

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if connection.vendor == "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        return compact_json(value if prepared else self.get_prep_value(value))


class _AsJsonb(models.Func):
    """The expression as jsonb on PostgreSQL; as it is elsewhere."""

    output_field = _QueriedJSONField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            sql = f"({sql})::jsonb"
        return sql, params


class DealState(models.Model):
    """A deal's current state as `deals.replay.state()` computes it, at stream `version`."""

    deal = models.OneToOneField(
        Stream,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_column="deal_id",
        related_name="dealstate",
    )
    version = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=32, blank=True)
    stage = models.CharField(max_length=32, blank=True)
    uncertain = models.BooleanField(default=False)
    updated_at = models.DateTimeField(null=True)
    projected_at = models.DateTimeField(auto_now=True)
    state = StoredJSONField(null=True)
    """The state as the API shows it (`deals.reducer.deal_json`); null before projection."""

    class Meta:
        verbose_name = "deal"
        indexes = [
            models.Index(fields=["stage", "updated_at"], name="dealstate_stage_idx"),
            models.Index(fields=["kind", "updated_at"], name="dealstate_kind_idx"),
            models.Index(fields=["updated_at", "deal"], name="dealstate_updated_idx"),
            models.Index(fields=["title"], name="dealstate_title_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title or self.deal_id} @ {self.version}"


class OrganisationDeal(models.Model):
    """Which deals an organisation is party to, and in what role: one indexed lookup."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    deal = models.ForeignKey(DealState, on_delete=models.CASCADE, related_name="party_rows")
    role = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "deal", "role"], name="organisationdeal_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} in {self.deal_id} as {self.role}"


class DealText(models.Model):
    """The words of a deal that `?search=` reads, in a table of their own.

    Not a column of DealState: every projection rewrites the deal's DealState row, and since
    an indexed column (`updated_at`) changes each time, PostgreSQL updates every index of
    it; a GIN index there would recompute `to_tsvector` for every projection, where this row
    is written only when the words change. Measured on writing 200 projected states whose
    words had not changed: 22 ms with the index on DealState, 16 ms with it here.
    """

    deal = models.OneToOneField(
        DealState, primary_key=True, on_delete=models.CASCADE, related_name="text_row"
    )
    search_text = models.TextField()
    """Title, summary, contract items, weapon designations and descriptions, and notes, in
    lower case (so that SQLite's contains is case-insensitive beyond ASCII too)."""

    class Meta:
        indexes = [PostgresGinIndex(search_vector(), name="dealtext_search_idx")]

    def __str__(self) -> str:
        return f"text of {self.deal_id}"


class DealContract(models.Model):
    """One contract of a deal's state, as the list's contract filters read it."""

    pk = models.CompositePrimaryKey("deal", "position")
    # The primary key's first column serves lookups by deal: no index of its own.
    deal = models.ForeignKey(
        DealState, on_delete=models.CASCADE, db_index=False, related_name="contract_rows"
    )
    position = models.PositiveSmallIntegerField()
    """The contract's place in the state's `contracts`."""
    buyer = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    supplier = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    category = models.TextField(blank=True)
    """The weapon's armament category in lower case; empty where none is given."""
    order_year = models.PositiveSmallIntegerField(null=True)
    value_amount = models.DecimalField(max_digits=50, decimal_places=20, null=True)
    """In `value_currency`, as recorded: never converted."""
    value_currency = models.CharField(max_length=3, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["order_year"], name="dealcontract_year_idx"),
            # Registers publish volumes, not prices: only the contracts with a value are in it.
            models.Index(
                fields=["value_currency", "value_amount"],
                name="dealcontract_value_idx",
                condition=models.Q(value_amount__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"contract {self.position} of {self.deal_id}"


class DealDelivery(models.Model):
    """A year in which a deal delivered something, under any of its contracts."""

    pk = models.CompositePrimaryKey("deal", "year")
    deal = models.ForeignKey(
        DealState, on_delete=models.CASCADE, db_index=False, related_name="delivery_rows"
    )
    year = models.PositiveSmallIntegerField()

    class Meta:
        verbose_name_plural = "deal deliveries"
        indexes = [models.Index(fields=["year", "deal"], name="dealdelivery_year_idx")]

    def __str__(self) -> str:
        return f"{self.deal_id} delivered in {self.year}"


class DealExternalId(models.Model):
    """A key a published register gives a deal (`SIPRI:60123`), for exact lookups."""

    pk = models.CompositePrimaryKey("deal", "external_id")
    deal = models.ForeignKey(
        DealState, on_delete=models.CASCADE, db_index=False, related_name="external_id_rows"
    )
    external_id = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["external_id"], name="dealexternalid_idx")]

    def __str__(self) -> str:
        return f"{self.external_id} is {self.deal_id}"
