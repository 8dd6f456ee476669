"""Ledger digests, append-only like events.

The same guard as 0002: triggers refuse UPDATE, DELETE and TRUNCATE of digests for every role,
the table owner included, so an earlier digest stays as it was taken; only a superuser who
disables triggers gets past them, and `verify_ledger` catches what such a change does.
"""

from django.db import migrations, models

POSTGRES_FORWARD = """
CREATE FUNCTION eventstore_refuse_digest_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger digests are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER digest_refuse_update_delete BEFORE UPDATE OR DELETE ON eventstore_ledgerdigest
    FOR EACH ROW EXECUTE FUNCTION eventstore_refuse_digest_change();
CREATE TRIGGER digest_refuse_truncate BEFORE TRUNCATE ON eventstore_ledgerdigest
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_refuse_digest_change();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER digest_refuse_truncate ON eventstore_ledgerdigest;
DROP TRIGGER digest_refuse_update_delete ON eventstore_ledgerdigest;
DROP FUNCTION eventstore_refuse_digest_change();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER digest_refuse_update BEFORE UPDATE ON eventstore_ledgerdigest
    BEGIN SELECT RAISE(ABORT, 'ledger digests are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER digest_refuse_delete BEFORE DELETE ON eventstore_ledgerdigest
    BEGIN SELECT RAISE(ABORT, 'ledger digests are append-only: DELETE refused'); END""",
]

SQLITE_BACKWARD = [
    "DROP TRIGGER digest_refuse_update",
    "DROP TRIGGER digest_refuse_delete",
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
    dependencies = [("eventstore", "0003_append_function")]

    operations = [
        migrations.CreateModel(
            name="LedgerDigest",
            fields=[
                ("sequence", models.PositiveIntegerField(primary_key=True, serialize=False)),
                ("taken_at", models.DateTimeField()),
                ("feed_cursor", models.CharField(max_length=100)),
                ("streams", models.PositiveIntegerField()),
                ("events", models.PositiveBigIntegerField()),
                ("heads_root", models.CharField(max_length=64)),
                ("heads", models.JSONField()),
                ("full", models.BooleanField()),
                ("prev_digest", models.CharField(max_length=64)),
                ("digest", models.CharField(max_length=64, unique=True)),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
