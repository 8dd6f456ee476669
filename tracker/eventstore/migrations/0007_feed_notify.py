"""On PostgreSQL, announce new events on the channel `eventstore_appended` when they commit.

A statement-level AFTER INSERT trigger calls `pg_notify('eventstore_appended', '')`. PostgreSQL
delivers a notification only when its transaction commits (never for one rolled back), and folds
identical notifications of one transaction into one, so an append of any size sends one empty
message. Followers of the feed (tracker.eventstore.notify) LISTEN on the channel and read the
feed when woken, instead of polling the table. SQLite has no LISTEN/NOTIFY: nothing to install.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION eventstore_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventstore_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER event_notify_appended AFTER INSERT ON eventstore_event
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_notify_appended();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER event_notify_appended ON eventstore_event;
DROP FUNCTION eventstore_notify_appended();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0006_stream_guard")]

    operations = [migrations.RunPython(forward, backward)]
