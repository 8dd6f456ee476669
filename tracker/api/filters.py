"""Filters of the lists, with django-filter; a malformed value is 400 `malformed_request`.

Values that are well formed but match nothing (a country no party is in) give an empty list;
values that cannot be meant (`party=not-a-uuid`, `kind=unknown`, `updated_after=garbage`,
`ordered_from=2020&ordered_to=2010`, `value_min` without `currency`) are refused, so a typo
never reads as "no such deals".

The deal filters read the projection's rows (tracker/projections/models.py), each as one
`EXISTS`: the contract filters (`supplier_country`, `buyer_country`, `category`,
`ordered_from`/`ordered_to`, `value_min`/`value_max`, `currency`) hold together for one and
the same contract of the deal, so that `supplier_country=GB&category=aircraft` finds a deal
for British aircraft, not a deal with a British ship and an American aircraft. Countries are
read from the organisations at query time, since organisations are edited in place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

from django import forms
from django.contrib.postgres.search import SearchQuery
from django.core.validators import RegexValidator
from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from tracker.deals.events import DEAL_KINDS, STAGES
from tracker.deals.models import Organisation
from tracker.projections.models import (
    SEARCH_CONFIG,
    DealContract,
    DealDelivery,
    DealExternalId,
    DealState,
    DealText,
    OrganisationDeal,
    search_vector,
)

from .problems import FieldProblem, MalformedRequest
from .serializers import RFC_3339_FORMAT, UNKNOWN_PARAMETER, QuerySerializer, rfc_3339_time

COUNTRY = RegexValidator(r"^[A-Z]{2}\Z", "An ISO 3166-1 alpha-2 code: two capitals, such as IT.")
CURRENCY = RegexValidator(r"^[A-Z]{3}\Z", "An ISO 4217 code: three capitals, such as EUR.")
# The widest amount a contract's value may hold (tracker/deals/events.py's decimal strings).
AMOUNT_DIGITS, AMOUNT_PLACES = 50, 20


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


class KnownParametersOnly:
    """For lists: a query parameter that is neither one of their filters nor their pagination's
    is 400 `malformed_request`, naming it and the parameters there are.

    Ignored, a misspelt filter (`?stag=signed`, `?supplier=GB`) would read as "every deal" and
    look like an answer. Checked after authentication and permissions, so an anonymous client
    still gets 401; `format` is DRF's choice of renderer.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method not in ("GET", "HEAD") or not request.query_params:
            return
        known = known_parameters(getattr(self, "filterset_class", None), self.paginator)  # type: ignore[attr-defined]
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            takes = ", ".join(sorted(known - QuerySerializer.passed))
            raise MalformedRequest(
                "Invalid query parameters.",
                [
                    FieldProblem(name[:100], UNKNOWN_PARAMETER.format(takes))
                    for name in unknown[:20]
                ],
            )


def known_parameters(
    filterset_class: type[filters.FilterSet] | None, paginator: Any
) -> frozenset[str]:
    """The query parameters a list reads: its filters', its paginator's and DRF's `format`."""
    return _known_parameters(
        filterset_class,
        getattr(paginator, "cursor_query_param", None),
        getattr(paginator, "page_size_query_param", None),
    )


@cache
def _known_parameters(filterset_class: type | None, *pagination: str | None) -> frozenset[str]:
    filtered = filterset_class.base_filters if filterset_class is not None else ()
    names = {*filtered, *pagination, *QuerySerializer.passed}
    return frozenset(name for name in names if name)


def names_a_filter(request: Request, filterset_class: type[filters.FilterSet]) -> bool:
    """Whether a query parameter names one of the FilterSet's filters."""
    # By prefix: a filter with several form fields reads `<name>_min`, `<name>_after`, ...
    names = tuple(filterset_class.base_filters)
    return any(param.startswith(names) for param in request.query_params)


class _Rfc3339TimeField(IsoDateTimeField):
    """django-filter's ISO 8601 field, taking the RFC 3339 form only, as the serializers do."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        moment = rfc_3339_time(value)
        if moment is None:
            raise forms.ValidationError(
                f"Enter an RFC 3339 time: {RFC_3339_FORMAT}.", code="invalid"
            )
        return super().to_python(moment)


class Rfc3339TimeFilter(filters.IsoDateTimeFilter):
    field_class = _Rfc3339TimeField


@extend_schema_field(OpenApiTypes.INT)
class YearFilter(filters.Filter):
    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=9999, **kwargs)


@extend_schema_field(OpenApiTypes.NUMBER)
class AmountFilter(filters.NumberFilter):
    """A decimal amount, no wider than a contract's value may be."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            min_value=0, max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs
        )


class DealFilterForm(forms.Form):
    """Checks between values: a range that runs backwards, and amounts without a currency."""

    RANGES: ClassVar[list[tuple[str, str]]] = [
        ("ordered_from", "ordered_to"),
        ("delivered_from", "delivered_to"),
        ("value_min", "value_max"),
    ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for low, high in self.RANGES:
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, f"Must not be less than `{low}`.")
        # Amounts in different currencies are never converted, so never compared. (A
        # malformed currency is reported as such.)
        currency = data.get("currency") or "currency" in self.errors
        for bound in ("value_min", "value_max"):
            if data.get(bound) is not None and not currency:
                self.add_error(bound, "Needs `currency`: values are compared in one currency.")
        return data


class DealFilter(filters.FilterSet):
    stage = filters.ChoiceFilter(choices=[(s, s) for s in STAGES])
    kind = filters.ChoiceFilter(choices=[(k, k) for k in DEAL_KINDS])
    party = filters.UUIDFilter(
        method="filter_party", label="Deals this organisation (id) is party to."
    )
    organisation = filters.UUIDFilter(
        method="filter_organisation",
        label="Deals naming this organisation (id): a party, or a contract's buyer or supplier.",
    )
    country = filters.CharFilter(
        method="filter_country",
        validators=[COUNTRY],
        label="Deals with a party organisation of this country (ISO 3166-1 alpha-2).",
    )
    supplier_country = filters.CharFilter(
        method="filter_by_contract",
        validators=[COUNTRY],
        label="Deals with a contract whose supplier is of this country (ISO 3166-1 alpha-2).",
    )
    buyer_country = filters.CharFilter(
        method="filter_by_contract",
        validators=[COUNTRY],
        label="Deals with a contract whose buyer is of this country (ISO 3166-1 alpha-2).",
    )
    category = filters.CharFilter(
        method="filter_by_contract",
        max_length=300,
        label="Deals with a contract for a weapon of this armament category (any case).",
    )
    ordered_from = YearFilter(
        method="filter_by_contract", label="Deals with a contract ordered in this year or later."
    )
    ordered_to = YearFilter(
        method="filter_by_contract",
        label="Deals with a contract ordered in this year or earlier.",
    )
    delivered_from = YearFilter(
        method="filter_by_delivery",
        label="Deals with a delivery in this year or later (and by `delivered_to`, if given).",
    )
    delivered_to = YearFilter(
        method="filter_by_delivery",
        label="Deals with a delivery in this year or earlier (and from `delivered_from`).",
    )
    value_min = AmountFilter(
        method="filter_by_contract",
        label="Deals with a contract worth at least this, in `currency` (required).",
    )
    value_max = AmountFilter(
        method="filter_by_contract",
        label="Deals with a contract worth at most this, in `currency` (required).",
    )
    currency = filters.CharFilter(
        method="filter_by_contract",
        validators=[CURRENCY],
        label="Deals with a contract valued in this currency (ISO 4217); never converted.",
    )
    updated_after = Rfc3339TimeFilter(
        method="filter_updated_after",
        label="Deals whose last event was recorded after this time (RFC 3339).",
    )
    external_id = filters.CharFilter(
        method="filter_external_id",
        max_length=200,
        label="The deal a register knows by this key, such as SIPRI:60123 (exact).",
    )
    search = filters.CharFilter(
        method="filter_search",
        max_length=300,
        label=(
            "Words in the title, summary, contract items, weapon designations and "
            "descriptions, and notes: PostgreSQL full-text search (English stemming; quotes, "
            "OR and -word as in a web search), or a case-insensitive contains on SQLite."
        ),
    )

    class Meta:
        model = DealState
        fields: list[str] = []
        form = DealFilterForm

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Each filter in turn, then the contract filters together and the delivery years."""
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        contract = _contract_conditions(data)
        if contract is not None:
            rows = DealContract.objects.filter(contract, deal=OuterRef("pk"))
            queryset = queryset.filter(Exists(rows))
        years = {
            f"year__{lookup}": data[name]
            for name, lookup in (("delivered_from", "gte"), ("delivered_to", "lte"))
            if data.get(name) is not None
        }
        if years:
            queryset = queryset.filter(
                Exists(DealDelivery.objects.filter(deal=OuterRef("pk"), **years))
            )
        return queryset

    # `value: object`: the schema reads a filter's type from its method's hint, and the
    # filters that share these methods say their own (or are text).
    def filter_by_contract(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        """Applied by `filter_queryset`, with the other contract filters, to one contract."""
        return queryset

    def filter_by_delivery(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        """Applied by `filter_queryset`: both bounds to one delivery year."""
        return queryset

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

    def filter_organisation(self, queryset: QuerySet, name: str, value: UUID) -> QuerySet:
        # One set of deal ids, each side by its own index, rather than a correlated EXISTS
        # per side: PostgreSQL cannot turn an OR of sublinks into a join.
        deals = (
            OrganisationDeal.objects.filter(organisation_id=value)
            .values("deal_id")
            .union(
                DealContract.objects.filter(buyer_id=value).values("deal_id"),
                DealContract.objects.filter(supplier_id=value).values("deal_id"),
            )
        )
        return queryset.filter(pk__in=deals)

    def filter_country(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        organisations = Organisation.objects.filter(country=value).values("id")
        rows = OrganisationDeal.objects.filter(
            deal=OuterRef("pk"), organisation_id__in=organisations
        )
        return queryset.filter(Exists(rows))

    def filter_external_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        rows = DealExternalId.objects.filter(deal=OuterRef("pk"), external_id=value)
        return queryset.filter(Exists(rows))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        texts = DealText.objects.filter(deal=OuterRef("pk"))
        if connections[queryset.db].vendor == "postgresql":
            # websearch_to_tsquery reads any input without a syntax error; the vector is the
            # GIN index's own expression, so the index answers. The words go in lower case,
            # as the text is stored: PostgreSQL's folding depends on the database's locale
            # (the C locale leaves non-ASCII letters as they are).
            query = SearchQuery(value.lower(), config=SEARCH_CONFIG, search_type="websearch")
            texts = texts.alias(search_vector=search_vector()).filter(search_vector=query)
        else:
            # Stored in lower case: SQLite's LIKE folds ASCII letters only.
            texts = texts.filter(search_text__contains=value.lower())
        return queryset.filter(Exists(texts))


def _contract_conditions(data: dict[str, Any]) -> Q | None:
    """What one contract must satisfy for the values given, or None if no contract filter
    was given."""
    lookups: dict[str, Any] = {}
    for name, lookup in (("supplier_country", "supplier"), ("buyer_country", "buyer")):
        if data.get(name):
            lookups[f"{lookup}_id__in"] = Organisation.objects.filter(country=data[name]).values(
                "id"
            )
    if data.get("category"):
        lookups["category"] = data["category"].lower()
    if data.get("ordered_from") is not None:
        lookups["order_year__gte"] = data["ordered_from"]
    if data.get("ordered_to") is not None:
        lookups["order_year__lte"] = data["ordered_to"]
    if data.get("currency"):
        lookups["value_currency"] = data["currency"]
        lookups["value_amount__isnull"] = False
    bounds: tuple[tuple[str, str], ...] = (("value_min", "gte"), ("value_max", "lte"))
    for name, lookup in bounds:
        amount: Decimal | None = data.get(name)
        if amount is not None:
            lookups[f"value_amount__{lookup}"] = amount
    return Q(**lookups) if lookups else None


class OrganisationFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Organisation.Kind.choices)
    country = filters.CharFilter(validators=[COUNTRY])
    search = filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=200, label="Text in the name."
    )

    class Meta:
        model = Organisation
        fields: list[str] = []
