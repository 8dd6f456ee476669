# The state column as `json` on PostgreSQL, kept as the compact text written: reads splice it
# into answers as it is (see models.StoredJSONField).
#
# Not atomic: the type change holds an exclusive lock on the table while it rewrites it, and
# rewriting every state compact as well would hold it for minutes on a large read model (about
# 4 s per 20,000 states). The states are rewritten afterwards a batch per transaction, each row
# locked as the projector locks it, so a projection written meanwhile is never overwritten
# with an older state. Until a state is rewritten the API still answers compact JSON
# (`api.renderers.json_values` re-encodes a spaced text).

from django.db import migrations, transaction

import tracker.projections.models

_BATCH = 500


def write_compact(apps, schema_editor):
    """Rewrite every stored state compact: `jsonb` printed it with spaces, and the type change
    kept that text as it was."""
    DealState = apps.get_model("projections", "DealState")
    alias = schema_editor.connection.alias
    rows = DealState.objects.using(alias)
    last = None
    while True:
        ids = rows.filter(state__isnull=False).order_by("deal")
        if last is not None:
            ids = ids.filter(deal__gt=last)
        batch_ids = list(ids.values_list("deal", flat=True)[:_BATCH])
        if not batch_ids:
            return
        with transaction.atomic(using=alias):
            batch = list(
                rows.select_for_update().filter(deal__in=batch_ids, state__isnull=False)
            )
            rows.bulk_update(batch, ["state"])
        last = batch_ids[-1]


class Migration(migrations.Migration):
    atomic = False

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
