"""A blocking adapter is a waiter and a lock class on ``psycopg3.abc``'s blocking bases.

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
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import psycopg3_sync
from fix_flavours import in_pg_sleep, recording_thread
from fix_wait import wait_until
from psycopg3 import Notify, OperationalError
from psycopg3.abc import (
    BlockingConnectionBase,
    BlockingCursorBase,
    BlockingServerCursorBase,
    ConnectionLock,
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


class DeferringLock:
    """A ``threading.Lock`` whose ``run_when_free()`` action runs at the next release."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        self._pending: Callable[[], None] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        with self._guard:
            pending, self._pending = self._pending, None
        try:
            if pending is not None:
                pending()
        finally:
            self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def run_when_free(self, action: Callable[[], None]) -> None:
        with self._guard:
            if not self._lock.acquire(blocking=False):
                self._pending = action
                return
        try:
            action()
        finally:
            self.release()


class Cursor(BlockingCursorBase[Any]):
    pass


class ServerCursor(BlockingServerCursorBase[Any]):
    pass


class Connection(BlockingConnectionBase):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = ConnectionLock(DeferringLock, threading.get_ident)

    waiter = staticmethod(wait_selectors)

    def cursor(self, name: str = "", **kwargs: Any) -> Any:
        self._check_usable()
        return ServerCursor(self, name, **kwargs) if name else Cursor(self, **kwargs)


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

    monkeypatch.setattr(psycopg3_sync.connection, "wait_select", refused)
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
    wait_until(lambda: conn._lockless_waits == 1, "the listener to wait")
    conn.execute("notify base_channel, 'hello'")
    listener.join()
    assert [n.payload for n in received] == ["hello"]
