"""Read models: disposable caches of replay, one row per deal, rebuilt from the events at will."""

from __future__ import annotations

from django.db import models

from tracker.deals.models import Organisation
from tracker.eventstore.models import Stream


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
    state = models.JSONField(null=True)
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
