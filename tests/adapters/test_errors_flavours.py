"""Real server errors raised as their SQLSTATE classes, with their diagnostics, in every flavour."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import Any

import pytest

import psycopg3
from psycopg3 import errors

pytestmark = pytest.mark.anyio


async def _raises(conn: Any, query: str, cls: type[errors.Error]) -> errors.Error:
    """Run ``query``, check it fails with exactly ``cls``, roll back, return the error."""
    with pytest.raises(errors.Error) as excinfo:
        await conn.execute(query)
    await conn.rollback()
    assert type(excinfo.value) is cls, excinfo.value
    return excinfo.value


@pytest.mark.parametrize(
    "query, cls, dbapi, position",
    [
        ("select * from no_such_table_e", errors.UndefinedTable, psycopg3.ProgrammingError, "15"),
        ("select nosuch_col", errors.UndefinedColumn, psycopg3.ProgrammingError, "8"),
        ("select nosuch_fn(1)", errors.UndefinedFunction, psycopg3.ProgrammingError, "8"),
        ("selec 1", errors.SyntaxError, psycopg3.ProgrammingError, "1"),
        ("select 1 / 0", errors.DivisionByZero, psycopg3.DataError, None),
        ("select 'abc'::int", errors.InvalidTextRepresentation, psycopg3.DataError, "8"),
        ("select 2147483647::int + 1", errors.NumericValueOutOfRange, psycopg3.DataError, None),
    ],
)
async def test_statement_errors(
    aconn: Any, query: str, cls: type[errors.Error], dbapi: type, position: str | None
) -> None:
    err = await _raises(aconn, query, cls)
    assert isinstance(err, dbapi)
    assert err.sqlstate == err.diag.sqlstate == cls.sqlstate
    assert err.diag.severity_nonlocalized == "ERROR"
    assert err.diag.statement_position == position
    assert err.diag.message_primary and str(err).startswith(err.diag.message_primary)
    assert err.diag.source_function and err.diag.source_line
    if cls is errors.UndefinedFunction:
        assert err.diag.message_hint and "No function matches" in err.diag.message_hint
    # The connection is usable after the rollback.
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


@pytest.fixture
async def constrained(aconn: Any) -> AsyncIterator[Any]:
    await aconn.execute(
        """
        create temp table parent (id int constraint parent_pk primary key);
        create temp table child (
            id int constraint child_pk primary key,
            parent_id int constraint child_parent_fk references parent (id),
            qty int not null constraint qty_positive check (qty > 0)
        );
        insert into parent values (1);
        insert into child values (1, 1, 1);
        """
    )
    await aconn.commit()
    yield aconn


@pytest.mark.parametrize(
    "values, cls, constraint, column",
    [
        ("(1, 1, 1)", errors.UniqueViolation, "child_pk", None),
        ("(2, 99, 1)", errors.ForeignKeyViolation, "child_parent_fk", None),
        ("(2, 1, -5)", errors.CheckViolation, "qty_positive", None),
        ("(2, 1, null)", errors.NotNullViolation, None, "qty"),
    ],
)
async def test_integrity_errors(
    constrained: Any,
    values: str,
    cls: type[errors.Error],
    constraint: str | None,
    column: str | None,
) -> None:
    err = await _raises(constrained, f"insert into child values {values}", cls)
    assert isinstance(err, psycopg3.IntegrityError)
    assert isinstance(err, errors.IntegrityConstraintViolation)
    assert err.diag.table_name == "child"
    assert err.diag.schema_name and err.diag.schema_name.startswith("pg_temp")
    assert err.diag.constraint_name == constraint
    assert err.diag.column_name == column
    assert err.diag.message_detail  # "Key (id)=(1) already exists." and the like


async def test_plpgsql_fields_and_context(aconn: Any) -> None:
    await aconn.execute(
        """
        create function pg_temp.fail_everywhere() returns void language plpgsql as $$
        begin
            raise exception using
                errcode = 'division_by_zero', message = 'custom failure',
                detail = 'the detail', hint = 'the hint', schema = 'sch', table = 'tbl',
                column = 'col', datatype = 'dtype', constraint = 'cons';
        end $$
        """
    )
    err = await _raises(aconn, "select pg_temp.fail_everywhere()", errors.DivisionByZero)
    diag = err.diag
    assert str(err).startswith("custom failure")
    assert (diag.message_primary, diag.message_detail, diag.message_hint) == (
        "custom failure",
        "the detail",
        "the hint",
    )
    assert (diag.schema_name, diag.table_name, diag.column_name) == ("sch", "tbl", "col")
    assert (diag.datatype_name, diag.constraint_name) == ("dtype", "cons")
    assert diag.context and "PL/pgSQL function" in diag.context
    assert "fail_everywhere" in diag.context
    assert diag.severity == "ERROR"


async def test_internal_query_and_position(aconn: Any) -> None:
    await aconn.execute(
        "create function pg_temp.bad_inner() returns void language plpgsql as $$"
        " begin perform nosuch_inner_col; end $$"
    )
    err = await _raises(aconn, "select pg_temp.bad_inner()", errors.UndefinedColumn)
    assert err.diag.internal_query == "SELECT nosuch_inner_col"
    assert err.diag.internal_position == "8"
    assert err.diag.statement_position is None
    assert err.diag.context and "bad_inner" in err.diag.context


async def test_query_canceled(aconn: Any) -> None:
    err = await _raises(
        aconn,
        "do $$ begin perform pg_cancel_backend(pg_backend_pid()); perform pg_sleep(10); end $$",
        errors.QueryCanceled,
    )
    assert isinstance(err, psycopg3.OperationalError)
    assert err.sqlstate == "57014"
    assert "user request" in str(err)


@pytest.mark.scenario("C3")
async def test_statement_timeout(aconn: Any) -> None:
    await aconn.execute("set statement_timeout = '50ms'")
    err = await _raises(aconn, "select pg_sleep(10)", errors.QueryCanceled)
    assert "statement timeout" in str(err)
    assert isinstance(err, errors.OperatorIntervention)


async def test_lock_not_available(aconn: Any, flavour: Any, admin: Any, dsn: str) -> None:
    table = f"errors_lock_{flavour.name.replace('-', '_')}"
    admin.execute(f"drop table if exists {table}")
    admin.execute(f"create table {table} (id int)")
    admin.execute(f"insert into {table} values (1)")
    holder = await flavour.connect(dsn)
    try:
        await holder.execute(f"select * from {table} for update")
        err = await _raises(
            aconn, f"select * from {table} for update nowait", errors.LockNotAvailable
        )
        assert isinstance(err, psycopg3.OperationalError)
        assert err.sqlstate == "55P03"
    finally:
        await holder.close()
        admin.execute(f"drop table if exists {table}")


async def test_serialization_failure(aconn: Any, flavour: Any, admin: Any) -> None:
    table = f"errors_serial_{flavour.name.replace('-', '_')}"
    admin.execute(f"drop table if exists {table}")
    admin.execute(f"create table {table} (id int primary key, v int)")
    admin.execute(f"insert into {table} values (1, 0)")
    try:
        await aconn.execute("set transaction isolation level repeatable read")
        cur = await aconn.execute(f"select v from {table}")
        assert await cur.fetchone() == (0,)
        admin.execute(f"update {table} set v = 1")
        err = await _raises(aconn, f"update {table} set v = 2", errors.SerializationFailure)
        assert isinstance(err, errors.TransactionRollback)
        assert isinstance(err, psycopg3.OperationalError)
        assert err.sqlstate == "40001"
    finally:
        admin.execute(f"drop table if exists {table}")


async def test_failed_transaction(aconn: Any) -> None:
    with pytest.raises(errors.DivisionByZero):
        await aconn.execute("select 1 / 0")
    with pytest.raises(errors.InFailedSqlTransaction) as excinfo:
        await aconn.execute("select 1")
    assert isinstance(excinfo.value, psycopg3.InternalError)
    await aconn.rollback()


async def test_error_pickles_with_diag(aconn: Any) -> None:
    err = await _raises(aconn, "select * from no_such_table_p", errors.UndefinedTable)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is errors.UndefinedTable
    assert str(copy) == str(err)
    assert copy.diag.statement_position == "15"
    assert copy.diag.message_primary == err.diag.message_primary


async def test_connection_exposes_dbapi_classes(aconn: Any) -> None:
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError"):
        assert getattr(aconn, name) is getattr(psycopg3, name)
    for name in ("OperationalError", "IntegrityError", "InternalError", "ProgrammingError"):
        assert getattr(aconn, name) is getattr(psycopg3, name)
    assert aconn.NotSupportedError is psycopg3.NotSupportedError
    with pytest.raises(aconn.ProgrammingError):
        await aconn.execute("select * from no_such_table_c")
    await aconn.rollback()
