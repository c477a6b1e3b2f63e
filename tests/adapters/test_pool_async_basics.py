"""The asyncio and trio pools' API, case by case (``open_pool``, ``ConnectionPool``).

Written once for both async flavours: ``async with open_pool(...)`` is the
same idiom in each. The trouble cases (cancellation storms, server restarts,
hundreds of tasks) are in ``test_pool.py``; these are the quick ones.
"""

from __future__ import annotations

import asyncio
import uuid
from types import ModuleType
from typing import Any

import anyio
import pytest
import trio

import psycopg3
import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from fix_wait import await_until
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio

BOTH = pytest.mark.parametrize("flavour", ["asyncio", "trio"], indirect=True)
TRIO = pytest.mark.parametrize("flavour", ["trio"], indirect=True)
ASYNCIO = pytest.mark.parametrize("flavour", ["asyncio"], indirect=True)

MODULES = {"asyncio": psycopg3_asyncio, "trio": psycopg3_trio}


@pytest.fixture
def pool_module(flavour: Any) -> ModuleType:
    return MODULES[flavour.name]


@pytest.fixture
def app_name() -> str:
    """A unique ``application_name``: the test's backends in ``pg_stat_activity``."""
    return f"pool-test-{uuid.uuid4().hex[:12]}"


def backends(admin: psycopg3_sync.Connection, app_name: str) -> list[int]:
    cur = admin.execute(
        "select pid from pg_stat_activity where application_name = %s order by pid", (app_name,)
    )
    return [row[0] for row in cur.fetchall()]


async def backends_gone(admin: psycopg3_sync.Connection, app_name: str) -> list[int]:
    """The test's backends left once the server noticed the closes."""
    await await_until(lambda: not backends(admin, app_name), "the test's backends to go")
    return backends(admin, app_name)


async def pid_of(conn: Any) -> int:
    cur = await conn.execute("select pg_backend_pid()")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def table(admin: psycopg3_sync.Connection) -> Any:
    name = f"pool_t_{uuid.uuid4().hex[:12]}"
    admin.execute(f"create table {name} (x int)")
    yield name
    admin.execute(f"drop table {name}")


# -- life ----------------------------------------------------------------------


@BOTH
async def test_open_wait_close(
    pool_module: ModuleType, dsn: str, admin: psycopg3_sync.Connection, app_name: str
) -> None:
    pool = pool_module.open_pool(dsn, min_size=2, kwargs={"application_name": app_name})
    assert pool.closed
    async with pool as entered:
        assert entered is pool
        assert not pool.closed
        await pool.wait(timeout=10)
        stats = pool.stats()
        assert (stats["pool_size"], stats["pool_available"]) == (2, 2)
        assert len(backends(admin, app_name)) == 2
        assert pool.name.startswith("pool-")
        assert (pool.min_size, pool.max_size) == (2, 2)
    assert pool.closed
    assert await backends_gone(admin, app_name) == []
    with pytest.raises(psycopg3.errors.PoolClosed):
        await pool.getconn()


@BOTH
async def test_connection_in_use_is_closed_when_returned_after_close(
    pool_module: ModuleType, dsn: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        conn = await pool.getconn(timeout=10)
    assert pool.closed and not conn.closed
    await pool.putconn(conn)
    assert conn.closed
    assert pool.stats()["pool_size"] == 0


@BOTH
async def test_wait_times_out_when_the_server_refuses(pool_module: ModuleType) -> None:
    # Port 1 on loopback: nothing listens there.
    conninfo = "host=127.0.0.1 port=1 connect_timeout=2"
    async with pool_module.open_pool(conninfo, min_size=1) as pool:
        with pytest.raises(psycopg3.errors.PoolTimeout, match="last connection attempt failed"):
            await pool.wait(timeout=0.5)
        with pytest.raises(psycopg3.errors.PoolTimeout, match="last connection attempt failed"):
            await pool.getconn(timeout=0.3)
        assert pool.stats()["connections_errors"] >= 1


# -- requests --------------------------------------------------------------------


@BOTH
async def test_getconn_putconn_reuses_the_warm_connection(
    pool_module: ModuleType, dsn: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=2) as pool:
        await pool.wait(timeout=10)
        conn = await pool.getconn()
        assert isinstance(conn, pool_module.Connection)
        pid = await pid_of(conn)
        assert pool.stats()["pool_available"] == 1
        await pool.putconn(conn)
        assert pool.stats()["pool_available"] == 2
        again = await pool.getconn()
        assert again is conn and await pid_of(again) == pid
        await pool.putconn(again)


@BOTH
async def test_connection_commits_on_clean_exit(
    pool_module: ModuleType, dsn: str, admin: psycopg3_sync.Connection, table: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        async with pool.connection() as conn:
            await conn.execute(f"insert into {table} values (1)")
            assert conn.pgconn.transaction_status == TransactionStatus.INTRANS
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
    assert admin.execute(f"select x from {table}").fetchall() == [(1,)]


@BOTH
async def test_connection_rolls_back_on_error(
    pool_module: ModuleType, dsn: str, admin: psycopg3_sync.Connection, table: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        with pytest.raises(ZeroDivisionError):
            async with pool.connection() as conn:
                await conn.execute(f"insert into {table} values (1)")
                1 / 0  # noqa: B018
        assert pool.stats()["pool_available"] == 1
        async with pool.connection() as again:
            assert again is conn
            assert again.pgconn.transaction_status == TransactionStatus.IDLE
    assert admin.execute(f"select x from {table}").fetchall() == []


@BOTH
async def test_returned_in_error_state_is_rolled_back(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        conn = await pool.getconn()
        with pytest.raises(psycopg3.errors.DivisionByZero):
            await conn.execute("select 1 / 0")
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        await pool.putconn(conn)
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        assert pool.stats()["returns_bad"] == 0


@BOTH
async def test_returned_closed_is_replaced(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        conn = await pool.getconn()
        pid = await pid_of(conn)
        await conn.close()
        await pool.putconn(conn)
        assert pool.stats()["returns_bad"] == 1
        async with pool.connection(timeout=10) as other:
            assert other is not conn and await pid_of(other) != pid


@BOTH
async def test_returned_from_inside_its_copy_block_is_discarded(
    pool_module: ModuleType, dsn: str, table: str, admin: psycopg3_sync.Connection
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        conn = await pool.getconn(timeout=10)
        with anyio.fail_after(10):
            # The connection is closed under the block: leaving it says so.
            with pytest.raises(psycopg3.InterfaceError, match="closed during the COPY"):
                async with conn.cursor().copy(f"copy {table} (x) from stdin") as copy:
                    await copy.write_row((1,))
                    # The block holds the connection's lock: no waiting for it.
                    await pool.putconn(conn)
        assert conn.closed and pool.stats()["returns_bad"] == 1
        async with pool.connection(timeout=10) as other:
            assert other is not conn
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)


@BOTH
async def test_putconn_refuses_a_foreign_or_returned_connection(
    pool_module: ModuleType, flavour: Any, dsn: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        foreign = await flavour.connect(dsn)
        try:
            with pytest.raises(psycopg3.ProgrammingError, match="not this pool's"):
                await pool.putconn(foreign)
        finally:
            await foreign.close()
        conn = await pool.getconn()
        await pool.putconn(conn)
        with pytest.raises(psycopg3.ProgrammingError, match="returned twice"):
            await pool.putconn(conn)
        assert pool.stats()["pool_available"] == 1


@BOTH
async def test_timeout_raises_pool_timeout(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1, timeout=0.2) as pool:
        # The first connect is not under test: its own time, not the 0.2 s.
        await pool.wait(timeout=10)
        async with pool.connection():
            with pytest.raises(psycopg3.errors.PoolTimeout, match="after 0.2 s"):
                await pool.getconn()
            with pytest.raises(psycopg3.errors.PoolTimeout, match="after 0.1 s"):
                await pool.getconn(timeout=0.1)
        stats = pool.stats()
        assert stats["requests_errors"] == 2 and stats["requests_waiting"] == 0
        assert stats["pool_available"] == 1


@BOTH
async def test_too_many_requests(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1, max_waiting=1) as pool:
        await pool.wait(timeout=10)
        held = await pool.getconn()
        got: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def wait_for_one() -> None:
                got.append(await pool.getconn(timeout=10))

            tg.start_soon(wait_for_one)
            await await_until(lambda: pool.stats()["requests_waiting"] == 1, "a request waiting")
            with pytest.raises(psycopg3.errors.TooManyRequests):
                await pool.getconn()
            await pool.putconn(held)
        assert got == [held]
        await pool.putconn(held)
        assert pool.stats()["requests_queued"] == 1


@BOTH
async def test_grows_on_demand_up_to_max(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1, max_size=3) as pool:
        await pool.wait(timeout=10)
        conns = [await pool.getconn(timeout=10) for _ in range(3)]
        assert len({id(conn) for conn in conns}) == 3
        stats = pool.stats()
        assert stats["pool_size"] == 3 and stats["requests_queued"] == 2
        with pytest.raises(psycopg3.errors.PoolTimeout):
            await pool.getconn(timeout=0.2)
        assert pool.stats()["pool_size"] == 3
        for conn in conns:
            await pool.putconn(conn)
        assert pool.stats()["pool_available"] == 3


@BOTH
async def test_cancelled_waiter_loses_no_connection(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        held = await pool.getconn()
        with anyio.move_on_after(0.2) as scope:
            await pool.getconn(timeout=10)
        assert scope.cancelled_caught
        assert pool.stats()["requests_waiting"] == 0
        await pool.putconn(held)
        stats = pool.stats()
        assert (stats["pool_size"], stats["pool_available"]) == (1, 1)
        async with pool.connection(timeout=1) as conn:
            assert conn is held


@BOTH
async def test_cancelled_in_the_block_gives_the_connection_back(
    pool_module: ModuleType, dsn: str
) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        with anyio.CancelScope() as scope:
            async with pool.connection(timeout=10) as conn:
                await conn.execute("select 1")
                # Cancelled in a transaction: the return rolls back, shielded
                # while the scope keeps cancelling.
                scope.cancel()
                # The checkpoint where the cancellation lands (never ends by itself).
                await anyio.sleep(5)
        # The cancellation stayed the scope's, through the shielded return.
        assert scope.cancelled_caught
        stats = pool.stats()
        assert (stats["pool_available"], stats["returns_bad"]) == (1, 0)
        async with pool.connection(timeout=1) as again:
            assert again is conn
            cur = await again.execute("select 42")
            assert await cur.fetchone() == (42,)


@BOTH
async def test_return_runs_to_its_end_when_cancelled(pool_module: ModuleType, dsn: str) -> None:
    finished: list[Any] = []
    in_reset = anyio.Event()
    cancelled = anyio.Event()

    async def slow_reset(conn: Any) -> None:
        in_reset.set()
        # Goes on only once the scope is cancelled: the return outlives the cancel.
        await cancelled.wait()
        finished.append(conn)

    async with pool_module.open_pool(dsn, min_size=1, reset=slow_reset) as pool:
        await pool.wait(timeout=10)
        scope = anyio.CancelScope()

        async def cancel_in_reset() -> None:
            await in_reset.wait()
            scope.cancel()
            cancelled.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_in_reset)
            with scope:
                async with pool.connection() as conn:
                    pass
        # The scope's cancellation did not cut the return short, nor escape
        # the scope (the test would end with it).
        assert finished == [conn]
        assert pool.stats()["pool_available"] == 1


@BOTH
async def test_stats(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=2, max_size=4, name="counted") as pool:
        await pool.wait(timeout=10)
        async with pool.connection():
            pass
        stats = pool.stats()
    assert pool.name == "counted"
    assert stats["pool_min"] == 2 and stats["pool_max"] == 4
    assert stats["requests_num"] == 1 and stats["requests_queued"] == 0
    assert stats["connections_num"] == 2 and stats["connections_errors"] == 0
    assert stats["connections_ms"] >= 0


@BOTH
async def test_resize(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1) as pool:
        await pool.wait(timeout=10)
        await pool.resize(3, 5)
        assert (pool.min_size, pool.max_size) == (3, 5)
        await pool.wait(timeout=10)
        assert pool.stats()["pool_size"] == 3
        first, second = await pool.getconn(), await pool.getconn()
        await pool.resize(1)
        # Idle ones beyond the new max_size go at once, those in use on return.
        assert pool.stats()["pool_size"] == 2
        await pool.putconn(first)
        assert first.closed and pool.stats()["pool_size"] == 1
        await pool.putconn(second)
        assert not second.closed and pool.stats()["pool_available"] == 1
        with pytest.raises(psycopg3.ProgrammingError):
            await pool.resize(2, 1)


@BOTH
async def test_max_lifetime_replaces_idle_connections(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1, max_lifetime=0.3) as pool:
        async with pool.connection(timeout=10) as conn:
            pid = await pid_of(conn)
        # Two replacements at the end of a lifetime: the configured time is the subject.
        await await_until(lambda: pool.stats()["connections_num"] >= 3, "two replacements")
        async with pool.connection(timeout=10) as other:
            assert await pid_of(other) != pid
        assert conn.closed


@BOTH
async def test_max_idle_shrinks_to_min_size(pool_module: ModuleType, dsn: str) -> None:
    async with pool_module.open_pool(dsn, min_size=1, max_size=3, max_idle=0.2) as pool:
        await pool.wait(timeout=10)
        held = [await pool.getconn(timeout=10) for _ in range(3)]
        # (Read before the returns: once returned, each may be closed after 0.2 s.)
        assert pool.stats()["pool_size"] == 3
        for conn in held:
            await pool.putconn(conn)
        # Closed once idle for max_idle: the configured time is the subject.
        await await_until(lambda: pool.stats()["pool_size"] == 1, "the pool to shrink")
        # The most recently returned one stays.
        async with pool.connection() as conn:
            assert conn is held[-1]


# -- callbacks ---------------------------------------------------------------------


@BOTH
async def test_configure_and_reset_callbacks(pool_module: ModuleType, dsn: str) -> None:
    reset: list[Any] = []

    async def configure(conn: Any) -> None:
        await conn.execute("set search_path to configured, public")
        await conn.commit()

    async def on_reset(conn: Any) -> None:
        reset.append(conn)
        await conn.execute("reset all")
        await conn.commit()

    async with pool_module.open_pool(dsn, min_size=1, configure=configure, reset=on_reset) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute("show search_path")
            assert await cur.fetchone() == ("configured, public",)
            await conn.execute("set search_path to changed")
            await conn.commit()
        assert reset == [conn]
        async with pool.connection() as again:
            assert again is conn
            cur = await again.execute("show search_path")
            assert await cur.fetchone() != ("changed",)


@BOTH
async def test_failing_configure_is_a_failed_connect(pool_module: ModuleType, dsn: str) -> None:
    async def configure(conn: Any) -> None:
        await conn.execute("select 1")  # leaves a transaction open

    async with pool_module.open_pool(dsn, min_size=1, configure=configure) as pool:
        # A connect has failed (however long it took): the timeout names why.
        await await_until(lambda: pool.stats()["connections_errors"] >= 1, "a failed connect")
        with pytest.raises(psycopg3.errors.PoolTimeout, match="configure callback"):
            await pool.getconn(timeout=0.5)


@BOTH
async def test_failing_reset_discards(pool_module: ModuleType, dsn: str) -> None:
    async def on_reset(conn: Any) -> None:
        raise ValueError("no reuse")

    async with pool_module.open_pool(dsn, min_size=1, reset=on_reset) as pool:
        conn = await pool.getconn()
        await pool.putconn(conn)
        assert conn.closed and pool.stats()["returns_bad"] == 1
        async with pool.connection(timeout=10) as other:
            assert other is not conn


@BOTH
async def test_check_callback_replaces_a_bad_connection(
    pool_module: ModuleType, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    async with pool_module.open_pool(
        dsn, min_size=1, check=pool_module.ConnectionPool.check_connection
    ) as pool:
        async with pool.connection(timeout=10) as conn:
            pid = await pid_of(conn)
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        async with pool.connection(timeout=10) as other:
            assert other is not conn and await pid_of(other) != pid
        assert pool.stats()["connections_lost"] == 1


@BOTH
async def test_check_callback_raising(pool_module: ModuleType, dsn: str) -> None:
    seen: list[Any] = []

    async def check(conn: Any) -> None:
        seen.append(conn)
        if len(seen) == 1:
            raise psycopg3.OperationalError("refused by the check")

    async with pool_module.open_pool(dsn, min_size=1, check=check) as pool:
        async with pool.connection(timeout=10) as conn:
            assert conn is seen[1] and seen[0] is not conn and seen[0].closed


@BOTH
async def test_reconnect_failed_callback(pool_module: ModuleType) -> None:
    called: list[Any] = []
    conninfo = "host=127.0.0.1 port=1 connect_timeout=2"
    async with pool_module.open_pool(
        conninfo, min_size=1, reconnect_timeout=0.2, reconnect_failed=called.append
    ) as pool:
        # Called once reconnect_timeout has passed: the configured time is the subject.
        await await_until(lambda: called, "reconnect_failed to be called")
        assert called == [pool]


@BOTH
async def test_pool_check_replaces_terminated_connections(
    pool_module: ModuleType, dsn: str, admin: psycopg3_sync.Connection, app_name: str
) -> None:
    async with pool_module.open_pool(
        dsn, min_size=2, kwargs={"application_name": app_name}
    ) as pool:
        await pool.wait(timeout=10)
        before = backends(admin, app_name)
        admin.execute("select pg_terminate_backend(%s)", (before[0],))
        await pool.check()
        assert pool.stats()["connections_lost"] == 1
        await pool.wait(timeout=10)
        after = backends(admin, app_name)
        assert len(after) == 2 and before[0] not in after and before[1] in after


# -- each framework's lifetime rules -----------------------------------------------


@TRIO
async def test_trio_pool_not_entered(dsn: str) -> None:
    pool = psycopg3_trio.ConnectionPool(dsn, min_size=1)
    with pytest.raises(psycopg3.errors.PoolClosed, match=r"async with open_pool\(\.\.\.\)"):
        await pool.getconn()
    with pytest.raises(psycopg3.errors.PoolClosed, match="open_pool"):
        await pool.wait()


@TRIO
async def test_trio_tasks_live_in_the_block(dsn: str) -> None:
    task = trio.lowlevel.current_task()
    async with psycopg3_trio.open_pool(dsn, min_size=2) as pool:
        # The pool's tasks run in a nursery of this task: in the block.
        assert len(task.child_nurseries) == 1
        await pool.wait(timeout=10)
        conn = await pool.getconn()
        await pool.close()
        # Closing stops the tasks (close() waits for them) but not the block.
        assert len(task.child_nurseries) == 1 and not task.child_nurseries[0].child_tasks
        assert pool.closed
    assert task.child_nurseries == []
    await pool.putconn(conn)
    assert conn.closed


@TRIO
async def test_trio_block_exception_is_not_grouped(dsn: str) -> None:
    with pytest.raises(KeyError):
        async with psycopg3_trio.open_pool(dsn, min_size=1):
            raise KeyError("mine")


@TRIO
async def test_trio_cancelled_block_closes_the_pool(dsn: str) -> None:
    with trio.CancelScope() as scope:
        async with psycopg3_trio.open_pool(dsn, min_size=1) as pool:
            conn = await pool.getconn(timeout=10)
            await pool.putconn(conn)
            scope.cancel()
            await trio.sleep_forever()
    assert pool.closed and conn.closed


@ASYNCIO
async def test_asyncio_no_task_left_after_close(dsn: str) -> None:
    before = asyncio.all_tasks()
    pool = psycopg3_asyncio.ConnectionPool(dsn, min_size=3, max_size=4)
    with pytest.raises(psycopg3.errors.PoolClosed, match=r"await pool\.open\(\)"):
        await pool.getconn()
    await pool.open(wait=True, timeout=10)
    assert asyncio.all_tasks() - before
    held = [await pool.getconn() for _ in range(4)]
    # A waiter and a connect in progress when the pool closes.
    waiter = asyncio.ensure_future(pool.getconn(timeout=10))
    await await_until(lambda: pool.stats()["requests_waiting"] == 1, "the request to wait")
    await pool.close()
    with pytest.raises(psycopg3.errors.PoolClosed):
        await waiter
    for conn in held:
        await pool.putconn(conn)
    assert asyncio.all_tasks() == before
    assert pool.stats()["pool_size"] == 0
    with pytest.raises(psycopg3.errors.PoolClosed, match="cannot be reopened"):
        await pool.open()


@ASYNCIO
async def test_asyncio_connect_cancelled_by_close_is_accounted(dsn: str) -> None:
    pool = psycopg3_asyncio.ConnectionPool(dsn, min_size=4)
    await pool.open()
    # Close at once: connector tasks are cancelled before or while they run
    # (one loop iteration lets them start: the moment is the subject).
    await asyncio.sleep(0)
    await pool.close()
    stats = pool.stats()
    assert stats["pool_size"] == 0
    assert stats["connections_num"] == 4


@BOTH
async def test_sizes_are_validated(pool_module: ModuleType) -> None:
    with pytest.raises(psycopg3.ProgrammingError):
        pool_module.ConnectionPool("", min_size=2, max_size=1)
    with pytest.raises(psycopg3.ProgrammingError):
        pool_module.ConnectionPool("", max_idle=0)
