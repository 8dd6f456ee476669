"""Hostile addresses and query strings in the admin: a 404, a redirect or a message, never a 500.

The lists and the content-type shortcut are tried on the test run's default database
(PostgreSQL under `make test`) and on SQLite, the embedded default, which lacks lookups that
PostgreSQL has (JSON containment): a router points the whole request at the "sqlite" alias.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import connections
from django.test import Client, override_settings
from django.urls import reverse

from tracker.backoffice.site import BackofficeSite, GuardedLookups
from tracker.deals.models import Organisation

from .conftest import make_user

pytestmark = pytest.mark.django_db(databases=["default", "sqlite"])


class Everything:
    """A database router that sends every query to one alias."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.alias

    def allow_relation(self, *objects: Any, **hints: Any) -> bool:
        return True


@pytest.fixture(params=["default", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    alias = request.param
    with override_settings(DATABASE_ROUTERS=[Everything(alias)]):
        yield connections[alias].vendor


@pytest.fixture
def root_client(backend: str) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_user("root", superuser=True))
    return client


def client_for(user: object) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def changelist(model: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_the_default_site_guards_every_admin_registered_on_it() -> None:
    assert isinstance(admin.site, BackofficeSite)
    unguarded = [
        model.__name__
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, GuardedLookups)
    ]
    assert admin.site._registry
    assert unguarded == []


# --- the content-type shortcut -------------------------------------------------------------------


class TestViewOnSite:
    def test_a_uuid_model_with_a_non_uuid_id_is_404(self, root_client: Client) -> None:
        organisation = ContentType.objects.get(app_label="deals", model="organisation")
        response = root_client.get(f"/admin/r/{organisation.id}/1/")
        assert response.status_code == 404

    @pytest.mark.parametrize(
        "object_id",
        ["1", "x", "-1", "99999999999999999999999", "00000000-0000-0000-0000-000000000000"],
    )
    def test_every_content_type_with_a_missing_or_malformed_id_is_404(
        self, root_client: Client, object_id: str
    ) -> None:
        answers = {
            f"{ct.app_label}.{ct.model}": root_client.get(
                f"/admin/r/{ct.id}/{object_id}/"
            ).status_code
            for ct in ContentType.objects.all()
        }
        assert answers
        assert {name: code for name, code in answers.items() if code != 404} == {}

    @pytest.mark.parametrize("content_type", ["x", "0", "99999999999999999999999", "-1"])
    def test_an_unknown_content_type_is_404(self, root_client: Client, content_type: str) -> None:
        assert root_client.get(f"/admin/r/{content_type}/1/").status_code == 404

    def test_needs_a_staff_login(self, backend: str) -> None:
        organisation = ContentType.objects.get(app_label="deals", model="organisation")
        response = Client().get(f"/admin/r/{organisation.id}/1/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# --- the change lists ----------------------------------------------------------------------------


class TestChangeListLookups:
    def test_json_containment_on_events_is_refused_with_the_usual_redirect_on_sqlite(
        self, root_client: Client, backend: str
    ) -> None:
        response = root_client.get("/admin/eventstore/event/?data__contains=x")
        if backend == "sqlite":
            assert response.status_code == 302
            assert response["Location"] == "/admin/eventstore/event/?e=1"
            shown = root_client.get(response["Location"])
            assert shown.status_code == 200
            assert messages_of(shown) == [
                "This list cannot be filtered that way: contains lookup is not supported on "
                "this database backend."
            ]
        else:
            # PostgreSQL has containment: '"x"' is contained in no event's data.
            assert response.status_code == 200
            assert response.context["cl"].result_count == 0

    def test_a_valid_filter_and_search_still_filter(self, root_client: Client) -> None:
        Organisation.objects.create(name="Leonardo", kind="company", country="IT")
        Organisation.objects.create(name="Baykar", kind="company", country="TR")
        response = root_client.get("/admin/deals/organisation/?country__exact=IT&q=Leo")
        assert response.status_code == 200
        assert [o.name for o in response.context["cl"].result_list] == ["Leonardo"]

    def test_every_admin_answers_hostile_lookups_without_a_server_error(
        self, root_client: Client
    ) -> None:
        failures = {}
        for model in list(admin.site._registry):
            url = changelist(model)
            relations = {f.name for f in model._meta.get_fields() if f.is_relation}
            for query in hostile_queries(model):
                response = root_client.get(f"{url}?{urlencode(query)}")
                # 400 is Django's answer to a field the admin never filters by (a password),
                # or to a lookup through a relation it does not offer (DisallowedModelAdminLookup).
                key = next(iter(query))
                crosses = "__" in key and key.split("__")[0] in relations
                refused = 400 if key.startswith("password") or crosses else None
                if response.status_code not in (200, 302, refused):
                    failures[f"{url}?{urlencode(query)}"] = response.status_code
                elif response.status_code == 302:
                    assert response["Location"] == f"{url}?e=1", (url, query)
        assert failures == {}


HOSTILE_VALUES = (
    "\x00",
    "99999999999999999999999",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
)
HOSTILE_LOOKUPS = (
    ("__regex", "("),
    ("__range", "x"),
    ("__in", "99999999999999999999999"),
    ("__contains", "x"),
    ("__contained_by", "x"),
    ("__has_key", "x"),
    ("__year", "99999999999"),
)


def hostile_queries(model: Any) -> Iterator[dict[str, str]]:
    """What a client could send to a model's list: each field with odd lookups and values."""
    for name in [field.name for field in model._meta.get_fields()]:
        for value in HOSTILE_VALUES:
            yield {name: value}
        for lookup, value in HOSTILE_LOOKUPS:
            yield {name + lookup: value}
    for value in ("\x00", "%", "'; --", "x" * 5000):
        yield {"q": value}
    yield {"o": "99.-x.0"}
    yield {"p": "-1"}


# --- the auditor's page --------------------------------------------------------------------------


class TestAuditParameters:
    @pytest.mark.parametrize(
        "known_at",
        [
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999999-23:59",
        ],
    )
    def test_a_moment_outside_the_calendar_in_utc_is_named_not_a_500(
        self, auditor: object, open_deal: Callable[..., UUID], known_at: str
    ) -> None:
        deal = open_deal()
        response = client_for(auditor).get(
            reverse("admin:deal_audit", args=[deal]), {"known_at": known_at}
        )
        assert response.status_code == 200
        assert response.context["param_errors"] == {
            "known_at": "Give a moment between 0001-01-01 and 9999-12-31 in UTC."
        }
        assert response.context["asking"] is False

    @pytest.mark.parametrize(
        ("as_of", "known_at"),
        [
            ("0001-01-01", ""),
            ("9999-12-31", ""),
            ("", "0001-01-01"),
            ("", "9999-12-31"),
            ("9999-12-31", "9999-12-31T23:59:59+00:00"),
            ("0001-01-01", "0001-01-01T00:00:00-01:00"),
        ],
    )
    def test_extreme_dates_replay_without_error(
        self, auditor: object, open_deal: Callable[..., UUID], as_of: str, known_at: str
    ) -> None:
        deal = open_deal()
        response = client_for(auditor).get(
            reverse("admin:deal_audit", args=[deal]), {"as_of": as_of, "known_at": known_at}
        )
        assert response.status_code == 200
        assert response.context["param_errors"] == {}
        # A timeline reaching year 1 or 9999 is labelled sparsely, not year by year.
        assert len(response.context["axis"].ticks) <= 40

    def test_the_far_future_as_known_at_shows_the_current_state(
        self, auditor: object, open_deal: Callable[..., UUID]
    ) -> None:
        deal = open_deal(mou=True)
        response = client_for(auditor).get(
            reverse("admin:deal_audit", args=[deal]),
            {"as_of": "9999-12-31", "known_at": "9999-12-31"},
        )
        assert response.context["asked"].state.stage == "mou_signed"


# --- an object's pages, the search and the add form ----------------------------------------------

HOSTILE_IDS = ("x", "\x00", "99999999999999999999999", "-1", "00000000-0000-0000-0000-000000000000")


class TestObjectPages:
    def test_every_admin_answers_a_missing_or_malformed_id_without_a_server_error(
        self, root_client: Client
    ) -> None:
        failures = {}
        for model in list(admin.site._registry):
            base = changelist(model)
            for object_id in HOSTILE_IDS:
                for page in ("change/", "history/", "delete/", ""):
                    url = f"{base}{quote(object_id, safe='')}/{page}"
                    status = root_client.get(url).status_code
                    # Django redirects a missing object to the index with a message; the
                    # event and deal admins have no such pages (403, 404).
                    if status >= 500:
                        failures[url] = status
        assert failures == {}

    @pytest.mark.parametrize("term", ["\x00", "a\x00b", "%", "'; --"])
    def test_the_autocomplete_search_answers_any_term(self, root_client: Client, term: str) -> None:
        Organisation.objects.create(name="Leonardo", kind="company", country="IT")
        response = root_client.get(
            "/admin/autocomplete/",
            {
                "app_label": "deals",
                "model_name": "organisation",
                "field_name": "parent",
                "term": term,
            },
        )
        assert response.status_code == 200
        assert response.json()["results"] == []

    @pytest.mark.parametrize("parent", ["x", "\x00", "1", "99999999999999999999999"])
    def test_the_add_form_ignores_an_initial_value_naming_no_possible_row(
        self, root_client: Client, parent: str
    ) -> None:
        response = root_client.get(
            "/admin/deals/organisation/add/", {"parent": parent, "name": "A"}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.initial == {"name": "A"}

    def test_the_add_form_keeps_a_valid_initial_parent(self, root_client: Client) -> None:
        parent = Organisation.objects.create(name="BAE Systems", kind="company", country="GB")
        response = root_client.get("/admin/deals/organisation/add/", {"parent": str(parent.id)})
        assert response.status_code == 200
        assert response.context["adminform"].form.initial == {"parent": str(parent.id)}
