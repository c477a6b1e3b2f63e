"""A blocking adapter is a framework object on ``psycopg3.abc``'s blocking bases.

The adapter here is written from public names only (``psycopg3.abc``,
``psycopg3.waiting``), with a waiter of its own on ``selectors`` that counts
its calls: the connection and its cursors wait only through it, and the
rest (the API, the interruption policy, ``close()`` from another thread,
``notifies()`` without the lock) comes from the core, not from
``psycopg3_sync``.
"""

from __future__ import annotations

import selectors
import threading
from collections.abc import Hashable
from typing import Any, TypeVar

import pytest

import psycopg3_sync
from fix_flavours import in_pg_sleep, recording_thread
from fix_wait import wait_until
from psycopg3 import Notify, OperationalError
from psycopg3.abc import (
    BlockingConnectionBase,
    BlockingCursorBase,
    BlockingFramework,
    BlockingServerCursorBase,
    PlainLock,
    PQGen,
    Ready,
)

T = TypeVar("T")


class Waits:
    """What the waiter did: its calls, and a one-shot interruption."""

    calls = 0
    #: Raise this from the next wait (as Ctrl-C would from ``poll()``).
    interrupt: BaseException | None = None


def wait_selectors(gen: PQGen[T], *, timeout: float | None = None) -> T:
    Waits.calls += 1
    with selectors.DefaultSelector() as selector:
        try:
            fileno, wait = next(gen)
            while True:
                interrupt, Waits.interrupt = Waits.interrupt, None
                if interrupt is not None:
                    raise interrupt
                selector.register(fileno, wait)
                events = selector.select(timeout)
                selector.unregister(fileno)
                fileno, wait = gen.send(Ready(events[0][1]) if events else Ready.NONE)
        except StopIteration as ex:
            return ex.value  # type: ignore[no-any-return]
        except BaseException:
            gen.close()
            raise


class SelectorsFramework(BlockingFramework):
    """Threads, waited on with ``selectors``: the adapter's one framework object."""

    name = "selectors"

    def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        return wait_selectors(gen, timeout=timeout)

    def new_lock(self) -> PlainLock:
        return threading.Lock()

    def current_task(self) -> Hashable:
        return threading.get_ident()


class Cursor(BlockingCursorBase[Any]):
    pass


class ServerCursor(BlockingServerCursorBase[Any]):
    pass


class Connection(BlockingConnectionBase):
    framework = SelectorsFramework()
    cursor_class = Cursor
    server_cursor_class = ServerCursor


@pytest.fixture
def conn(dsn: str) -> Any:
    with Connection.connect(dsn) as conn:
        yield conn


def test_the_api_waits_through_the_adapters_waiter(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing may reach psycopg3_sync's waiter: the bases wait through ours.
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the blocking bases used psycopg3_sync's waiter")

    monkeypatch.setattr(psycopg3_sync.waiting, "wait_select", refused)
    before = Waits.calls
    with Connection.connect(dsn) as conn:
        assert isinstance(conn, Connection)
        with conn.transaction():
            first = conn.execute("select %s + 1", (41,))
            assert isinstance(first, Cursor)
            assert first.fetchone() == (42,)
            with conn.cursor("named") as named:
                rows = named.execute("select generate_series(1, 3)").fetchall()
                assert rows == [(1,), (2,), (3,)]
        with conn.cursor() as cur:
            cur.execute("create temp table t (x int)")
            with cur.copy("copy t from stdin") as copy:
                copy.write_row((7,))
            cur.executemany("insert into t values (%s)", [(8,), (9,)])
            assert cur.execute("select sum(x) from t").fetchone() == (24,)
        conn.rollback()
    assert conn.closed
    assert Waits.calls > before + 8


def test_an_interrupted_query_is_recovered_by_the_base(conn: Connection) -> None:
    cur = conn.cursor()
    Waits.interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        cur.execute("select pg_sleep(10)")
    assert not conn.broken
    assert cur.execute("select 1").fetchone() == (1,)


def test_close_from_another_thread_wakes_a_query(conn: Connection, admin: Any) -> None:
    pid = conn.info.backend_pid
    raised: list[BaseException] = []
    query = recording_thread(lambda: conn.execute("select pg_sleep(30)"), raised)
    query.start()
    wait_until(lambda: in_pg_sleep(admin, pid), "the query to run")
    conn.close()
    query.join()
    assert conn.closed
    assert len(raised) == 1 and isinstance(raised[0], OperationalError), raised


def test_notifies_wait_without_holding_the_lock(conn: Connection) -> None:
    conn.autocommit = True
    conn.execute("listen base_channel")
    received: list[Notify] = []
    listener = recording_thread(
        lambda: received.extend(conn.notifies(timeout=30, stop_after=1)), []
    )
    listener.start()
    # The listener waits without the lock: this thread's commands run meanwhile.
    wait_until(lambda: conn._notify.waiting, "the listener to wait")
    assert not conn.lock.operation.locked()
    conn.execute("notify base_channel, 'hello'")
    listener.join()
    assert [n.payload for n in received] == ["hello"]
