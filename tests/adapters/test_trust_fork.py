"""A connection or pool inherited through fork() sends nothing from the child.

Issue 14, case 4; DESIGN.md, "What a trusted driver promises", 4. In every
flavour the parent opens a transaction and inserts a row; a forked child
then leaves ``with conn:``, closes, drops or uses its copy (of a
connection, a cursor, a cancel handle, a pool). Afterwards the parent's
session must be the one it was: the same backend, still idle in its
transaction, the row invisible to others until the parent commits, and the
server's log shows nothing from that backend while the child ran (no
COMMIT, no ROLLBACK, no disconnection). Every use in the child raises an
``InterfaceError`` that says what to do.

How the tests fork: from a worker thread of the test's loop, so that in the
child (where only that thread lives on, with no loop running) a fresh loop
of the flavour can drive the async API, as a real child would. The child
runs no pytest machinery: it reports what happened through a pipe, then
leaves with ``os._exit()``. The parent's next command after the child
exited proves what the child sent: its bytes would be ahead of the
parent's on the same socket.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import pickle
import signal
import traceback
import uuid
import warnings
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from fix_flavours import SyncFacade
from fix_pool import POOL_FLAVOURS
from fix_wait import await_until

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()"),
]

#: Command-line options of the parent's connections: the log then shows
#: whether the child ended the parent's session.
LOG_DISCONNECTIONS = "-c log_disconnections=on"
#: Seconds after which a child is deemed hung (it needs well under one).
CHILD_TIMEOUT = 30.0


def inherited_message(pid: int) -> str:
    return (
        f"this connection was opened by process {pid}; a forked child cannot use it"
        " — open a new connection in the child"
    )


# -- forking -------------------------------------------------------------------


def fork_and_report(child: Callable[[], Any]) -> Any:
    """Fork; run ``child()`` in the child; return what it returned (through a pipe).

    An exception in the child fails the test with the child's traceback.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process that has threads (the
        # test's loop, anyio's workers) may deadlock the child if one of them
        # held a lock: the child here touches only what it was given.
        warnings.filterwarnings("ignore", "This process .*is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: report, then leave at once
        try:
            # A child that hangs must fail the test, not hang the suite: dump
            # its stacks and exit non-zero (the suite's own timeout cannot
            # reach into the child).
            faulthandler.dump_traceback_later(CHILD_TIMEOUT, exit=True)
            os.close(read_end)
            try:
                outcome: tuple[str, Any] = ("returned", child())
            except BaseException:
                outcome = ("raised", traceback.format_exc())
            data = memoryview(pickle.dumps(outcome))
            while data:
                data = data[os.write(write_end, data) :]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    with open(read_end, "rb") as pipe:
        while chunk := pipe.read():
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    kind, value = pickle.loads(b"".join(chunks))
    assert kind == "returned", f"the child raised:\n{value}"
    return value


async def in_child(backend: str, main: Callable[[], Awaitable[Any]]) -> Any:
    """Fork from a worker thread; in the child, run ``main()`` on a new loop of ``backend``."""

    def child() -> Any:
        # The parent's loop registered its wakeup fd for signals; the child
        # (whose only thread is now its main thread) starts its own loop.
        signal.set_wakeup_fd(-1)
        return anyio.run(main, backend=backend)

    return await anyio.to_thread.run_sync(fork_and_report, child)


async def outcome(action: Callable[[], Any]) -> str:
    """Run an action in the child; describe how it ended: "ok" or "<Error>: <message>"."""
    try:
        result = action()
        if hasattr(result, "__await__"):
            await result
    except Exception as ex:
        return f"{type(ex).__name__}: {ex}"
    return "ok"


# -- the parent's side -------------------------------------------------------------


class Parent:
    """The parent's connection, in a transaction with one row inserted, and its checks."""

    def __init__(self, conn: Any, admin: Any, table: str, log: Path | None):
        self.holder = [conn]  # the only reference, for the child that drops it
        self.admin = admin
        self.table = table
        self.log = log
        self.pid = os.getpid()
        self.backend_pid = conn.pgconn.backend_pid
        self.marker = f"fork-{uuid.uuid4().hex}"

    @property
    def conn(self) -> Any:
        return self.holder[0]

    async def open_transaction(self) -> None:
        await self.conn.execute(f"insert into {self.table} values (1)")

    async def mark(self) -> None:
        """Log where the child begins: call it last before forking."""
        await self.conn.execute(f"select 'before {self.marker}'")

    def visible_rows(self) -> list[int]:
        return [r[0] for r in self.admin.execute(f"select x from {self.table}").fetchall()]

    async def check_session(self, *, own: tuple[str, ...] = ()) -> None:
        """The session survived the child untouched.

        :param own: the statements the parent itself sent since ``mark()``, as logged.
        """
        cur = await self.conn.execute(
            f"select pg_backend_pid(), count(*), 'after {self.marker}' from {self.table}"
        )
        assert await cur.fetchone() == (self.backend_pid, 1, f"after {self.marker}")
        state = self.admin.execute(
            "select state from pg_stat_activity where pid = %s", (self.backend_pid,)
        ).fetchone()
        assert state == ("idle in transaction",)
        assert self.visible_rows() == []  # the child committed nothing
        self.check_log(own)

    async def commit(self) -> None:
        await self.conn.commit()
        assert self.visible_rows() == [1]

    async def check_intact(self) -> None:
        """``check_session()``, then commit: the row is there."""
        await self.check_session()
        await self.commit()

    def check_log(self, own: tuple[str, ...]) -> None:
        # log_statement = 'all': a COMMIT or ROLLBACK from the child would be
        # logged by the parent's backend between the two markers; a Terminate,
        # with log_disconnections, as a disconnection.
        if self.log is None:
            return
        lines = self.log.read_text(errors="replace").splitlines()
        start = next(i for i, line in enumerate(lines) if f"before {self.marker}" in line)
        end = next(i for i, line in enumerate(lines) if f"after {self.marker}" in line)
        tag = f"[{self.backend_pid}]"
        # (One LOG line per statement; its parameters follow as DETAIL.)
        between = [line for line in lines[start + 1 : end] if tag in line and " LOG: " in line]
        assert len(between) == len(own), between
        for line, statement in zip(between, own):
            assert line.endswith(statement), between
        assert not [line for line in lines[start:] if tag in line and "disconnection" in line]


@pytest.fixture
def table(admin: Any, flavour: Any) -> Any:
    name = f"fork_{flavour.name.replace('-', '_')}"
    admin.execute(f"drop table if exists {name}")
    admin.execute(f"create table {name} (x int)")
    yield name
    admin.execute(f"drop table if exists {name}")


@pytest.fixture
def log_path(session_cluster: Any) -> Path | None:
    return None if session_cluster is None else session_cluster.log_path


@pytest.fixture
async def parent(flavour: Any, dsn: str, admin: Any, table: str, log_path: Path | None) -> Any:
    # No reference to the connection here: the parent's holds the only one.
    parent = Parent(await flavour.connect(dsn, options=LOG_DISCONNECTIONS), admin, table, log_path)
    try:
        await parent.open_transaction()
        yield parent
    finally:
        await parent.conn.close()


def unwrap(conn: Any) -> Any:
    return conn.target if isinstance(conn, SyncFacade) else conn


# -- closing in the child ------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "with", "with-error"])
async def test_child_closing_sends_nothing(flavour: Any, parent: Parent, how: str) -> None:
    conn = parent.conn

    async def child() -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if how == "close":
                await conn.close()
            elif how == "with":
                async with conn:
                    pass
            else:
                try:
                    async with conn:
                        raise ZeroDivisionError
                except ZeroDivisionError:
                    pass
            # Closed here, and it says so; closing again does nothing.
            assert conn.closed
            await conn.close()
        return [str(w.message) for w in caught]

    await parent.mark()
    assert await in_child(flavour.backend, child) == []
    assert not conn.closed
    await parent.check_intact()


async def test_child_dropping_sends_nothing(flavour: Any, parent: Parent) -> None:
    """Collected in the child, every finaliser of the connection runs there, quietly."""
    holder = parent.holder
    ref = weakref.ref(unwrap(holder[0]))
    pgconn_ref = weakref.ref(unwrap(holder[0]).pgconn)

    async def child() -> tuple[bool, list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            holder.clear()
            gc.collect()
        # Not collected, the test would prove nothing.
        return ref() is None and pgconn_ref() is None, [str(w.message) for w in caught]

    await parent.mark()
    assert await in_child(flavour.backend, child) == (True, [])
    await parent.check_intact()


# -- using it in the child ---------------------------------------------------------------


async def test_child_use_raises(flavour: Any, parent: Parent) -> None:
    conn = parent.conn
    cur = conn.cursor()
    await cur.execute("select 1")
    named = conn.cursor("fork_named")
    await named.execute("select generate_series(1, 10)")

    async def copy() -> None:
        async with cur.copy(f"copy {parent.table} from stdin") as copy:
            await copy.write_row((2,))

    async def notifies() -> None:
        async for _ in conn.notifies(timeout=1.0):
            break

    async def block(make: Callable[[], Any]) -> None:
        async with make():
            pass

    actions: dict[str, Callable[[], Any]] = {
        "execute": lambda: conn.execute("select 1"),
        "commit": conn.commit,
        "rollback": conn.rollback,
        "cursor()": conn.cursor,
        "cursor.execute": lambda: cur.execute("select 2"),
        "server cursor fetch": named.fetchone,
        "copy": copy,
        "notifies": notifies,
        "transaction()": partial(block, conn.transaction),
        "pipeline()": partial(block, conn.pipeline),
        "cancel": conn.cancel,
        "autocommit": partial(setattr, conn, "autocommit", True),
        "info.backend_pid": lambda: conn.info.backend_pid,
    }

    async def child() -> dict[str, str]:
        results = {name: await outcome(action) for name, action in actions.items()}
        async with conn:  # and leaving the block after all that sends nothing
            pass
        return results

    await parent.mark()
    results = await in_child(flavour.backend, child)
    expected = f"InterfaceError: {inherited_message(parent.pid)}"
    assert results == dict.fromkeys(actions, expected)
    await parent.check_session()
    # The parent's cursors are untouched.
    assert await cur.fetchone() == (1,)
    assert await named.fetchone() == (1,)
    await parent.commit()


async def test_child_of_a_busy_connection(flavour: Any, parent: Parent) -> None:
    """A command in flight in the parent (its lock held) at the fork: the child never hangs.

    The copy of the lock in the child would be held forever; the query's
    reply still reaches the parent alone.
    """
    conn, admin = parent.conn, parent.admin
    key = int(uuid.uuid4().int % 2**31)
    admin.execute("select pg_advisory_lock(%s)", (key,))
    results: list[Any] = []

    async def query() -> None:
        query = "select 'got it' from pg_advisory_xact_lock(%s)"
        if flavour.is_sync:
            cur = await anyio.to_thread.run_sync(unwrap(conn).execute, query, (key,))
            results.append(cur.fetchone())
        else:
            cur = await conn.execute(query, (key,))
            results.append(await cur.fetchone())

    async def child() -> list[str]:
        used = await outcome(lambda: conn.execute("select 1"))
        async with conn:
            pass
        closed = await outcome(conn.close)
        return [used, closed]

    await parent.mark()
    async with anyio.create_task_group() as group:
        group.start_soon(query)
        await wait_for_lock_wait(admin, parent.backend_pid)
        assert await in_child(flavour.backend, child) == [
            f"InterfaceError: {inherited_message(parent.pid)}",
            "ok",
        ]
        admin.execute("select pg_advisory_unlock(%s)", (key,))
    assert results == [("got it",)]
    await parent.check_session(own=("select 'got it' from pg_advisory_xact_lock($1)",))
    await parent.commit()


async def wait_for_lock_wait(admin: Any, backend_pid: int) -> None:
    # The condition the test waits for: the backend blocked on the advisory lock.
    query = "select wait_event_type from pg_stat_activity where pid = %s"
    await await_until(
        lambda: admin.execute(query, (backend_pid,)).fetchone() == ("Lock",),
        f"backend {backend_pid} to wait for the lock",
    )


# -- the libpq layer: PGconn and PGcancel ---------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync"], indirect=True)
async def test_pq_handles_in_child(parent: Parent) -> None:
    """PGconn and PGcancel inherited: nothing reaches the parent's backend."""
    pgconn = unwrap(parent.conn).pgconn
    cancel = pgconn.get_cancel()

    def child() -> list[str]:
        results = []
        for action in (lambda: pgconn.exec_(b"commit"), cancel.cancel, pgconn.get_cancel):
            try:
                action()
                results.append("ok")
            except Exception as ex:
                results.append(f"{type(ex).__name__}: {ex}")
        pgconn.finish()
        results.append(repr(pgconn))
        return results

    await parent.mark()
    results = await anyio.to_thread.run_sync(fork_and_report, child)
    assert results == [
        f"InterfaceError: {inherited_message(parent.pid)}",
        f"InterfaceError: this cancel request was made by process {parent.pid}; a forked"
        " child cannot cancel its parent's queries — open a new connection in the child",
        f"InterfaceError: {inherited_message(parent.pid)}",
        f"<PGconn [inherited from process {parent.pid}] at 0x{id(pgconn):x}>",
    ]
    await parent.check_intact()


# -- pools -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", POOL_FLAVOURS, indirect=True)
async def test_child_of_a_pool(
    flavour: Any, pools: Any, dsn: str, admin: Any, table: str, log_path: Path | None
) -> None:
    """The child cannot use the pool; closing it there closes nothing of the parent's."""
    name = f"fork-pool-{uuid.uuid4().hex[:8]}"
    kwargs = {"application_name": name, "options": LOG_DISCONNECTIONS}
    sessions = "select pid from pg_stat_activity where application_name = %s order by pid"
    async with pools.open(dsn, min_size=2, kwargs=kwargs) as handle:
        await handle.wait()
        before = admin.execute(sessions, (name,)).fetchall()
        assert len(before) == 2
        pool = handle.pool
        async with handle.connection() as conn:
            parent = Parent(conn, admin, table, log_path)
            await parent.open_transaction()
            await parent.mark()

            async def connection() -> None:
                if pools.is_sync:
                    with pool.connection():
                        pass
                else:
                    async with pool.connection():
                        pass

            async def child() -> list[str]:
                results = [
                    await outcome(action)
                    for action in (
                        pool.getconn,
                        connection,
                        pool.stats,
                        partial(pool.resize, 3),
                        pool.check,
                        pool.close,
                        conn.close,
                    )
                ]
                return results

            refused = (
                f"InterfaceError: pool {pool.name!r} was opened by process {os.getpid()}; a"
                " forked child cannot use it (its connections are the parent's) — open a new"
                " pool in the child"
            )
            assert await in_child(flavour.backend, child) == [refused] * 5 + ["ok", "ok"]
            await parent.check_intact()
        # The idle connection and the borrowed one: the same sessions, still open.
        assert admin.execute(sessions, (name,)).fetchall() == before
        assert len(await handle.pids(2)) == 2
