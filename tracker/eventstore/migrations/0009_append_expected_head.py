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

# The function of migration 0003, as written there, with the new argument and its check; the
# rest of its body stays in one place.
FIRST = importlib.import_module("tracker.eventstore.migrations.0003_append_function")
ARGUMENTS = "p_prefixes text[], p_suffixes text[]\n)"
VERSION_CHECK = """    IF current_version <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'DT409', MESSAGE = 'version conflict',
            DETAIL = current_version::text;
    END IF;
"""
HEAD_CHECK = """    IF p_expected_head IS NOT NULL AND head <> p_expected_head THEN
        RAISE EXCEPTION USING ERRCODE = 'DT412', MESSAGE = 'stale head';
    END IF;
"""


def _with_head_check(function: str) -> str:
    for anchor in (ARGUMENTS, VERSION_CHECK):
        if function.count(anchor) != 1:
            raise ValueError(f"migration 0003's function no longer reads {anchor!r}")
    return function.replace(
        ARGUMENTS, "p_prefixes text[], p_suffixes text[], p_expected_head text DEFAULT NULL\n)"
    ).replace(VERSION_CHECK, VERSION_CHECK + HEAD_CHECK)


FORWARD = f"DROP FUNCTION {OLD_SIGNATURE};" + _with_head_check(FIRST.FORWARD)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Back to migration 0003's function, as written there.
        schema_editor.execute(f"DROP FUNCTION {NEW_SIGNATURE};" + FIRST.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0008_notify_after_commit")]

    operations = [migrations.RunPython(forward, backward)]
