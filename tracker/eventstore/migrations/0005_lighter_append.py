"""Less work in every append, with the same guarantees.

- The index on `event.stream_id` goes: the unique (stream_id, version) index serves every
  lookup by stream, and each extra index is one more write per event.
- The index on `stream.updated_at` goes: nothing needs it fast (the projection sweep joins every
  stream to its read model anyway), and without it moving a stream on can be a HOT update.
- The trigger that stamps `recorded_at` fires only when the INSERT says another time. The append
  function already stamps `transaction_timestamp()`; a trigger WHEN condition is evaluated
  without calling PL/pgSQL, so the common case costs a comparison. Any other INSERT still gets
  the database's time.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRES_FORWARD = """
DROP TRIGGER event_stamp_recorded_at ON eventstore_event;
CREATE TRIGGER event_stamp_recorded_at BEFORE INSERT ON eventstore_event
    FOR EACH ROW WHEN (NEW.recorded_at IS DISTINCT FROM transaction_timestamp())
    EXECUTE FUNCTION eventstore_stamp_recorded_at();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER event_stamp_recorded_at ON eventstore_event;
CREATE TRIGGER event_stamp_recorded_at BEFORE INSERT ON eventstore_event
    FOR EACH ROW EXECUTE FUNCTION eventstore_stamp_recorded_at();
"""


def _drop_stream_id_index(schema_editor):
    # Only the index goes. AlterField would rebuild the whole table on SQLite, which drops
    # its append-only triggers with it.
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "eventstore_event")
    for name, details in constraints.items():
        if details["index"] and not details["unique"] and details["columns"] == ["stream_id"]:
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def forward(apps, schema_editor):
    _drop_stream_id_index(schema_editor)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    schema_editor.execute(
        "CREATE INDEX eventstore_event_stream_id_7e6cee6e ON eventstore_event (stream_id)"
    )


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0004_ledgerdigest")]

    operations = [
        migrations.RemoveIndex(model_name="stream", name="stream_updated_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="stream",
                    field=models.ForeignKey(
                        db_column="stream_id",
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="eventstore.stream",
                    ),
                )
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
