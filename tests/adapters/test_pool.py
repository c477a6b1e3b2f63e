"""The pools of the three flavours under trouble (issue 7; RELIABILITY.md L11, L12).

Cancelled and timed-out requests, connections returned in every bad state,
server restarts and outages, a crowd of tasks cancelled at random moments,
and what is left once a pool is closed.

What the tests hold each pool to, at the end of every case: the books
balance — ``stats()`` shows the pool's full size, every connection idle,
no request waiting —, the next request is served at once, and the server
sees exactly the pool's backends (none once it is closed).

Tests that do not depend on how a flavour interrupts a request are written
once, through ``fix_pool``'s handle (the sync pool's calls run in worker
threads). Interruption is each flavour's own: asyncio cancels a task, trio
a cancel scope; a thread stops waiting at its timeout or on Ctrl-C, or has
its query cancelled by another thread. Those tests come per flavour.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
import trio

import psycopg3
from fix_pool import (
    ASYNC_POOL_FLAVOURS,
    POOL_FLAVOURS,
    PoolHandle,
    PoolKit,
    maybe_await,
    pool_module,
)
from fix_wait import await_until, wait_until
from psycopg3 import errors
from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT
from psycopg3.pq import TransactionStatus
from psycopg3.rows import dict_row

#: Scheduling and teardown margin on top of a bound the pool promises.
SLACK = 3.0
#: The longest a returned connection may take to be cancelled, drained and rolled back.
RECOVERY_BOUND = CANCEL_TIMEOUT + DRAIN_TIMEOUT + SLACK

ALL_POOLS = pytest.mark.parametrize("flavour", POOL_FLAVOURS, indirect=True)
ASYNC_POOLS = pytest.mark.parametrize("flavour", ASYNC_POOL_FLAVOURS, indirect=True)


def only(name: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("flavour", [name], indirect=True)


class Boom(Exception):
    """The user's own error, raised inside a ``connection()`` block."""


# -- helpers ---------------------------------------------------------------------


@pytest.fixture
def table(admin: Any) -> Iterator[str]:
    """A table of its own for the test, to see whether rows were committed."""
    name = f"pool_rows_{uuid.uuid4().hex[:12]}"
    admin.execute(f"create table {name} (a int)")
    yield name
    admin.execute("set lock_timeout = '5s'")
    admin.execute(f"drop table if exists {name}")


@pytest.fixture
def app_name() -> str:
    """An ``application_name`` of the test's own, to find its backends."""
    return f"pool-test-{uuid.uuid4().hex[:12]}"


def row_count(admin: Any, table: str) -> int:
    row = admin.execute(f"select count(*) from {table}").fetchone()
    return int(row[0])


async def fetch(conn: Any, query: str, params: Any = None) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return row[0]


def backends(admin: Any, app_name: str) -> set[int]:
    rows = admin.execute(
        "select pid from pg_stat_activity where application_name = %s", (app_name,)
    ).fetchall()
    return {int(row[0]) for row in rows}


def wait_backends(admin: Any, app_name: str, expected: set[int]) -> set[int]:
    """The backends of ``app_name``, once they are ``expected``.

    A closed connection's backend leaves ``pg_stat_activity`` a moment
    after the client is gone.
    """
    seen: set[int] = set()

    def as_expected() -> bool:
        nonlocal seen
        seen = backends(admin, app_name)
        return seen == expected

    wait_until(as_expected, f"the backends of {app_name} to be {expected}")
    return seen


def terminate(admin: Any, pid: int) -> None:
    """Terminate a backend from the side and wait until it is gone."""
    assert admin.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    query = "select count(*) from pg_stat_activity where pid = %s"
    wait_until(lambda: admin.execute(query, (pid,)).fetchone() == (0,), f"backend {pid} to go")


def backends_running(admin: Any, app_name: str) -> int:
    """How many of ``app_name``'s backends run a query now (the server's view)."""
    query = "select count(*) from pg_stat_activity where application_name = %s and state = 'active'"
    return int(admin.execute(query, (app_name,)).fetchone()[0])


def query_running(admin: Any, pid: int) -> bool:
    """Whether backend ``pid`` is running a query now (the server's view)."""
    query = "select count(*) from pg_stat_activity where pid = %s and state = 'active'"
    return bool(admin.execute(query, (pid,)).fetchone() == (1,))


async def served_at_once(pool: PoolHandle) -> float:
    """Check that the next request is served, and works; return how long it took."""
    start = time.monotonic()
    # An idle connection is there: expected in a few ms; 1 s is a hang, not a slow hand-over.
    conn = await pool.getconn(timeout=1.0)
    elapsed = time.monotonic() - start
    try:
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        assert await fetch(conn, "select pg_backend_pid()") == conn.pgconn.backend_pid
    finally:
        await pool.putconn(conn)
    return elapsed


def settle_sync(pool: Any, size: int) -> dict[str, int]:
    """``PoolHandle.settled()`` for a sync pool driven from threads."""
    stats: dict[str, int] = pool.stats()

    def settled() -> bool:
        nonlocal stats
        stats = pool.stats()
        return (
            stats["pool_size"] == size == stats["pool_available"] and not stats["requests_waiting"]
        )

    wait_until(settled, f"the pool to settle to {size} idle connections")
    return stats


async def give_up_after(pools: PoolKit, pool: PoolHandle, delay: float, how: str) -> Any:
    """Request a connection and stop waiting after ``delay``; return the connection or None.

    :param how: ``"timeout"``: the request's own timeout (``PoolTimeout``);
        ``"cancel"``: the flavour's cancellation (asyncio: ``wait_for``
        cancels the task; trio: a cancel scope). A thread has only the
        timeout.
    """
    if how == "timeout" or pools.is_sync:
        try:
            return await pool.getconn(timeout=delay)
        except errors.PoolTimeout:
            return None
    if pools.name == "asyncio":
        try:
            return await asyncio.wait_for(pool.pool.getconn(), delay)
        except asyncio.TimeoutError:
            return None
    with trio.move_on_after(delay):
        return await pool.pool.getconn()
    return None


async def until_waiting(pool: Any, count: int = 1) -> None:
    """Return once ``count`` requests wait in the pool."""
    await await_until(
        lambda: pool.stats()["requests_waiting"] >= count, f"{count} requests waiting in the pool"
    )


# -- 1. cancelled and timed-out requests (L12) ------------------------------------


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L12")
async def test_cancelled_waiters_leave_nothing_reserved(
    pools: PoolKit, dsn: str, observe: Callable[[str], None]
) -> None:
    # L12: nine requests queued on a pool of three, all of them given up.
    async with pools.open(dsn, min_size=3) as pool:
        await pool.wait(10)
        held = [await pool.getconn() for _ in range(3)]
        got: list[Any] = []

        async def request(index: int) -> None:
            how = "timeout" if index % 3 == 0 else "cancel"
            got.append(await give_up_after(pools, pool, 0.2 + 0.01 * index, how))

        async with anyio.create_task_group() as group:
            for index in range(9):
                group.start_soon(request, index)
        assert got == [None] * 9
        stats = pool.stats()
        assert (stats["pool_size"], stats["pool_available"], stats["requests_waiting"]) == (3, 0, 0)

        # A request still waiting when a connection comes back is served by it.
        async def late_request() -> None:
            got.append(await pool.getconn(timeout=10))

        async with anyio.create_task_group() as group:
            group.start_soon(late_request)
            await until_waiting(pool)
            await pool.putconn(held.pop())
        assert got[-1] is not None
        held.append(got[-1])
        for conn in held:
            await pool.putconn(conn)
        stats = await pool.settled(3)
        elapsed = await served_at_once(pool)
        observe(
            f"9 waiters given up on a 3-connection pool: requests_waiting=0,"
            f" {stats['pool_available']}/3 idle after, next request served in"
            f" {elapsed * 1000:.1f} ms"
        )


async def all_idle_but(pool: PoolHandle, held: int) -> dict[str, int]:
    """The stats once every connection but ``held`` is idle and nobody waits.

    ``pool_size`` counts the connects in flight: all of them have ended then,
    and with no request waiting the pool starts no other.
    """
    stats = pool.stats()

    def idle() -> bool:
        nonlocal stats
        stats = pool.stats()
        return (
            stats["pool_available"] == stats["pool_size"] - held and not stats["requests_waiting"]
        )

    await await_until(idle, f"every connection but {held} idle in the pool")
    return stats


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L12")
async def test_cancelled_while_the_pool_grows(
    pools: PoolKit, dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    """Requests given up while connections are being opened for them."""
    kwargs = {"application_name": app_name}
    async with pools.open(dsn, min_size=1, max_size=4, kwargs=kwargs) as pool:
        await pool.wait(10)
        held = await pool.getconn()
        got: list[Any] = []

        async def request(index: int) -> None:
            how = "timeout" if index % 2 else "cancel"
            got.append(await give_up_after(pools, pool, 0.002 * index, how))

        async with anyio.create_task_group() as group:
            for index in range(6):
                group.start_soon(request, index)
        for conn in got:
            if conn is not None:
                await pool.putconn(conn)
        # Every connection opened is in the pool: idle, or the one held.
        stats = await all_idle_but(pool, 1)
        size = stats["pool_size"]
        assert 1 < size <= 4, stats
        assert stats["connections_num"] - stats["connections_errors"] == size, stats
        await pool.putconn(held)
        await pool.settled(size)
        pids = await pool.pids(size)
        assert wait_backends(admin, app_name, pids) == pids, "backends not the pool's"
        await served_at_once(pool)
    assert wait_backends(admin, app_name, set()) == set()
    observe(f"6 requests given up while the pool grew: {size} connections, all idle, none lost")


@only("asyncio")
@pytest.mark.anyio
@pytest.mark.scenario("L12")
async def test_asyncio_cancel_at_the_hand_over(
    pools: PoolKit, dsn: str, observe: Callable[[str], None]
) -> None:
    """The connection goes to a waiter in the loop iteration its task is cancelled."""
    async with pools.open(dsn, min_size=1) as handle:
        await handle.wait(10)
        pool = handle.pool
        outcomes: Counter[str] = Counter()
        for round_ in range(150):
            held = await pool.getconn()
            request = asyncio.create_task(pool.getconn())
            await until_waiting(pool)
            variant = round_ % 3
            handed_over = False
            if variant == 0:
                # Cancelled, then handed over before the waiter ran.
                request.cancel()
                await maybe_await(pool.putconn(held))
            elif variant == 1:
                # Handed over (the queue is empty), cancelled before the waiter ran.
                putting = asyncio.ensure_future(maybe_await(pool.putconn(held)))
                while pool.stats()["requests_waiting"] and not putting.done():
                    # One loop iteration at a time: the race is about which one.
                    await asyncio.sleep(0)
                handed_over = not request.done()
                request.cancel()
                await putting
            else:
                # The cancel lands a few loop iterations into the hand-over.
                putting = asyncio.ensure_future(maybe_await(pool.putconn(held)))
                for _ in range(round_ % 5):
                    # A few loop iterations, counted: where the cancel lands is the subject.
                    await asyncio.sleep(0)
                request.cancel()
                await putting
            await asyncio.wait({request})
            if request.cancelled():
                outcomes["cancelled after the hand-over" if handed_over else "cancelled"] += 1
            else:
                outcomes["served"] += 1
                await maybe_await(pool.putconn(request.result()))
            stats = await handle.settled(1)
        assert stats["requests_waiting"] == 0
        # The race this test is about did happen (asyncio's scheduling is deterministic).
        assert outcomes["cancelled after the hand-over"] > 0, outcomes
        await served_at_once(handle)
        observe(f"150 hand-over/cancel races: {dict(outcomes)}; never a connection lost")


@only("trio")
@pytest.mark.anyio
@pytest.mark.scenario("L12")
async def test_trio_cancel_at_the_hand_over(
    pools: PoolKit, dsn: str, observe: Callable[[str], None]
) -> None:
    """The connection goes to a waiter in the same moment its scope is cancelled."""
    async with pools.open(dsn, min_size=1) as handle:
        await handle.wait(10)
        pool = handle.pool
        outcomes: Counter[str] = Counter()

        async def put(conn: Any) -> None:
            await maybe_await(pool.putconn(conn))

        async def request(scope: trio.CancelScope, got: list[Any]) -> None:
            with scope:
                got.append(await pool.getconn())

        for round_ in range(150):
            held = await pool.getconn()
            got: list[Any] = []
            scope = trio.CancelScope()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(request, scope, got)
                await until_waiting(pool)
                variant = round_ % 3
                if variant == 0:
                    await put(held)
                    scope.cancel()
                elif variant == 1:
                    scope.cancel()
                    await put(held)
                else:
                    nursery.start_soon(put, held)
                    for _ in range(round_ % 5):
                        await trio.lowlevel.checkpoint()
                    scope.cancel()
            outcomes["served" if got else "cancelled"] += 1
            for conn in got:
                await put(conn)
            stats = await handle.settled(1)
        assert stats["requests_waiting"] == 0
        await served_at_once(handle)
        observe(
            f"150 hand-over/cancel races: {outcomes['cancelled']} cancelled,"
            f" {outcomes['served']} served; never a connection lost"
        )


@pytest.mark.scenario("L12", flavour="sync")
def test_sync_timeout_at_the_hand_over(dsn: str, observe: Callable[[str], None]) -> None:
    """A thread's request times out in the moment another thread gives a connection back."""
    timeout = 0.02
    outcomes: Counter[str] = Counter()
    with pool_module("sync").ConnectionPool(dsn, min_size=1) as pool:
        pool.wait(10)

        def request(barrier: threading.Barrier, box: dict[str, Any]) -> None:
            barrier.wait()
            try:
                box["conn"] = pool.getconn(timeout=timeout)
            except errors.PoolTimeout:
                box["timed out"] = True

        for round_ in range(60):
            held = pool.getconn()
            barrier = threading.Barrier(2)
            box: dict[str, Any] = {}
            thread = threading.Thread(target=request, args=(barrier, box))
            thread.start()
            barrier.wait()
            # From 5 ms before the request's timeout to 5 ms after it: the
            # race with the timeout is the subject (either outcome is right).
            time.sleep(timeout + (round_ % 11 - 5) / 1000)
            pool.putconn(held)
            thread.join(10)
            assert not thread.is_alive(), "a request outlived its timeout"
            if "conn" in box:
                outcomes["served"] += 1
                pool.putconn(box["conn"])
            else:
                outcomes["timed out"] += 1
            settle_sync(pool, 1)
        with pool.connection(timeout=1) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    observe(
        f"60 hand-over/timeout races: {outcomes['timed out']} timed out,"
        f" {outcomes['served']} served; never a connection lost"
    )


def call_when(
    predicate: Callable[[], object], what: str, action: Callable[[], object]
) -> threading.Thread:
    """Call ``action`` from another thread once ``predicate()`` holds (the main thread blocks)."""

    def run() -> None:
        wait_until(predicate, what)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def ctrl_c() -> None:
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


@pytest.mark.scenario("L12", flavour="sync")
def test_sync_ctrl_c_while_waiting(dsn: str, observe: Callable[[str], None]) -> None:
    """Ctrl-C interrupts a thread waiting for a connection: its request is withdrawn."""
    assert threading.current_thread() is threading.main_thread()
    with pool_module("sync").ConnectionPool(dsn, min_size=1) as pool:
        held = pool.getconn(timeout=10)
        timer = call_when(
            lambda: pool.stats()["requests_waiting"] == 1, "the request to wait", ctrl_c
        )
        start = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                pool.getconn(timeout=30)
        finally:
            timer.join()
        elapsed = time.monotonic() - start
        # Withdrawn at the signal, a few ms after the request waits; not at its 30 s timeout.
        assert elapsed < 10
        assert pool.stats()["requests_waiting"] == 0
        pool.putconn(held)
        stats = settle_sync(pool, 1)
        with pool.connection(timeout=1) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    idle = stats["pool_available"]
    observe(f"Ctrl-C while waiting: withdrawn after {elapsed:.2f} s, {idle}/1 idle")


# -- 2. leaving a connection() block interrupted (L11) ----------------------------


@only("asyncio")
@pytest.mark.anyio
@pytest.mark.scenario("L11")
@pytest.mark.parametrize("moment", ["query", "idle", "exit", "again"])
async def test_asyncio_task_cancelled_inside_the_block(
    pools: PoolKit, dsn: str, admin: Any, table: str, moment: str, observe: Callable[[str], None]
) -> None:
    """``moment``: during a query, idle in a transaction, at the block's exit,
    or cancelled again and again while the connection goes back."""
    async with pools.open(dsn, min_size=2) as handle:
        await handle.wait(10)
        pool = handle.pool
        inside = asyncio.Event()
        pids: list[int] = []

        async def user() -> None:
            async with pool.connection() as conn:
                await conn.execute(f"insert into {table} values (1)")
                if moment == "exit":
                    # Cancelled before the exit's commit awaits anything.
                    task = asyncio.current_task()
                    assert task is not None
                    task.cancel()
                    return
                pids.append(conn.pgconn.backend_pid)
                inside.set()
                if moment == "idle":
                    # Idle in a transaction, client side, until cancelled: never ends by itself.
                    await asyncio.sleep(30)
                else:
                    await conn.execute("select pg_sleep(30)")

        start = time.monotonic()
        task = asyncio.create_task(user())
        if moment != "exit":
            # (At "exit" the task cancels itself.)
            # ("idle": the task is in its sleep once the event is seen.)
            await inside.wait()
            if moment != "idle":
                await await_until(
                    lambda: query_running(admin, pids[0]), "the query to run on the server"
                )
            start = time.monotonic()
            task.cancel()
        if moment == "again":
            # Once per loop iteration, until the task is done.
            while not task.done() and time.monotonic() - start < RECOVERY_BOUND:
                # One loop iteration between two cancels: the repetition is the subject.
                await asyncio.sleep(0)
                task.cancel()
        # Expected: left a few ms after the cancel; the bound (13 s) only tells a hang.
        done, _ = await asyncio.wait({task}, timeout=RECOVERY_BOUND)
        elapsed = time.monotonic() - start
        assert task in done, f"leaving the block hangs ({moment})"
        assert task.cancelled()
        stats = await handle.settled(2)
        # Rolled back and kept: the release is not cut short by the cancellation.
        assert stats["returns_bad"] == 0
        elapsed_next = await served_at_once(handle)
        committed = row_count(admin, table)
        if moment != "exit":
            assert committed == 0
        observe(
            f"cancelled {moment}: block left in {elapsed * 1000:.0f} ms,"
            f" {stats['pool_available']}/2 idle after, returns_bad={stats['returns_bad']},"
            f" rows kept={committed},"
            f" next served in {elapsed_next * 1000:.1f} ms"
        )


@only("trio")
@pytest.mark.anyio
@pytest.mark.scenario("L11")
@pytest.mark.parametrize("moment", ["query", "idle", "exit"])
async def test_trio_block_left_in_a_cancelled_scope(
    pools: PoolKit, dsn: str, admin: Any, table: str, moment: str, observe: Callable[[str], None]
) -> None:
    """``moment``: the deadline passes during a query, idle in a transaction,
    or before the block's exit, which then runs entirely in an expired scope."""
    async with pools.open(dsn, min_size=2) as handle:
        await handle.wait(10)
        pool = handle.pool
        scope = trio.CancelScope()
        inside = trio.Event()
        pids: list[int] = []

        async def expire_when_inside() -> None:
            # The deadline passes once the block is where ``moment`` says.
            await inside.wait()
            if moment == "query":
                await await_until(
                    lambda: query_running(admin, pids[0]), "the query to run on the server"
                )
            scope.deadline = trio.current_time()

        start = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(expire_when_inside)
            with scope:
                async with pool.connection() as conn:
                    await conn.execute(f"insert into {table} values (1)")
                    pids.append(conn.pgconn.backend_pid)
                    if moment == "exit":
                        scope.deadline = trio.current_time()
                    inside.set()
                    if moment == "idle":
                        # Idle in a transaction, client side, until the deadline: never ends alone.
                        await trio.sleep(30)
                    elif moment == "query":
                        await conn.execute("select pg_sleep(30)")
        elapsed = time.monotonic() - start
        assert scope.cancelled_caught
        # Expected: a few ms after the deadline; the bound (13 s) only tells a hang.
        assert elapsed < RECOVERY_BOUND, f"leaving the block took {elapsed:.1f} s"
        stats = await handle.settled(2)
        # Rolled back and kept: the release is not cut short by the cancellation.
        assert stats["returns_bad"] == 0
        elapsed_next = await served_at_once(handle)
        committed = row_count(admin, table)
        if moment != "exit":
            assert committed == 0
        observe(
            f"scope expired {moment}: block left in {elapsed * 1000:.0f} ms,"
            f" {stats['pool_available']}/2 idle after, returns_bad={stats['returns_bad']},"
            f" rows kept={committed}, next served in {elapsed_next * 1000:.1f} ms"
        )


@pytest.mark.scenario("L11", flavour="sync")
@pytest.mark.parametrize("moment", ["query", "ctrl-c", "idle"])
def test_sync_block_left_by_an_exception(
    dsn: str, admin: Any, table: str, moment: str, observe: Callable[[str], None]
) -> None:
    """A thread's block ends with its query cancelled by another thread, by
    Ctrl-C, or with its own error."""
    assert threading.current_thread() is threading.main_thread()
    with pool_module("sync").ConnectionPool(dsn, min_size=2) as pool:
        pool.wait(10)
        expected: type[BaseException] = {
            "query": errors.QueryCanceled,
            "ctrl-c": KeyboardInterrupt,
            "idle": Boom,
        }[moment]
        start = time.monotonic()
        with pytest.raises(expected):
            with pool.connection() as conn:
                conn.execute(f"insert into {table} values (1)")
                if moment == "idle":
                    raise Boom()
                pid = conn.pgconn.backend_pid
                timer = call_when(
                    lambda: query_running(admin, pid),
                    "the query to run on the server",
                    ctrl_c if moment == "ctrl-c" else conn.cancel,
                )
                try:
                    conn.execute("select pg_sleep(30)")
                finally:
                    timer.join()
        elapsed = time.monotonic() - start
        # Expected: a few ms after the interruption; the bound (13 s) is far below pg_sleep's 30 s.
        assert elapsed < RECOVERY_BOUND
        stats = settle_sync(pool, 2)
        assert stats["returns_bad"] == 0
        with pool.connection(timeout=1) as conn:
            assert conn.pgconn.transaction_status == TransactionStatus.IDLE
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
        assert row_count(admin, table) == 0
        observe(f"{expected.__name__} in the block: rolled back, the connection kept")


# -- 3. hygiene of returned connections (L11) ---------------------------------------


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
@pytest.mark.parametrize(
    "state", [TransactionStatus.INTRANS, TransactionStatus.INERROR], ids=["INTRANS", "INERROR"]
)
async def test_returned_in_a_transaction_is_rolled_back(
    pools: PoolKit,
    dsn: str,
    admin: Any,
    table: str,
    observe: Callable[[str], None],
    state: TransactionStatus,
) -> None:
    async with pools.open(dsn, min_size=1) as pool:
        conn = await pool.getconn()
        pid = conn.pgconn.backend_pid
        await conn.execute(f"insert into {table} values (1)")
        if state == TransactionStatus.INERROR:
            with pytest.raises(errors.DivisionByZero):
                await conn.execute("select 1 / 0")
        assert conn.pgconn.transaction_status == state
        await pool.putconn(conn)
        conn = await pool.getconn(timeout=5)
        try:
            assert conn.pgconn.transaction_status == TransactionStatus.IDLE
            assert conn.pgconn.backend_pid == pid, "rolled back, not replaced"
            assert await fetch(conn, f"select count(*) from {table}") == 0
            assert await fetch(conn, "select 42") == 42
        finally:
            await pool.putconn(conn)
        assert row_count(admin, table) == 0
        stats = await pool.settled(1)
        assert stats["returns_bad"] == 0
    observe(f"{state.name} returned: rolled back, same backend, next user IDLE")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_connection_block_commits_or_rolls_back(
    pools: PoolKit, dsn: str, admin: Any, table: str
) -> None:
    async with pools.open(dsn, min_size=1) as pool:
        async with pool.connection() as conn:
            await conn.execute(f"insert into {table} values (1)")
        with pytest.raises(Boom):
            async with pool.connection() as conn:
                await conn.execute(f"insert into {table} values (2)")
                raise Boom()
        assert admin.execute(f"select array_agg(a) from {table}").fetchone() == ([1],)
        async with pool.connection() as conn:
            assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        stats = await pool.settled(1)
        assert stats["returns_bad"] == 0


@ALL_POOLS
@pytest.mark.anyio
async def test_row_factory_shapes_the_rows_of_every_connection(pools: PoolKit, dsn: str) -> None:
    # As connect(..., row_factory=...) does for one connection: the
    # connections opened at the start and those opened on demand alike.
    async with pools.open(dsn, min_size=1, max_size=2, row_factory=dict_row) as pool:
        first = await pool.getconn()
        async with pool.connection() as second:
            for conn in (first, second):
                cur = await conn.execute("select 1 as a, 'x' as b")
                assert await cur.fetchall() == [{"a": 1, "b": "x"}]
        await pool.putconn(first)
    async with pools.open(dsn, min_size=1) as pool:
        async with pool.connection() as conn:
            assert await (await conn.execute("select 1 as a")).fetchone() == (1,)


#: Commands left running on a returned connection: sent, their results never read.
IN_FLIGHT = {
    "query": "select pg_sleep(30)",
    "copy_in": "copy {table} (a) from stdin",
    "copy_out": "copy (select generate_series(1, 1000000)) to stdout",
}


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
@pytest.mark.parametrize("command", list(IN_FLIGHT))
async def test_returned_active(
    pools: PoolKit,
    dsn: str,
    admin: Any,
    table: str,
    app_name: str,
    command: str,
    observe: Callable[[str], None],
) -> None:
    """A connection returned with a command in progress (status ACTIVE)."""
    async with pools.open(dsn, min_size=1, kwargs={"application_name": app_name}) as pool:
        conn = await pool.getconn()
        pid = conn.pgconn.backend_pid
        # What a caller leaves behind that drops a command's results unread.
        conn.pgconn.send_query(IN_FLIGHT[command].format(table=table).encode())
        assert conn.pgconn.transaction_status == TransactionStatus.ACTIVE
        start = time.monotonic()
        await pool.putconn(conn)
        # Expected: cancelled and drained (or replaced) in well under 1 s; 13 s tells a hang.
        conn = await pool.getconn(timeout=RECOVERY_BOUND)
        elapsed = time.monotonic() - start
        try:
            assert conn.pgconn.transaction_status == TransactionStatus.IDLE
            assert await fetch(conn, "select 7") == 7
            replaced = conn.pgconn.backend_pid != pid
        finally:
            await pool.putconn(conn)
        stats = await pool.settled(1)
        assert stats["returns_bad"] == int(replaced)
        running = admin.execute(
            "select count(*) from pg_stat_activity"
            " where application_name = %s and state = 'active'",
            (app_name,),
        ).fetchone()
        assert running == (0,), "the abandoned command still runs on the server"
        assert row_count(admin, table) == 0
    how = "discarded and replaced" if replaced else "cancelled and drained, kept"
    observe(f"{command} in progress: {how}; next user IDLE after {elapsed * 1000:.0f} ms")


HANG_MESSAGE = "putconn() from inside an open COPY block hangs on the lock the block holds"


@ASYNC_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_putconn_inside_a_copy_block_does_not_hang(
    pools: PoolKit, dsn: str, admin: Any, table: str, observe: Callable[[str], None]
) -> None:
    """A connection given back while its COPY block is still open (and holds its lock)."""
    async with pools.open(dsn, min_size=1) as handle:
        pool = handle.pool
        conn = await pool.getconn()
        outcome: dict[str, str] = {}
        finished = anyio.Event()

        async def user() -> None:
            try:
                manager = conn.cursor().copy(f"copy {table} (a) from stdin")
                copy = await manager.__aenter__()
                await copy.write_row((1,))
                try:
                    await pool.putconn(conn)
                    outcome["putconn"] = "returned"
                except Exception as ex:
                    outcome["putconn"] = type(ex).__name__
                try:
                    await manager.__aexit__(None, None, None)
                    outcome["exit"] = "left"
                except Exception as ex:
                    outcome["exit"] = type(ex).__name__
            finally:
                finished.set()

        async with anyio.create_task_group() as group:
            group.start_soon(user)
            with anyio.move_on_after(RECOVERY_BOUND):
                await finished.wait()
            hung = not finished.is_set()
            if hung and pools.name == "asyncio":
                # Unstick the shielded putconn() so that the test can end.
                conn.lock.release()
        assert not hung, HANG_MESSAGE
        stats = await handle.settled(1)
        await served_at_once(handle)
        assert row_count(admin, table) == 0
    observe(f"putconn() inside a COPY block: {outcome}, returns_bad={stats['returns_bad']}")


@pytest.mark.scenario("L11", flavour="sync")
def test_sync_putconn_inside_a_copy_block_does_not_hang(
    dsn: str, admin: Any, table: str, observe: Callable[[str], None]
) -> None:
    with pool_module("sync").ConnectionPool(dsn, min_size=1) as pool:
        conn = pool.getconn(timeout=10)
        outcome: dict[str, str] = {}

        def user() -> None:
            manager = conn.cursor().copy(f"copy {table} (a) from stdin")
            copy = manager.__enter__()
            copy.write_row((1,))
            try:
                pool.putconn(conn)
                outcome["putconn"] = "returned"
            except Exception as ex:
                outcome["putconn"] = type(ex).__name__
            try:
                manager.__exit__(None, None, None)
                outcome["exit"] = "left"
            except Exception as ex:
                outcome["exit"] = type(ex).__name__

        thread = threading.Thread(target=user, daemon=True)
        thread.start()
        thread.join(RECOVERY_BOUND)
        hung = thread.is_alive()
        if hung:
            # Unstick the thread (its putconn() waits for the lock it holds itself).
            conn.lock.release()
            thread.join(RECOVERY_BOUND)
        assert not hung, HANG_MESSAGE
        stats = settle_sync(pool, 1)
        with pool.connection(timeout=1) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert row_count(admin, table) == 0
    observe(f"putconn() inside a COPY block: {outcome}, returns_bad={stats['returns_bad']}")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
@pytest.mark.parametrize("how", ["closed", "broken"])
async def test_returned_unusable_is_replaced(
    pools: PoolKit, dsn: str, admin: Any, observe: Callable[[str], None], how: str
) -> None:
    async with pools.open(dsn, min_size=1) as pool:
        conn = await pool.getconn()
        pid = conn.pgconn.backend_pid
        if how == "closed":
            await conn.close()
            what = "closed by the user"
        else:
            terminate(admin, pid)
            with pytest.raises(psycopg3.OperationalError):
                await conn.execute("select 1")
            assert conn.broken
            what = "terminated while in use"
        await pool.putconn(conn)
        stats = await pool.settled(1)
        assert stats["returns_bad"] == 1
        new = await pool.pids(1)
        assert pid not in new
    observe(f"{what}: discarded (returns_bad=1), replaced by a new backend")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_terminated_while_idle_without_check(
    pools: PoolKit, dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    async with pools.open(dsn, min_size=1) as pool:
        (pid,) = await pool.pids(1)
        terminate(admin, pid)
        conn = await pool.getconn(timeout=5)
        try:
            await conn.execute("select 1")
        except psycopg3.OperationalError as ex:
            first = f"{type(ex).__name__} once"
            assert conn.broken
        else:
            first = "a working connection"
            assert conn.pgconn.backend_pid != pid
        finally:
            await pool.putconn(conn)
        (new,) = await pool.pids(1)
        assert new != pid

        # pool.check() finds a dead idle connection before any user does.
        terminate(admin, new)
        await pool.check()
        stats = await pool.settled(1)
        assert stats["connections_lost"] == 1
        (newer,) = await pool.pids(1)
        assert newer != new
    observe(f"terminated while idle, no check: the next user got {first}; pool.check() replaced it")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_terminated_while_idle_with_check(
    pools: PoolKit, dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    check = pools.ConnectionPool.check_connection
    async with pools.open(dsn, min_size=2, check=check) as pool:
        pids = await pool.pids(2)
        for pid in pids:
            terminate(admin, pid)
        conn = await pool.getconn(timeout=10)
        try:
            assert conn.pgconn.backend_pid not in pids
            assert await fetch(conn, "select pg_backend_pid()") == conn.pgconn.backend_pid
        finally:
            await pool.putconn(conn)
        new = await pool.pids(2)
        assert not new & pids
        stats = await pool.settled(2)
        assert stats["connections_lost"] == 2
        assert stats["returns_bad"] == 0
    observe("terminated while idle, with check: users got working connections, 2 lost counted")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_putconn_refuses_strangers_and_double_returns(
    pools: PoolKit, flavour: Any, dsn: str
) -> None:
    async with pools.open(dsn, min_size=1) as pool:
        stranger = await flavour.connect(dsn)
        try:
            with pytest.raises(psycopg3.ProgrammingError):
                await pool.putconn(stranger)
            assert not stranger.closed
        finally:
            await stranger.close()
        conn = await pool.getconn()
        await pool.putconn(conn)
        with pytest.raises(psycopg3.ProgrammingError):
            await pool.putconn(conn)
        stats = await pool.settled(1)
        assert stats["returns_bad"] == 0
        await served_at_once(pool)


@ASYNC_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L11")
async def test_check_cancelled_midway(
    pools: PoolKit, dsn: str, observe: Callable[[str], None]
) -> None:
    """``pool.check()`` interrupted while it checks: every connection goes back."""
    async with pools.open(dsn, min_size=3) as handle:
        await handle.wait(10)
        interrupted = 0
        for round_ in range(20):
            delay = round_ * 0.0001
            if pools.name == "trio":
                with trio.move_on_after(delay) as scope:
                    await handle.pool.check()
                interrupted += scope.cancelled_caught
            else:
                try:
                    await asyncio.wait_for(handle.pool.check(), delay)
                except asyncio.TimeoutError:
                    interrupted += 1
            stats = await handle.settled(3)
        assert interrupted > 0
        assert stats["returns_bad"] == 0
        await served_at_once(handle)
    observe(f"pool.check() interrupted {interrupted} times of 20: every connection back, idle")


# -- 4. server restart and outage (L12) ---------------------------------------------


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.scenario("L12")
async def test_restart_with_check(
    pools: PoolKit, private_cluster: Any, observe: Callable[[str], None]
) -> None:
    check = pools.ConnectionPool.check_connection
    async with pools.open(private_cluster.dsn, min_size=3, check=check) as pool:
        await pool.wait(10)
        old = await pool.pids(3)
        await anyio.to_thread.run_sync(private_cluster.restart)
        conn = await pool.getconn(timeout=10)
        try:
            assert conn.pgconn.backend_pid not in old
            assert await fetch(conn, "select pg_backend_pid()") == conn.pgconn.backend_pid
        finally:
            await pool.putconn(conn)
        new = await pool.pids(3)
        assert not new & old
        stats = await pool.settled(3)
        assert stats["connections_lost"] == 3
    observe("restart, with check: the next user got a working connection; 3 new backends")


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.scenario("L12")
async def test_restart_without_check(
    pools: PoolKit, private_cluster: Any, observe: Callable[[str], None]
) -> None:
    async with pools.open(private_cluster.dsn, min_size=3) as pool:
        await pool.wait(10)
        old = await pool.pids(3)
        await anyio.to_thread.run_sync(private_cluster.restart)
        conn = await pool.getconn(timeout=10)
        try:
            await conn.execute("select 1")
        except psycopg3.OperationalError as ex:
            first = f"{type(ex).__name__} once"
        else:
            first = "a working connection"
            assert conn.pgconn.backend_pid not in old
        finally:
            await pool.putconn(conn)
        await pool.check()
        stats = await pool.settled(3)
        new = await pool.pids(3)
        assert not new & old
        async with pool.connection(timeout=1) as conn:
            assert await fetch(conn, "select 1") == 1
    observe(
        f"restart, no check: the next user got {first}; pool.check() replaced the rest"
        f" (lost={stats['connections_lost']}, bad={stats['returns_bad']})"
    )


@ALL_POOLS
@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.scenario("L12")
async def test_outage_requests_time_out_then_the_pool_refills(
    pools: PoolKit, private_cluster: Any, observe: Callable[[str], None]
) -> None:
    check = pools.ConnectionPool.check_connection
    timeout = 1.0
    async with pools.open(private_cluster.dsn, min_size=2, check=check) as pool:
        await pool.wait(10)
        old = await pool.pids(2)
        await anyio.to_thread.run_sync(private_cluster.stop)
        failures: list[tuple[BaseException, float]] = []

        async def request() -> None:
            start = time.monotonic()
            with pytest.raises(errors.PoolTimeout) as info:
                await pool.getconn(timeout=timeout)
            failures.append((info.value, time.monotonic() - start))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(request)
        assert len(failures) == 3
        for error, elapsed in failures:
            # Never before the timeout; expected just after it (1 s), 10x that only tells a hang.
            assert timeout <= elapsed < 10 * timeout, elapsed
            assert re.search("refused", str(error), re.IGNORECASE), str(error)
        assert pool.stats()["requests_waiting"] == 0

        await anyio.to_thread.run_sync(private_cluster.start)
        start = time.monotonic()
        stats = await pool.settled(2)
        refilled = time.monotonic() - start
        new = await pool.pids(2)
        assert not new & old
    observe(
        f"server down: 3 requests got PoolTimeout after"
        f" {max(e for _, e in failures):.2f} s ({str(failures[0][0]).splitlines()[0]});"
        f" refilled to min_size {refilled:.1f} s after the restart"
        f" (connect errors={stats['connections_errors']})"
    )


# -- 5. a crowd with random cancellations -------------------------------------------

#: The share of tasks interrupted, and where.
PLANS = {"none": 70, "before": 10, "waiting": 10, "query": 10}


async def run_interruptible(
    flavour: str, body: Callable[[Callable[[float], None]], Awaitable[None]], *, at_once: bool
) -> bool:
    """Run ``body(arm)``, interrupted the flavour's way; return True if it was.

    ``arm(delay)`` interrupts the whole run ``delay`` seconds later (asyncio:
    the task is cancelled; trio: the scope's deadline). ``at_once``:
    interrupted before it starts.
    """
    if flavour == "trio":
        with trio.CancelScope() as scope:
            if at_once:
                scope.cancel()

            def arm_trio(delay: float) -> None:
                scope.deadline = trio.current_time() + delay

            await body(arm_trio)
        return scope.cancelled_caught

    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []

    def arm_asyncio(delay: float) -> None:
        timers.append(loop.call_later(delay, task.cancel))

    task = asyncio.ensure_future(body(arm_asyncio))
    if at_once:
        task.cancel()
    await asyncio.wait({task})
    for timer in timers:
        timer.cancel()
    if task.cancelled():
        return True
    task.result()
    return False


@ASYNC_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L12")
@pytest.mark.parametrize("checked", [False, True], ids=["", "checked"])
async def test_200_tasks_cancelled_at_random(
    pools: PoolKit,
    dsn: str,
    admin: Any,
    app_name: str,
    checked: bool,
    observe: Callable[[str], None],
) -> None:
    """``checked``: with the ``check`` callback, which cancellations also interrupt."""
    extra = {"check": pools.ConnectionPool.check_connection} if checked else {}
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    plans = rng.choices(list(PLANS), weights=list(PLANS.values()), k=200)
    results: dict[int, tuple[int, int, int]] = {}
    interrupted: Counter[str] = Counter()
    async with pools.open(
        dsn, min_size=10, kwargs={"application_name": app_name}, **extra
    ) as handle:
        await handle.wait(10)
        pool = handle.pool
        before = handle.stats()
        assert (before["pool_size"], before["pool_available"]) == (10, 10)

        async def one(index: int, plan: str, delay: float, sleep: float) -> None:
            async def body(arm: Callable[[float], None]) -> None:
                if plan == "waiting":
                    arm(delay)
                async with pool.connection() as conn:
                    if plan == "query":
                        arm(delay)
                    cur = await conn.execute(
                        "select %s::int, pg_backend_pid() from pg_sleep(%s)", (index, sleep)
                    )
                    value, pid = await cur.fetchone()
                    results[index] = (value, pid, conn.pgconn.backend_pid)

            if await run_interruptible(pools.name, body, at_once=plan == "before"):
                interrupted[plan] += 1

        async with anyio.create_task_group() as group:
            for index, plan in enumerate(plans):
                sleep = 0.05 if plan == "query" else rng.uniform(0, 0.01)
                group.start_soon(one, index, plan, rng.uniform(0, 0.05), sleep)

        context = f"seed {seed}"
        assert {i for i, plan in enumerate(plans) if plan == "none"} <= set(results), context
        for index, (value, pid, own_pid) in results.items():
            assert value == index, f"task {index} got {value}'s result ({context})"
            assert pid == own_pid, context
        assert interrupted["before"] == plans.count("before"), context

        stats = await handle.settled(10)
        pids = await handle.pids(10)
        seen = wait_backends(admin, app_name, pids)
        assert seen == pids, f"server backends {seen} != the pool's {pids} ({context})"
        assert stats["requests_num"] - before["requests_num"] <= 200
    after_close = wait_backends(admin, app_name, set())
    assert after_close == set(), "backends left after close()"
    observe(
        f"200 tasks over 10 connections{' with check' if checked else ''},"
        f" {sum(interrupted.values())} interrupted"
        f" (before/waiting/query {interrupted['before']}/{interrupted['waiting']}/"
        f"{interrupted['query']}): {len(results)} served with their own results; after:"
        f" size={stats['pool_size']} idle={stats['pool_available']}"
        f" waiting={stats['requests_waiting']}, 10 backends, 0 after close"
    )


@pytest.mark.scenario("L12", flavour="sync")
def test_sync_50_threads_interrupted_at_random(
    dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    """The sync crowd: 50 threads making 4 requests each, over a pool of 10.

    50 threads rather than 200: each is an OS thread blocked in the pool or
    in a query; 50 already keep five requests queued per connection, which
    is what exercises the queue, while 200 would mostly measure thread
    start-up and scheduling. Threads are interrupted the ways a thread can
    be: its request times out, its query is cancelled by another thread,
    or it raises in the block.
    """
    seed = random.randrange(1 << 32)
    plans_weights = {"none": 70, "waiting": 10, "query": 10, "raise": 10}
    results: dict[int, tuple[int, int, int]] = {}
    outcomes: Counter[str] = Counter()
    unexpected: list[tuple[int, str, BaseException]] = []
    with pool_module("sync").ConnectionPool(
        dsn, min_size=10, kwargs={"application_name": app_name}
    ) as pool:
        pool.wait(10)
        before = pool.stats()

        def one(index: int, plan: str, rng: random.Random) -> None:
            timeout = rng.uniform(0.001, 0.05) if plan == "waiting" else 30.0
            sleep = 0.05 if plan == "query" else rng.uniform(0, 0.01)
            with pool.connection(timeout=timeout) as conn:
                timer = threading.Timer(rng.uniform(0, 0.05), conn.cancel)
                if plan == "query":
                    timer.start()
                try:
                    value, pid = conn.execute(
                        "select %s::int, pg_backend_pid() from pg_sleep(%s)", (index, sleep)
                    ).fetchone()
                finally:
                    timer.cancel()
                    if plan == "query":
                        timer.join()
                results[index] = (value, pid, conn.pgconn.backend_pid)
                if plan == "raise":
                    raise Boom()

        def worker(number: int) -> None:
            rng = random.Random(seed + number)
            for round_ in range(4):
                index = number * 4 + round_
                (plan,) = rng.choices(list(plans_weights), weights=list(plans_weights.values()))
                try:
                    one(index, plan, rng)
                except (errors.PoolTimeout, errors.QueryCanceled, Boom) as ex:
                    outcomes[type(ex).__name__] += 1
                    if plan == "none":
                        unexpected.append((index, plan, ex))
                except BaseException as ex:
                    unexpected.append((index, plan, ex))
                else:
                    outcomes["served"] += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50)
        assert not any(thread.is_alive() for thread in threads), "a thread hangs"
        context = f"seed {seed}"
        assert not unexpected, f"{unexpected} ({context})"
        for index, (value, pid, own_pid) in results.items():
            assert value == index, f"request {index} got {value}'s result ({context})"
            assert pid == own_pid, context

        stats = settle_sync(pool, 10)
        assert stats["requests_num"] - before["requests_num"] <= 200
        conns = [pool.getconn(timeout=5) for _ in range(10)]
        pids = {conn.pgconn.backend_pid for conn in conns}
        for conn in conns:
            pool.putconn(conn)
        assert wait_backends(admin, app_name, pids) == pids
    assert wait_backends(admin, app_name, set()) == set(), "backends left after close()"
    observe(
        f"50 threads x 4 requests over 10 connections: {dict(outcomes)}; after:"
        f" size={stats['pool_size']} idle={stats['pool_available']}"
        f" waiting={stats['requests_waiting']}, 10 backends, 0 after close"
    )


# -- 6. nothing outlives the pool -------------------------------------------------


@only("asyncio")
@pytest.mark.anyio
async def test_asyncio_close_leaves_no_task(
    pools: PoolKit, dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    module = pools.module
    kwargs = {"application_name": app_name}
    before = asyncio.all_tasks()
    pool = module.ConnectionPool(dsn, min_size=2, max_size=4, kwargs=kwargs)
    await pool.open(wait=True, timeout=10)
    held = [await pool.getconn(timeout=10) for _ in range(4)]
    waiter = asyncio.create_task(pool.getconn(timeout=30))
    await until_waiting(pool)
    running = len(asyncio.all_tasks() - before - {waiter})
    await pool.close()
    # Expected: woken by close() in a few ms; its own timeout is 30 s.
    done, _ = await asyncio.wait({waiter}, timeout=10)
    assert waiter in done, "a waiting request outlived close()"
    with pytest.raises(errors.PoolClosed):
        waiter.result()
    assert asyncio.all_tasks() - before == set()
    for conn in held:
        await maybe_await(pool.putconn(conn))
        assert conn.closed
    assert wait_backends(admin, app_name, set()) == set()
    with pytest.raises(errors.PoolClosed):
        await pool.getconn()

    # Closed while its first connects are in flight.
    async with module.open_pool(dsn, min_size=4, kwargs=kwargs) as quick:
        assert not quick.closed
    assert asyncio.all_tasks() - before == set()
    assert wait_backends(admin, app_name, set()) == set()
    observe(f"{running} pool tasks while open, none after close(); waiter got PoolClosed")


def task_tree(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    """Every task below ``task``."""
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield child
            yield from task_tree(child)


@only("trio")
@pytest.mark.anyio
async def test_trio_pool_work_lives_in_its_nursery(
    pools: PoolKit, dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    module = pools.module
    kwargs = {"application_name": app_name}
    me = trio.lowlevel.current_task()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    before = set(task_tree(root))

    unopened = module.ConnectionPool(dsn, min_size=1, kwargs=kwargs)
    with pytest.raises(errors.PoolClosed, match="open_pool"):
        await unopened.getconn()
    assert set(task_tree(root)) == before
    assert backends(admin, app_name) == set()

    async with module.open_pool(dsn, min_size=2, max_size=4, kwargs=kwargs) as pool:
        await pool.wait(10)
        held = [await pool.getconn(timeout=10) for _ in range(4)]
        started = set(task_tree(root)) - before
        assert started <= set(task_tree(me)), "a pool task runs outside the block's nursery"
        for conn in held:
            await maybe_await(pool.putconn(conn))
    assert set(task_tree(root)) == before
    assert all(conn.closed for conn in held)
    assert wait_backends(admin, app_name, set()) == set()
    with pytest.raises(errors.PoolClosed):
        await pool.getconn()

    # Left while its first connects are in flight: they go with it.
    start = time.monotonic()
    async with module.open_pool(dsn, min_size=4, kwargs=kwargs):
        pass
    elapsed = time.monotonic() - start
    # Expected: a few ms (the connects are cancelled, not awaited); 10 s only tells a hang.
    assert elapsed < 10
    assert set(task_tree(root)) == before
    assert wait_backends(admin, app_name, set()) == set()
    observe(
        f"{len(started)} pool tasks while open, all under the block's task; none after;"
        f" left with connects in flight in {elapsed * 1000:.0f} ms"
    )


def test_sync_close_stops_every_thread(
    dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    before = set(threading.enumerate())
    pool = pool_module("sync").ConnectionPool(
        dsn, min_size=2, max_size=4, kwargs={"application_name": app_name}
    )
    pool.open(wait=True, timeout=10)
    held = [pool.getconn(timeout=10) for _ in range(4)]
    box: dict[str, BaseException] = {}

    def request() -> None:
        try:
            pool.getconn(timeout=30)
        except BaseException as ex:
            box["error"] = ex

    waiter = threading.Thread(target=request)
    waiter.start()
    wait_until(lambda: pool.stats()["requests_waiting"] == 1, "the request to wait")
    running = len(set(threading.enumerate()) - before - {waiter})
    pool.close()
    # Expected: woken by close() in a few ms; its own timeout is 30 s.
    waiter.join(10)
    assert not waiter.is_alive(), "a waiting request outlived close()"
    assert isinstance(box.get("error"), errors.PoolClosed)
    assert set(threading.enumerate()) - before == set()
    for conn in held:
        pool.putconn(conn)
        assert conn.closed
    assert wait_backends(admin, app_name, set()) == set()

    # Closed while its first connects are in flight.
    quick = pool_module("sync").ConnectionPool(
        dsn, min_size=4, kwargs={"application_name": app_name}
    )
    quick.open()
    quick.close()
    assert set(threading.enumerate()) - before == set()
    assert wait_backends(admin, app_name, set()) == set()
    observe(f"{running} pool threads while open, none after close(); waiter got PoolClosed")


@ASYNC_POOLS
@pytest.mark.anyio
@pytest.mark.scenario("L12")
async def test_pool_left_by_a_cancellation(
    pools: PoolKit, dsn: str, admin: Any, app_name: str, observe: Callable[[str], None]
) -> None:
    """The block that owns the pool is cancelled while one task queries and three wait."""
    module = pools.module
    kwargs = {"application_name": app_name}

    async def use(pool: Any) -> None:
        async with pool.connection() as conn:
            await conn.execute("select pg_sleep(30)")

    cancellers: list[Callable[[], object]] = []

    async def owner() -> None:
        async with module.open_pool(dsn, min_size=1, kwargs=kwargs) as pool:
            await pool.wait(10)
            async with anyio.create_task_group() as group:
                for _ in range(4):
                    group.start_soon(use, pool)
                await until_waiting(pool, 3)
                await await_until(
                    lambda: backends_running(admin, app_name) == 1, "the query to run on the server"
                )
                cancellers[0]()

    start = time.monotonic()
    if pools.name == "trio":
        root = trio.lowlevel.current_root_task()
        assert root is not None
        before_trio = set(task_tree(root))
        with trio.CancelScope() as scope:
            cancellers.append(scope.cancel)
            await owner()
        left: set[Any] = set(task_tree(root)) - before_trio
    else:
        before = asyncio.all_tasks()
        task = asyncio.ensure_future(owner())
        cancellers.append(task.cancel)
        done, _ = await asyncio.wait({task}, timeout=RECOVERY_BOUND)  # a hang guard, as below
        assert task in done, "leaving the pool's block hangs"
        assert task.cancelled()
        left = asyncio.all_tasks() - before
    elapsed = time.monotonic() - start
    # Expected: a few ms after the cancel (the query is cancelled); the bound only tells a hang.
    assert elapsed < RECOVERY_BOUND + 1
    assert not left, f"tasks left after the pool's block: {left}"
    assert wait_backends(admin, app_name, set()) == set(), "backends left after the block"
    observe(f"pool's block cancelled, 1 query and 3 waiters in it: left in {elapsed:.2f} s")
