"""Filters of the lists, with django-filter; a malformed value is 400 `malformed_request`.

Values that are well formed but match nothing (a country no party is in) give an empty list;
values that cannot be meant (`party=not-a-uuid`, `kind=unknown`, `updated_after=garbage`) are
refused, so a typo never reads as "no such deals".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.core.validators import RegexValidator
from django.db.models import Exists, OuterRef, QuerySet
from django_filters import rest_framework as filters
from rest_framework.request import Request

from tracker.deals.events import DEAL_KINDS, STAGES
from tracker.deals.models import Organisation
from tracker.projections.models import DealState, OrganisationDeal

from .problems import FieldProblem, MalformedRequest

COUNTRY = RegexValidator(r"^[A-Z]{2}\Z", "An ISO 3166-1 alpha-2 code: two capitals, such as IT.")


class ProblemFilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, with invalid values as 400 problem details.

    A request that names none of the filters (the first page, or `?cursor=` and `?limit=`) gets
    the queryset as it is: a FilterSet deep-copies all its filters and validates a form even
    when every value is absent, which cost more than the page's query.
    """

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not names_a_filter(request, filterset_class):
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            errors = {name: list(messages) for name, messages in filterset.errors.items()}
            raise MalformedRequest.from_serializer_errors("Invalid query parameters.", errors)
        return filterset.qs


def names_a_filter(request: Request, filterset_class: type[filters.FilterSet]) -> bool:
    """Whether a query parameter names one of the FilterSet's filters."""
    # By prefix: a filter with several form fields reads `<name>_min`, `<name>_after`, ...
    names = tuple(filterset_class.base_filters)
    return any(param.startswith(names) for param in request.query_params)


class DealFilter(filters.FilterSet):
    stage = filters.ChoiceFilter(choices=[(s, s) for s in STAGES])
    kind = filters.ChoiceFilter(choices=[(k, k) for k in DEAL_KINDS])
    party = filters.UUIDFilter(
        method="filter_party", label="Deals this organisation (id) is party to."
    )
    country = filters.CharFilter(
        method="filter_country",
        validators=[COUNTRY],
        label="Deals with a party organisation of this country (ISO 3166-1 alpha-2).",
    )
    updated_after = filters.IsoDateTimeFilter(
        method="filter_updated_after",
        label="Deals whose last event was recorded after this time (RFC 3339).",
    )
    search = filters.CharFilter(
        field_name="title", lookup_expr="icontains", max_length=300, label="Text in the title."
    )

    class Meta:
        model = DealState
        fields: list[str] = []

    def filter_updated_after(self, queryset: QuerySet, name: str, value: datetime) -> QuerySet:
        # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python accepts.
        try:
            moment = value.astimezone(UTC)
        except OverflowError:
            raise MalformedRequest(
                "Invalid query parameters.",
                [FieldProblem("updated_after", "Out of the supported range.")],
            ) from None
        return queryset.filter(updated_at__gt=moment)

    def filter_party(self, queryset: QuerySet, name: str, value: UUID) -> QuerySet:
        rows = OrganisationDeal.objects.filter(deal=OuterRef("pk"), organisation_id=value)
        return queryset.filter(Exists(rows))

    def filter_country(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        organisations = Organisation.objects.filter(country=value).values("id")
        rows = OrganisationDeal.objects.filter(
            deal=OuterRef("pk"), organisation_id__in=organisations
        )
        return queryset.filter(Exists(rows))


class OrganisationFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Organisation.Kind.choices)
    country = filters.CharFilter(validators=[COUNTRY])
    search = filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=200, label="Text in the name."
    )

    class Meta:
        model = Organisation
        fields: list[str] = []
