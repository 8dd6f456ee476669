"""Organisations: reference data with a validated ISO 3166-1 alpha-2 country."""

from __future__ import annotations

import threading

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import connection

from tracker.deals.models import Organisation
from tracker.deals.values import COUNTRY_CODES, CURRENCY_CODES

from ..threads import held_open

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


@pytest.mark.django_db(transaction=True)
class TestOrganisationHierarchyUnderConcurrency:
    """Two edits at once must not make a loop that neither would make alone."""

    def test_a_parent_change_waits_for_another_and_then_sees_the_loop_it_would_make(self):
        first = organisation(name="Holding A", country="GB")
        first.save()
        second = organisation(name="Holding B", country="GB")
        second.save()
        outcome: list[BaseException | None] = []

        def set_first_parent() -> None:
            mine = Organisation.objects.get(pk=first.pk)
            mine.parent_id = second.pk
            mine.save()

        def set_second_parent() -> None:
            try:
                mine = Organisation.objects.get(pk=second.pk)
                mine.parent_id = first.pk
                mine.save()
                outcome.append(None)
            except ValidationError as error:
                outcome.append(error)
            finally:
                connection.close()

        waiter = threading.Thread(target=set_second_parent)
        with held_open(set_first_parent):
            # The first change is written and not committed: a check made now passes.
            pending = Organisation.objects.get(pk=second.pk)
            pending.parent_id = first.pk
            pending.full_clean()
            waiter.start()
            waiter.join(1.0)
            waited = waiter.is_alive()
        waiter.join(30)
        assert waited, "the second change did not wait for the first"
        assert not waiter.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], ValidationError)
        assert "parent" in outcome[0].message_dict
        assert Organisation.objects.get(pk=first.pk).parent_id == second.pk
        assert Organisation.objects.get(pk=second.pk).parent_id is None

    def test_a_loop_already_stored_is_refused_not_followed_for_ever(self):
        first = organisation(name="Loop A", country="GB")
        first.save()
        second = organisation(name="Loop B", country="GB", parent=first)
        second.save()
        # Written past the check, as rows stored before it was atomic could be.
        Organisation.objects.filter(pk=first.pk).update(parent=second)
        child = organisation(name="Under the loop", country="GB", parent=first)
        with pytest.raises(ValidationError) as error:
            child.full_clean()
        assert error.value.message_dict["parent"] == [
            f"The ancestors of this parent loop back to {first.pk}."
        ]
        with pytest.raises(ValidationError):
            child.save()
        assert not Organisation.objects.filter(name="Under the loop").exists()
        # Taking a member out of the loop is how it is mended.
        second.parent = None
        second.save()
        child.save()
