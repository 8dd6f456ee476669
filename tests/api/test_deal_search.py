"""The list's search filters (issue 15): which deals come back, on SQLite and PostgreSQL alike.

The deals are written through the projector's write path from states in API.md's JSON (the
shape of a register import: external ids, contracts with their order date, weapon and
deliveries), beside one of the older shape, which has none of these.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import connection

from tracker.api.filters import DealFilter
from tracker.projections.models import DealState
from tracker.projections.projector import write_projections

from .conftest import client_for, make_organisation, make_user

pytestmark = pytest.mark.django_db
DEALS = "/api/v1/deals/"
START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def reader():
    return client_for(make_user("rd", "reader"))


def weapon(designation: str, description: str, category: str) -> dict[str, Any]:
    return {
        "designation": designation,
        "description": description,
        "category": category,
        "status": "new",
        "local_production": False,
    }


def contract(
    buyer: UUID,
    supplier: UUID,
    item: str,
    *,
    ordered: int | None = None,
    value: tuple[str, str] | None = None,
    weapon: dict[str, Any] | None = None,
    deliveries: tuple[tuple[int, int], ...] = (),
) -> dict[str, Any]:
    """A contract as the state shows it; `ordered` None gives the older shape (no order date,
    weapon or deliveries, and a value)."""
    money = None if value is None else {"amount": value[0], "currency": value[1]}
    shown = {
        "buyer": str(buyer),
        "supplier": str(supplier),
        "item": item,
        "quantity": 10,
        "value": money,
    }
    if ordered is None:
        return shown
    return {
        **shown,
        "id": str(uuid4()),
        "ordered_on": {"date": f"{ordered}-01-01", "precision": "year", "estimate": True},
        "quantity_estimate": False,
        "weapon": weapon,
        "tiv_unit": "12.5",
        "ordered": 10,
        "delivered": sum(quantity for _, quantity in deliveries),
        "deliveries": [
            {"year": y, "quantity": q, "estimate": False, "year_estimate": False, "tiv": "75"}
            for y, q in deliveries
        ],
    }


def project(
    n: int,
    title: str,
    *,
    parties: list[UUID],
    contracts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    summary: str = "",
    notes: tuple[str, ...] = (),
    external_ids: list[str] | None = None,
) -> UUID:
    """Write a deal's state into the read model as the projector would; returns its id."""
    deal_id = uuid4()
    updated_at = START + timedelta(days=n)
    state: dict[str, Any] = {
        "id": str(deal_id),
        "title": title,
        "kind": "acquisition" if contracts else "mou",
        "stage": "agreed" if contracts else "negotiating",
        "summary": summary,
        "parties": [{"organisation": str(p), "role": "partner"} for p in parties],
        "mou": None,
        "joint_venture": None,
        "contracts": list(contracts),
        "budgets": [],
        "support": [],
        "quotes": [],
        "notes": [{"text": text} for text in notes],
        "uncertain": False,
        "version": 1,
        "opened_on": {"date": "2025-01-01", "precision": "year"},
        "updated_at": updated_at.isoformat().replace("+00:00", "Z"),
    }
    if external_ids is not None:
        state["external_ids"] = external_ids
    row = DealState.objects.create(deal_id=deal_id)
    write_projections([(row, state, 1, updated_at)])
    return deal_id


@pytest.fixture
def orgs() -> dict[str, UUID]:
    return {
        "uk": make_organisation("United Kingdom", "GB"),
        "bae": make_organisation("BAE Systems", "GB"),
        "us": make_organisation("United States", "US"),
        "lockheed": make_organisation("Lockheed Martin", "US"),
        "turkiye": make_organisation("Türkiye", "TR"),
        "baykar": make_organisation("Baykar", "TR"),
        "poland": make_organisation("Poland", "PL"),
    }


@pytest.fixture
def deals(orgs) -> dict[int, UUID]:
    o = orgs
    return {
        1: project(
            1,
            "Türkiye: Eurofighter Typhoons",
            parties=[o["turkiye"], o["bae"]],
            summary="Twenty fighters, assembled in Warton.",
            contracts=[
                contract(
                    o["turkiye"],
                    o["bae"],
                    "Eurofighter Typhoon",
                    ordered=2019,
                    value=("5400000000", "GBP"),
                    weapon=weapon("Eurofighter Typhoon", "FGA aircraft", "Aircraft"),
                    deliveries=((2021, 6), (2023, 4)),
                )
            ],
            notes=("Deliveries slipped after a dispute over engines.",),
            external_ids=["SIPRI:60123"],
        ),
        2: project(
            2,
            "Poland: armed drones",
            parties=[o["poland"]],  # the supplier is named by the contract only
            contracts=[
                contract(
                    o["poland"],
                    o["baykar"],
                    "drones",
                    ordered=2021,
                    weapon=weapon("Bayraktar TB2", "UAV", "aircraft"),
                    deliveries=((2022, 24),),
                )
            ],
            external_ids=["SIPRI:60124"],
        ),
        3: project(
            3,
            "United Kingdom: F-35B",
            parties=[o["uk"], o["lockheed"]],
            contracts=[
                contract(
                    o["uk"],
                    o["lockheed"],
                    "F-35B",
                    ordered=2017,
                    value=("1200000000", "USD"),
                    weapon=weapon("F-35B Lightning II", "FGA aircraft", "Aircraft"),
                    deliveries=((2018, 3), (2024, 5)),
                )
            ],
            external_ids=[],
        ),
        4: project(
            4,
            "Poland: a mixed package",
            parties=[o["poland"], o["bae"], o["lockheed"]],
            contracts=[
                contract(
                    o["poland"],
                    o["bae"],
                    "frigates",
                    ordered=2015,
                    weapon=weapon("Type 31", "frigate", "Ships"),
                ),
                contract(
                    o["poland"],
                    o["lockheed"],
                    "transport aircraft",
                    ordered=2016,
                    value=("300000000", "USD"),
                    weapon=weapon("C-130J Hercules", "transport aircraft", "Aircraft"),
                ),
            ],
        ),
        5: project(
            5,
            "Türkiye: radars",
            parties=[o["turkiye"], o["bae"]],
            contracts=[contract(o["turkiye"], o["bae"], "Radar", value=("150", "EUR"))],
        ),
        6: project(
            6,
            "Baykar: a memorandum",
            parties=[o["baykar"]],
            summary="Talks on uncrewed systems.",
            notes=("Kizilelma was mentioned.",),
        ),
    }


def ids(client, **params) -> set[int]:
    response = client.get(DEALS, params)
    assert response.status_code == 200, response.content
    return {deal["id"] for deal in response.json()["results"]}


class TestDealSearchFilters:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, {1, 2, 3, 4, 5, 6}),
            ({"supplier_country": "GB"}, {1, 4, 5}),
            ({"supplier_country": "US"}, {3, 4}),
            ({"supplier_country": "TR"}, {2}),
            ({"supplier_country": "FR"}, set()),
            ({"buyer_country": "PL"}, {2, 4}),
            ({"buyer_country": "TR", "supplier_country": "GB"}, {1, 5}),
            ({"category": "AIRCRAFT"}, {1, 2, 3, 4}),
            ({"category": "ships"}, {4}),
            ({"category": "Helicopters"}, set()),
            # One and the same contract: deal 4's British contract is for ships.
            ({"supplier_country": "GB", "category": "aircraft"}, {1}),
            ({"supplier_country": "US", "category": "aircraft"}, {3, 4}),
            ({"ordered_from": "2019"}, {1, 2}),
            ({"ordered_to": "2017"}, {3, 4}),
            ({"ordered_from": "2019", "ordered_to": "2019"}, {1}),
            ({"ordered_from": "2016", "ordered_to": "2018"}, {3, 4}),
            ({"delivered_from": "2020", "delivered_to": "2022"}, {1, 2}),
            ({"delivered_from": "2024"}, {3}),
            ({"delivered_to": "2018"}, {3}),
            ({"delivered_from": "2019", "delivered_to": "2020"}, set()),
            ({"currency": "EUR"}, {5}),
            ({"value_min": "1000000000", "currency": "GBP"}, {1}),
            ({"value_min": "1000000000", "currency": "USD"}, {3}),
            ({"value_max": "1000000000", "currency": "USD"}, {4}),
            ({"value_min": "5400000000", "value_max": "5400000000", "currency": "GBP"}, {1}),
            ({"value_min": "5400000000.01", "currency": "GBP"}, set()),
            ({"value_max": "200", "currency": "EUR"}, {5}),
            ({"value_max": "200", "currency": "GBP"}, set()),
            ({"external_id": "SIPRI:60123"}, {1}),
            ({"external_id": "SIPRI:60124"}, {2}),
            ({"external_id": "sipri:60123"}, set()),
            ({"external_id": "SIPRI:99999"}, set()),
            ({"organisation": "baykar"}, {2, 6}),
            ({"organisation": "lockheed"}, {3, 4}),
            ({"party": "baykar"}, {6}),
            ({"organisation": "lockheed", "ordered_from": "2017"}, {3}),
            ({"supplier_country": "GB", "delivered_from": "2021"}, {1}),
            ({"kind": "mou", "organisation": "baykar"}, {6}),
            ({"search": "typhoon", "supplier_country": "US"}, set()),
        ],
    )
    def test_filters_return_the_right_deals(self, reader, orgs, deals, params, expected):
        for name in ("organisation", "party"):
            if name in params:
                params = {**params, name: str(orgs[params[name]])}
        assert ids(reader, **params) == {str(deals[n]) for n in expected}

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"search": "typhoon"}, {1}),  # the title
            ({"search": "Warton"}, {1}),  # the summary
            ({"search": "TB2"}, {2}),  # a weapon's designation
            ({"search": "uav"}, {2}),  # a weapon's description
            ({"search": "engines"}, {1}),  # a note
            ({"search": "kizilelma"}, {6}),  # a note of a deal with no contract
            ({"search": "radar"}, {5}),  # a contract's item, in the older shape
            ({"search": "TÜRKIYE"}, {1, 5}),  # any case, beyond ASCII
            ({"search": "nowhere-to-be-found"}, set()),
        ],
    )
    def test_search_reads_title_summary_designations_descriptions_and_notes(
        self, reader, deals, params, expected
    ):
        assert ids(reader, **params) == {str(deals[n]) for n in expected}

    def test_search_skips_what_it_does_not_cover(self, reader, deals, orgs):
        # Organisations' names are not a deal's text: `organisation=` finds those.
        assert ids(reader, search="lockheed") == set()

    @pytest.mark.parametrize(
        ("params", "fields"),
        [
            ({"value_min": "100"}, ["value_min"]),
            ({"value_max": "100"}, ["value_max"]),
            ({"value_min": "100", "currency": "gbp"}, ["currency"]),
            ({"currency": "POUNDS"}, ["currency"]),
            ({"value_min": "abc", "currency": "GBP"}, ["value_min"]),
            ({"value_min": "-1", "currency": "GBP"}, ["value_min"]),
            ({"value_min": "NaN", "currency": "GBP"}, ["value_min"]),
            ({"value_min": "1" * 60, "currency": "GBP"}, ["value_min"]),
            ({"value_min": "0." + "1" * 30, "currency": "GBP"}, ["value_min"]),
            ({"value_min": "10", "value_max": "5", "currency": "GBP"}, ["value_max"]),
            ({"supplier_country": "Britain"}, ["supplier_country"]),
            ({"buyer_country": "gb"}, ["buyer_country"]),
            ({"ordered_from": "twenty"}, ["ordered_from"]),
            ({"ordered_from": "2020", "ordered_to": "2010"}, ["ordered_to"]),
            ({"delivered_to": "0"}, ["delivered_to"]),
            ({"delivered_from": "10000"}, ["delivered_from"]),
            ({"delivered_from": "2019.5"}, ["delivered_from"]),
            ({"organisation": "not-a-uuid"}, ["organisation"]),
            ({"search": "x" * 301}, ["search"]),
            ({"search": "nul\x00"}, ["search"]),
            ({"external_id": "SIPRI:\x00"}, ["external_id"]),
            ({"category": "c" * 301}, ["category"]),
        ],
    )
    def test_a_malformed_value_is_400_naming_it(self, reader, deals, params, fields):
        response = reader.get(DEALS, params)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "malformed_request"
        assert {error["field"] for error in body["errors"]} == set(fields)

    def test_pages_of_a_filtered_list_cover_every_match(self, reader, deals):
        seen: list[str] = []
        url = f"{DEALS}?category=aircraft&limit=1"
        while url:
            body = reader.get(url).json()
            seen.extend(deal["id"] for deal in body["results"])
            url = body["next"]
        assert seen == [str(deals[n]) for n in (4, 3, 2, 1)]  # the newest first


@pytest.mark.postgres
class TestFullTextSearch:
    """PostgreSQL's full-text search: English stemming and web-search syntax."""

    @pytest.mark.parametrize(
        ("search", "expected"),
        [
            ("engine", {1}),  # "engines", stemmed
            ("delivery", {1}),  # "Deliveries"
            ("typhoon engines", {1}),  # every word, anywhere in the deal's text
            ('"dispute over engines"', {1}),  # a phrase
            ('"engines over dispute"', set()),
            ("tb2 or kizilelma", {2, 6}),
            ("aircraft -typhoon", {3, 4}),
            ("the", set()),  # only a stop word: nothing, not an error
            ("'; select", set()),  # not SQL, not tsquery syntax: no error
            ("f-35b", {3}),
        ],
    )
    def test_search_is_full_text(self, reader, deals, search, expected):
        assert ids(reader, search=search) == {str(deals[n]) for n in expected}

    def test_search_is_answered_by_the_gin_index(self, deals):
        queryset = DealFilter({"search": "tb2"}, queryset=DealState.objects.all()).qs
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
        assert "dealtext_search_idx" in plan, plan
        assert [row.deal_id for row in queryset] == [deals[2]]


def test_the_filters_are_in_the_openapi_schema(reader):
    response = reader.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    parameters = response.json()["paths"]["/api/v1/deals/"]["get"]["parameters"]
    types = {p["name"]: p["schema"].get("type") for p in parameters}
    assert {
        "supplier_country": "string",
        "buyer_country": "string",
        "organisation": "string",
        "category": "string",
        "ordered_from": "integer",
        "ordered_to": "integer",
        "delivered_from": "integer",
        "delivered_to": "integer",
        "value_min": "number",
        "value_max": "number",
        "currency": "string",
        "external_id": "string",
        "search": "string",
    }.items() <= types.items()
