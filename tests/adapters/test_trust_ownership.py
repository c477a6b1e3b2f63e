"""Who may use a connection: its event loop, its block's task, its thread.

Issue 14, "Ownership" (fork aside) and the leftovers of case 11. Each
misuse either works as documented or raises a clear error; none hangs:

* an async connection belongs to the event loop it was opened in: from
  another ``asyncio.run()``, another ``trio.run()``, the other framework or
  another thread's loop, every command raises ``InterfaceError``, and
  ``close()`` still ends the server session without that loop's help (or,
  when that loop still runs in another thread, by handing it the close);
* a blocking connection works from inside a running event loop (it blocks);
* closing a connection whose block was entered and never left wakes the
  tasks or threads waiting for that block, with an error.

Whether a session ended is read on the server: the connection holds a
session advisory lock, which ``admin`` can take only once that session is
gone. No sleeps.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
import trio

import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from psycopg3 import InterfaceError, OperationalError, ProgrammingError

KEY = 14_0714

# -- the connection's event loop ----------------------------------------------


@pytest.fixture
def session_gone(admin: Any) -> Iterator[Callable[[], None]]:
    """Call it once the connection holding lock KEY is closed: it returns when its session ends."""
    taken = []

    def wait() -> None:
        admin.execute("select pg_advisory_lock(%s)", (KEY,))
        taken.append(True)

    yield wait
    if taken:
        admin.execute("select pg_advisory_unlock(%s)", (KEY,))


async def hold_key(conn: Any) -> None:
    await conn.execute("select pg_advisory_lock(%s)", (KEY,))


async def refused_everywhere(conn: Any) -> None:
    """Every command of ``conn`` raises the loop's InterfaceError; nothing hangs."""
    with pytest.raises(InterfaceError, match="event loop it was opened in"):
        await conn.execute("select 1")
    with pytest.raises(InterfaceError, match="event loop it was opened in"):
        await conn.cursor().execute("select 1")
    with pytest.raises(InterfaceError, match="event loop it was opened in"):
        async with conn.transaction():
            pass
    with pytest.raises(InterfaceError, match="event loop it was opened in"):
        await conn.commit()


async def close_it(conn: Any) -> None:
    await conn.close()


def asyncio_open(dsn: str) -> Any:
    async def main() -> Any:
        conn = await psycopg3_asyncio.connect(dsn, autocommit=True)
        await hold_key(conn)
        return conn

    return asyncio.run(main())


def trio_open(dsn: str) -> Any:
    async def main() -> Any:
        conn = await psycopg3_trio.connect(dsn, autocommit=True)
        await hold_key(conn)
        return conn

    return trio.run(main)


@pytest.mark.parametrize("opener", ["asyncio", "trio"])
@pytest.mark.parametrize("user", ["asyncio", "trio"])
def test_used_from_another_loop(
    dsn: str, session_gone: Callable[[], None], opener: str, user: str
) -> None:
    conn = asyncio_open(dsn) if opener == "asyncio" else trio_open(dsn)
    run = (lambda f: asyncio.run(f())) if user == "asyncio" else trio.run
    run(lambda: refused_everywhere(conn))
    run(lambda: close_it(conn))
    assert conn.closed
    session_gone()


class LoopThread:
    """A connection opened in an event loop that keeps running in another thread."""

    def __init__(self, dsn: str, framework: str):
        self._dsn = dsn
        self._framework = framework
        self._opened: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Any:
        self._thread.start()
        conn = self._opened.get()
        if isinstance(conn, BaseException):
            raise conn
        return conn

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        if self._framework == "asyncio":
            asyncio.run(self._main(psycopg3_asyncio.connect, asyncio.to_thread))
        else:
            trio.run(self._main, psycopg3_trio.connect, trio.to_thread.run_sync)

    async def _main(self, connect: Any, to_thread: Any) -> None:
        try:
            conn = await connect(self._dsn, autocommit=True)
            await hold_key(conn)
        except BaseException as ex:
            self._opened.put(ex)
            raise
        self._opened.put(conn)
        await to_thread(self._stop.wait)  # (the loop runs meanwhile)
        await conn.close()


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_used_while_its_loop_runs_in_another_thread(
    dsn: str, session_gone: Callable[[], None], framework: str
) -> None:
    with LoopThread(dsn, framework) as conn:
        run = (lambda f: asyncio.run(f())) if framework == "asyncio" else trio.run
        run(lambda: refused_everywhere(conn))
        run(lambda: close_it(conn))  # handed to the loop that owns it
        session_gone()
        assert conn.closed


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_blocking_connection_in_a_running_loop(dsn: str, framework: str) -> None:
    async def main() -> Any:
        with psycopg3_sync.connect(dsn) as conn:
            with conn.transaction():
                conn.execute("select 1")
            return conn.execute("select 42").fetchone()

    run = (lambda f: asyncio.run(f())) if framework == "asyncio" else trio.run
    assert run(main) == (42,)


def test_asyncio_pool_from_another_loop(dsn: str) -> None:
    async def open_pool() -> Any:
        pool = psycopg3_asyncio.ConnectionPool(dsn, min_size=1)
        await pool.open(wait=True)
        return pool

    pool = asyncio.run(open_pool())

    async def use() -> None:
        with pytest.raises(InterfaceError, match="event loop"):
            async with pool.connection() as conn:
                await conn.execute("select 1")
        await pool.close()

    asyncio.run(use())
    assert pool.closed


pytestmark_flavoured = pytest.mark.anyio


# -- a block entered and never left, then close() ------------------------------


@pytestmark_flavoured
@pytest.mark.parametrize("closer", ["owner", "other"])
async def test_close_wakes_those_waiting_for_an_abandoned_block(
    aconn: Any, flavour: Any, closer: str
) -> None:
    errors: list[BaseException] = []
    if flavour.is_sync:
        conn = aconn.target
        tx = conn.transaction()
        tx.__enter__()  # never left
        started = threading.Event()

        def waiter() -> None:
            started.set()
            try:
                conn.execute("select 1")
            except Exception as ex:
                errors.append(ex)

        thread = threading.Thread(target=waiter)
        thread.start()
        started.wait()
        if closer == "owner":
            conn.close()
        else:
            other = threading.Thread(target=conn.close)
            other.start()
            other.join()
        thread.join()
    else:
        # The waiter is started before the block: it is not the block's child.
        go = anyio.Event()

        async def task_waiter() -> None:
            await go.wait()
            try:
                await aconn.execute("select 1")
            except Exception as ex:
                errors.append(ex)

        async with anyio.create_task_group() as group:
            group.start_soon(task_waiter)
            tx = aconn.transaction()
            await tx.__aenter__()  # never left
            go.set()
            await anyio.wait_all_tasks_blocked()
            if closer == "owner":
                await aconn.close()
            else:
                group.start_soon(aconn.close)
    assert len(errors) == 1
    assert isinstance(errors[0], (OperationalError, InterfaceError)), errors[0]
    assert "closed" in str(errors[0])


# -- arguments (case 11) ---------------------------------------------------------


@pytestmark_flavoured
@pytest.mark.parametrize("attribute", ["autocommit", "read_only", "deferrable"])
async def test_flag_must_be_a_bool(aconn: Any, attribute: str) -> None:
    before = getattr(aconn, attribute)
    with pytest.raises(ProgrammingError, match=attribute):
        setattr(aconn, attribute, "x")
    assert getattr(aconn, attribute) == before
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)
