"""The blocking connection pool: the pool's procedures driven by blocking calls.

Layer: pool drivers, beside ``psycopg3._async_pool``. ``BlockingPoolBase``
interprets the procedures of ``psycopg3._pool_procs`` (where the order of
operations is stated) for frameworks whose waits block the calling thread
(threads, or greenlets under gevent or eventlet); an adapter subclasses it
with the public hooks of its framework (a clock, events, starting and
stopping its background threads) and names its connection class, whose
framework object gives the rest (the books' mutex, connecting, driving a
generator).

What blocking changes:

1. One mutex guards the books: each stretch of a procedure between two
   effects runs under it (the policy's rule 1); no effect does (no I/O, no
   user callback, no join under it).
2. Nothing cancels a thread: ``Shielded`` just runs the procedure. An
   exception while waiting (``KeyboardInterrupt``) abandons the request;
   one during a connection's hygiene discards the connection.

Must not: import threading, gevent or any other framework.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any, Protocol, TypeVar, cast

from . import _pool_effects as fx
from . import errors
from ._blocking_connection import BlockingConnectionBase
from ._connection_base import RECOVER_POLL_INTERVAL
from ._framework import PlainLock
from ._pool_effects import PoolEvent, Procedure
from ._pool_io import health_gen
from ._pool_procs import PoolProcedures, PoolRow
from .pq import TransactionStatus
from .waiting import PQGen

__all__ = ["BlockingPoolBase"]

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound=BlockingConnectionBase)
EventT = TypeVar("EventT", bound=PoolEvent)
PoolT = TypeVar("PoolT", bound="BlockingPoolBase[Any, Any, Any]")


class _Lock(Protocol):
    def acquire(self, blocking: bool = ...) -> bool: ...

    def release(self) -> None: ...


class _BlockingConnection(Protocol):
    # What the pool uses of a blocking connection beyond BaseConnection.
    @property
    def lock(self) -> _Lock: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class BlockingPoolBase(PoolProcedures[ConnT, EventT, None, PoolRow]):
    """A pool of blocking connections, minus what only a framework can do.

    ``with pool.connection() as conn:`` borrows one; ``with pool:`` (or
    ``open()``/``close()``) bounds the pool's life and its threads'. The
    parameters are ``PoolProcedures``': the callbacks are plain functions,
    called from the thread that needs them (``configure`` and
    ``reconnect_failed`` from a background one).
    """

    # -- the framework's hooks (with ``now()`` and ``new_event()``) ---------

    @abstractmethod
    def wait_event(self, event: EventT, timeout: float | None) -> bool:
        """Block until ``event`` is set (True) or ``timeout`` seconds passed (False).

        :param timeout: None: no limit.
        """

    @abstractmethod
    def spawn(self, task: Callable[[], None], name: str) -> None:
        """Start ``task()`` in a background thread (or greenlet) named ``name``.

        ``stop_background()`` waits for it.
        """

    @abstractmethod
    def stop_background(self, timeout: float) -> None:
        """Wait for the threads ``spawn()`` started, ``timeout`` at most.

        Not for the current one: a ``reconnect_failed`` callback may close the pool.
        """

    # -- what the connection class's framework gives -----------------------

    #: The adapter's connection class: what the pool opens, on its framework.
    connection_class: type[BlockingConnectionBase]

    def _new_mutex(self) -> AbstractContextManager[Any]:
        # (called in __init__) The framework's plain lock, used with `with`.
        lock = self.connection_class.framework.new_lock()
        return lock if isinstance(lock, AbstractContextManager) else _Mutex(lock)

    def _connect(self) -> ConnT:
        return cast(ConnT, self.connection_class.connect(self.conninfo, **self.kwargs))

    def _drive(self, gen: PQGen[T]) -> T:
        return self.connection_class.framework.wait(gen, timeout=RECOVER_POLL_INTERVAL)

    @staticmethod
    def check_connection(conn: Any) -> None:
        """Check that ``conn`` answers; usable as the pool's ``check`` callback.

        :raises OperationalError: if it does not.
        """
        with conn.lock:
            conn.framework.wait(health_gen(conn), timeout=RECOVER_POLL_INTERVAL)

    # -- the interpreter -------------------------------------------------

    def _run(self, procedure: Procedure[T]) -> T:
        # The procedure runs under the mutex; each effect, outside it.
        run, mutex = fx.Stepper(procedure), self._books
        while True:
            with mutex:
                effect = run.advance()
            if effect is None:
                return run.result
            try:
                run.value = self._perform(effect)
            except BaseException as ex:
                run.error = ex

    def _perform(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.WaitEvent):
            return self.wait_event(effect.event, effect.timeout)  # type: ignore[arg-type]
        if isinstance(effect, fx.Close):
            effect.conn.close()
        elif isinstance(effect, fx.CallBack):
            effect.fn(effect.arg)
        elif isinstance(effect, fx.Drive):
            lock = cast(_BlockingConnection, effect.conn).lock
            # Locked now, it is in use again (another thread runs a command):
            # waiting could hang, and its state is not ours to fix.
            if not lock.acquire(blocking=False):
                raise errors.ProgrammingError("the connection was returned while still in use")
            try:
                return self._drive(effect.gen)
            finally:
                lock.release()
        elif isinstance(effect, fx.Connect):
            return self._connect()
        elif isinstance(effect, fx.Spawn):
            self._start(effect.procedure, effect.name)
        elif isinstance(effect, fx.Shielded):
            return self._run(effect.procedure)
        elif isinstance(effect, fx.StopBackground):
            self.stop_background(effect.timeout)
        return None

    def _start(self, procedure: Procedure[None], name: str) -> None:
        self.spawn(partial(self._run, procedure), f"{self.name}-{name}")

    # -- the API ---------------------------------------------------------

    def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Start the pool's threads, which open ``min_size`` connections.

        Opening an open pool does nothing.

        :param wait: return only once ``min_size`` connections are ready.
        :param timeout: how long to wait for them.
        :raises PoolClosed: if the pool was closed (it cannot be reopened).
        :raises PoolTimeout: if ``wait`` and they were not ready in time.
        """
        self.start_maintenance()
        if wait:
            self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until ``min_size`` connections are open.

        :raises PoolTimeout: if they are not within ``timeout`` seconds.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        self._run(self._wait_proc(timeout))

    def close(self, timeout: float = 5.0) -> None:
        """Close the pool: idle connections now, those in use when they come back.

        Requests waiting get ``PoolClosed``. The pool's threads are joined,
        for ``timeout`` seconds at most (a connect in progress ends with its
        own ``connect_timeout``). Closing twice does nothing.
        """
        if not self._policy.inherited:  # a forked child lets its copy go (policy's rule 6)
            self._run(self._close_proc(timeout))

    def __enter__(self: PoolT) -> PoolT:
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[ConnT]:
        """Borrow a connection for the block: ``with pool.connection() as conn:``.

        On a clean exit an open transaction is committed; on an exception
        it is rolled back when the connection comes back.

        :param timeout: as in ``getconn()``.
        """
        conn = self.getconn(timeout)
        try:
            yield conn
            if conn._session_status() == TransactionStatus.INTRANS:
                cast(_BlockingConnection, conn).commit()
        finally:
            self.putconn(conn)

    def getconn(self, timeout: float | None = None) -> ConnT:
        """Take a connection; give it back with ``putconn()``.

        :param timeout: seconds to wait for one (None: the pool's ``timeout``).
        :raises PoolTimeout: if none was available in time.
        :raises TooManyRequests: if ``max_waiting`` requests already wait.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        return self._run(self._getconn_proc(timeout))

    def putconn(self, conn: ConnT) -> None:
        """Give back a connection taken with ``getconn()``.

        A command in progress is cancelled, a transaction rolled back, then
        the ``reset`` callback runs; a connection failing any of them, too
        old, or returned to a closed pool is closed.

        :raises ProgrammingError: if it is not this pool's, or was already
            given back.
        """
        self._policy.check_process()
        self._run(self._putconn_proc(conn))

    def stats(self) -> dict[str, int]:
        """The pool's figures: sizes now, and counters since it opened."""
        self._policy.check_process()
        with self._books:
            return self._policy.stats()

    def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's sizes; connections are opened or closed to follow.

        :param max_size: None: ``min_size``.
        """
        self._policy.check_process()
        self._run(self._resize_proc(min_size, max_size))

    def check(self) -> None:
        """Check every idle connection now; broken ones are replaced."""
        self._policy.check_process()
        self._run(self._check_proc(self.check_connection))


class _Mutex:
    """A framework's plain lock as a context manager (the books' mutex)."""

    __slots__ = ("acquire", "release")

    def __init__(self, lock: PlainLock):
        self.acquire = lock.acquire
        self.release = lock.release

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
