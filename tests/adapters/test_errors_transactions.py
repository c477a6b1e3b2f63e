"""Server errors, transactions and autocommit, in every flavour."""

from __future__ import annotations

from typing import Any

import pytest

import psycopg3
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "sql, cls, sqlstate",
    [
        ("select * from no_such_table", psycopg3.ProgrammingError, "42P01"),
        ("select 1 / 0", psycopg3.DataError, "22012"),
        ("selec 1", psycopg3.ProgrammingError, "42601"),
        ("select 'abc'::int", psycopg3.DataError, "22P02"),
    ],
)
async def test_error_classes(aconn: Any, sql: str, cls: type, sqlstate: str) -> None:
    with pytest.raises(cls) as excinfo:
        await aconn.execute(sql)
    assert excinfo.value.sqlstate == sqlstate
    assert excinfo.value.diag.sqlstate == sqlstate
    assert excinfo.value.diag.message_primary
    assert str(excinfo.value).startswith(excinfo.value.diag.message_primary)
    assert aconn.pgconn.transaction_status == TransactionStatus.INERROR
    # PostgreSQL refuses everything in a failed transaction until rollback.
    with pytest.raises(psycopg3.InternalError) as excinfo2:
        await aconn.execute("select 1")
    assert excinfo2.value.sqlstate == "25P02"
    await aconn.rollback()
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


async def test_unique_violation(aconn: Any) -> None:
    await aconn.execute("create temp table uv (x int primary key)")
    await aconn.execute("insert into uv values (1)")
    with pytest.raises(psycopg3.IntegrityError) as excinfo:
        await aconn.execute("insert into uv values (%s)", (1,))
    assert excinfo.value.sqlstate == "23505"
    assert excinfo.value.diag.constraint_name == "uv_pkey"
    assert "duplicate key" in str(excinfo.value)


async def test_error_in_autocommit_leaves_idle(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        with pytest.raises(psycopg3.DataError):
            await conn.execute("select 1 / 0")
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        cur = await conn.execute("select 2")
        assert await cur.fetchone() == (2,)
    finally:
        await conn.close()


async def test_implicit_transaction(aconn: Any) -> None:
    assert aconn.pgconn.transaction_status == TransactionStatus.IDLE
    await aconn.execute("select 1")
    assert aconn.pgconn.transaction_status == TransactionStatus.INTRANS
    await aconn.commit()
    assert aconn.pgconn.transaction_status == TransactionStatus.IDLE
    await aconn.commit()  # nothing to commit: no error


async def test_commit_and_rollback(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists tx_test")
    admin.execute("create table tx_test (x int)")
    conn = await flavour.connect(dsn)
    try:
        await conn.execute("insert into tx_test values (1)")
        assert admin.execute("select count(*) from tx_test").fetchone() == (0,)
        await conn.commit()
        assert admin.execute("select count(*) from tx_test").fetchone() == (1,)
        await conn.execute("insert into tx_test values (2)")
        await conn.rollback()
        assert admin.execute("select count(*) from tx_test").fetchone() == (1,)
    finally:
        await conn.close()


async def test_autocommit(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists ac_test")
    admin.execute("create table ac_test (x int)")
    conn = await flavour.connect(dsn)
    try:
        assert not conn.autocommit
        conn.autocommit = True
        await conn.execute("insert into ac_test values (1)")
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        assert admin.execute("select count(*) from ac_test").fetchone() == (1,)
        conn.autocommit = False
        await conn.execute("insert into ac_test values (2)")
        with pytest.raises(psycopg3.ProgrammingError, match="inside a transaction"):
            conn.autocommit = True
        await conn.rollback()
        assert admin.execute("select count(*) from ac_test").fetchone() == (1,)
    finally:
        await conn.close()


async def test_bad_query_input_keeps_connection_usable(aconn: Any) -> None:
    with pytest.raises(psycopg3.ProgrammingError):
        await aconn.execute("select %s, %s", (1,))
    with pytest.raises(psycopg3.DataError, match="NUL"):
        await aconn.execute("select %s::text", ("a\x00b",))
    with pytest.raises(psycopg3.ProgrammingError, match="cannot adapt"):
        await aconn.execute("select %s", (object(),))
    cur = await aconn.execute("select 'still fine'")
    assert await cur.fetchone() == ("still fine",)
