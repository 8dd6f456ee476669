"""What the admin site answers to hostile addresses: a 404 or the list's "?e=1", never a 500.

Django leaves two holes that any staff user can reach by editing an address:

- the content-type shortcut (`/admin/r/<content type>/<object id>/`) catches a missing object
  and a `ValueError`, but not the `ValidationError` of a UUID primary key given "1", nor the
  database error of a model whose table is a view another backend lacks (django-pghistory's);
- a change list catches lookups that fail while the queryset is *built*, and redirects to
  "?e=1"; lookups that fail only when the query is *compiled or run* (`data__contains` on
  SQLite, which has no JSON containment; an integer beyond 64 bits; an invalid regular
  expression; a date that overflows when turned into UTC) escape as 500s.

Beside them, a NUL in an object's id or a search term fails on PostgreSQL (text cannot hold
one), and an add form's "?parent=x" fails where an autocomplete widget looks its initial value
up. `BackofficeSite`, the project's default admin site (`BackofficeAdminConfig`), closes all of
these for every model registered on it: the back office's admins inherit `GuardedModelAdmin`,
and Django's own (users, groups) or third parties' (tokens) get `GuardedLookups` mixed in as
they register.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite, ModelAdmin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    SuspiciousOperation,
    ValidationError,
)
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

from .access import can_view_deals

VIEW_ON_SITE = "view_on_site"


def view_on_site(request: HttpRequest, content_type_id: str, object_id: str) -> HttpResponse:
    """Django's shortcut, answering 404 before it can fail on an id its model cannot hold."""
    try:
        model = ContentType.objects.get(pk=int(content_type_id)).model_class()
    except (ContentType.DoesNotExist, ValueError, OverflowError):
        raise Http404("No such content type.") from None
    if model is None or not hasattr(model, "get_absolute_url"):
        # The shortcut would look the object up only to say this; no query can fail here.
        raise Http404("These objects have no page of their own.")
    try:
        model._meta.pk.to_python(object_id)
    except ValidationError:
        raise Http404("No such object.") from None
    return shortcut(request, content_type_id, object_id)


class GuardedChangeList(ChangeList):
    """A change list whose filters and search are tried before the page counts and lists rows.

    The trial is one `EXISTS` query in a savepoint (so a failed statement leaves PostgreSQL's
    transaction usable), made only when the request filters or searches.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        queryset = super().get_queryset(request, exclude_parameters)
        if self.get_filters_params() or request.GET.get(SEARCH_VAR):
            try:
                with transaction.atomic(using=queryset.db):
                    queryset.exists()
            except (SuspiciousOperation, ImproperlyConfigured):
                raise
            except Exception as error:
                # As in Django's own ChangeList.get_queryset, which catches every error while
                # it builds the filter: a lookup fails in ways no list can name in advance
                # (NotSupportedError, OverflowError, DataError, re.error in SQLite's REGEXP,
                # IndexError from a range of one value, NotImplementedError from a JSON
                # lookup SQLite lacks). The other kinds are Django's answers already (400).
                messages.error(request, f"This list cannot be filtered that way: {_reason(error)}")
                raise IncorrectLookupParameters(error) from error
        return queryset


def _reason(error: Exception) -> str:
    """The error's first line, short enough for a message (staff only see it)."""
    lines = str(error).strip().splitlines()
    text = lines[0][:200].rstrip(".") if lines else type(error).__name__
    return text + "."


class GuardedLookups:
    """ModelAdmin mixin: what a query string or an address names is looked up only if the
    database can run the lookup (see the module): the change list, the search (here and in
    the autocomplete view), an object's pages and the add form's initial values."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        if issubclass(base, GuardedChangeList):
            return base
        return type(f"Guarded{base.__name__}", (GuardedChangeList, base), {})

    # PostgreSQL's text cannot hold NUL: no row holds one, and asking for one fails.

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        if "\x00" in str(object_id):
            return None
        return super().get_object(request, object_id, from_field)  # type: ignore[misc]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if "\x00" in search_term:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """Django's initial values from the query string, less those naming no possible row.

        An autocomplete widget looks its initial value up to show it: "?parent=x" would
        otherwise fail with a ValidationError.
        """
        initial = super().get_changeform_initial_data(request)  # type: ignore[misc]
        for name, value in list(initial.items()):
            values = value if isinstance(value, list) else [value]
            if any("\x00" in str(item) for item in values):
                del initial[name]
                continue
            try:
                field = self.opts.get_field(name)  # type: ignore[attr-defined]
            except FieldDoesNotExist:
                continue
            if field.is_relation and field.concrete:
                try:
                    for item in values:
                        field.target_field.to_python(item)
                except (ValidationError, ValueError):
                    del initial[name]
        return initial


class GuardedModelAdmin(GuardedLookups, ModelAdmin):
    """The base of the back office's own admins."""


class SeenByDealViewers(GuardedModelAdmin):
    """An admin whose pages whoever may see deals may see too (`access.can_view_deals`);
    anything else still needs the model's permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_deals(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_deals(request.user) or super().has_view_permission(request, obj)


class RecordAdmin(SeenByDealViewers):
    """A record of what happened (events, imports): read, never added, changed or deleted by
    hand, and no bulk actions."""

    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def guarded(admin_class: type[ModelAdmin]) -> type[ModelAdmin]:
    """`admin_class` with GuardedLookups mixed in (itself if it has it already)."""
    if issubclass(admin_class, GuardedLookups):
        return admin_class
    namespace = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
    return type(admin_class.__name__, (GuardedLookups, admin_class), namespace)


class BackofficeSite(AdminSite):
    """The admin site, answering hostile addresses as the module says for every model on it."""

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[ModelAdmin] | None = None,
        **options: Any,
    ) -> None:
        """Register as Django does, with GuardedLookups mixed into admins that lack it."""
        super().register(model_or_iterable, guarded(admin_class or ModelAdmin), **options)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [self._safe(pattern) for pattern in super().get_urls()]

    def _safe(self, pattern: Any) -> Any:
        if isinstance(pattern, URLPattern) and pattern.name == VIEW_ON_SITE:
            return path(
                "r/<path:content_type_id>/<path:object_id>/",
                self.admin_view(view_on_site),
                name=VIEW_ON_SITE,
            )
        return pattern
