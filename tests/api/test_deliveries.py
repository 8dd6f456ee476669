"""Deliveries under a contract: counted by year in the state, refused past the quantity ordered."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SOURCE, make_organisation, opening

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEALS = "/api/v1/deals/"


def year(value: int, *, estimate: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {"date": f"{value}-01-01", "precision": "year"}
    if estimate:
        found["estimate"] = True
    return found


def append(client, deal: str, version: int, type_: str, data: dict, occurred: dict):
    body = {
        "type": type_,
        "data": data,
        "occurred": occurred,
        "source": SOURCE,
        "expected_version": version,
    }
    return client.post(f"{DEALS}{deal}/events/", body, format="json")


@pytest.fixture
def contract(client_as) -> tuple[Any, str, str]:
    """A deal with a contract for 10 drones ordered in 2023 (an estimate): (client, deal, id)."""
    editor = client_as("editor")
    buyer, supplier = make_organisation("Buyer", "PL"), make_organisation("Maker", "TR")
    deal = editor.post(DEALS, opening([buyer, supplier]), format="json").json()["id"]
    data = {
        "buyer": str(buyer),
        "supplier": str(supplier),
        "item": "Bayraktar TB2",
        "quantity": 10,
        "weapon": {"designation": "Bayraktar TB2", "description": "UAV", "category": "Aircraft"},
        "tiv_unit": "5.5",
    }
    made = append(editor, deal, 1, "ContractAwarded", data, year(2023, estimate=True))
    assert made.status_code == 201, made.content
    return editor, deal, made.json()["events"][0]["event_id"]


def test_deliveries_show_by_year_beside_the_quantity_ordered(contract) -> None:
    editor, deal, contract_id = contract
    deliveries = [
        (2025, 2, False, "11"),
        (2026, 3, True, None),
        (2026, 1, False, "5.5"),
    ]
    for version, (when, quantity, estimate, tiv) in enumerate(deliveries, start=2):
        data = {"contract": contract_id, "quantity": quantity, "quantity_estimate": estimate}
        if tiv:
            data["tiv"] = tiv
        made = append(editor, deal, version, "DeliveryRecorded", data, year(when))
        assert made.status_code == 201, made.content

    state = editor.get(f"{DEALS}{deal}/state/").json()["state"]
    (shown,) = state["contracts"]
    assert shown["id"] == contract_id
    assert shown["ordered"] == 10
    assert shown["delivered"] == 6
    assert shown["ordered_on"] == {"date": "2023-01-01", "precision": "year", "estimate": True}
    assert shown["deliveries"] == [
        {"year": 2025, "quantity": 2, "estimate": False, "year_estimate": False, "tiv": "11"},
        {"year": 2026, "quantity": 4, "estimate": True, "year_estimate": False, "tiv": "5.5"},
    ]
    assert shown["weapon"]["designation"] == "Bayraktar TB2"
    assert state["stage"] == "active"
    # As of the end of 2025, only that year's delivery had happened.
    then = editor.get(f"{DEALS}{deal}/state/", {"as_of": "2025-12-31"}).json()["state"]
    assert then["contracts"][0]["delivered"] == 2


def test_a_delivery_past_the_quantity_ordered_is_refused(contract) -> None:
    editor, deal, contract_id = contract
    first = append(
        editor, deal, 2, "DeliveryRecorded", {"contract": contract_id, "quantity": 8}, year(2024)
    )
    assert first.status_code == 201, first.content

    refused = append(
        editor, deal, 3, "DeliveryRecorded", {"contract": contract_id, "quantity": 3}, year(2025)
    )

    assert refused.status_code == 422, refused.content
    problem = refused.json()
    assert problem["code"] == "invalid_event"
    assert [e["field"] for e in problem["errors"]] == ["data.quantity"]
    assert "11" in problem["errors"][0]["message"]
    assert editor.get(f"{DEALS}{deal}/state/").json()["version"] == 3


def test_a_correction_cannot_order_fewer_than_were_delivered(contract) -> None:
    editor, deal, contract_id = contract
    append(
        editor, deal, 2, "DeliveryRecorded", {"contract": contract_id, "quantity": 8}, year(2024)
    )
    awarded = editor.get(f"{DEALS}{deal}/events/").json()["results"][1]["data"]

    refused = append(
        editor,
        deal,
        3,
        "FactCorrected",
        {"event_id": contract_id, "data": {**awarded, "quantity": 5}},
        year(2025),
    )

    assert refused.status_code == 422, refused.content
    assert [e["field"] for e in refused.json()["errors"]] == ["data.data.quantity"]


@pytest.mark.parametrize(
    ("target", "message"),
    [("another", "no ContractAwarded"), ("the opening", "no ContractAwarded")],
)
def test_a_delivery_names_a_contract_of_its_deal(contract, client_as, target, message) -> None:
    editor, deal, _ = contract
    if target == "another":
        named = "00000000-0000-4000-8000-000000000001"
    else:
        named = editor.get(f"{DEALS}{deal}/events/").json()["results"][0]["event_id"]

    refused = append(
        editor, deal, 2, "DeliveryRecorded", {"contract": named, "quantity": 1}, year(2024)
    )

    assert refused.status_code == 422, refused.content
    (error,) = refused.json()["errors"]
    assert error["field"] == "data.contract"
    assert message in error["message"]


def test_the_catalogue_and_the_schema_describe_deliveries(client_as) -> None:
    reader = client_as("reader")
    listed = reader.get("/api/v1/event-types/").json()
    types = {t["type"]: t for t in listed.get("results", listed)}
    delivery = types["DeliveryRecorded"]
    assert delivery["schema_version"] == 1
    assert delivery["schema"]["properties"]["contract"]["x-refers-to"] == "event"
    assert "never money" in delivery["schema"]["properties"]["tiv"]["description"]
    schema = reader.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"DealDeliveryYear", "DeliveryRecordedData"} <= set(schema["components"]["schemas"])


def test_retracting_a_correction_cannot_bring_back_fewer_than_were_delivered(contract) -> None:
    editor, deal, contract_id = contract
    awarded = editor.get(f"{DEALS}{deal}/events/").json()["results"][1]["data"]
    delivered = {"contract": contract_id, "quantity": 8}
    assert append(editor, deal, 2, "DeliveryRecorded", delivered, year(2024)).status_code == 201
    raised = {"event_id": contract_id, "data": {**awarded, "quantity": 30}}
    correction = append(editor, deal, 3, "FactCorrected", raised, year(2025))
    assert correction.status_code == 201, correction.content
    more = {"contract": contract_id, "quantity": 12}
    assert append(editor, deal, 4, "DeliveryRecorded", more, year(2025)).status_code == 201

    taken_back = {"event_id": correction.json()["events"][0]["event_id"], "reason": "misread"}
    refused = append(editor, deal, 5, "FactRetracted", taken_back, year(2025))

    assert refused.status_code == 422, refused.content
    errors = refused.json()["errors"]
    assert [e["field"] for e in errors] == ["data.event_id"]
    assert "20 items delivered" in errors[0]["message"]
    assert "more than the 10 ordered" in errors[0]["message"]
    state = editor.get(f"{DEALS}{deal}/state/").json()
    assert state["version"] == 5
    assert state["state"]["contracts"][0]["ordered"] == 30
