"""The pool's procedures written once, and each adapter's pool made of hooks only.

A blocking pool is built here from ``psycopg3.abc.BlockingPoolBase`` and
its hooks alone, on threads and on fake connections (no server): what a
blocking adapter author gets. Its hooks record whether the pool's mutex is
held when an effect is performed: never, or a request waiting for a
connection would block every other thread's returns. The pools of the
adapter packages are checked to define hooks, not procedures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import psycopg3_asyncio.pool
import psycopg3_sync.pool
import psycopg3_trio.pool
from psycopg3 import errors
from psycopg3.abc import AsyncPoolBase, BlockingPoolBase, PQGen
from psycopg3.pq import TransactionStatus


class Mutex:
    """A lock that knows which thread holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None

    def __enter__(self) -> None:
        self._lock.acquire()
        self.owner = threading.get_ident()

    def __exit__(self, *exc_info: Any) -> None:
        self.owner = None
        self._lock.release()

    def held_here(self) -> bool:
        return self.owner == threading.get_ident()


class FakePGconn:
    transaction_status = TransactionStatus.IDLE


class FakeConnection:
    """What the pool uses of a blocking connection, with no server behind it."""

    def __init__(self, pool: FakePool):
        self.pool = pool
        self.closed = False
        self.pgconn = FakePGconn()
        self.lock = threading.Lock()
        self._transaction_blocks: list[Any] = []
        self._pipeline = None

    def _session_status(self) -> TransactionStatus:
        return TransactionStatus.IDLE

    def _close(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.pool.effect("close")
        self.closed = True

    def commit(self) -> None:
        pass


class FakePool(BlockingPoolBase[Any, threading.Event, Any]):
    """A blocking adapter's pool: the hooks, on threads; effects are recorded."""

    open_hint = "call open()"

    def __init__(self, **kwargs: Any):
        self.performed: list[str] = []
        self.under_mutex: list[str] = []
        self.threads: list[threading.Thread] = []
        #: Called by ``wait_event`` before it waits (tests make things happen then).
        self.before_wait: Callable[[threading.Event], None] | None = None
        super().__init__("", **kwargs)

    def effect(self, name: str) -> None:
        self.performed.append(name)
        if self._books.held_here():  # type: ignore[attr-defined]
            self.under_mutex.append(name)

    def now(self) -> float:
        return time.monotonic()

    def new_event(self) -> threading.Event:
        return threading.Event()

    def _new_mutex(self) -> Mutex:
        return Mutex()

    def wait_event(self, event: threading.Event, timeout: float | None) -> bool:
        self.effect("wait")
        if self.before_wait is not None:
            before_wait, self.before_wait = self.before_wait, None
            before_wait(event)
        return event.wait(timeout)

    def spawn(self, task: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=task, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def stop_background(self, timeout: float) -> None:
        self.effect("stop")
        for thread in list(self.threads):
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _connect(self) -> FakeConnection:
        self.effect("connect")
        return FakeConnection(self)

    def _drive(self, gen: PQGen[Any]) -> Any:
        self.effect("drive")
        try:
            next(gen)
        except StopIteration as ex:
            return ex.value
        raise AssertionError("a fake connection needs no I/O")

    @staticmethod
    def check_connection(conn: Any) -> None:
        conn.pool.effect("check")


def test_effects_run_outside_the_mutex() -> None:
    calls: list[str] = []
    pool = FakePool(
        min_size=2,
        configure=lambda conn: (conn.pool.effect("configure"), calls.append("configure")),
        reset=lambda conn: (conn.pool.effect("reset"), calls.append("reset")),
        check=lambda conn: (conn.pool.effect("check"), calls.append("check")),
    )
    with pool:
        pool.wait(10)
        first, second = pool.getconn(10), pool.getconn(10)
        pool.putconn(first)
        pool.putconn(second)
        pool.check()
        pool.resize(1)
    assert pool.closed
    assert not any(thread.is_alive() for thread in pool.threads)
    assert {"connect", "wait", "close", "stop", "check", "reset", "configure"} <= set(
        pool.performed
    )
    assert pool.under_mutex == []
    assert calls.count("configure") == 2 and calls.count("reset") == 2


def test_interrupted_request_hands_on_the_connection_given_meanwhile() -> None:
    # The exception of a wait is thrown into the procedure at its yield:
    # getconn's cleanup runs, and the connection given meanwhile stays in
    # the pool (the policy's rule 3).
    pool = FakePool(min_size=1)
    with pool:
        pool.wait(10)
        held = pool.getconn(10)

        def returned_then_interrupted(event: threading.Event) -> None:
            worker = threading.Thread(target=pool.putconn, args=(held,))
            worker.start()
            worker.join()
            assert event.is_set()  # the connection went to this request
            raise KeyboardInterrupt

        pool.before_wait = returned_then_interrupted
        with pytest.raises(KeyboardInterrupt):
            pool.getconn(10)
        stats = pool.stats()
        assert (stats["pool_available"], stats["requests_waiting"]) == (1, 0)
        assert pool.getconn(10) is held
        pool.putconn(held)


def test_interrupted_connect_is_reported() -> None:
    # An exception of the connect hook reaches connect-one, which reports it
    # to the policy: the slot is free again, and the error is the pool's.
    pool = FakePool(min_size=1)

    def refuse() -> FakeConnection:
        raise errors.OperationalError("refused")

    pool._connect = refuse  # type: ignore[method-assign]
    with pool:
        with pytest.raises(errors.PoolTimeout, match="refused"):
            pool.getconn(0.2)
        assert pool.stats()["connections_errors"] >= 1
        assert pool.stats()["pool_size"] <= 1


#: The methods an adapter's pool may define: its hooks, and how its users
#: open the pool (an async framework's own API for that). Connecting,
#: driving and shielding come from its connection class's framework object.
HOOKS = {"now", "new_event", "wait_event", "spawn", "stop_background"}
OPENING = {"open", "__aenter__", "__aexit__", "_host"}


@pytest.mark.parametrize(
    "pool_class, base",
    [
        (psycopg3_sync.pool.ConnectionPool, BlockingPoolBase),
        (psycopg3_asyncio.pool.ConnectionPool, AsyncPoolBase),
        (psycopg3_trio.pool.ConnectionPool, AsyncPoolBase),
    ],
)
def test_adapter_pools_are_hooks(pool_class: type, base: type) -> None:
    assert issubclass(pool_class, base)
    members = vars(pool_class).items()
    defined = {
        name for name, value in members if callable(value) and not isinstance(value, type)
    } | {name for name, value in members if isinstance(value, staticmethod)}
    assert pool_class.connection_class.__module__ == pool_class.__module__.replace(
        "pool", "connection"
    )
    assert defined - HOOKS - OPENING == set()


@pytest.mark.parametrize("base", [AsyncPoolBase, BlockingPoolBase])
def test_the_hooks_are_public_and_all_an_adapter_must_define(base: type) -> None:
    # The adapter contract has no underscore method (docs/adapters.md's tables).
    assert base.__abstractmethods__ == HOOKS
