"""The rows beside each deal's state that the list's filters read: written with the state,
following it when it changes, untouched when it does not, and rebuilt from the events."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import connection

from tests.projections.builders import SOURCE, make_organisations
from tracker.deals import services
from tracker.projections import projector
from tracker.projections.models import (
    DealContract,
    DealDelivery,
    DealExternalId,
    DealState,
    DealText,
    OrganisationDeal,
)

pytestmark = pytest.mark.django_db
WHEN = datetime(2025, 6, 1, tzinfo=UTC)
YEAR_2019 = {"date": "2019-01-01", "precision": "year"}


def contract(buyer: Any, supplier: Any, **shown: Any) -> dict[str, Any]:
    return {
        "id": str(uuid4()),
        "buyer": str(buyer),
        "supplier": str(supplier),
        "item": "Bayraktar TB2",
        "quantity": 12,
        "value": {"amount": "1250000.50", "currency": "EUR"},
        "ordered_on": {"date": "2019-01-01", "precision": "year", "estimate": True},
        "quantity_estimate": False,
        "weapon": {
            "designation": "Bayraktar TB2",
            "description": "Armed UAV",
            "category": "Aircraft",
            "status": "new",
            "local_production": None,
        },
        "tiv_unit": "5",
        "ordered": 12,
        "delivered": 8,
        "deliveries": [
            {"year": 2020, "quantity": 6, "estimate": False, "year_estimate": False, "tiv": "30"},
            {"year": 2022, "quantity": 2, "estimate": True, "year_estimate": False, "tiv": None},
        ],
        **shown,
    }


def state(deal_id: UUID, orgs: list[Any], **shown: Any) -> dict[str, Any]:
    return {
        "id": str(deal_id),
        "title": "Poland: Drones",
        "kind": "acquisition",
        "stage": "agreed",
        "summary": "Armed drones for the Polish army.",
        "parties": [
            {"organisation": str(orgs[0].id), "role": "buyer"},
            {"organisation": str(orgs[1].id), "role": "supplier"},
        ],
        "mou": None,
        "joint_venture": None,
        "contracts": [],
        "budgets": [],
        "support": [],
        "quotes": [
            {"speaker": "A", "speaker_role": "", "organisation": None, "text": "Quoted words"}
        ],
        "notes": [{"text": "Delivered in two lots."}],
        "uncertain": False,
        "version": 1,
        "opened_on": {"date": "2019-01-01", "precision": "year"},
        "updated_at": "2025-06-01T00:00:00Z",
        "external_ids": [],
        **shown,
    }


def write(*states: dict[str, Any], version: int = 1) -> None:
    """Write the states as one batch, as the projector writes a replay."""
    entries = []
    for shown in states:
        deal_id = UUID(shown["id"])
        row = DealState.objects.filter(deal_id=deal_id).first()
        entries.append((row or DealState.objects.create(deal_id=deal_id), shown, version, WHEN))
    projector.write_projections(entries)


def contract_rows(deal_id: UUID) -> list[tuple[Any, ...]]:
    return list(
        DealContract.objects.filter(deal_id=deal_id)
        .order_by("position")
        .values_list(
            "position",
            "buyer_id",
            "supplier_id",
            "category",
            "order_year",
            "value_amount",
            "value_currency",
        )
    )


def delivery_years(deal_id: UUID) -> list[int]:
    return sorted(DealDelivery.objects.filter(deal_id=deal_id).values_list("year", flat=True))


def external_ids(deal_id: UUID) -> list[str]:
    return sorted(
        DealExternalId.objects.filter(deal_id=deal_id).values_list("external_id", flat=True)
    )


def text(deal_id: UUID) -> str | None:
    return DealText.objects.filter(deal_id=deal_id).values_list("search_text", flat=True).first()


class TestRowsOfAState:
    def test_a_state_writes_its_contract_delivery_external_id_and_text_rows(self):
        buyer, supplier = orgs = make_organisations()
        deal_id = uuid4()
        write(
            state(
                deal_id,
                orgs,
                contracts=[contract(buyer.id, supplier.id)],
                external_ids=["SIPRI:60123", "OTHER:7"],
            )
        )
        assert contract_rows(deal_id) == [
            (0, buyer.id, supplier.id, "aircraft", 2019, Decimal("1250000.50"), "EUR")
        ]
        assert delivery_years(deal_id) == [2020, 2022]
        assert external_ids(deal_id) == ["OTHER:7", "SIPRI:60123"]
        assert text(deal_id) == (
            "poland: drones\narmed drones for the polish army.\nbayraktar tb2\narmed uav\n"
            "delivered in two lots."
        )

    def test_a_state_of_the_older_shape_writes_what_it_has(self):
        buyer, supplier = orgs = make_organisations()
        deal_id = uuid4()
        older = {
            "buyer": str(buyer.id),
            "supplier": str(supplier.id),
            "item": "Radar",
            "quantity": 2,
            "value": {"amount": "150", "currency": "GBP"},
        }
        shown = state(deal_id, orgs, contracts=[older])
        del shown["external_ids"]
        write(shown)
        assert contract_rows(deal_id) == [
            (0, buyer.id, supplier.id, "", None, Decimal("150"), "GBP")
        ]
        assert delivery_years(deal_id) == []
        assert external_ids(deal_id) == []
        assert "radar" in text(deal_id)

    def test_a_contract_without_value_or_weapon_has_neither_in_its_row(self):
        buyer, supplier = orgs = make_organisations()
        deal_id = uuid4()
        bare = contract(buyer.id, supplier.id, value=None, weapon=None, deliveries=[])
        write(state(deal_id, orgs, contracts=[bare]))
        assert contract_rows(deal_id) == [(0, buyer.id, supplier.id, "", 2019, None, "")]

    def test_rows_follow_the_state_when_it_changes(self):
        buyer, supplier = orgs = make_organisations()
        deal_id, other_id = uuid4(), uuid4()
        first = contract(buyer.id, supplier.id)
        second = contract(supplier.id, buyer.id, value={"amount": "9", "currency": "USD"})
        write(
            state(deal_id, orgs, contracts=[first, second], external_ids=["SIPRI:1"]),
            state(other_id, orgs, contracts=[first], external_ids=["SIPRI:2"]),
        )
        # The first contract retracted, the second's category and deliveries corrected.
        corrected = {
            **second,
            "weapon": {**second["weapon"], "category": "Ships"},
            "deliveries": [
                {"year": 2024, "quantity": 1, "estimate": False, "year_estimate": False}
            ],
        }
        write(
            state(
                deal_id,
                orgs,
                title="Poland: Frigates",
                contracts=[corrected],
                external_ids=["SIPRI:3"],
                notes=[],
            ),
            version=2,
        )
        assert contract_rows(deal_id) == [
            (0, supplier.id, buyer.id, "ships", 2019, Decimal("9"), "USD")
        ]
        assert delivery_years(deal_id) == [2024]
        assert external_ids(deal_id) == ["SIPRI:3"]
        assert text(deal_id).startswith("poland: frigates\n")
        assert "two lots" not in text(deal_id)
        # The other deal of the first batch keeps its rows.
        assert [row[0] for row in contract_rows(other_id)] == [0]
        assert delivery_years(other_id) == [2020, 2022]
        assert external_ids(other_id) == ["SIPRI:2"]

    def test_a_deal_that_loses_its_state_loses_its_rows(self):
        buyer, supplier = orgs = make_organisations()
        deal_id = uuid4()
        write(state(deal_id, orgs, contracts=[contract(buyer.id, supplier.id)]))
        row = DealState.objects.get(deal_id=deal_id)
        projector.write_projections([(row, None, 2, None)])
        assert contract_rows(deal_id) == []
        assert delivery_years(deal_id) == []
        assert text(deal_id) is None
        assert not OrganisationDeal.objects.filter(deal_id=deal_id).exists()

    def test_a_row_sent_back_without_its_state_gets_its_rows_once(self):
        buyer, supplier = orgs = make_organisations()
        deal_id = uuid4()
        shown = state(deal_id, orgs, contracts=[contract(buyer.id, supplier.id)])
        write(shown)
        DealState.objects.filter(deal_id=deal_id).update(version=0, state=None)
        write(shown)
        assert [row[0] for row in contract_rows(deal_id)] == [0]
        assert delivery_years(deal_id) == [2020, 2022]
        assert OrganisationDeal.objects.filter(deal_id=deal_id).count() == 2

    def test_reset_drops_every_row(self):
        buyer, supplier = orgs = make_organisations()
        write(
            state(uuid4(), orgs, contracts=[contract(buyer.id, supplier.id)], external_ids=["A:1"])
        )
        projector.reset()
        for model in (DealState, OrganisationDeal, DealContract, DealDelivery, DealExternalId):
            assert not model.objects.exists(), model
        assert not DealText.objects.exists()


@pytest.mark.postgres
class TestStatementsSpared:
    """Measured by PostgreSQL's own counters of this transaction (pg_stat_xact_user_tables):
    a DELETE scans its table (by index or not), an INSERT adds rows without a scan."""

    TABLES = {
        model: model._meta.db_table
        for model in (OrganisationDeal, DealContract, DealDelivery, DealExternalId, DealText)
    }

    def counters(self) -> dict[Any, tuple[int, int]]:
        """By model: (scans, rows written) in this transaction so far."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0),"
                " n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
                " WHERE relname = ANY(%s)",
                [sorted(self.TABLES.values())],
            )
            found = {table: (scans, written) for table, scans, written in cursor.fetchall()}
        return {model: found.get(table, (0, 0)) for model, table in self.TABLES.items()}

    def since(self, before: dict[Any, tuple[int, int]]) -> dict[Any, tuple[int, int]]:
        """By model that moved: (scans, rows written) since `before`."""
        moved = {}
        for model, (scans, written) in self.counters().items():
            delta = (scans - before[model][0], written - before[model][1])
            if delta != (0, 0):
                moved[model] = delta
        return moved

    def test_new_deals_without_contracts_touch_no_contract_delivery_or_external_id_table(
        self,
    ):
        orgs = make_organisations()
        before = self.counters()
        write(*(state(uuid4(), orgs) for _ in range(3)))
        written = {model: rows for model, (_, rows) in self.since(before).items()}
        assert written == {OrganisationDeal: 6, DealText: 3}

    def test_a_state_whose_rows_did_not_move_touches_none_of_them(self):
        buyer, supplier = orgs = make_organisations()
        states = [
            state(uuid4(), orgs, contracts=[contract(buyer.id, supplier.id)], external_ids=["A:1"]),
            state(uuid4(), orgs),
        ]
        write(*states)
        before = self.counters()
        write(*({**shown, "version": 2, "uncertain": True} for shown in states), version=2)
        assert self.since(before) == {}
        assert DealState.objects.filter(version=2, uncertain=True).count() == 2

    def test_a_changed_contract_rewrites_its_deals_contracts_only(self):
        buyer, supplier = orgs = make_organisations()
        shown = state(
            uuid4(), orgs, contracts=[contract(buyer.id, supplier.id)], external_ids=["A:1"]
        )
        write(shown)
        before = self.counters()
        changed = contract(buyer.id, supplier.id, value={"amount": "7", "currency": "EUR"})
        write({**shown, "contracts": [{**changed, "item": shown["contracts"][0]["item"]}]})
        # One DELETE (one scan) of its row, one row inserted.
        assert self.since(before) == {DealContract: (1, 2)}


@pytest.mark.postgres
class TestRowsFromTheEvents:
    """Through the projector, from a deal's events as a register import records them."""

    def record(self) -> tuple[UUID, list[Any]]:
        buyer, supplier = orgs = make_organisations()
        deal_id, contract_id = uuid4(), uuid4()
        services.record_events(
            deal_id=deal_id,
            events=[
                services.ProposedEvent(
                    "DealOpened",
                    {
                        "title": "Poland: armed drones",
                        "kind": "acquisition",
                        "summary": "",
                        "parties": [
                            {"organisation": str(buyer.id), "role": "buyer"},
                            {"organisation": str(supplier.id), "role": "supplier"},
                        ],
                        "external_ids": ["SIPRI:60124"],
                    },
                    YEAR_2019,
                    SOURCE,
                ),
                services.ProposedEvent(
                    "ContractAwarded",
                    {
                        "buyer": str(buyer.id),
                        "supplier": str(supplier.id),
                        "item": "Bayraktar TB2",
                        "quantity": 24,
                        "weapon": {
                            "designation": "Bayraktar TB2",
                            "description": "UAV",
                            "category": "Aircraft",
                        },
                    },
                    YEAR_2019,
                    SOURCE,
                    event_id=contract_id,
                ),
                services.ProposedEvent(
                    "DeliveryRecorded",
                    {"contract": str(contract_id), "quantity": 6},
                    {"date": "2022-01-01", "precision": "year"},
                    SOURCE,
                ),
            ],
            expected_version=0,
            actor="test",
            opens_deal=True,
        )
        return deal_id, orgs

    def test_a_projected_deal_has_its_rows(self):
        deal_id, (buyer, supplier) = self.record()
        projector.project_deal(deal_id)
        assert contract_rows(deal_id) == [(0, buyer.id, supplier.id, "aircraft", 2019, None, "")]
        assert delivery_years(deal_id) == [2022]
        assert external_ids(deal_id) == ["SIPRI:60124"]
        assert "uav" in text(deal_id).split("\n")

    def test_a_forced_projection_rewrites_rows_that_went_missing(self):
        deal_id, _ = self.record()
        projector.project_deal(deal_id)
        expected = contract_rows(deal_id), delivery_years(deal_id), text(deal_id)
        lose_rows(deal_id)
        assert projector.project_deal(deal_id).outcome is projector.Outcome.CURRENT
        assert contract_rows(deal_id) == []
        assert projector.project_deal(deal_id, force=True).outcome is projector.Outcome.PROJECTED
        assert (contract_rows(deal_id), delivery_years(deal_id), text(deal_id)) == expected
        assert external_ids(deal_id) == ["SIPRI:60124"]
        assert OrganisationDeal.objects.filter(deal_id=deal_id).count() == 2

    def test_a_state_sent_back_to_version_0_gets_its_rows_again(self):
        """As migration 0003 leaves the deals projected before it: state kept, rows missing."""
        deal_id, _ = self.record()
        projector.project_deal(deal_id)
        expected = contract_rows(deal_id), delivery_years(deal_id), text(deal_id)
        lose_rows(deal_id)
        DealState.objects.filter(deal_id=deal_id).update(version=0)
        assert deal_id in projector.deals_behind()
        projector.project_deal(deal_id)
        assert (contract_rows(deal_id), delivery_years(deal_id), text(deal_id)) == expected
        assert external_ids(deal_id) == ["SIPRI:60124"]


def lose_rows(deal_id: UUID) -> None:
    for model in (OrganisationDeal, DealContract, DealDelivery, DealExternalId, DealText):
        model.objects.filter(deal_id=deal_id).delete()
