"""Prepared statements that vanish behind the driver's back, in every flavour (issue 14, case 7).

A statement can be deallocated with no command tag the driver recognises
(``DEALLOCATE`` in a ``DO`` block or in a function): its next execution by
name fails with ``InvalidSqlStatementName`` (SQLSTATE 26000). The driver
forgets its prepared statements then, as after a stale plan, and:

* with no transaction open before the command (autocommit, or the DB-API
  transaction not begun yet), runs the command again at once, so the user
  sees it succeed, and it ran exactly once;
* in a transaction (or a pipeline block), raises the error; the next run
  prepares the statement anew.

Deallocating an evicted statement that is already gone is not an error
either: the command that evicted it succeeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from fix_flavours import fresh_table
from psycopg3 import errors
from psycopg3.pq import PipelineStatus, TransactionStatus

pytestmark = pytest.mark.anyio

WAYS = ["do_block", "function", "by_name"]


@pytest.fixture
def table(admin: Any, flavour: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    # One table per test (names past 63 bytes would be truncated into one).
    name = "trust_prep_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    yield from fresh_table(admin, name, "id int primary key")


def server_ids(admin: Any, table: str) -> list[int]:
    """The rows another session sees: the server's truth."""
    return [row[0] for row in admin.execute(f"select id from {table} order by id").fetchall()]


async def prepared(conn: Any) -> list[str]:
    """The driver's statements the server has (``prepare=False``: this query adds none)."""
    cur = await conn.execute(
        "select statement from pg_prepared_statements where name like '\\_pg3\\_%%' order by 1",
        prepare=False,
    )
    names = [row[0] for row in await cur.fetchall()]
    if not conn.autocommit:
        await conn.commit()
    return names


async def vanish(conn: Any, way: str) -> None:
    """Deallocate the driver's statements in a way whose command tag does not say so."""
    if way == "do_block":
        await conn.execute("do $$ begin execute 'deallocate all'; end $$")
    elif way == "function":
        await conn.execute(
            "create or replace function pg_temp.trust_deallocate_all() returns void"
            " language sql as 'deallocate all'"
        )
        await conn.execute("select pg_temp.trust_deallocate_all()")
    else:
        # One statement by its name: the tag is "DEALLOCATE", which names nothing.
        cur = await conn.execute(
            "select name from pg_prepared_statements where name like '\\_pg3\\_%%'", prepare=False
        )
        for (name,) in await cur.fetchall():
            await conn.execute(f'deallocate "{name}"')
    if not conn.autocommit:
        await conn.commit()
    assert await prepared(conn) == []


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "no_transaction"])
async def test_execute_runs_again(admin: Any, table: str, connect: Any, autocommit: bool) -> None:
    conn = await connect(autocommit=autocommit)
    insert = f"insert into {table} values (%s) returning id"
    statement = f"insert into {table} values ($1) returning id"
    ids: list[int] = []
    for n, way in enumerate(WAYS):
        first = 10 * n
        cur = await conn.execute(insert, (first,), prepare=True)
        assert await cur.fetchall() == [(first,)]
        if not autocommit:
            await conn.commit()
        assert await prepared(conn) == [statement]
        await vanish(conn, way)
        for i in range(first + 1, first + 3):  # stuck before: every later run failed
            cur = await conn.execute(insert, (i,))
            assert await cur.fetchall() == [(i,)], way
            assert cur.rowcount == 1
            if not autocommit:
                assert conn.info.transaction_status == TransactionStatus.INTRANS
                await conn.commit()
        ids += range(first, first + 3)
        assert server_ids(admin, table) == ids  # each run exactly once
        # Prepared again when asked (or due).
        cur = await conn.execute(insert, (first + 3,), prepare=True)
        assert await cur.fetchall() == [(first + 3,)]
        if not autocommit:
            await conn.commit()
        ids.append(first + 3)
        assert await prepared(conn) == [statement]
        assert server_ids(admin, table) == ids


async def test_execute_in_a_transaction_raises_then_recovers(
    admin: Any, table: str, connect: Any
) -> None:
    conn = await connect()
    insert = f"insert into {table} values (%s)"
    await conn.execute(insert, (1,), prepare=True)
    await conn.commit()
    await vanish(conn, "do_block")
    await conn.execute(f"insert into {table} values (10)")  # the transaction's own work
    with pytest.raises(errors.InvalidSqlStatementName):
        await conn.execute(insert, (2,))  # not run again: the transaction is lost
    assert conn.info.transaction_status == TransactionStatus.INERROR
    await conn.rollback()
    assert server_ids(admin, table) == [1]
    await conn.execute(insert, (2,))
    await conn.commit()
    assert server_ids(admin, table) == [1, 2]
    await conn.execute(insert, (3,), prepare=True)
    await conn.commit()
    assert await prepared(conn) == [f"insert into {table} values ($1)"]


async def test_transaction_block_raises_then_recovers(admin: Any, table: str, connect: Any) -> None:
    conn = await connect(autocommit=True)
    insert = f"insert into {table} values (%s)"
    await conn.execute(insert, (1,), prepare=True)
    await vanish(conn, "function")
    with pytest.raises(errors.InvalidSqlStatementName):
        async with conn.transaction():
            await conn.execute(insert, (2,))
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert server_ids(admin, table) == [1]
    async with conn.transaction():
        await conn.execute(insert, (2,))
    assert server_ids(admin, table) == [1, 2]


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "no_transaction"])
async def test_executemany_runs_again(
    admin: Any, table: str, connect: Any, autocommit: bool
) -> None:
    conn = await connect(autocommit=autocommit)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s)"
    await cur.executemany(insert, [(i,) for i in range(150)])  # prepared: a large batch
    if not autocommit:
        await conn.commit()
    for n, way in enumerate(WAYS, 1):
        assert await prepared(conn) == [f"insert into {table} values ($1)"]
        await vanish(conn, way)
        await cur.executemany(insert, [(i,) for i in range(150 * n, 150 * (n + 1))])
        assert cur.rowcount == 150
        if not autocommit:
            await conn.commit()
        # Each row exactly once.
        assert server_ids(admin, table) == list(range(150 * (n + 1))), way


async def test_executemany_in_a_transaction_raises_then_recovers(
    admin: Any, table: str, connect: Any
) -> None:
    conn = await connect()
    cur = conn.cursor()
    insert = f"insert into {table} values (%s)"
    await cur.executemany(insert, [(i,) for i in range(150)])
    await conn.commit()
    await vanish(conn, "do_block")
    await conn.execute(f"insert into {table} values (-1)")
    with pytest.raises(errors.InvalidSqlStatementName):
        await cur.executemany(insert, [(i,) for i in range(150, 300)])
    assert cur.rowcount == -1
    await conn.rollback()
    assert server_ids(admin, table) == list(range(150))
    await cur.executemany(insert, [(i,) for i in range(150, 300)])
    assert cur.rowcount == 150
    await conn.commit()
    assert server_ids(admin, table) == list(range(300))


async def test_pipeline_raises_then_recovers(admin: Any, table: str, connect: Any) -> None:
    conn = await connect(autocommit=True)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s)"
    await conn.execute(insert, (1,), prepare=True)
    await vanish(conn, "do_block")
    with pytest.raises(errors.InvalidSqlStatementName):
        async with conn.pipeline():
            await cur.execute(insert, (2,))
    assert conn.pgconn.pipeline_status == PipelineStatus.OFF
    assert server_ids(admin, table) == [1]
    # Forgotten: the next runs are unnamed, or prepared anew.
    async with conn.pipeline():
        await cur.execute(insert, (2,))
        await cur.executemany(insert, [(i,) for i in range(3, 20)])
    assert cur.rowcount == 17
    assert server_ids(admin, table) == list(range(1, 20))
    assert await prepared(conn) == [f"insert into {table} values ($1)"]


async def test_pipeline_executemany_raises_then_recovers(
    admin: Any, table: str, connect: Any
) -> None:
    conn = await connect(autocommit=True)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s)"
    async with conn.pipeline():
        await cur.executemany(insert, [(i,) for i in range(10)])
    assert await prepared(conn) == [f"insert into {table} values ($1)"]
    await vanish(conn, "by_name")
    with pytest.raises(errors.InvalidSqlStatementName):
        async with conn.pipeline():
            await cur.executemany(insert, [(i,) for i in range(10, 20)])
    assert server_ids(admin, table) == list(range(10))
    async with conn.pipeline():
        await cur.executemany(insert, [(i,) for i in range(10, 20)])
    assert cur.rowcount == 10
    assert server_ids(admin, table) == list(range(20))


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "no_transaction"])
async def test_evicting_a_vanished_statement(
    admin: Any, table: str, connect: Any, autocommit: bool
) -> None:
    # The cache holds one statement: preparing another deallocates the first,
    # which is already gone. The command that evicted it succeeded: no error.
    conn = await connect(autocommit=autocommit)
    conn.prepared_max = 1
    await conn.execute(f"select count(*) from {table} where id > %s", (0,), prepare=True)
    if not autocommit:
        await conn.commit()
    await vanish(conn, "do_block")
    cur = await conn.execute(f"insert into {table} values (%s)", (1,), prepare=True)
    assert cur.rowcount == 1
    if not autocommit:
        await conn.commit()
    assert server_ids(admin, table) == [1]
    assert await prepared(conn) == [f"insert into {table} values ($1)"]


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "no_transaction"])
async def test_evicted_statements_are_deallocated(connect: Any, autocommit: bool) -> None:
    # Out of autocommit every command ends inside a transaction, where the
    # evicted statements are not deallocated: they piled up on the server.
    conn = await connect(autocommit=autocommit)
    conn.prepared_max = 3
    for n in range(10):
        await conn.execute(f"select %s::int + {n}", (1,), prepare=True)
        if not autocommit:
            await conn.commit()
    cur = conn.cursor()
    await cur.executemany("select %s::int - 1", [(1,)] * 10)
    if not autocommit:
        await conn.commit()
    assert await prepared(conn) == [
        "select $1::int + 8",
        "select $1::int + 9",
        "select $1::int - 1",
    ]
