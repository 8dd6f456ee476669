"""The OpenAPI schema documents the endpoints and their problem-details errors."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def schema():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_is_in_the_schema(schema):
    assert {
        "/api/v1/deals/": {"get", "post"},
        "/api/v1/deals/{deal_id}/": {"get"},
        "/api/v1/deals/{deal_id}/events/": {"get", "post"},
        "/api/v1/deals/{deal_id}/diff/": {"get"},
        "/api/v1/deals/{deal_id}/state/": {"get"},
        "/api/v1/deals/{deal_id}/timeline/": {"get"},
        "/api/v1/deals/{deal_id}/verify/": {"get"},
        "/api/v1/deals/{deal_id}/export/": {"get"},
        "/api/v1/events/": {"get"},
        "/api/v1/events/stream/": {"get"},
        "/api/v1/deals/{deal_id}/events/stream/": {"get"},
        "/api/v1/ledger/digest/": {"get"},
        "/api/v1/organisations/": {"get", "post"},
        "/api/v1/organisations/{organisation_id}/": {"get", "patch"},
        "/api/v1/event-types/": {"get"},
        "/api/v1/event-types/{name}/": {"get"},
        "/api/v1/imports/": {"get"},
        "/api/v1/imports/{import_id}/": {"get"},
        "/health/": {"get"},
    } == {path: set(item) - {"parameters"} for path, item in schema["paths"].items()}


def test_list_filters_and_state_parameters_are_documented(schema):
    def names(path: str) -> set[str]:
        return {p["name"] for p in schema["paths"][path]["get"]["parameters"]}

    assert {"stage", "kind", "party", "country", "updated_after", "search", "cursor", "limit"} <= (
        names("/api/v1/deals/")
    )
    assert {"as_of", "known_at"} <= names("/api/v1/deals/{deal_id}/state/")
    assert {"from_as_of", "from_known_at", "to_as_of", "to_known_at"} <= names(
        "/api/v1/deals/{deal_id}/diff/"
    )
    assert {"min_version"} <= names("/api/v1/deals/{deal_id}/")
    assert {"after_version", "limit"} <= names("/api/v1/deals/{deal_id}/events/")


def test_event_data_is_the_catalogues_json_schema_one_of_by_type(schema):
    from tracker.deals.events import EVENT_TYPES

    components = schema["components"]["schemas"]
    event = components["Event"]
    assert event["discriminator"]["propertyName"] == "type"
    assert set(event["discriminator"]["mapping"]) == set(EVENT_TYPES)
    assert len(event["oneOf"]) == len(EVENT_TYPES)
    jv = components["JointVentureFormedEvent"]
    assert jv["properties"]["data"] == {"$ref": "#/components/schemas/JointVentureFormedData"}
    data = components["JointVentureFormedData"]
    assert {"venture", "shares", "headquarters_country"} <= set(data["required"])
    assert data["properties"]["shares"]["items"] == {"$ref": "#/components/schemas/CatalogueShare"}
    proposed = components["ProposedEventRequest"]
    assert set(proposed["discriminator"]["mapping"]) == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/api/v1/events/", {"400", "401", "403", "429", "503"}),
        ("/api/v1/events/stream/", {"400", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/events/stream/", {"400", "404", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/verify/", {"401", "403", "404", "429", "503"}),
        ("/api/v1/deals/{deal_id}/export/", {"401", "403", "404", "429", "503"}),
        ("/api/v1/deals/", {"400", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/", {"400", "404", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/state/", {"400", "404", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/diff/", {"400", "404", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/timeline/", {"404", "401", "403", "429", "503"}),
        ("/api/v1/event-types/{name}/", {"404", "401", "403", "429", "503"}),
        ("/api/v1/imports/", {"400", "401", "403", "429", "503"}),
        ("/api/v1/imports/{import_id}/", {"400", "404", "401", "403", "429", "503"}),
    ],
)
def test_errors_are_documented_as_problem_details(schema, path, statuses):
    responses = schema["paths"][path]["get"]["responses"]
    assert statuses <= set(responses)
    for status in statuses:
        content = responses[status]["content"]
        assert content["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(problem["required"])


def test_append_documents_every_write_error(schema):
    responses = schema["paths"]["/api/v1/deals/{deal_id}/events/"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "413", "422", "429", "503"} <= set(responses)


def test_swagger_ui_is_served():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_cached_catalogue_schemas_stay_as_built(schema):
    # json_schemas() is built once per process and shared; generating the OpenAPI document
    # (done by the fixture) must copy before it converts, never change the shared copy.
    from tracker.api.schema import data_components
    from tracker.deals.events import json_schemas

    assert json_schemas() is json_schemas()
    data_components()
    assert json_schemas() == json_schemas.__wrapped__()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield f"{method.upper()} {path}", operation


def test_every_operation_documents_406_as_problem_details(schema):
    """Every response's media type is negotiated from Accept, so any operation can answer 406."""
    for name, operation in operations(schema):
        response = operation["responses"].get("406")
        assert response is not None, name
        assert response["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }, name


def test_operations_that_read_a_body_document_415_and_the_others_do_not(schema):
    with_body = set()
    for name, operation in operations(schema):
        documented = "415" in operation["responses"]
        assert documented == ("requestBody" in operation), name
        if documented:
            with_body.add(name)
            content = operation["responses"]["415"]["content"]
            assert set(content) == {"application/problem+json"}, name
    assert with_body == {
        "POST /api/v1/deals/",
        "POST /api/v1/deals/{deal_id}/events/",
        "POST /api/v1/organisations/",
        "PATCH /api/v1/organisations/{organisation_id}/",
    }
