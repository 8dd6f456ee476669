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
        "/api/v1/events/",
        "/api/v1/deals/{deal_id}/verify/",
        "/api/v1/deals/{deal_id}/export/",
        "/health/",
    } <= set(schema["paths"])


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/api/v1/events/", {"400", "401", "403", "429", "503"}),
        ("/api/v1/deals/{deal_id}/verify/", {"401", "403", "404", "429", "503"}),
        ("/api/v1/deals/{deal_id}/export/", {"401", "403", "404", "429", "503"}),
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


def test_swagger_ui_is_served():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
