"""A connection closed by another task or thread while an operation is in progress.

Issue 14, cases 3 and 8 and their class. For each operation that waits on
the server (a query, a server cursor's FETCH, COPY in and out, notifies(),
a pipeline's sync, a transaction block's COMMIT), the connection is closed
from another task (another thread for the blocking flavour) once the server
shows the operation waiting (``pg_stat_activity``, a lock that ``admin``
holds). Then:

* the operation raises a DB-API error (no hang, no bare ``OSError`` or
  ``ExceptionGroup``) and nothing is reported done;
* ``close()`` returned;
* a new connection made right after (which may well get the same file
  descriptor number) works.

The blocking flavour runs the operation in a thread with its own event loop
(the ``SyncFacade`` methods block); the async flavours run it in a task.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import await_until
from psycopg3.waiting import Wait
from psycopg3_asyncio.waiting import ASYNCIO, wait_asyncio

pytestmark = pytest.mark.anyio

#: A bound for a hang only (the test fails instead of stalling the suite);
#: every outcome is decided by events and the server's state.
HANG = 30


def _key() -> int:
    return uuid.uuid4().int % 2**31


async def _wait_server(admin: psycopg3_sync.Connection, query: str, params: Any) -> None:
    """Wait until ``query`` (on ``pg_stat_activity``) returns a row."""
    await await_until(lambda: admin.execute(query, params).fetchone() is not None, query)


async def _wait_lock_wait(admin: psycopg3_sync.Connection, pid: int) -> None:
    """Wait until the backend ``pid`` waits for a lock."""
    await _wait_server(
        admin,
        "select 1 from pg_stat_activity where pid = %s and wait_event_type = 'Lock'",
        (pid,),
    )


async def _wait_gone(admin: psycopg3_sync.Connection, pid: int) -> None:
    await _wait_server(
        admin, "select 1 where not exists (select 1 from pg_stat_activity where pid = %s)", (pid,)
    )


async def _run_and_close(
    flavour: Any,
    dsn: str,
    conn: Any,
    operation: Callable[[Any], Awaitable[None]],
    waiting: Callable[[], Awaitable[None]],
) -> BaseException | str:
    """Run ``operation(conn)`` elsewhere; once ``waiting()`` returns, close ``conn``.

    Right after ``close()``, before the operation has had a chance to run
    again, a new connection is made and used: it likely gets the same file
    descriptor number, and must find nothing of the old waits behind.
    Return what the operation raised, or ``"done"`` if it returned.
    """
    outcome: list[BaseException | str] = []

    async def run() -> None:
        try:
            await operation(conn)
            outcome.append("done")
        except Exception as ex:
            outcome.append(ex)

    with anyio.fail_after(HANG):
        if flavour.is_sync:
            thread = threading.Thread(target=asyncio.run, args=(run(),))
            thread.start()
            await waiting()
            await conn.close()
            await _check_reconnect(flavour, dsn)
            await anyio.to_thread.run_sync(thread.join)
        else:
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                await waiting()
                await conn.close()
                await _check_reconnect(flavour, dsn)
    assert len(outcome) == 1
    assert conn.closed
    return outcome[0]


def _check_closed_error(outcome: BaseException | str) -> None:
    """The operation failed with a DB-API error that says the connection closed."""
    assert isinstance(outcome, (psycopg3.OperationalError, psycopg3.InterfaceError)), outcome
    assert "closed" in str(outcome)


async def _check_reconnect(flavour: Any, dsn: str) -> None:
    with anyio.fail_after(HANG):
        conn = await flavour.connect(dsn)
        try:
            cur = await conn.execute("select 42")
            assert await cur.fetchone() == (42,)
        finally:
            await conn.close()


async def _pid(conn: Any) -> int:
    cur = await conn.execute("select pg_backend_pid()")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


# -- waiting on the server, closed from elsewhere ------------------------------


OPERATIONS = ["execute", "executemany", "server_cursor_fetch", "copy_out", "pipeline_sync"]


@pytest.mark.parametrize("what", OPERATIONS)
async def test_close_while_waiting(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection, what: str
) -> None:
    key = _key()
    admin.execute("select pg_advisory_lock(%s)", (key,))
    conn = await flavour.connect(dsn, autocommit=what != "server_cursor_fetch")
    pid = await _pid(conn)
    if what == "pipeline_sync" and psycopg3.pq.version() < 140000:
        pytest.skip("pipelines need libpq 14")

    async def operation(conn: Any) -> None:
        if what == "execute":
            await conn.execute("select pg_advisory_lock(%s)", (key,))
        elif what == "executemany":
            cur = conn.cursor()
            await cur.executemany("select pg_advisory_lock(%s)", [(key,)] * 3)
        elif what == "server_cursor_fetch":
            cur = conn.cursor("waiting")
            await cur.execute("select pg_advisory_lock(%s)", (key,))
            await cur.fetchone()
        elif what == "copy_out":
            cur = conn.cursor()
            statement = f"copy (select pg_advisory_lock({key})) to stdout"
            async with cur.copy(statement) as copy:
                while await copy.read_row() is not None:
                    pass
        elif what == "pipeline_sync":
            async with conn.pipeline() as pipeline:
                await conn.execute("select pg_advisory_lock(%s)", (key,))
                await pipeline.sync()

    outcome = await _run_and_close(
        flavour, dsn, conn, operation, lambda: _wait_lock_wait(admin, pid)
    )
    _check_closed_error(outcome)
    await _check_reconnect(flavour, dsn)


async def test_close_during_commit(flavour: Any, dsn: str, admin: psycopg3_sync.Connection) -> None:
    # A transaction block's COMMIT waits on a deferred trigger's lock.
    key, table = _key(), f"trust_close_{uuid.uuid4().hex}"
    admin.execute(f"create table {table} (x int)")
    admin.execute(
        f"create function {table}_f() returns trigger language plpgsql as"
        f" $$ begin perform pg_advisory_xact_lock({key}); return null; end $$"
    )
    admin.execute(
        f"create constraint trigger t after insert on {table} deferrable initially deferred"
        f" for each row execute function {table}_f()"
    )
    admin.execute("select pg_advisory_lock(%s)", (key,))
    conn = await flavour.connect(dsn, autocommit=True)
    pid = await _pid(conn)

    async def operation(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute(f"insert into {table} values (1)")

    outcome = await _run_and_close(
        flavour, dsn, conn, operation, lambda: _wait_lock_wait(admin, pid)
    )
    # A COMMIT in flight has an unknown outcome: it must not be reported done.
    _check_closed_error(outcome)
    await _check_reconnect(flavour, dsn)


async def test_close_during_copy_in_end(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # The COPY waits for its result: its rows wait for a lock in a trigger.
    key = _key()
    table = await _blocking_copy_table(admin, key, "x int")
    conn = await flavour.connect(dsn)
    pid = await _pid(conn)
    cur = conn.cursor()

    async def operation(conn: Any) -> None:
        async with cur.copy(f"copy {table} from stdin") as copy:
            for n in range(10):
                await copy.write_row((n,))

    outcome = await _run_and_close(
        flavour, dsn, conn, operation, lambda: _wait_lock_wait(admin, pid)
    )
    _check_closed_error(outcome)
    assert cur.rowcount == -1
    await _check_reconnect(flavour, dsn)
    # The server's truth: once the lock is free the abandoned session ends,
    # its transaction never committed.
    admin.execute("select pg_advisory_unlock(%s)", (key,))
    await _wait_gone(admin, pid)
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)


async def test_close_during_notifies(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # Case 8: a task iterating notifies() when the connection is closed.
    channel = f"trust_close_{uuid.uuid4().hex}"
    conn = await flavour.connect(dsn, autocommit=True)
    await conn.execute(f"listen {channel}")
    received: list[Any] = []

    async def operation(conn: Any) -> None:
        async for notify in conn.notifies():
            received.append(notify)

    async def waiting() -> None:
        admin.execute(f"notify {channel}, 'one'")
        await await_until(lambda: received, "the notification")

    outcome = await _run_and_close(flavour, dsn, conn, operation, waiting)
    _check_closed_error(outcome)
    assert [n.payload for n in received] == ["one"]
    await _check_reconnect(flavour, dsn)


async def test_close_during_notifies_then_reconnect_repeatedly(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # The fd number is reused by the next connection: nothing of the old
    # waits may be left in the loop's selector (20 of 20 failed here).
    for _ in range(5):
        await test_close_during_notifies(flavour, dsn, admin)


# -- COPY FROM STDIN closed between writes (case 3) ------------------------------


async def _close_elsewhere(flavour: Any, conn: Any) -> None:
    """Close ``conn`` from another task, or another thread for the blocking flavour."""
    with anyio.fail_after(HANG):
        if flavour.is_sync:
            await anyio.to_thread.run_sync(conn.target.close)
        else:
            async with anyio.create_task_group() as group:
                group.start_soon(conn.close)


@pytest.mark.parametrize("then", ["exit", "write_row", "write"])
async def test_copy_in_closed_between_writes(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection, then: str
) -> None:
    table = f"trust_close_{uuid.uuid4().hex}"
    admin.execute(f"create table {table} (x int)")
    conn = await flavour.connect(dsn, autocommit=True)
    cur = conn.cursor()
    with pytest.raises(psycopg3.InterfaceError, match="closed during the COPY") as info:
        async with cur.copy(f"copy {table} from stdin") as copy:
            await copy.write_row((1,))
            await _close_elsewhere(flavour, conn)
            assert conn.closed
            if flavour.is_sync:
                # close() returned while this thread holds the connection: the
                # PGconn is freed when the block lets go of it, not under it.
                assert conn.target.lock.locked()
                assert conn.target.pgconn.pgconn_ptr is not None
            if then == "write_row":
                await copy.write_row((2,))
            elif then == "write":
                await copy.write("3\n")
    assert "not committed" in str(info.value) or then == "exit"
    assert cur.rowcount == -1
    assert conn.closed
    if flavour.is_sync:
        assert conn.target.pgconn.pgconn_ptr is None  # freed as the block ended
    # Nothing more can be written, and nothing was kept.
    with pytest.raises(psycopg3.ProgrammingError):
        await copy.write_row((4,))
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)
    await _check_reconnect(flavour, dsn)


# -- COPY FROM STDIN waiting to send, closed or interrupted ---------------------

#: More than the loopback socket buffers hold: the write waits for the server,
#: which waits for a lock in a trigger. Few rows: the abandoned session
#: works through what it received before it finds the client gone.
BIG_COPY = (b"x" * (1024 * 1024) + b"\n") * 32


async def _blocking_copy_table(
    admin: psycopg3_sync.Connection, key: int, column: str = "x text"
) -> str:
    """A table whose inserts wait for advisory lock ``key``, held by ``admin``."""
    table = f"trust_close_{uuid.uuid4().hex}"
    admin.execute(f"create table {table} ({column})")
    admin.execute(
        f"create function {table}_f() returns trigger language plpgsql as"
        f" $$ begin perform pg_advisory_xact_lock({key}); return new; end $$"
    )
    admin.execute(
        f"create trigger t before insert on {table} for each row execute function {table}_f()"
    )
    admin.execute("select pg_advisory_lock(%s)", (key,))
    return table


async def test_close_during_copy_in_write(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # The write waits for the socket (trio, anyio: for either direction, two
    # waits in child tasks, which start after the close() may have run; anyio
    # on asyncio keeps them where its notify_closing() cannot find them). The
    # socket is shut down and the fd kept until the write leaves, so its
    # number never reaches the next connection with a wait still on it
    # (anyio-asyncio hung 5 of 5 before; trio failed 1 in ~20 with
    # BusyResourceError from the next connection's fd).
    key = _key()
    table = await _blocking_copy_table(admin, key)
    conn = await flavour.connect(dsn)
    pid = await _pid(conn)
    cur = conn.cursor()

    async def operation(conn: Any) -> None:
        async with cur.copy(f"copy {table} from stdin") as copy:
            await copy.write(BIG_COPY)

    outcome = await _run_and_close(
        flavour, dsn, conn, operation, lambda: _wait_lock_wait(admin, pid)
    )
    _check_closed_error(outcome)
    assert cur.rowcount == -1
    admin.execute("select pg_advisory_unlock(%s)", (key,))
    await _wait_gone(admin, pid)
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_copy_in_interrupted_and_caught_is_not_done(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # A cancellation inside the block, caught there: the recovery aborted
    # the COPY, so leaving the block normally must not look like success.
    key = _key()
    table = await _blocking_copy_table(admin, key)
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        pid = await _pid(conn)
        cur = conn.cursor()
        scope = anyio.CancelScope()

        async def cancel_when_blocked() -> None:
            await _wait_lock_wait(admin, pid)
            scope.cancel()

        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as group:
                with pytest.raises(psycopg3.OperationalError, match="interrupted and aborted"):
                    async with cur.copy(f"copy {table} from stdin") as copy:
                        group.start_soon(cancel_when_blocked)
                        with scope:
                            await copy.write(BIG_COPY)
                        assert scope.cancelled_caught
        assert cur.rowcount == -1
        admin.execute("select pg_advisory_unlock(%s)", (key,))
        cur = await conn.execute(f"select count(*) from {table}")
        assert await cur.fetchone() == (0,)
    finally:
        await conn.close()


# -- blocks closed from elsewhere between statements ----------------------------


@pytest.mark.parametrize("block", ["pipeline", "transaction"])
async def test_block_closed_between_statements(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection, block: str
) -> None:
    if block == "pipeline" and psycopg3.pq.version() < 140000:
        pytest.skip("pipelines need libpq 14")
    table = f"trust_close_{uuid.uuid4().hex}"
    admin.execute(f"create table {table} (x int)")
    conn = await flavour.connect(dsn, autocommit=True)
    with pytest.raises(psycopg3.InterfaceError, match="closed"):
        async with getattr(conn, block)():
            await conn.execute(f"insert into {table} values (1)")
            await _close_elsewhere(flavour, conn)
    assert conn.closed
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)
    await _check_reconnect(flavour, dsn)


@pytest.mark.parametrize("then", ["exit", "read_row"])
async def test_copy_out_closed_between_reads(flavour: Any, dsn: str, then: str) -> None:
    conn = await flavour.connect(dsn)
    cur = conn.cursor()
    with pytest.raises(psycopg3.InterfaceError, match="closed during the COPY"):
        async with cur.copy("copy (select generate_series(1, 100000)) to stdout") as copy:
            assert await copy.read_row() == ("1",)
            await _close_elsewhere(flavour, conn)
            if then == "read_row":
                # Rows already received are not handed out as if the data were whole.
                await copy.read_row()
    assert cur.rowcount == -1
    await _check_reconnect(flavour, dsn)


async def test_copy_in_closed_by_its_own_task(
    flavour: Any, dsn: str, admin: psycopg3_sync.Connection
) -> None:
    # close() inside the block, from the task or thread holding the connection.
    table = f"trust_close_{uuid.uuid4().hex}"
    admin.execute(f"create table {table} (x int)")
    conn = await flavour.connect(dsn, autocommit=True)
    cur = conn.cursor()
    with anyio.fail_after(HANG):
        with pytest.raises(psycopg3.InterfaceError, match="closed during the COPY"):
            async with cur.copy(f"copy {table} from stdin") as copy:
                await copy.write_row((1,))
                await conn.close()
    assert conn.closed
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)
    await _check_reconnect(flavour, dsn)


# -- the asyncio waiter alone, on a socketpair ---------------------------------


@pytest.mark.parametrize("wait", [Wait.R, Wait.W, Wait.RW])
def test_asyncio_wake_waiters_unregisters_before_the_fd_closes(wait: Wait) -> None:
    # The next socket given the same number must find the loop's selector
    # clean, even before the woken wait has run again.
    def waiting_gen(fileno: int) -> Any:
        yield fileno, wait

    async def main() -> None:
        loop = asyncio.get_running_loop()
        old, peer = socket.socketpair()
        old.setblocking(False)
        if wait == Wait.W:  # make the wait for writing really wait
            while True:
                try:
                    old.send(b"x" * 65536)
                except BlockingIOError:
                    break
        number = old.fileno()
        task = asyncio.create_task(wait_asyncio(waiting_gen(number)))
        await asyncio.sleep(0)  # one turn: the task is now waiting
        assert not task.done()
        ASYNCIO.wake_waiters(number)
        old.close()
        peer.close()
        new, new_peer = socket.socketpair()
        try:
            if new.fileno() != number:
                pytest.skip("the fd number was not reused")
            readable = loop.create_future()
            loop.add_reader(new.fileno(), readable.set_result, None)
            new_peer.send(b"x")
            with pytest.raises(psycopg3.OperationalError, match="closed"):
                await task
            await readable  # the old wait did not remove the new reader
            loop.remove_reader(new.fileno())
        finally:
            new.close()
            new_peer.close()

    asyncio.run(main())
