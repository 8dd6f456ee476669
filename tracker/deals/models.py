"""Reference data of the deal domain: the organisations that events name by id."""

from __future__ import annotations

import uuid
from typing import Any

import pghistory
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction

from .text import text_problem
from .values import COUNTRY_CODES


def validate_country(value: str) -> None:
    if value not in COUNTRY_CODES:
        raise ValidationError(
            "%(value)s is not an ISO 3166-1 alpha-2 country code (two capitals, such as IT).",
            code="invalid_country",
            params={"value": value},
        )


def validate_one_line(value: str) -> None:
    """The catalogue's rule for one-line text (no controls, bidi overrides or line breaks)."""
    # NUL is left to the form's and the serializer's own null-character check, which say so.
    problem = text_problem(value.replace("\x00", ""), one_line=True)
    if problem:
        raise ValidationError(problem, code="invalid_text")


_HIERARCHY_LOCK = "deal-tracker:organisation-hierarchy"
"""Taken by every change to an organisation's parent (see `Organisation.check_ancestry`)."""


# Organisations are ordinary rows, edited in place; triggers (PostgreSQL only) copy every
# version into OrganisationRevision, append-only like the events, so a replay as known at K can
# name them as they were then (tracker.deals.history).
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    model_name="OrganisationRevision",
    obj_field=pghistory.ObjForeignKey(related_name="revisions"),
    append_only=True,
)
class Organisation(models.Model):
    """A company, government, ministry or joint venture, with its ISO 3166-1 alpha-2 country."""

    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        GOVERNMENT = "government", "Government"
        MINISTRY = "ministry", "Ministry"
        JOINT_VENTURE = "joint_venture", "Joint venture"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, validators=[validate_one_line])
    short_name = models.CharField(max_length=50, blank=True, validators=[validate_one_line])
    kind = models.CharField(max_length=20, choices=Kind.choices)
    country = models.CharField(
        max_length=2,
        validators=[validate_country],
        help_text="ISO 3166-1 alpha-2 code, e.g. GB, IT, TR.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The organisation that owns or contains this one, if any.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["company", "government", "ministry", "joint_venture"]),
                name="organisation_kind_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="organisation_not_own_parent"
            ),
        ]
        indexes = [models.Index(fields=["country"], name="organisation_country_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.short_name})" if self.short_name else self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saved only if no organisation becomes its own ancestor, checked again at the write.

        Two edits made at the same moment (A's parent set to B, B's to A) would each pass a
        check made before either writes, and together make a loop. So the check and the write
        share one transaction in which changes to the hierarchy go one at a time.
        """
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            self.check_ancestry(using)
            super().save(*args, **kwargs)

    def clean(self) -> None:
        self.check_ancestry()

    def check_ancestry(self, using: str | None = None) -> None:
        """Raise ValidationError on `parent` if this organisation would be its own ancestor, or
        if its parent's line of ancestors loops (rows written before the check was atomic).

        Reads the ancestors as stored, not as cached on the instances. Inside a transaction it
        first waits for other changes to the hierarchy (PostgreSQL: a transaction-level
        advisory lock; SQLite: the write lock its transactions take as they begin), so what it
        reads stays true until that transaction ends.
        """
        if self.parent_id is None:
            return
        using = using or router.db_for_write(type(self), instance=self)
        connection = connections[using]
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_HIERARCHY_LOCK])
        parents = type(self)._base_manager.using(using)
        seen = {self.pk}
        ancestor = self.parent_id
        while ancestor is not None:
            if ancestor == self.pk:
                raise ValidationError({"parent": "An organisation cannot be its own ancestor."})
            if ancestor in seen:
                raise ValidationError(
                    {"parent": f"The ancestors of this parent loop back to {ancestor}."}
                )
            seen.add(ancestor)
            ancestor = parents.filter(pk=ancestor).values_list("parent_id", flat=True).first()


class RegisterName(models.Model):
    """How a published register names an organisation: SIPRI's "Turkiye" is the Government
    of Türkiye. Analysts extend the mapping in the admin; a name with no row here (and no
    organisation of exactly that name) is reported by the import, never invented."""

    register = models.CharField(max_length=20, default="SIPRI")
    name = models.CharField(max_length=200, validators=[validate_one_line])
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="register_names"
    )

    class Meta:
        ordering = ["register", "name"]
        constraints = [
            models.UniqueConstraint(fields=["register", "name"], name="registername_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.register}: {self.name}"


class RegisterImport(models.Model):
    """One import of one edition of a published register: what was read and what it did.

    A record of work done, written once when the import ends; the facts themselves are events.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    register = models.CharField(max_length=20, default="SIPRI")
    edition = models.DateField(help_text="The edition's publication date.")
    file_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=10)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the file, hex.")
    actor = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while the import runs, or if it stopped."
    )
    counts = models.JSONField(default=dict)
    """rows, deals, deals_opened, deals_changed, deals_unchanged, deals_refused, rows_refused,
    appended (by event type)."""
    refused = models.JSONField(default=list)
    """[{"line": n, "deal": "60123", "reason": "..."}], in line order."""
    unresolved = models.JSONField(default=list)
    """Register names that no organisation answers to, sorted."""

    class Meta:
        ordering = ["-finished_at"]
        indexes = [models.Index(fields=["register", "edition"], name="registerimport_edition_idx")]

    def __str__(self) -> str:
        when = self.finished_at or self.started_at
        state = "" if self.finished_at else ", unfinished"
        return f"{self.register} {self.edition} ({when:%Y-%m-%d %H:%M}{state})"

    @property
    def refused_count(self) -> int:
        """Rows refused, as counted with `refused` (0 while the import runs)."""
        return self.counts.get("rows_refused", 0)


class ImportedEvent(models.Model):
    """An event an import appended, so that `/imports/{id}/` can list them in ledger order."""

    register_import = models.ForeignKey(
        RegisterImport, on_delete=models.PROTECT, related_name="events"
    )
    event_id = models.UUIDField(unique=True)
    deal_id = models.UUIDField()

    class Meta:
        indexes = [models.Index(fields=["register_import", "id"], name="importedevent_import_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} by {self.register_import_id}"
