"""Organisation history: each change recorded by trigger with who and when; past names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from django.db import DatabaseError, transaction

from tracker.deals import history
from tracker.deals.models import Organisation, OrganisationRevision

from .builders import BAYKAR, LEONARDO

MISSING = UUID("00000000-0000-4000-8000-0000000000ff")
MICROSECOND = timedelta(microseconds=1)


def create(org_id: UUID = BAYKAR, name: str = "Baykar Makina", **changes: str) -> Organisation:
    values = {"short_name": "", "kind": "company", "country": "TR"} | changes
    return Organisation.objects.create(id=org_id, name=name, **values)


def rename(org_id: UUID, name: str, *, actor: str, via: str = "test") -> None:
    # Each edit commits on its own, as an admin or API request would: the history's time is
    # the writing transaction's.
    with history.edited_by(actor, via=via), transaction.atomic():
        org = Organisation.objects.get(id=org_id)
        org.name = name
        org.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestRevisions:
    def test_records_insert_and_each_update_with_who_and_what_changed(self) -> None:
        with history.edited_by("seeder", via="seed"):
            create()
        rename(BAYKAR, "Baykar Technologies", actor="alice", via="admin")
        rename(BAYKAR, "Baykar Defence", actor="bob", via="api")

        revisions = history.revisions(BAYKAR)

        assert [(r.label, r.actor, r.via) for r in revisions] == [
            ("insert", "seeder", "seed"),
            ("update", "alice", "admin"),
            ("update", "bob", "api"),
        ]
        assert revisions[1].changes == {"name": ("Baykar Makina", "Baykar Technologies")}
        assert revisions[2].changes == {"name": ("Baykar Technologies", "Baykar Defence")}
        assert revisions[0].changes["country"] == (None, "TR")
        assert revisions[0].at < revisions[1].at < revisions[2].at

    def test_a_save_that_changes_nothing_records_nothing(self) -> None:
        create()
        Organisation.objects.get(id=BAYKAR).save()
        assert [r.label for r in history.revisions(BAYKAR)] == ["insert"]

    def test_an_edit_outside_edited_by_is_recorded_without_a_name(self) -> None:
        create()
        Organisation.objects.filter(id=BAYKAR).update(country="IT")
        last = history.revisions(BAYKAR)[-1]
        assert (last.actor, last.via, last.changes) == ("", "", {"country": ("TR", "IT")})

    def test_a_deletion_keeps_the_last_name_on_record(self) -> None:
        create()
        with history.edited_by("alice", via="admin"):
            Organisation.objects.filter(id=BAYKAR).delete()
        last = history.revisions(BAYKAR)[-1]
        assert (last.label, last.actor) == ("delete", "alice")
        assert history.organisation_names([BAYKAR], at=None) == {BAYKAR: "Baykar Makina"}

    def test_revisions_are_append_only(self) -> None:
        create()
        with pytest.raises(DatabaseError, match="Cannot update or delete"):
            OrganisationRevision.objects.filter(pgh_obj_id=BAYKAR).update(name="Rewritten")
        with pytest.raises(DatabaseError, match="Cannot update or delete"):
            OrganisationRevision.objects.filter(pgh_obj_id=BAYKAR).delete()
        assert [r.snapshot.name for r in history.revisions(BAYKAR)] == ["Baykar Makina"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestOrganisationNames:
    def test_gives_the_old_name_before_the_edit_and_the_new_after(self) -> None:
        create()
        create(LEONARDO, "Leonardo", country="IT")
        rename(BAYKAR, "Baykar Technologies", actor="alice")
        created, renamed = (r.at for r in history.revisions(BAYKAR))

        before = history.organisation_names([BAYKAR, LEONARDO], at=renamed - MICROSECOND)
        after = history.organisation_names([BAYKAR, LEONARDO], at=renamed)

        assert before == {BAYKAR: "Baykar Makina", LEONARDO: "Leonardo"}
        assert after == {BAYKAR: "Baykar Technologies", LEONARDO: "Leonardo"}
        assert history.organisation_names([BAYKAR], at=created) == {BAYKAR: "Baykar Makina"}
        assert history.organisation_names([BAYKAR], at=None) == {BAYKAR: "Baykar Technologies"}

    def test_before_its_first_revision_an_organisation_has_its_first_recorded_name(self) -> None:
        create()
        rename(BAYKAR, "Baykar Technologies", actor="alice")
        created = history.revisions(BAYKAR)[0].at
        names = history.organisation_names([BAYKAR], at=created - timedelta(days=365))
        assert names == {BAYKAR: "Baykar Makina"}

    def test_leaves_out_ids_of_no_organisation_and_accepts_strings(self) -> None:
        create()
        names = history.organisation_names([str(BAYKAR), MISSING, "not-an-id"], at=None)
        assert names == {BAYKAR: "Baykar Makina"}

    def test_finds_the_organisations_anywhere_in_a_state(self) -> None:
        create(short_name="Baykar")
        create(LEONARDO, "Leonardo", country="IT")
        rename(BAYKAR, "Baykar Technologies", actor="alice")
        renamed = history.revisions(BAYKAR)[-1].at
        state = {
            "parties": [{"organisation": str(BAYKAR), "role": "partner"}],
            "mou": {"parties": [str(BAYKAR), str(LEONARDO)], "scope": str(MISSING)},
        }
        found = history.organisations_in(state, at=renamed - MICROSECOND)
        assert {key: org.label for key, org in found.items()} == {
            BAYKAR: "Baykar Makina (Baykar)",
            LEONARDO: "Leonardo",
        }


@pytest.mark.django_db(databases=["sqlite"])
class TestOnSqlite:
    """The embedded demo: nothing is recorded, edits still work, names are today's."""

    def test_edits_inside_edited_by_work_and_names_are_the_current_ones(self) -> None:
        assert history.is_recorded("sqlite") is False
        rows = Organisation.objects.using("sqlite")
        with history.edited_by("alice", via="admin", using="sqlite"):
            rows.create(id=BAYKAR, name="Baykar Makina", kind="company", country="TR")
            rows.filter(id=BAYKAR).update(name="Baykar Technologies")
        assert history.revisions(BAYKAR, using="sqlite") == []
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        for at in (None, long_ago):
            names = history.organisation_names([BAYKAR], at=at, using="sqlite")
            assert names == {BAYKAR: "Baykar Technologies"}
