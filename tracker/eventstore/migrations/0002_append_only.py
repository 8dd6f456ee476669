"""Make events append-only in the database, and give PostgreSQL's feed its transaction ids.

The triggers refuse UPDATE, DELETE and TRUNCATE of events for every role, the table owner
included; only a superuser who disables triggers (session_replication_role = replica) gets past
them, and `verify_stream` catches what such a change does. On PostgreSQL, recorded_at is the
writing transaction's start time whatever the INSERT says, so the ledger time comes from the
database clock alone.
"""

from django.db import migrations

POSTGRES_FORWARD = """
ALTER TABLE eventstore_event
    ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX event_feed_idx ON eventstore_event (txid, position);

CREATE FUNCTION eventstore_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE FUNCTION eventstore_stamp_recorded_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.recorded_at := transaction_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER event_refuse_update_delete BEFORE UPDATE OR DELETE ON eventstore_event
    FOR EACH ROW EXECUTE FUNCTION eventstore_refuse_change();
CREATE TRIGGER event_refuse_truncate BEFORE TRUNCATE ON eventstore_event
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_refuse_change();
CREATE TRIGGER event_stamp_recorded_at BEFORE INSERT ON eventstore_event
    FOR EACH ROW EXECUTE FUNCTION eventstore_stamp_recorded_at();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER event_stamp_recorded_at ON eventstore_event;
DROP TRIGGER event_refuse_truncate ON eventstore_event;
DROP TRIGGER event_refuse_update_delete ON eventstore_event;
DROP FUNCTION eventstore_stamp_recorded_at();
DROP FUNCTION eventstore_refuse_change();
DROP INDEX event_feed_idx;
ALTER TABLE eventstore_event DROP COLUMN txid;
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER event_refuse_update BEFORE UPDATE ON eventstore_event
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER event_refuse_delete BEFORE DELETE ON eventstore_event
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END""",
]

SQLITE_BACKWARD = [
    "DROP TRIGGER event_refuse_update",
    "DROP TRIGGER event_refuse_delete",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
