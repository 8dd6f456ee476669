"""Every URL of the URLconf, walked: an anonymous and a reader request get what API.md allows.

The walk reads `get_resolver()`, so a new route is tested the day it is added: under /api/v1/
it must have an entry in `API` (one per method its view allows) or the test fails; under
/admin/ it must send both away to the login page, unless `ADMIN` says otherwise; anywhere else
it must be listed in `PUBLIC`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from tests.api.conftest import client_for, make_user, seeded  # noqa: F401  (fixture)
from tracker.api.fallback import unmatched
from tracker.deals.models import Organisation
from tracker.eventstore.store import read_stream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Under /api/v1/: what a reader gets, per method the view allows. Anonymous: 401, always.
API: dict[str, dict[str, int]] = {
    "api/v1/deals/": {"GET": 200, "POST": 403},
    "api/v1/deals/<uuid:deal_id>/": {"GET": 200},
    "api/v1/deals/<uuid:deal_id>/events/": {"GET": 200, "POST": 403},
    "api/v1/deals/<uuid:deal_id>/state/": {"GET": 200},
    "api/v1/deals/<uuid:deal_id>/timeline/": {"GET": 403},
    "api/v1/deals/<uuid:deal_id>/verify/": {"GET": 403},
    "api/v1/deals/<uuid:deal_id>/export/": {"GET": 403},
    "api/v1/events/": {"GET": 200},
    "api/v1/ledger/digest/": {"GET": 403},
    "api/v1/organisations/": {"GET": 200, "POST": 403},
    "api/v1/organisations/<uuid:organisation_id>/": {"GET": 200, "PATCH": 403},
    "api/v1/event-types/": {"GET": 200},
    "api/v1/event-types/<str:name>/": {"GET": 200},
    "api/v1/imports/": {"GET": 403},
    "api/v1/imports/<uuid:import_id>/": {"GET": 403},
    "api/v1/events/stream/": {"GET": 200},
    "api/v1/deals/<uuid:deal_id>/events/stream/": {"GET": 200},
    "api/v1/deals/<uuid:deal_id>/diff/": {"GET": 200},
}
# Outside /api/v1/ and /admin/: open to everyone (API.md), reads only.
PUBLIC: dict[str, dict[str, int]] = {
    "api/schema/": {"GET": 200},
    "api/docs/": {"GET": 200},
    "health/": {"GET": 200},
}
# Admin routes that do not send an anonymous or reader request to the login page:
# route -> method -> (anonymous, reader). Every other admin route and method: 302 to login.
ADMIN: dict[str, dict[str, tuple[int, int]]] = {
    # The login form itself (throttled); for a signed-in reader it says they may not enter.
    "admin/login/": {"GET": (200, 200), "POST": (200, 200)},
    # Redirects to the admin's index, which redirects to the login page.
    "admin/logout/": {"GET": (302, 302), "POST": (302, 302)},
}
ADMIN_METHODS = ("GET", "POST")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def walk(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern, list[Any]]]:
    """(route as written, pattern, the patterns on its way) for every URL of the URLconf."""
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern, []


class Values:
    """Values for a route's converters: ids from the demo data, or a fresh UUID."""

    def __init__(self, ids: dict[str, UUID]) -> None:
        deal = ids["deal2"]
        self.by_name = {
            "deal_id": str(deal),
            "organisation_id": str(ids["leonardo"]),
            "event_id": str(read_stream(deal)[0].event_id),
            "name": "NoteAdded",
            "event_type": "NoteAdded",
            "object_id": str(deal),
            "id": "1",
            "content_type_id": "1",
            "url": "no-such-page/",
        }

    def path(self, route: str) -> str:
        """The route with each re_path() group and path() converter filled in."""

        def group(match: re.Match[str]) -> str:
            name, body = match.group(1), match.group(2)
            if "|" in body:  # an alternation of names, such as the admin's app labels
                return body.split("|")[0]
            return self.by_name.get(name, "1")

        def converter(match: re.Match[str]) -> str:
            kind, name = match.group(1) or "str", match.group(2)
            if name in self.by_name:
                return self.by_name[name]
            return str(uuid4()) if kind == "uuid" else "1"

        filled = re.sub(r"\(\?P<(\w+)>([^)]*)\)", group, route).replace("^", "").replace("$", "")
        return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", converter, filled)


def allowed_methods(pattern: URLPattern) -> set[str]:
    view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
    if view is None:
        return set(ADMIN_METHODS)
    names = {m for m in view.http_method_names if hasattr(view, m)}
    if "get" in names:
        names.add("head")
    return {m.upper() for m in names} - {"OPTIONS", "HEAD"}


@pytest.fixture
def routes(seeded) -> list[tuple[str, URLPattern, str]]:  # noqa: F811
    values = Values(seeded)
    found = []
    for route, pattern, _ in walk(get_resolver()):
        if pattern.callback is unmatched:
            continue  # the fallbacks: test_unmatched_api_paths_are_404_problems_for_anyone
        path = values.path(route)
        assert not re.search(r"[<>()?\\]", path), f"cannot fill {route!r}: {path!r}"
        found.append((route, pattern, path))
    return found


def request(client: Client, method: str, path: str) -> Any:
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return getattr(client, method.lower())(path)
    return getattr(client, method.lower())(path, {}, content_type="application/json")


def state() -> tuple[int, list[dict[str, Any]]]:
    from tracker.eventstore.store import iter_stream_ids, stream_version

    versions = sum(stream_version(s) for s in iter_stream_ids())
    return versions, list(Organisation.objects.order_by("id").values())


def test_every_route_is_in_the_allow_tables(routes):
    walked = {route for route, _, _ in routes}
    for route, pattern, _ in routes:
        if route.startswith("api/v1/"):
            assert route in API, f"{route} has no entry in API: say what a reader may do there"
            assert set(API[route]) == allowed_methods(pattern), route
        elif route.startswith("admin/"):
            continue
        else:
            assert route in PUBLIC, f"{route} is neither API, admin nor public: add it to a table"
            assert set(PUBLIC[route]) == allowed_methods(pattern), route
    # Entries for routes that no longer exist are mistakes too.
    assert set(API) <= walked
    assert set(PUBLIC) <= walked
    assert set(ADMIN) <= walked


def test_anonymous_and_reader_get_only_what_api_md_allows(routes):
    anonymous_api, anonymous_browser = APIClient(), Client()
    reader = make_user("rita", "reader")
    reader_api = client_for(reader)
    reader_browser = Client()
    reader_browser.force_login(reader)
    before = state()
    checked = 0
    for route, pattern, path in routes:
        match = resolve(path)
        if route.startswith(("api/", "health/")):
            # Under the API every route is reached by its own URL (none is shadowed).
            assert match.func is pattern.callback, f"{path} resolves to another view than {route}"
        if route.startswith("api/v1/"):
            for method, reader_status in API[route].items():
                response = request(anonymous_api, method, path)
                assert response.status_code == 401, (method, path, response.content[:300])
                assert response.json()["code"] == "not_authenticated"
                response = request(reader_api, method, path)
                assert response.status_code == reader_status, (method, path, response.content[:300])
                checked += 1
            for method in UNSAFE:
                if method not in API[route]:
                    assert request(anonymous_api, method, path).status_code == 401, (method, path)
                    assert request(reader_api, method, path).status_code in (403, 405), (
                        method,
                        path,
                    )
        elif route.startswith("admin/"):
            expected = ADMIN.get(route, {})
            for method in ADMIN_METHODS:
                for who, client in (("anonymous", anonymous_browser), ("reader", reader_browser)):
                    response = request(client, method, path)
                    statuses = expected.get(method)
                    if statuses is None:
                        assert response.status_code == 302, (who, method, path)
                        assert response["Location"].startswith("/admin/login/"), (who, path)
                    else:
                        status = statuses[0] if who == "anonymous" else statuses[1]
                        assert response.status_code == status, (who, method, path)
                    checked += 1
        else:
            for method, status in PUBLIC[route].items():
                for client in (anonymous_api, reader_api):
                    assert request(client, method, path).status_code == status, (method, path)
                    checked += 1
            for method in UNSAFE:
                assert request(anonymous_api, method, path).status_code in (401, 403, 405)
    assert checked > 100
    # Nothing a refused request asked for was done.
    assert state() == before


@pytest.mark.parametrize(
    "path", ["/api/nothing/", "/api/v1", "/api/v1/nothing/", "/api/v1/deals/xyz/"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unmatched_api_paths_are_404_problems_for_anyone(path: str, method: str):
    for client in (APIClient(), client_for(make_user(f"r-{method}", "reader"))):
        response = request(client, method, path)
        assert response.status_code == 404, (method, path)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"


def test_the_schema_without_its_trailing_slash_is_served():
    response = APIClient().get("/api/schema")
    assert response.status_code == 200
    assert b"openapi" in response.content
