"""On PostgreSQL, drop migration 0007's trigger: `store.append` notifies after the commit instead.

The trigger called `pg_notify` inside the appending transaction, and PostgreSQL commits the
transactions that have notified one at a time (PreCommit_Notify holds a database-wide lock past
the commit's WAL flush, to queue notifications in commit order), so concurrent durable appends
no longer shared a flush. `append` now sends the same empty notification on
`eventstore_appended` from `transaction.on_commit`, in a transaction of its own that waits for
no flush (the README's "Following the ledger live" has the figures of both). Reversible: going
back re-creates the trigger and its function as 0007 made them. SQLite has neither: nothing to
do.
"""

from django.db import migrations

POSTGRES_FORWARD = """
DROP TRIGGER IF EXISTS event_notify_appended ON eventstore_event;
DROP FUNCTION IF EXISTS eventstore_notify_appended();
"""

POSTGRES_BACKWARD = """
CREATE FUNCTION eventstore_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventstore_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER event_notify_appended AFTER INSERT ON eventstore_event
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_notify_appended();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0007_feed_notify")]

    operations = [migrations.RunPython(forward, backward)]
