"""`eventstore_append` may be told which event the caller holds as the stream's head.

A new last argument, `p_expected_head` (NULL by default, so a call without it is the call of
migration 0003): when given, the hash of the stream's event at the expected version, checked
under the same row lock as the version; another hash raises SQLSTATE DT412. A writer that
decided on a cached copy of the stream (tracker.deals.cache) appends without reading the stream
again, and the store refuses it if that copy is not what is stored. Otherwise the function is
that of migration 0003, unchanged.
"""

import importlib

from django.db import migrations

OLD_SIGNATURE = (
    "eventstore_append(uuid, integer, text, uuid[], text[], integer[], text[], text[], text[], "
    "text[], text[])"
)
NEW_SIGNATURE = OLD_SIGNATURE[:-1] + ", text)"

FORWARD = f"""
DROP FUNCTION {OLD_SIGNATURE};
CREATE FUNCTION eventstore_append(
    p_stream uuid, p_expected integer, p_actor text, p_event_ids uuid[], p_types text[],
    p_schema_versions integer[], p_data text[], p_occurred text[], p_source text[],
    p_prefixes text[], p_suffixes text[], p_expected_head text DEFAULT NULL
) RETURNS TABLE (o_version integer, o_position bigint, o_prev_hash text, o_hash text,
                 o_recorded_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    current_version integer;
    head text;
    stamp timestamptz := transaction_timestamp();
    stamp_text text := to_char(stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    n integer := array_length(p_types, 1);
    hashes text[];
    first_prev text;
BEGIN
    SELECT s.version, s.head_hash INTO current_version, head
        FROM eventstore_stream s WHERE s.id = p_stream FOR UPDATE;
    IF NOT FOUND THEN
        IF p_expected <> 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'DT409', MESSAGE = 'version conflict', DETAIL = '0';
        END IF;
        INSERT INTO eventstore_stream (id, version, head_hash, updated_at)
            VALUES (p_stream, 0, repeat('0', 64), stamp) ON CONFLICT (id) DO NOTHING;
        SELECT s.version, s.head_hash INTO current_version, head
            FROM eventstore_stream s WHERE s.id = p_stream FOR UPDATE;
    END IF;
    IF current_version <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'DT409', MESSAGE = 'version conflict',
            DETAIL = current_version::text;
    END IF;
    IF p_expected_head IS NOT NULL AND head <> p_expected_head THEN
        RAISE EXCEPTION USING ERRCODE = 'DT412', MESSAGE = 'stale head';
    END IF;
    first_prev := head;
    -- The chain is sequential; the insert is one set-based statement.
    hashes := array_fill(NULL::text, ARRAY[n]);
    FOR i IN 1 .. n LOOP
        hashes[i] := encode(
            sha256(convert_to(head || p_prefixes[i] || stamp_text || p_suffixes[i], 'UTF8')),
            'hex');
        head := hashes[i];
    END LOOP;
    UPDATE eventstore_stream
        SET version = current_version + n, head_hash = head, updated_at = stamp
        WHERE id = p_stream;
    RETURN QUERY
        INSERT INTO eventstore_event (stream_id, version, event_id, type, schema_version, data,
                                      occurred, source, actor, recorded_at, prev_hash, hash)
        SELECT p_stream, current_version + e.i, e.event_id, e.type, e.schema_version,
               e.data::jsonb, e.occurred::jsonb, e.source::jsonb, p_actor, stamp,
               COALESCE(hashes[e.i - 1], first_prev), e.hash
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_occurred, p_source,
                    hashes) WITH ORDINALITY
             AS e(event_id, type, schema_version, data, occurred, source, hash, i)
        ORDER BY e.i
        RETURNING eventstore_event.version, eventstore_event.position,
                  eventstore_event.prev_hash::text, eventstore_event.hash::text,
                  eventstore_event.recorded_at;
END
$$;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Back to migration 0003's function, as written there.
        first = importlib.import_module("tracker.eventstore.migrations.0003_append_function")
        schema_editor.execute(f"DROP FUNCTION {NEW_SIGNATURE};" + first.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0008_notify_after_commit")]

    operations = [migrations.RunPython(forward, backward)]
