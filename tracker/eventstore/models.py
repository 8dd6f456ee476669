"""Tables of the event store.

Rows of `Event` are written only by `store.append()` and never changed: a migration installs
triggers that refuse UPDATE, DELETE and TRUNCATE. On PostgreSQL the table also has a `txid xid8`
column (the writing transaction) that the gap-safe feed reads; it is not a model field because
only the database sets it.
"""

from __future__ import annotations

from django.db import models


class Stream(models.Model):
    """One row per stream: its version and head hash, the row `append` locks."""

    id = models.UUIDField(primary_key=True)
    version = models.PositiveIntegerField(default=0)
    head_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.id} @ {self.version}"


class Event(models.Model):
    position = models.BigAutoField(primary_key=True)
    stream = models.ForeignKey(
        Stream,
        on_delete=models.PROTECT,
        related_name="events",
        db_column="stream_id",
        # The unique (stream, version) index serves every lookup by stream; a second index
        # would only slow each append.
        db_index=False,
        # On PostgreSQL, triggers keep this link at a quarter of a foreign key's cost per
        # append (migration 0006); SQLite keeps its foreign key.
        db_constraint=False,
    )
    version = models.PositiveIntegerField()
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    occurred = models.JSONField(null=True)
    source = models.JSONField(null=True)
    actor = models.CharField(max_length=150, blank=True)
    recorded_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "version"], name="event_stream_version_uniq")
        ]
        indexes = [models.Index(fields=["type"], name="event_type_idx")]

    def __str__(self) -> str:
        return f"{self.type} #{self.version} of {self.stream_id}"


class IdempotencyKey(models.Model):
    """A key the client sent with an append, and what that append stored."""

    key = models.CharField(max_length=255, primary_key=True)
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, db_column="stream_id")
    fingerprint = models.CharField(max_length=64)
    first_version = models.PositiveIntegerField()
    last_version = models.PositiveIntegerField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.key


class LedgerDigest(models.Model):
    """A chained commitment to every stream's (version, head hash) at one moment.

    Written only by `digest.take_digest()` and never changed: a migration installs triggers
    that refuse UPDATE, DELETE and TRUNCATE, as for events. `heads` holds the streams whose
    head changed since the previous digest, or all of them when `full`.
    """

    sequence = models.PositiveIntegerField(primary_key=True)
    taken_at = models.DateTimeField()
    feed_cursor = models.CharField(max_length=100)
    streams = models.PositiveIntegerField()
    events = models.PositiveBigIntegerField()
    heads_root = models.CharField(max_length=64)
    heads = models.JSONField()
    full = models.BooleanField()
    prev_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"digest {self.sequence}"
