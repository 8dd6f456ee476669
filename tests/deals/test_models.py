"""Organisations: reference data with a validated ISO 3166-1 alpha-2 country."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError

from tracker.deals.models import Organisation
from tracker.deals.values import COUNTRY_CODES, CURRENCY_CODES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def organisation(**changes: object) -> Organisation:
    values = {
        "name": "Leonardo",
        "short_name": "",
        "kind": Organisation.Kind.COMPANY,
        "country": "IT",
    }
    return Organisation(**(values | changes))


class TestOrganisation:
    def test_a_valid_organisation_saves_with_a_uuid(self) -> None:
        org = organisation()
        org.full_clean()
        org.save()
        assert Organisation.objects.get(pk=org.pk).country == "IT"
        assert len(str(org.id)) == 36

    @pytest.mark.parametrize("country", ["XX", "it", "ITA", "UK", ""])
    def test_refuses_a_country_that_is_not_iso_3166_alpha_2(self, country: str) -> None:
        with pytest.raises(ValidationError) as error:
            organisation(country=country).full_clean()
        assert "country" in error.value.message_dict

    def test_refuses_an_unknown_kind(self) -> None:
        with pytest.raises(ValidationError) as error:
            organisation(kind="club").full_clean()
        assert "kind" in error.value.message_dict

    def test_refuses_an_organisation_that_is_its_own_ancestor(self) -> None:
        parent = organisation(name="BAE Systems", country="GB")
        parent.save()
        child = organisation(name="Malloy Aeronautics", country="GB", parent=parent)
        child.save()
        parent.parent = child
        with pytest.raises(ValidationError) as error:
            parent.full_clean()
        assert "parent" in error.value.message_dict

    def test_is_in_the_admin(self) -> None:
        assert Organisation in admin.site._registry


def test_the_code_lists_hold_the_codes_used_here() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"GB", "IT", "TR", "FR", "DE", "US"} <= COUNTRY_CODES
    assert {"GBP", "EUR", "TRY", "USD"} <= CURRENCY_CODES
    assert "XXX" not in CURRENCY_CODES
