"""Statements prepared once per PostgreSQL session answer as the SQL they hold, whatever
happens to the session's transactions and connection."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tracker.api.prepared import PreparedStatement

pytestmark = [pytest.mark.django_db]

SUM = PreparedStatement("test_sum", "SELECT %s + %s, %s", ["int", "int", "text"])


def run(statement: PreparedStatement, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        statement.execute(cursor, params)
        return cursor.fetchall()


def prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_answers_as_the_sql_it_holds():
    assert run(SUM, [2, 3, "it's"]) == [(5, "it's")]
    assert run(SUM, [-1, 1, ""]) == [(0, "")]


@pytest.mark.postgres
def test_is_prepared_once_and_then_run_by_name():
    run(SUM, [1, 1, "a"])
    assert "tracker_api_test_sum" in prepared_names()
    with connection.cursor() as cursor:
        cursor.execute("EXECUTE tracker_api_test_sum(40, 2, 'b')")
        assert cursor.fetchall() == [(42, "b")]


@pytest.mark.postgres
def test_outlives_a_rolled_back_transaction_that_prepared_it():
    statement = PreparedStatement("test_rollback", "SELECT %s::int * 2", ["int"])
    with transaction.atomic():
        assert run(statement, [4]) == [(8,)]
        transaction.set_rollback(True)
    assert run(statement, [5]) == [(10,)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_session_prepares_it_again():
    run(SUM, [1, 2, "x"])
    connection.close()
    assert "tracker_api_test_sum" not in prepared_names()
    assert run(SUM, [3, 4, "y"]) == [(7, "y")]


@pytest.mark.parametrize(
    ("name", "sql", "types", "message"),
    [
        ("two words", "SELECT 1", [], "not a plain SQL identifier"),
        ("Upper", "SELECT 1", [], "not a plain SQL identifier"),
        ("fewer_types", "SELECT %s, %s", ["int"], "2 placeholders, 1 types"),
        ("more_types", "SELECT %s", ["int", "int"], "1 placeholders, 2 types"),
    ],
)
def test_refuses_a_name_or_types_that_do_not_fit(name, sql, types, message):
    with pytest.raises(ValueError, match=message):
        PreparedStatement(name, sql, types)


@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs its reads
def test_is_prepared_again_when_the_session_forgot_it():
    assert run(SUM, [1, 1, "a"]) == [(2, "a")]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a connection pool's reset does

    assert run(SUM, [2, 2, "b"]) == [(4, "b")]
    assert "tracker_api_test_sum" in prepared_names()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_is_prepared_again_when_a_migration_changed_a_returned_column_s_type():
    # The read model's state went from jsonb to json under running web processes: their
    # prepared read failed with "cached plan must not change result type".
    statement = PreparedStatement(
        "test_retyped", "SELECT v FROM test_retyped WHERE k = %s", ["int"]
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_retyped (k int, v jsonb)")
        cursor.execute("""INSERT INTO test_retyped VALUES (1, '{"a": 1}')""")
    try:
        assert run(statement, [1]) == [('{"a": 1}',)]  # jsonb, handed over as text by Django
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE test_retyped ALTER COLUMN v TYPE json USING v::json")
        assert run(statement, [1]) == [({"a": 1},)]  # json, decoded by psycopg
        assert run(statement, [1]) == [({"a": 1},)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE test_retyped")
