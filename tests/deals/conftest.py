"""Organisations for the deal tests that use the database."""

from __future__ import annotations

from uuid import UUID

import pytest

from tracker.deals.models import Organisation

from .builders import BAYKAR, LBA, LEONARDO

OTHER = UUID("00000000-0000-4000-8000-0000000000c1")


@pytest.fixture
def organisations(db: None) -> dict[str, UUID]:
    rows = [
        (BAYKAR, "Baykar Technologies", "company", "TR"),
        (LEONARDO, "Leonardo", "company", "IT"),
        (LBA, "LBA Systems", "joint_venture", "IT"),
        (OTHER, "Other Aerospace", "company", "GB"),
    ]
    for org_id, name, kind, country in rows:
        Organisation.objects.create(id=org_id, name=name, kind=kind, country=country)
    return {"baykar": BAYKAR, "leonardo": LEONARDO, "lba": LBA, "other": OTHER}
