"""``ConnectionPool``: the pool for blocking code, driving ``PoolPolicy`` with threads.

The policy (``psycopg3._pool``) decides everything; ``psycopg3._async_pool``
is this module's twin and states the order of operations both follow. Here
is what threads change:

1. One ``threading.Lock`` guards every call to the policy (its rule 1).
   Nothing blocking runs under it: no I/O, no user callback, no join.
2. A request that finds no idle connection waits on a ``threading.Event`` of
   its own, which the policy sets when it hands it a connection or an error.
3. The maintenance thread sleeps on a condition of that lock until the
   policy's next deadline, or until kicked: a request queued, a slot freed,
   a connect ended, or a connection gone idle that expires sooner.
4. Each connect runs in a short-lived connector thread. Threads are daemons
   named after the pool; ``close()`` joins them.
5. No cancellation: an exception while waiting (``KeyboardInterrupt``)
   abandons the request; one during a connection's hygiene discards it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from psycopg3 import errors
from psycopg3.abc import (
    RECOVER_POLL_INTERVAL,
    PoolPolicy,
    health_gen,
    is_clean,
    reset_gen,
)
from psycopg3.pq import TransactionStatus

from .connection import Connection
from .waiting import wait_select

__all__ = ["ConnectionPool"]

logger = logging.getLogger("psycopg3")

_names = itertools.count(1)


class ConnectionPool:
    """A pool of ``Connection`` s shared by the threads of a program.

    ``with pool.connection() as conn:`` borrows one; ``with pool:`` (or
    ``open()``/``close()``) bounds the pool's life and its threads'.

    :param conninfo: the connection string of every connection.
    :param kwargs: more arguments of ``Connection.connect()``.
    :param min_size: connections kept open, idle or not.
    :param max_size: the most connections open at once (None: ``min_size``).
    :param name: the pool's name, in errors and thread names.
    :param timeout: seconds ``getconn()`` waits by default before
        ``PoolTimeout``.
    :param max_waiting: the most requests waiting at once (0: no limit);
        one more raises ``TooManyRequests``.
    :param max_lifetime: seconds after which a connection is replaced.
    :param max_idle: seconds after which an idle connection beyond
        ``min_size`` is closed.
    :param reconnect_timeout: seconds of failed connects after which
        ``reconnect_failed`` is called (attempts go on).
    :param reconnect_failed: called with the pool, from a connector thread.
    :param configure: called with each new connection before its first use.
    :param reset: called with each returned connection once it is idle;
        raising discards the connection.
    :param check: called with a connection before handing it out; raising
        discards it, and another one is tried.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        kwargs: dict[str, Any] | None = None,
        min_size: int = 4,
        max_size: int | None = None,
        name: str | None = None,
        timeout: float = 30.0,
        max_waiting: int = 0,
        max_lifetime: float = 3600.0,
        max_idle: float = 600.0,
        reconnect_timeout: float = 300.0,
        reconnect_failed: Callable[[ConnectionPool], None] | None = None,
        configure: Callable[[Connection[Any]], None] | None = None,
        reset: Callable[[Connection[Any]], None] | None = None,
        check: Callable[[Connection[Any]], None] | None = None,
    ):
        self.conninfo = conninfo
        self.kwargs = dict(kwargs or {})
        self.name = name or f"pool-{next(_names)}"
        self.timeout = timeout
        self._policy: PoolPolicy[Connection[Any]] = PoolPolicy(
            min_size=min_size,
            max_size=max_size,
            max_waiting=max_waiting,
            max_lifetime=max_lifetime,
            max_idle=max_idle,
            reconnect_timeout=reconnect_timeout,
            name=self.name,
        )
        self._reconnect_failed = reconnect_failed
        self._configure = configure
        self._reset = reset
        self._check = check
        self._lock = threading.Lock()
        # Notified whenever the books change: the maintenance thread and
        # wait() sleep on it.
        self._changed = threading.Condition(self._lock)
        self._kicked = False
        # When the sleeping maintenance thread wakes up by itself (inf: it is
        # awake, or sleeps until kicked).
        self._sleeping_until = math.inf
        self._maintenance: threading.Thread | None = None
        self._connectors: set[threading.Thread] = set()
        self._connector_ids = itertools.count(1)

    # -- life ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True before ``open()`` and after ``close()``."""
        return self._maintenance is None or self._policy.closed

    @property
    def min_size(self) -> int:
        return self._policy.min_size

    @property
    def max_size(self) -> int:
        return self._policy.max_size

    def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Start the pool's threads, which open ``min_size`` connections.

        Opening an open pool does nothing.

        :param wait: return only once ``min_size`` connections are ready.
        :param timeout: how long to wait for them.
        :raises PoolClosed: if the pool was closed (it cannot be reopened).
        :raises PoolTimeout: if ``wait`` and they were not ready in time.
        """
        self._policy.check_process()
        with self._lock:
            if self._policy.closed:
                raise errors.PoolClosed(f"pool {self.name!r} was closed; it cannot be reopened")
            thread = None
            if self._maintenance is None:
                thread = self._maintenance = threading.Thread(
                    target=self._maintain, name=f"{self.name}-maintenance", daemon=True
                )
        if thread is not None:
            thread.start()
        if wait:
            self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until ``min_size`` connections are open.

        :raises PoolTimeout: if they are not within ``timeout`` seconds.
        """
        self._policy.check_process()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._check_open()
            while self._policy.open_count < self._policy.min_size:
                self._check_open()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._policy.not_ready(timeout)
                self._changed.wait(remaining)

    def close(self, timeout: float = 5.0) -> None:
        """Close the pool: idle connections now, those in use when they come back.

        Requests waiting get ``PoolClosed``. The pool's threads are joined,
        for ``timeout`` seconds at most (a connect in progress ends with its
        own ``connect_timeout``). Closing twice does nothing.
        """
        if self._policy.inherited:
            return  # a forked child: nothing here is its to close (rule 6 of the policy)
        with self._lock:
            to_close, _ = self._policy.close()
            self._changed.notify_all()
        _close_all(to_close)
        deadline = time.monotonic() + timeout
        self._join(self._maintenance, deadline)
        # Only now: the maintenance thread may have started connectors
        # until it saw the pool closed.
        with self._lock:
            connectors = list(self._connectors)
        for thread in connectors:
            self._join(thread, deadline)

    @staticmethod
    def _join(thread: threading.Thread | None, deadline: float) -> None:
        # A reconnect_failed callback may close the pool from a connector.
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> ConnectionPool:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests --------------------------------------------------------

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection[Any]]:
        """Borrow a connection for the block: ``with pool.connection() as conn:``.

        On a clean exit an open transaction is committed; on an exception
        it is rolled back when the connection comes back.

        :param timeout: as in ``getconn()``.
        """
        conn = self.getconn(timeout)
        try:
            yield conn
            if conn._session_status() == TransactionStatus.INTRANS:
                conn.commit()
        finally:
            self.putconn(conn)

    def getconn(self, timeout: float | None = None) -> Connection[Any]:
        """Take a connection; give it back with ``putconn()``.

        :param timeout: seconds to wait for one (None: the pool's ``timeout``).
        :raises PoolTimeout: if none was available in time.
        :raises TooManyRequests: if ``max_waiting`` requests already wait.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            conn = self._take(deadline, timeout)
            if self._check is None:
                return conn
            try:
                self._check(conn)
            except Exception as ex:
                logger.warning("pool %r: check failed, connection discarded: %s", self.name, ex)
                self._discard(conn, lost=True)
                continue
            except BaseException:
                self._discard(conn, lost=True)
                raise
            return conn

    def _take(self, deadline: float, timeout: float) -> Connection[Any]:
        expired: list[Connection[Any]] = []
        try:
            with self._lock:
                self._check_open()
                started = time.monotonic()
                conn, expired = self._policy.checkout(started)
                if expired:
                    self._kick()
                if conn is not None:
                    return conn
                event = threading.Event()
                waiter = self._policy.enqueue(event.set)
                self._kick()
        finally:
            _close_all(expired)
        try:
            event.wait(max(deadline - time.monotonic(), 0.0))
        except BaseException:
            # Interrupted: a connection given meanwhile goes on (rule 3).
            with self._lock:
                self._policy.abandon(waiter, time.monotonic())
                self._kick()
            raise
        with self._lock:
            conn = waiter.conn
            if conn is None:
                if waiter.error is not None:
                    raise waiter.error
                self._policy.abandon(waiter, time.monotonic())
                self._kick()
                raise self._policy.timed_out(timeout)
            self._policy.served(int((time.monotonic() - started) * 1000.0))
            return conn

    def putconn(self, conn: Connection[Any]) -> None:
        """Give back a connection taken with ``getconn()``.

        A command in progress is cancelled, a transaction rolled back, then
        the ``reset`` callback runs; a connection failing any of them, too
        old, or returned to a closed pool is closed.

        :raises ProgrammingError: if it is not this pool's, or was already
            given back.
        """
        self._policy.check_process()
        with self._lock:
            self._policy.take_back(conn)
        if self._reset is None and is_clean(conn) and not conn.lock.locked():
            # Nothing to reset: straight back (most returns).
            self._give_back(conn)
            return
        usable = False
        try:
            # Locked, it is still in use: a COPY block left open holds the
            # lock for good, or another thread runs a command. Waiting would
            # hang; its state is not ours to fix.
            if not conn.lock.acquire(blocking=False):
                raise errors.ProgrammingError("the connection was returned while still in use")
            try:
                reset = wait_select(reset_gen(conn), timeout=RECOVER_POLL_INTERVAL)
            finally:
                conn.lock.release()
            if reset and self._reset is not None:
                self._reset(conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the reset callback left the connection in a transaction"
                    )
            # Only now: interrupted anywhere above, its state is unknown.
            usable = reset
        except Exception as ex:
            logger.warning("pool %r: reset failed, connection discarded: %s", self.name, ex)
            usable = False
        finally:
            if usable:
                self._give_back(conn)
            else:
                self._discard(conn)

    def _give_back(self, conn: Connection[Any]) -> None:
        with self._lock:
            kept = self._policy.give_back(conn, time.monotonic())
            deadline = self._policy.next_deadline()
            # A connection now idle may expire before maintenance wakes up.
            if not kept or (deadline is not None and deadline < self._sleeping_until):
                self._kick()
        if not kept:
            conn.close()

    def _discard(self, conn: Connection[Any], lost: bool = False) -> None:
        with self._lock:
            self._policy.discard(conn, lost=lost)
            self._kick()
        conn.close()

    # -- the rest of the API ---------------------------------------------

    def stats(self) -> dict[str, int]:
        """The pool's figures: sizes now, and counters since it opened."""
        self._policy.check_process()
        with self._lock:
            return self._policy.stats()

    def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's sizes; connections are opened or closed to follow.

        :param max_size: None: ``min_size``.
        """
        self._policy.check_process()
        with self._lock:
            to_close = self._policy.resize(min_size, max_size, time.monotonic())
            self._kick()
        _close_all(to_close)

    def check(self) -> None:
        """Check every idle connection now; broken ones are replaced."""
        self._policy.check_process()
        with self._lock:
            self._check_open()
            conns = self._policy.take_idle()
        for index, conn in enumerate(conns):
            try:
                self.check_connection(conn)
            except Exception as ex:
                logger.warning("pool %r: idle connection lost: %s", self.name, ex)
                self._discard(conn, lost=True)
            except BaseException:
                # Interrupted: this one goes back if it survived, the
                # unchecked ones as they were.
                if conn.closed:
                    self._discard(conn, lost=True)
                else:
                    self._give_back(conn)
                for unchecked in conns[index + 1 :]:
                    self._give_back(unchecked)
                raise
            else:
                self._give_back(conn)

    @staticmethod
    def check_connection(conn: Connection[Any]) -> None:
        """Check that ``conn`` answers; usable as the pool's ``check`` callback.

        :raises OperationalError: if it does not.
        """
        with conn.lock:
            wait_select(health_gen(conn), timeout=RECOVER_POLL_INTERVAL)

    # -- background threads ----------------------------------------------

    def _kick(self) -> None:
        # Under the lock: the books changed, maintenance looks again.
        self._kicked = True
        self._changed.notify_all()

    def _check_open(self) -> None:
        if self._maintenance is None:
            raise errors.PoolClosed(
                f"pool {self.name!r} is not open: call open() or use `with pool:`"
            )
        if self._policy.closed:
            raise errors.PoolClosed(f"pool {self.name!r} is closed")

    def _maintain(self) -> None:
        while True:
            with self._lock:
                if self._policy.closed:
                    return
                self._kicked = False
                now = time.monotonic()
                to_close = self._policy.expired(now)
                count = self._policy.start_connects(now)
            for _ in range(count):
                self._start_connector()
            _close_all(to_close)
            with self._lock:
                if not self._kicked and not self._policy.closed:
                    deadline = self._policy.next_deadline()
                    self._sleeping_until = math.inf if deadline is None else deadline
                    self._changed.wait(
                        None if deadline is None else max(deadline - time.monotonic(), 0.0)
                    )
                    self._sleeping_until = math.inf

    def _start_connector(self) -> None:
        thread = threading.Thread(
            target=self._connect,
            name=f"{self.name}-connect-{next(self._connector_ids)}",
            daemon=True,
        )
        with self._lock:
            # Ended ones are pruned here, not by themselves: close() joins
            # every thread that may still be running.
            self._connectors = {each for each in self._connectors if each.is_alive()}
            self._connectors.add(thread)
        thread.start()

    def _connect(self) -> None:
        started = time.monotonic()
        conn: Connection[Any] | None = None
        try:
            conn = Connection.connect(self.conninfo, **self.kwargs)
            if self._configure is not None:
                self._configure(conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the configure callback left the connection in a transaction"
                    )
        except BaseException as ex:
            if conn is not None:
                conn.close()
            self._connect_failed(ex)
            return
        with self._lock:
            now = time.monotonic()
            kept = self._policy.connected(conn, now, int((now - started) * 1000.0))
            self._kick()
        if not kept:
            conn.close()

    def _connect_failed(self, error: BaseException) -> None:
        with self._lock:
            call_back = self._policy.connect_failed(error, time.monotonic())
            self._kick()
        if self._policy.closed:
            return
        logger.warning("pool %r: connection attempt failed: %s", self.name, error)
        if call_back and self._reconnect_failed is not None:
            try:
                self._reconnect_failed(self)
            except Exception:
                logger.exception("pool %r: reconnect_failed callback raised", self.name)


def _close_all(conns: list[Connection[Any]]) -> None:
    for conn in conns:
        conn.close()
