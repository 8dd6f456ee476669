"""Load DOMAIN.md's demo data: its organisations and five deals, through the services.

Ids are uuid5 names, and each deal is appended in one batch under an idempotency key, so running
the command again adds nothing: organisations that exist are left as they are, and a repeated
batch is answered by the event store from its idempotency record.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from tracker.deals.models import Organisation
from tracker.deals.services import ProposedEvent, record_events

NAMESPACE = uuid.UUID("6f1c8a34-5b0e-4f0e-9d43-2a9a8f3c1e57")
ACTOR = "seed_demo"
SOURCE = {
    "title": "Turkish drone makers' European partnerships (news report, 2025)",
    "publisher": "unknown",
    "url": None,
    "published_on": None,
}
YEAR_2025 = {"date": "2025-01-01", "precision": "year"}
JUNE_2025 = {"date": "2025-06-01", "precision": "month"}


def org_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"organisation:{slug}")


def deal_id(number: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"deal:{number}")


# slug, name, short name, kind, country, parent slug
ORGANISATIONS = [
    ("tusas", "Turkish Aerospace Industries", "TUSAŞ", "company", "TR", None),
    ("bae", "BAE Systems", "BAE", "company", "GB", None),
    ("malloy", "Malloy Aeronautics", "Malloy", "company", "GB", "bae"),
    ("baykar", "Baykar Technologies", "Baykar", "company", "TR", None),
    ("leonardo", "Leonardo", "Leonardo", "company", "IT", None),
    ("lba", "LBA Systems", "LBA", "joint_venture", "IT", None),
    ("turkiye", "Government of Türkiye", "Türkiye", "government", "TR", None),
    ("italy", "Government of Italy", "Italy", "government", "IT", None),
    ("italy-mod", "Ministry of Defence (Italy)", "Italian MoD", "ministry", "IT", "italy"),
]


def _event(kind: str, data: dict[str, Any], occurred: dict[str, str]) -> ProposedEvent:
    return ProposedEvent(type=kind, data=data, occurred=occurred, source=SOURCE)


def _opened(title: str, kind: str, summary: str, parties: list[tuple[str, str]]) -> ProposedEvent:
    data = {
        "title": title,
        "kind": kind,
        "summary": summary,
        "parties": [{"organisation": str(org_id(slug)), "role": role} for slug, role in parties],
    }
    # A deal opens in the period of its first reported fact; every fact here is of 2025.
    return _event("DealOpened", data, YEAR_2025)


def demo_deals() -> dict[int, list[ProposedEvent]]:
    o = {slug: str(org_id(slug)) for slug, *_ in ORGANISATIONS}
    return {
        1: [
            _opened(
                "TUSAŞ and BAE Systems: uncrewed air systems MoU",
                "mou",
                "MoU to explore joint development of uncrewed air systems.",
                [("tusas", "partner"), ("bae", "partner")],
            ),
            _event(
                "MouSigned",
                {
                    "parties": [o["tusas"], o["bae"]],
                    "scope": "Explore joint development of uncrewed air systems.",
                },
                YEAR_2025,
            ),
            _event(
                "QuoteRecorded",
                {
                    "speaker": "Dave Holmes",
                    "speaker_role": "Managing director, BAE FalconWorks",
                    "organisation": o["bae"],
                    "text": "the start of a deep and meaningful alliance",
                },
                YEAR_2025,
            ),
            _event(
                "QuoteRecorded",
                {
                    "speaker": "Mehmet Demiroglu",
                    "speaker_role": "Chief executive, TUSAŞ",
                    "organisation": o["tusas"],
                    "text": "(reported speech) The partnership has the potential to take their "
                    "uncrewed systems further and to open new markets.",
                },
                YEAR_2025,
            ),
        ],
        2: [
            _opened(
                "Baykar and Leonardo: LBA Systems",
                "joint_venture",
                "An MoU, then a 50-50 joint venture (LBA Systems) headquartered in Italy.",
                [("baykar", "partner"), ("leonardo", "partner")],
            ),
            _event(
                "MouSigned",
                {
                    "parties": [o["baykar"], o["leonardo"]],
                    "scope": "Initial memorandum of understanding on unmanned systems.",
                },
                YEAR_2025,
            ),
            _event(
                "JointVentureFormed",
                {
                    "venture": o["lba"],
                    "shares": [
                        {"organisation": o["baykar"], "percent": "50"},
                        {"organisation": o["leonardo"], "percent": "50"},
                    ],
                    "headquarters_country": "IT",
                    "scope": "The whole life cycle of unmanned systems: design, development, "
                    "manufacturing and support. Baykar to co-produce drones in Italy with EU "
                    "certification and an export-ready supply chain.",
                },
                JUNE_2025,
            ),
        ],
        3: [
            _opened(
                "Türkiye: 20 Eurofighter Typhoons",
                "acquisition",
                "Acquisition of 20 Eurofighter Typhoons, assembled by BAE Systems.",
                [("turkiye", "buyer"), ("bae", "supplier")],
            ),
            _event(
                "ContractAwarded",
                {
                    "buyer": o["turkiye"],
                    "supplier": o["bae"],
                    "item": "Eurofighter Typhoon",
                    "quantity": 20,
                    "value": {"amount": "5400000000", "currency": "GBP"},
                },
                YEAR_2025,
            ),
        ],
        4: [
            _opened(
                "BAE Systems support for the Kaan fighter programme",
                "support",
                "An ongoing support relationship for TUSAŞ's Kaan fighter programme.",
                [("bae", "provider"), ("tusas", "recipient")],
            ),
            _event(
                "SupportAgreed",
                {
                    "provider": o["bae"],
                    "recipient": o["tusas"],
                    "programme": "Kaan",
                    "scope": "Support for TUSAŞ's Kaan fighter programme.",
                },
                YEAR_2025,
            ),
            _event(
                "StageChanged",
                {"stage": "active", "reason": "Reported as an ongoing support relationship."},
                YEAR_2025,
            ),
        ],
        5: [
            _opened(
                "Italy's defence plan: unmanned systems",
                "budget",
                "EUR 3.2 billion for unmanned systems, EUR 2.4 billion of it for armed UAVs.",
                [("italy-mod", "authority")],
            ),
            _event(
                "BudgetAllocated",
                {
                    "authority": o["italy-mod"],
                    "purpose": "Unmanned systems",
                    "amount": {"amount": "3200000000", "currency": "EUR"},
                    "earmarks": [
                        {
                            "purpose": "Armed UAVs",
                            "amount": {"amount": "2400000000", "currency": "EUR"},
                        }
                    ],
                },
                YEAR_2025,
            ),
        ],
    }


def seed() -> dict[str, int]:
    """Load the demo data; returns how many organisations and events were added."""
    added = {"organisations": 0, "events": 0}
    with transaction.atomic():
        for slug, name, short_name, kind, country, parent in ORGANISATIONS:
            _, created = Organisation.objects.get_or_create(
                id=org_id(slug),
                defaults={
                    "name": name,
                    "short_name": short_name,
                    "kind": kind,
                    "country": country,
                    "parent_id": org_id(parent) if parent else None,
                },
            )
            added["organisations"] += created
    for number, events in demo_deals().items():
        appended = record_events(
            deal_id=deal_id(number),
            events=events,
            expected_version=0,
            actor=ACTOR,
            idempotency_key=f"seed_demo:deal:{number}",
            opens_deal=True,
        )
        if not appended.replayed:
            added["events"] += len(appended.events)
    return added


class Command(BaseCommand):
    help = "Load the demo organisations and five deals of DOMAIN.md (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        added = seed()
        self.stdout.write(
            f"Demo data: {added['organisations']} organisations and {added['events']} events added."
        )
