"""Transaction blocks, savepoints, Rollback and transaction characteristics, in every flavour."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import psycopg3
from fix_flavours import ASYNC_FLAVOURS, in_pg_sleep, rows
from fix_wait import await_until
from psycopg3 import IsolationLevel, ProgrammingError, Rollback
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio


async def test_block_commits_on_success(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction() as tx:
        assert tx.status == "active"
        await aconn.execute(f"insert into {table} values (1)")
        assert aconn.info.transaction_status == TransactionStatus.INTRANS
        assert rows(admin, table) == []
    assert tx.status == "committed"
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert rows(admin, table) == [1]


async def test_block_rolls_back_on_error(aconn: Any, admin: Any, table: str) -> None:
    with pytest.raises(ZeroDivisionError):
        async with aconn.transaction() as tx:
            await aconn.execute(f"insert into {table} values (1)")
            1 / 0  # noqa: B018
    assert tx.status == "rolled_back"
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert rows(admin, table) == []


async def test_nested_blocks_use_savepoints(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction() as outer:
        await aconn.execute(f"insert into {table} values (1)")
        with pytest.raises(psycopg3.DataError):
            async with aconn.transaction() as inner:
                assert inner.savepoint_name == "_pg3_2"
                await aconn.execute(f"insert into {table} values (2)")
                await aconn.execute("select 1 / 0")
        assert inner.status == "rolled_back"
        # The savepoint recovered the outer transaction from the error.
        assert aconn.info.transaction_status == TransactionStatus.INTRANS
        async with aconn.transaction() as inner2:
            await aconn.execute(f"insert into {table} values (3)")
        assert inner2.status == "committed"
    assert outer.status == "committed"
    assert rows(admin, table) == [1, 3]


async def test_rollback_exception_leaves_quietly(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction() as outer:
        await aconn.execute(f"insert into {table} values (1)")
        async with aconn.transaction() as inner:
            await aconn.execute(f"insert into {table} values (2)")
            raise Rollback
        assert inner.status == "rolled_back"
        await aconn.execute(f"insert into {table} values (3)")
    assert outer.status == "committed"
    assert rows(admin, table) == [1, 3]


async def test_rollback_targets_an_outer_block(aconn: Any, admin: Any, table: str) -> None:
    reached = False
    async with aconn.transaction() as outer:
        await aconn.execute(f"insert into {table} values (1)")
        async with aconn.transaction() as middle:
            await aconn.execute(f"insert into {table} values (2)")
            async with aconn.transaction() as inner:
                await aconn.execute(f"insert into {table} values (3)")
                raise Rollback(middle)
            reached = True  # not reached: the Rollback goes on to `middle`
        await aconn.execute(f"insert into {table} values (4)")
    assert not reached
    assert (inner.status, middle.status, outer.status) == ("rolled_back",) * 2 + ("committed",)
    assert rows(admin, table) == [1, 4]


async def test_rollback_targets_outermost(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction() as outer:
        await aconn.execute(f"insert into {table} values (1)")
        async with aconn.transaction():
            raise Rollback(outer)
    assert outer.status == "rolled_back"
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert rows(admin, table) == []


async def test_force_rollback(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction(force_rollback=True) as tx:
        await aconn.execute(f"insert into {table} values (1)")
    assert tx.status == "rolled_back"
    assert rows(admin, table) == []


async def test_block_in_autocommit_begins(flavour: Any, dsn: str, admin: Any, table: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.transaction():
            await conn.execute(f"insert into {table} values (1)")
            assert conn.info.transaction_status == TransactionStatus.INTRANS
            assert rows(admin, table) == []
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert rows(admin, table) == [1]
    finally:
        await conn.close()


async def test_block_in_open_transaction_keeps_it_open(aconn: Any, admin: Any, table: str) -> None:
    await aconn.execute(f"insert into {table} values (1)")  # DB-API implicit transaction
    async with aconn.transaction() as tx:
        assert tx.savepoint_name == "_pg3_1"
        await aconn.execute(f"insert into {table} values (2)")
    assert tx.status == "committed"
    assert aconn.info.transaction_status == TransactionStatus.INTRANS
    assert rows(admin, table) == []
    await aconn.commit()
    assert rows(admin, table) == [1, 2]


async def test_error_caught_inside_block_rolls_it_back(aconn: Any, admin: Any, table: str) -> None:
    async with aconn.transaction() as outer:
        await aconn.execute(f"insert into {table} values (1)")
        async with aconn.transaction() as inner:
            with pytest.raises(psycopg3.DataError):
                await aconn.execute("select 1 / 0")
        assert inner.status == "rolled_back"
    assert outer.status == "committed"
    assert rows(admin, table) == [1]
    async with aconn.transaction() as tx:
        with pytest.raises(psycopg3.DataError):
            await aconn.execute("select 1 / 0")
    assert tx.status == "rolled_back"
    assert aconn.info.transaction_status == TransactionStatus.IDLE


async def test_user_savepoint_name_is_quoted(aconn: Any) -> None:
    name = 'my "odd" savepoint; drop table x'
    async with aconn.transaction():
        async with aconn.transaction(savepoint_name=name) as tx:
            await aconn.execute("select 1")
            quoted = '"' + name.replace('"', '""') + '"'
            # Succeeds only if a savepoint of exactly that name exists.
            await aconn.execute(f"rollback to savepoint {quoted}")
    assert tx.status == "committed"
    assert tx.savepoint_name == name


@pytest.mark.parametrize("method", ["commit", "rollback"])
async def test_commit_or_rollback_inside_block_refused(aconn: Any, method: str) -> None:
    async with aconn.transaction() as tx:
        with pytest.raises(ProgrammingError, match="transaction\\(\\) block"):
            await getattr(aconn, method)()
    assert tx.status == "committed"


async def test_autocommit_inside_block_refused(aconn: Any) -> None:
    async with aconn.transaction():
        with pytest.raises(ProgrammingError, match="leave the block first"):
            aconn.autocommit = True
    assert aconn.autocommit is False


async def test_out_of_order_exit_refused(aconn: Any) -> None:
    outer = aconn.transaction()
    inner = aconn.transaction()
    await outer.__aenter__()
    await inner.__aenter__()
    # Refused, and nothing left open that no one would leave: both roll back.
    with pytest.raises(ProgrammingError, match="reverse order they were entered"):
        await outer.__aexit__(None, None, None)
    assert outer.status == inner.status == "rolled_back"
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    with pytest.raises(ProgrammingError, match="an outer block was left before it"):
        await inner.__aexit__(None, None, None)
    with pytest.raises(ProgrammingError, match="leave it only once"):
        await outer.__aexit__(None, None, None)
    with pytest.raises(ProgrammingError, match="entered only once"):
        await outer.__aenter__()
    assert aconn.info.transaction_status == TransactionStatus.IDLE


async def test_block_on_closed_connection_fails(aconn: Any) -> None:
    with pytest.raises(psycopg3.InterfaceError):
        async with aconn.transaction() as tx:
            await aconn.close()
    assert tx.status == "failed"


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_block_rolls_back(flavour: Any, aconn: Any, admin: Any, table: str) -> None:
    started = False

    async def body() -> None:
        nonlocal started
        async with aconn.transaction() as tx:
            await aconn.execute(f"insert into {table} values (1)")
            started = True
            await aconn.execute("select pg_sleep(5)")
        pytest.fail(f"the block was not cancelled: {tx}")

    async def when_sleeping(cancel: Callable[[], object]) -> None:
        # The deadline falls once the block's query runs, however slow the machine.
        pid = aconn.pgconn.backend_pid
        await await_until(lambda: in_pg_sleep(admin, pid), "the query to run")
        cancel()

    if flavour.name == "asyncio":
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as timeout:
                watcher = asyncio.create_task(
                    when_sleeping(lambda: timeout.reschedule(loop.time()))
                )
                await body()
        await watcher
    else:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(when_sleeping, scope.cancel)
                await body()
        assert scope.cancelled_caught
    assert started
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert rows(admin, table) == []
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


# -- transaction characteristics ------------------------------------------


async def show(conn: Any, name: str) -> str:
    cur = await conn.execute(f"show {name}")
    row = await cur.fetchone()
    return str(row[0])


async def test_characteristics_apply_to_next_transaction(aconn: Any) -> None:
    assert aconn.isolation_level is None
    assert aconn.read_only is None and aconn.deferrable is None
    aconn.isolation_level = IsolationLevel.SERIALIZABLE
    aconn.read_only = True
    aconn.deferrable = True
    assert await show(aconn, "transaction_isolation") == "serializable"
    assert await show(aconn, "transaction_read_only") == "on"
    assert await show(aconn, "transaction_deferrable") == "on"
    with pytest.raises(psycopg3.errors.Error):
        await aconn.execute("create temp table ro_test (x int)")  # read only
    await aconn.rollback()
    aconn.isolation_level = 3  # an int is accepted
    assert aconn.isolation_level is IsolationLevel.REPEATABLE_READ
    aconn.read_only = False
    aconn.deferrable = None
    assert await show(aconn, "transaction_isolation") == "repeatable read"
    assert await show(aconn, "transaction_read_only") == "off"
    await aconn.rollback()
    aconn.isolation_level = None
    assert await show(aconn, "transaction_isolation") == "read committed"


async def test_characteristics_in_autocommit_apply_to_blocks(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # Outside a block, statements run in their own server-default transaction.
        assert await show(conn, "transaction_isolation") == "read committed"
        async with conn.transaction():
            assert await show(conn, "transaction_isolation") == "repeatable read"
            assert await show(conn, "transaction_read_only") == "on"
    finally:
        await conn.close()


@pytest.mark.parametrize("name, value", [("isolation_level", 1), ("read_only", True)])
async def test_characteristics_refused_in_transaction(aconn: Any, name: str, value: Any) -> None:
    await aconn.execute("select 1")
    with pytest.raises(ProgrammingError, match="call commit\\(\\) or rollback\\(\\) first"):
        setattr(aconn, name, value)
    assert getattr(aconn, name) is None
    await aconn.rollback()
    setattr(aconn, name, value)
    assert getattr(aconn, name) == value


def test_isolation_level_values() -> None:
    assert [level.value for level in IsolationLevel] == [1, 2, 3, 4]
    assert psycopg3.IsolationLevel.READ_COMMITTED == 2
    with pytest.raises(ValueError):
        IsolationLevel(5)
