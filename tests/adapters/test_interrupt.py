"""Interrupting a query: the server stops, the connection stays usable.

Each flavour is interrupted its own way: Ctrl-C for blocking code, task
cancellation and timeouts for asyncio, cancel scopes for trio and anyio.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import trio

import psycopg3
import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS, backend_state
from fix_wait import await_until, wait_until
from psycopg3.pq import TransactionStatus


def wait_backend_state(admin: Any, pid: int, state: str) -> str:
    # The cancel is acknowledged before the backend reports itself idle:
    # wait for pg_stat_activity to catch up.
    wait_until(lambda: backend_state(admin, pid) == state, f"backend {pid} to be {state!r}")
    return state


def is_waiting(admin: Any, pid: int) -> bool:
    """Backend ``pid`` runs its query: a cancel now is not ignored as too early."""
    query = "select wait_event_type from pg_stat_activity where pid = %s and state = 'active'"
    return admin.execute(query, (pid,)).fetchone() in (("Timeout",), ("Lock",))


def when_waiting(admin: Any, pid: int, action: Callable[[], object]) -> threading.Thread:
    """Start a thread doing ``action`` once backend ``pid`` waits in its query."""

    def run() -> None:
        wait_until(lambda: is_waiting(admin, pid), f"backend {pid} to run its query")
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def send_sigint_when_waiting(admin: Any, pid: int, sent: list[float]) -> threading.Thread:
    main = threading.main_thread().ident
    assert main is not None

    def sigint() -> None:
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    return when_waiting(admin, pid, sigint)


# -- blocking code: Ctrl-C --------------------------------------------------


@pytest.mark.scenario("C1", flavour="sync")
@pytest.mark.parametrize("autocommit", [True, False])
def test_ctrl_c_sync(
    dsn: str, admin: Any, autocommit: bool, observe: Callable[[str], None]
) -> None:
    assert threading.current_thread() is threading.main_thread()
    with psycopg3_sync.connect(dsn, autocommit=autocommit) as conn:
        pid = conn.pgconn.backend_pid
        sent: list[float] = []
        timer = send_sigint_when_waiting(admin, pid, sent)
        with pytest.raises(KeyboardInterrupt):
            conn.execute("select pg_sleep(10)")
        latency = time.monotonic() - sent[0]
        timer.join()
        # Expected: a cancel round trip (ms); the bound is far below the 10 s sleep.
        assert latency < 5
        assert wait_backend_state(
            admin, pid, "idle" if autocommit else "idle in transaction (aborted)"
        ) in (
            "idle",
            "idle in transaction (aborted)",
        )
        assert not conn.closed and not conn.broken
        expected = TransactionStatus.IDLE if autocommit else TransactionStatus.INERROR
        assert conn.pgconn.transaction_status == expected
        conn.rollback()
        assert conn.execute("select 42").fetchone() == (42,)
        observe(
            f"KeyboardInterrupt {latency * 1000:.0f} ms after SIGINT, backend idle,"
            f" {expected.name} then usable"
        )


@pytest.mark.scenario("C1", flavour="sync")
def test_signal_without_exception_does_not_disturb(dsn: str, admin: Any) -> None:
    # A handler that returns (like a SIGALRM ticker) must not break the wait.
    # The query waits for a lock that admin releases after five signals were
    # handled: they certainly came during the wait.
    ticks = []
    previous = signal.signal(signal.SIGUSR1, lambda *args: ticks.append(1))
    main = threading.main_thread().ident
    assert main is not None
    key = 1516
    admin.execute("select pg_advisory_lock(%s)", (key,))

    def ticker() -> None:
        for tick in range(5):
            signal.pthread_kill(main, signal.SIGUSR1)
            wait_until(lambda n=tick: len(ticks) > n, "the signal to be handled")
        admin.execute("select pg_advisory_unlock(%s)", (key,))

    try:
        with psycopg3_sync.connect(dsn) as conn:
            thread = when_waiting(admin, conn.pgconn.backend_pid, ticker)
            try:
                row = conn.execute("select 8 from pg_advisory_xact_lock(%s)", (key,)).fetchone()
            finally:
                thread.join()
            assert row == (8,)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(ticks) == 5


@pytest.mark.scenario("C5", flavour="sync")
def test_cancel_from_another_thread(dsn: str, admin: Any) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        timer = when_waiting(admin, conn.pgconn.backend_pid, conn.cancel)
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            conn.execute("select pg_sleep(10)")
        timer.join()
        assert excinfo.value.sqlstate == "57014"
        conn.rollback()
        assert conn.execute("select 1").fetchone() == (1,)
    # cancel() on an idle or closed connection is a harmless no-op.
    conn2 = psycopg3_sync.connect(dsn)
    conn2.cancel()
    assert conn2.execute("select 2").fetchone() == (2,)
    conn2.close()
    conn2.cancel()


# -- async flavours ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.parametrize("autocommit", [True, False])
@pytest.mark.scenario("C4")
async def test_cancel_scope(
    flavour: Any, dsn: str, admin: Any, autocommit: bool, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:
        pid = conn.pgconn.backend_pid
        cancelled: list[float] = []
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def cancel_when_waiting() -> None:
                    await await_until(lambda: is_waiting(admin, pid), "the query to run")
                    cancelled.append(time.monotonic())
                    scope.cancel()

                group.start_soon(cancel_when_waiting)
                await conn.execute("select pg_sleep(10)")
        assert scope.cancelled_caught
        latency = time.monotonic() - cancelled[0]
        # Expected: a cancel round trip (ms); the bound is far below the 10 s sleep.
        assert latency < 5
        observe(f"scope deadline to control back: {latency * 1000:.0f} ms; usable")
        expected_state = "idle" if autocommit else "idle in transaction (aborted)"
        assert wait_backend_state(admin, pid, expected_state) == expected_state
        assert not conn.broken
        if not autocommit:
            with pytest.raises(psycopg3.InternalError):
                await conn.execute("select 1")
            await conn.rollback()
        cur = await conn.execute("select 42")
        assert await cur.fetchone() == (42,)
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ["asyncio"], indirect=True)
@pytest.mark.scenario("C2")
async def test_asyncio_task_cancel(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        pid = conn.pgconn.backend_pid
        task = asyncio.create_task(conn.execute("select pg_sleep(10)"))
        await await_until(lambda: is_waiting(admin, pid), "the query to run")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert wait_backend_state(admin, pid, "idle") == "idle"
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ["asyncio"], indirect=True)
@pytest.mark.scenario("C3")
async def test_asyncio_timeouts(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        pid = conn.pgconn.backend_pid
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await conn.execute("select pg_sleep(10)")
        assert wait_backend_state(admin, pid, "idle") == "idle"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.execute("select pg_sleep(10)"), 0.2)
        assert wait_backend_state(admin, pid, "idle") == "idle"
        cur = await conn.execute("select 3")
        assert await cur.fetchone() == (3,)
    finally:
        await conn.close()


@pytest.mark.trio
@pytest.mark.scenario("C4", flavour="trio")
async def test_trio_fail_after_and_nursery(dsn: str, admin: Any) -> None:
    from psycopg3_trio import trio_connect

    async with trio_connect(dsn, autocommit=True) as conn:
        pid = conn.pgconn.backend_pid
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(0.2):
                await conn.execute("select pg_sleep(10)")
        assert wait_backend_state(admin, pid, "idle") == "idle"

        # A sibling task failing cancels the nursery, and the query with it.
        async def query() -> None:
            await conn.execute("select pg_sleep(10)")

        async def fail() -> None:
            await await_until(lambda: is_waiting(admin, pid), "the query to run")
            raise ValueError("sibling failed")

        with pytest.RaisesGroup(ValueError):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(query)
                nursery.start_soon(fail)
        assert wait_backend_state(admin, pid, "idle") == "idle"
        cur = await conn.execute("select 5")
        assert await cur.fetchone() == (5,)


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.scenario("C5")
async def test_cancel_method(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        errors: list[BaseException] = []

        async def query() -> None:
            try:
                await conn.execute("select pg_sleep(10)")
            except psycopg3.OperationalError as ex:
                errors.append(ex)

        async with anyio.create_task_group() as group:
            group.start_soon(query)
            await await_until(
                lambda: is_waiting(admin, conn.pgconn.backend_pid), "the query to run"
            )
            await conn.cancel()
        assert len(errors) == 1 and getattr(errors[0], "sqlstate", None) == "57014"
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)
    finally:
        await conn.close()


# -- the cancel request's worker thread (libpq < 17) -----------------------


def counting_starter(started: list[str]) -> Callable[[Callable[[], None]], None]:
    """A ``WorkerStarter`` that runs each worker in a real thread and counts them."""

    def start(work: Callable[[], None]) -> None:
        started.append(threading.current_thread().name)
        threading.Thread(target=work, name="test-cancel-worker", daemon=True).start()

    return start


def expected_workers(requests: int) -> int:
    # libpq 17+ sends the request without blocking: no worker at all.
    from psycopg3._cancel import NONBLOCKING_CANCEL

    return 0 if NONBLOCKING_CANCEL else requests


@pytest.mark.scenario("C5", flavour="sync")
def test_cancel_worker_from_the_connection(dsn: str, admin: Any) -> None:
    # An adapter whose framework patches threading (gevent) gives the
    # connection its own way to start the blocking PQcancel's thread.
    started: list[str] = []
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.start_cancel_worker = counting_starter(started)
        timer = when_waiting(admin, conn.pgconn.backend_pid, conn.cancel)
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            conn.execute("select pg_sleep(10)")
        timer.join()
        assert excinfo.value.sqlstate == "57014"
        assert len(started) == expected_workers(1)
        assert conn.execute("select 1").fetchone() == (1,)


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.scenario("C4")
async def test_cancel_worker_on_interruption(flavour: Any, dsn: str, admin: Any) -> None:
    # The recovery after a cancelled task sends its request the same way.
    started: list[str] = []
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        conn.start_cancel_worker = counting_starter(started)
        pid = conn.pgconn.backend_pid
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def cancel_when_waiting() -> None:
                    await await_until(lambda: is_waiting(admin, pid), "the query to run")
                    scope.cancel()

                group.start_soon(cancel_when_waiting)
                await conn.execute("select pg_sleep(10)")
        assert scope.cancelled_caught
        assert len(started) == expected_workers(1)
        cur = await conn.execute("select 7")
        assert await cur.fetchone() == (7,)
    finally:
        await conn.close()
