"""Organisation history: pghistory's triggers copy each version of an organisation, append-only.

pgtrigger installs triggers on PostgreSQL only; on SQLite (the embedded demo) the table stays
empty and `tracker.deals.history` falls back to the current rows. Organisations that exist
before the triggers do get one "baseline" revision, so a name changed later still has its
earlier value on record.
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
import tracker.deals.models
import uuid
from django.db import migrations, models

BASELINE = """
INSERT INTO deals_organisationrevision
    (pgh_created_at, pgh_label, pgh_obj_id, id, name, short_name, kind, country, parent_id)
SELECT NOW(), 'baseline', id, id, name, short_name, kind, country, parent_id
FROM deals_organisation
"""


def baseline(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BASELINE, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0001_initial'),
        ('pghistory', '0007_auto_20250421_0444'),
    ]

    operations = [
        migrations.CreateModel(
            name='OrganisationRevision',
            fields=[
                ('pgh_id', models.AutoField(primary_key=True, serialize=False)),
                ('pgh_created_at', models.DateTimeField(auto_now_add=True)),
                ('pgh_label', models.TextField(help_text='The event label.')),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, serialize=False)),
                ('name', models.CharField(max_length=200)),
                ('short_name', models.CharField(blank=True, max_length=50)),
                ('kind', models.CharField(choices=[('company', 'Company'), ('government', 'Government'), ('ministry', 'Ministry'), ('joint_venture', 'Joint venture')], max_length=20)),
                ('country', models.CharField(help_text='ISO 3166-1 alpha-2 code, e.g. GB, IT, TR.', max_length=2, validators=[tracker.deals.models.validate_country])),
            ],
            options={
                'abstract': False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='organisation',
            trigger=pgtrigger.compiler.Trigger(name='insert_insert', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "deals_organisationrevision" ("country", "id", "kind", "name", "parent_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "short_name") VALUES (NEW."country", NEW."id", NEW."kind", NEW."name", NEW."parent_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."short_name"); RETURN NULL;', hash='9040a7421cf62961cf2903c93bd6d8ba97b37786', operation='INSERT', pgid='pgtrigger_insert_insert_f6163', table='deals_organisation', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='organisation',
            trigger=pgtrigger.compiler.Trigger(name='update_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD.* IS DISTINCT FROM NEW.*)', func='INSERT INTO "deals_organisationrevision" ("country", "id", "kind", "name", "parent_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "short_name") VALUES (NEW."country", NEW."id", NEW."kind", NEW."name", NEW."parent_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."short_name"); RETURN NULL;', hash='b843a120c5c428eae2494492ac44e27b96b498b0', operation='UPDATE', pgid='pgtrigger_update_update_a7efd', table='deals_organisation', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='organisation',
            trigger=pgtrigger.compiler.Trigger(name='delete_delete', sql=pgtrigger.compiler.UpsertTriggerSql(func='INSERT INTO "deals_organisationrevision" ("country", "id", "kind", "name", "parent_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "short_name") VALUES (OLD."country", OLD."id", OLD."kind", OLD."name", OLD."parent_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."short_name"); RETURN NULL;', hash='6fa5ed60c0c3ac903d8e5374ab91fd705a8400de', operation='DELETE', pgid='pgtrigger_delete_delete_fb317', table='deals_organisation', when='AFTER')),
        ),
        migrations.AddField(
            model_name='organisationrevision',
            name='parent',
            field=models.ForeignKey(blank=True, db_constraint=False, help_text='The organisation that owns or contains this one, if any.', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='deals.organisation'),
        ),
        migrations.AddField(
            model_name='organisationrevision',
            name='pgh_context',
            field=models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='pghistory.context'),
        ),
        migrations.AddField(
            model_name='organisationrevision',
            name='pgh_obj',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='revisions', to='deals.organisation'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='organisationrevision',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='366bb5a501b1938d4ed617bb0e249a7dc088dc8a', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_2b57d', table='deals_organisationrevision', when='BEFORE')),
        ),
        migrations.RunPython(baseline, migrations.RunPython.noop),
    ]
