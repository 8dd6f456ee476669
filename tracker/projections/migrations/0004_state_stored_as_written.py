# The state column as `json` on PostgreSQL, kept as the compact text written: reads splice it
# into answers as it is (see models.StoredJSONField).

from django.db import migrations

import tracker.projections.models

_BATCH = 500


def write_compact(apps, schema_editor):
    """Rewrite every stored state compact: `jsonb` printed it with spaces, and the type change
    kept that text as it was."""
    DealState = apps.get_model("projections", "DealState")
    rows = DealState.objects.using(schema_editor.connection.alias).filter(state__isnull=False)
    batch = []
    for row in rows.only("deal", "state").iterator(chunk_size=_BATCH):
        batch.append(row)
        if len(batch) == _BATCH:
            DealState.objects.using(schema_editor.connection.alias).bulk_update(batch, ["state"])
            batch = []
    if batch:
        DealState.objects.using(schema_editor.connection.alias).bulk_update(batch, ["state"])


class Migration(migrations.Migration):
    dependencies = [
        ("projections", "0003_search_rows"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dealstate",
            name="state",
            field=tracker.projections.models.StoredJSONField(null=True),
        ),
        migrations.RunPython(write_compact, migrations.RunPython.noop, elidable=True),
    ]
