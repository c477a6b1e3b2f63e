"""The pool of docs/adapters.md's anyio adapter, on both of anyio's backends.

The page's own code, loaded by ``fix_flavours.load_doc_adapter``: a pool made
of ``AsyncPoolBase`` and eight hooks. The policy and the async driving are
the core's, tested at length through the asyncio and trio pools in
``test_pool.py``; here is what the hooks decide: the task group's lifetime,
waiting with a timeout, shielded returns, and anyio's cancel scopes.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import anyio
import pytest

import psycopg3_sync
from fix_flavours import load_doc_adapter
from fix_pool import PoolHandle
from fix_wait import await_until
from psycopg3 import errors
from psycopg3.pq import TransactionStatus

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("flavour", ["anyio-asyncio", "anyio-trio"], indirect=True),
]


@pytest.fixture
def adapter() -> Any:
    return load_doc_adapter()


@pytest.fixture
def app_name() -> str:
    """A unique ``application_name``: the test's backends in ``pg_stat_activity``."""
    return f"anyio-pool-{uuid.uuid4().hex[:12]}"


def make_pool(adapter: Any, dsn: str, app_name: str, **kwargs: Any) -> Any:
    return adapter.ConnectionPool(
        dsn, name=app_name, kwargs={"application_name": app_name}, **kwargs
    )


def backends(admin: psycopg3_sync.Connection, app_name: str) -> int:
    cur = admin.execute(
        "select count(*) from pg_stat_activity where application_name = %s", (app_name,)
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


def running(admin: psycopg3_sync.Connection, app_name: str) -> int:
    """How many of the test's backends run a query now (the server's view)."""
    cur = admin.execute(
        "select count(*) from pg_stat_activity where application_name = %s and state = 'active'",
        (app_name,),
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


async def backends_gone(admin: psycopg3_sync.Connection, app_name: str) -> int:
    """The test's backends left once the server noticed the closes."""
    await await_until(lambda: not backends(admin, app_name), "the test's backends to go")
    return backends(admin, app_name)


async def test_lifetime(adapter: Any, dsn: str, app_name: str, admin: Any) -> None:
    async with make_pool(adapter, dsn, app_name, min_size=2) as pool:
        await pool.wait(10)
        assert backends(admin, app_name) == 2
        async with pool.connection() as conn:
            cur = await conn.execute("select %s::int + 1", (41,))
            assert await cur.fetchone() == (42,)
        assert pool.stats()["pool_available"] == 2
    # Leaving the block stopped the pool's task group and closed every connection.
    assert pool.closed
    assert pool._stopped.is_set()
    assert await backends_gone(admin, app_name) == 0
    with pytest.raises(errors.PoolClosed):
        await pool.getconn()


async def test_not_entered(adapter: Any, dsn: str, app_name: str) -> None:
    pool = make_pool(adapter, dsn, app_name)
    with pytest.raises(errors.PoolClosed, match=r"async with ConnectionPool\(...\)"):
        await pool.getconn()


async def test_timeout(adapter: Any, dsn: str, app_name: str) -> None:
    async with make_pool(adapter, dsn, app_name, min_size=1) as pool:
        held = await pool.getconn(timeout=10)
        with pytest.raises(errors.PoolTimeout, match="no connection available after 0.2 s"):
            await pool.getconn(timeout=0.2)
        await pool.putconn(held)
        stats = pool.stats()
        assert stats["requests_errors"] == 1
        assert stats["requests_waiting"] == 0
        assert stats["pool_available"] == 1


async def test_cancelled_waiters_lose_nothing(adapter: Any, dsn: str, app_name: str) -> None:
    async with make_pool(adapter, dsn, app_name, min_size=1) as pool:
        served: list[int] = []
        for round_ in range(30):
            held = await pool.getconn(timeout=10)

            async def waiter(delay: float) -> None:
                with anyio.move_on_after(delay):
                    conn = await pool.getconn(timeout=10)
                    served.append(1)
                    await pool.putconn(conn)

            async with anyio.create_task_group() as group:
                for index in range(3):
                    group.start_soon(waiter, 0.001 * (index + round_ % 5))
                # The return races the waiters' deadlines: a connection handed
                # to a waiter cancelled meanwhile goes on to the next one (the
                # 0-6 ms before the return are the subject).
                await anyio.sleep(0.001 * (round_ % 7))
                await pool.putconn(held)
            stats = await PoolHandle(pool, is_sync=False).settled(1)
            assert stats["requests_waiting"] == 0
        # Some were served, some gave up: the books are whole either way.
        assert 0 < len(served) < 90
        async with pool.connection(timeout=1) as conn:
            assert conn.pgconn.transaction_status == TransactionStatus.IDLE


async def test_transaction_returned_is_rolled_back(adapter: Any, dsn: str, app_name: str) -> None:
    async with make_pool(adapter, dsn, app_name, min_size=1) as pool:
        conn = await pool.getconn()
        pid = conn.pgconn.backend_pid
        await conn.execute("select 1")
        assert conn.pgconn.transaction_status == TransactionStatus.INTRANS
        await pool.putconn(conn)
        conn = await pool.getconn()
        assert conn.pgconn.backend_pid == pid
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        await pool.putconn(conn)


async def test_block_cancelled_during_a_query(
    adapter: Any, dsn: str, app_name: str, admin: Any
) -> None:
    async with make_pool(adapter, dsn, app_name, min_size=1) as pool:
        scope = anyio.CancelScope()
        cancelled_at: list[float] = []

        async def cancel_while_running() -> None:
            await await_until(lambda: running(admin, app_name) == 1, "the query to run")
            cancelled_at.append(anyio.current_time())
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_while_running)
            with scope:
                async with pool.connection() as conn:
                    await conn.execute("select pg_sleep(30)")
        assert scope.cancelled_caught
        # The return was shielded: the query was cancelled and drained, the
        # connection kept. Expected: a few ms after the cancel; 10 s tells
        # waiting for the 30 s query.
        assert anyio.current_time() - cancelled_at[0] < 10
        stats = await PoolHandle(pool, is_sync=False).settled(1)
        assert stats["returns_bad"] == 0
        async with pool.connection(timeout=1) as conn:
            cur = await conn.execute("select 1")
            assert await cur.fetchone() == (1,)


async def test_many_tasks_some_cancelled(adapter: Any, dsn: str, app_name: str, admin: Any) -> None:
    rng = random.Random(1234)
    results: dict[int, tuple[int, int, int]] = {}
    cancelled: set[int] = set()
    async with make_pool(adapter, dsn, app_name, min_size=4) as pool:
        await pool.wait(10)

        async def task(index: int, delay: float | None) -> None:
            with anyio.move_on_after(10 if delay is None else delay) as scope:
                async with pool.connection(timeout=20) as conn:
                    cur = await conn.execute(
                        "select %s::int, pg_backend_pid() from pg_sleep(0.005)", (index,)
                    )
                    row = await cur.fetchone()
                    assert row is not None
                    results[index] = (row[0], row[1], conn.pgconn.backend_pid)
            if scope.cancelled_caught:
                cancelled.add(index)

        async with anyio.create_task_group() as group:
            for index in range(80):
                delay = rng.uniform(0.0, 0.05) if index % 3 == 0 else None
                group.start_soon(task, index, delay)

        # No crossed results: each task read its own value on its own backend.
        for index, (value, server_pid, pid) in results.items():
            assert (value, server_pid) == (index, pid)
        # Every task ended, served or cancelled (some after their query).
        assert cancelled and set(results) | cancelled == set(range(80))
        stats = await PoolHandle(pool, is_sync=False).settled(4)
        assert stats["requests_waiting"] == 0
        assert backends(admin, app_name) == 4
    assert await backends_gone(admin, app_name) == 0
