"""The connection pool's procedures, written once for every flavour.

Layer: pool procedures, above the connection bases and below the pool
drivers (``psycopg3._async_pool``, ``psycopg3._blocking_pool``). What a pool
does (take a connection, return one, open one, maintain the pool, close it)
is written here once, as generators that never wait: each *yields an effect*
when it needs something only a framework can do, and is sent its result,
like the libpq generators one level up. ``PoolPolicy`` (``psycopg3._pool``)
decides; these procedures carry its decisions out, in order.

The effects, and how an interpreter runs a procedure, are stated in
``psycopg3._pool_effects``.

The order of operations:

1. ``getconn``: ``checkout()`` an idle connection; else ``enqueue()`` a
   waiter, kick maintenance if the pool may grow, wait on the waiter's
   event until the deadline. Any exception while waiting (timeout,
   cancellation) ``abandon()`` s the waiter, which hands on a connection
   given meanwhile. Then the ``check`` callback: failing, the connection is
   discarded and another one is taken within the same deadline.
2. ``putconn``: ``take_back()`` (ownership, returned twice), then shielded
   from cancellation: ``reset_gen`` under the connection's lock, the
   ``reset`` callback, then ``give_back()`` if usable, else ``discard()``.
   Kick maintenance when a slot was freed (discarded, or not kept: closed),
   so that a replacement opens, or when the idle connection's deadlines
   come before maintenance's next wake-up.
3. connect-one (one per connect that ``start_connects()`` counted):
   connect, ``configure`` callback, then ``connected()``; on any failure,
   cancellation included, ``connect_failed()`` (and maybe the user's
   ``reconnect_failed``) and the half-opened connection is closed. Each
   counted connect ends in exactly one of the two.
4. maintenance (one per pool): close what ``expired()`` returns, spawn the
   connects ``start_connects()`` asks for, sleep until ``next_deadline()``
   or until kicked.
5. ``close``: ``close()`` the policy (waiters get ``PoolClosed``), close
   the idle connections, stop the background work, then report as failed
   the counted connects whose procedure never ran.

Must not: import a concurrency framework, wait, or call a user callback
other than through an effect.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import errors
from ._connection_base import BaseConnection
from ._pool import PoolPolicy
from ._pool_effects import (
    CallBack,
    Close,
    Connect,
    Drive,
    PoolEvent,
    Procedure,
    Shielded,
    Spawn,
    StopBackground,
    WaitEvent,
)
from ._pool_io import is_clean, lock_held, reset_gen
from .pq import TransactionStatus

if TYPE_CHECKING:
    from .rows import RowFactory

__all__ = ["PoolProcedures"]

logger = logging.getLogger("psycopg3")

ConnT = TypeVar("ConnT", bound=BaseConnection)
EventT = TypeVar("EventT", bound=PoolEvent)
#: What the user's callbacks return: an awaitable in async flavours, None in blocking ones.
ResultT = TypeVar("ResultT")
#: The row type of the pool's connections, which ``row_factory`` makes: an
#: adapter's pool is generic in it and names its connection class with it.
PoolRow = TypeVar("PoolRow")

_names = itertools.count(1)


class PoolProcedures(ABC, Generic[ConnT, EventT, ResultT, PoolRow]):
    """A pool's state and procedures, minus an interpreter and a framework.

    :param conninfo: the connection string of every connection.
    :param kwargs: more arguments of the flavour's ``Connection.connect()``.
    :param row_factory: the shape of the rows of the connections' cursors
        (``psycopg3.rows``); None: the flavour's default, tuples.
    :param min_size: connections kept open, idle or not.
    :param max_size: the most connections open at once (None: ``min_size``).
    :param name: the pool's name, in errors and logs (and thread names).
    :param timeout: seconds ``getconn()`` waits by default before
        ``PoolTimeout``.
    :param max_waiting: the most requests waiting at once (0: no limit);
        one more raises ``TooManyRequests``.
    :param max_lifetime: seconds after which a connection is replaced.
    :param max_idle: seconds after which an idle connection beyond
        ``min_size`` is closed.
    :param reconnect_timeout: seconds of failed connects after which
        ``reconnect_failed`` is called (attempts go on).
    :param reconnect_failed: a plain function called with the pool.
    :param configure: called (async: awaited) with each new connection
        before its first use; it must leave no transaction open.
    :param reset: called (async: awaited) with each returned connection once
        it is idle; raising discards the connection.
    :param check: called (async: awaited) with a connection before handing
        it out; raising discards it, and another one is tried.
    """

    #: How to open this flavour's pool, in the error of a pool not open
    #: (an adapter's pool sets it).
    open_hint = "open it first"

    def __init__(
        self,
        conninfo: str = "",
        *,
        kwargs: dict[str, Any] | None = None,
        row_factory: RowFactory[PoolRow] | None = None,
        min_size: int = 4,
        max_size: int | None = None,
        name: str | None = None,
        timeout: float = 30.0,
        max_waiting: int = 0,
        max_lifetime: float = 3600.0,
        max_idle: float = 600.0,
        reconnect_timeout: float = 300.0,
        reconnect_failed: Callable[[Any], None] | None = None,
        configure: Callable[[ConnT], ResultT] | None = None,
        reset: Callable[[ConnT], ResultT] | None = None,
        check: Callable[[ConnT], ResultT] | None = None,
    ):
        self.conninfo = conninfo
        self.kwargs = dict(kwargs or {})
        if row_factory is not None:
            self.kwargs["row_factory"] = row_factory
        self.name = name or f"pool-{next(_names)}"
        self.timeout = timeout
        self._policy: PoolPolicy[ConnT] = PoolPolicy(
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
        self._opened = False
        # The blocking interpreter runs each stretch of a procedure under it.
        self._books = self._new_mutex()
        # Replaced by a new one at each kick: maintenance and wait() sleep
        # on the one current when they last looked at the books.
        self._changed = self.new_event()
        # One token per connect counted by start_connects() and not yet
        # reported: close() reports those whose procedure never ran.
        self._connects: set[object] = set()
        # When maintenance wakes up by itself next (None: only when kicked).
        self._wake_at: float | None = None
        self._connect_ids = itertools.count(1)

    # -- the framework's hooks, which an adapter's pool defines -------------

    @abstractmethod
    def now(self) -> float:
        """The framework's clock, in seconds (the policy's ``now``)."""

    @abstractmethod
    def new_event(self) -> EventT:
        """A new event, not set, with a ``set()`` method; called in ``__init__`` too."""

    # -- what every interpreter provides -----------------------------------

    def _new_mutex(self) -> AbstractContextManager[Any]:
        """A lock guarding the books, for interpreters that need one (blocking ones)."""
        return nullcontext()

    @abstractmethod
    def _start(self, procedure: Procedure[None], name: str) -> None:
        """Run ``procedure`` in the background (the ``Spawn`` effect)."""

    # -- state -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True before the pool is opened and after ``close()``."""
        return not self._opened or self._policy.closed

    @property
    def min_size(self) -> int:
        return self._policy.min_size

    @property
    def max_size(self) -> int:
        return self._policy.max_size

    def start_maintenance(self) -> None:
        """Open the pool: start its maintenance, which opens ``min_size`` connections.

        An adapter's pool calls it when its users open the pool, once
        ``spawn()`` can start background work. Starting twice does nothing.

        :raises PoolClosed: if the pool was closed (it cannot be reopened).
        """
        self._policy.check_process()
        with self._books:
            if self._policy.closed:
                raise errors.PoolClosed(f"pool {self.name!r} was closed; it cannot be reopened")
            if not self._opened:
                self._opened = True
                self._start(self._maintain(), "maintenance")

    def _kick(self) -> None:
        # The books changed: maintenance and wait() look again.
        changed, self._changed = self._changed, self.new_event()
        changed.set()

    def _check_open(self) -> None:
        if not self._opened:
            raise errors.PoolClosed(f"pool {self.name!r} is not open: {self.open_hint}")
        if self._policy.closed:
            raise errors.PoolClosed(f"pool {self.name!r} is closed")

    # -- the procedures of the public API ------------------------------------

    def _wait_proc(self, timeout: float) -> Procedure[None]:
        # Until min_size connections are open, or PoolTimeout.
        self._check_open()
        deadline = self.now() + timeout
        while self._policy.open_count < self._policy.min_size:
            self._check_open()
            remaining = deadline - self.now()
            if remaining <= 0:
                raise self._policy.not_ready(timeout)
            yield WaitEvent(self._changed, remaining)

    def _close_proc(self, timeout: float) -> Procedure[None]:
        # Order of operations, step 5.
        to_close, _ = self._policy.close()
        self._kick()
        for conn in to_close:
            yield Close(conn)
        yield StopBackground(timeout)
        # Connects whose procedure never ran (a task cancelled before it
        # started, a thread still connecting): nothing else reports them.
        now = self.now()
        for _ in range(len(self._connects)):
            self._policy.connect_failed(errors.PoolClosed(f"pool {self.name!r} was closed"), now)
        self._connects.clear()

    def _getconn_proc(self, timeout: float | None) -> Procedure[ConnT]:
        # Order of operations, step 1.
        if timeout is None:
            timeout = self.timeout
        deadline = self.now() + timeout
        while True:
            conn = yield from self._take(deadline, timeout)
            if self._check is None:
                return conn
            try:
                yield CallBack(self._check, conn)
            except Exception as ex:
                logger.warning("pool %r: check failed, connection discarded: %s", self.name, ex)
                yield from self._discard(conn, lost=True)
                continue
            except BaseException:
                # Interrupted while checking: the connection's state is unknown.
                yield from self._discard(conn, lost=True)
                raise
            return conn

    def _take(self, deadline: float, timeout: float) -> Procedure[ConnT]:
        self._check_open()
        started = self.now()
        conn, expired = self._policy.checkout(started)
        if expired:
            self._kick()
            for old in expired:
                yield Close(old)
        if conn is not None:
            return conn
        event = self.new_event()
        waiter = self._policy.enqueue(event.set)
        if self._policy.size < self._policy.max_size:
            self._kick()  # maintenance may open one more (rule 4 of the policy)
        try:
            yield WaitEvent(event, max(deadline - self.now(), 0.0))
        except BaseException:
            # Rule 3: a connection given meanwhile goes to the next request.
            self._policy.abandon(waiter, self.now())
            self._kick()
            raise
        if waiter.error is not None:
            raise waiter.error
        if waiter.conn is None:
            self._policy.abandon(waiter, self.now())
            self._kick()
            raise self._policy.timed_out(timeout)
        self._policy.served(int((self.now() - started) * 1000.0))
        return waiter.conn

    def _putconn_proc(self, conn: ConnT) -> Procedure[None]:
        # Order of operations, step 2.
        self._policy.take_back(conn)
        if self._reset is None and is_clean(conn) and not lock_held(conn):
            # Nothing to reset: placing it back does not wait, so it needs no
            # shield (a task per return, in asyncio).
            yield from self._give_back(conn)
            return
        yield Shielded(self._reset_and_give_back(conn))

    def _reset_and_give_back(self, conn: ConnT) -> Procedure[None]:
        usable = False
        try:
            if lock_held(conn):
                # Waiting for the lock could be waiting forever: whoever holds
                # it may be the one returning the connection, from inside its
                # COPY block. Closing wakes them.
                raise errors.ProgrammingError("the connection was returned while still in use")
            reset = yield Drive(conn, reset_gen(conn))
            if reset and self._reset is not None:
                yield CallBack(self._reset, conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the reset callback left the connection in a transaction"
                    )
            # Only now: interrupted anywhere above, its state is unknown.
            usable = bool(reset)
        except Exception as ex:
            logger.warning("pool %r: reset failed, connection discarded: %s", self.name, ex)
            usable = False
        finally:
            if usable:
                yield from self._give_back(conn)
            else:
                yield from self._discard(conn)

    def _give_back(self, conn: ConnT) -> Procedure[None]:
        if self._policy.give_back(conn, self.now()):
            # An idle connection brings its own deadlines (max_lifetime,
            # max_idle): maintenance may sleep past them, or forever.
            deadline = self._policy.next_deadline()
            if deadline is not None and (self._wake_at is None or deadline < self._wake_at):
                self._kick()
        else:
            self._kick()
            yield Close(conn)

    def _discard(self, conn: ConnT, lost: bool = False) -> Procedure[None]:
        self._policy.discard(conn, lost=lost)
        self._kick()
        yield Close(conn)

    def _resize_proc(self, min_size: int, max_size: int | None) -> Procedure[None]:
        to_close = self._policy.resize(min_size, max_size, self.now())
        self._kick()
        for conn in to_close:
            yield Close(conn)

    def _check_proc(self, check_connection: Callable[[Any], Any]) -> Procedure[None]:
        # pool.check(): every idle connection, one after the other.
        self._check_open()
        conns = self._policy.take_idle()
        for index, conn in enumerate(conns):
            try:
                yield CallBack(check_connection, conn)
            except Exception as ex:
                logger.warning("pool %r: idle connection lost: %s", self.name, ex)
                yield from self._discard(conn, lost=True)
            except BaseException:
                # Interrupted: this one goes back if it survived the
                # interruption, the unchecked ones as they were.
                if conn.closed:
                    yield from self._discard(conn, lost=True)
                else:
                    yield from self._give_back(conn)
                for unchecked in conns[index + 1 :]:
                    yield from self._give_back(unchecked)
                raise
            else:
                yield from self._give_back(conn)

    # -- the background procedures -------------------------------------------

    def _maintain(self) -> Procedure[None]:
        # Order of operations, step 4.
        while not self._policy.closed:
            changed = self._changed
            now = self.now()
            to_close = self._policy.expired(now)
            for _ in range(self._policy.start_connects(now)):
                token = object()
                self._connects.add(token)
                yield Spawn(self._connect_one(token), f"connect-{next(self._connect_ids)}")
            for conn in to_close:
                yield Close(conn)
            self._wake_at = deadline = self._policy.next_deadline()
            timeout = None if deadline is None else max(deadline - self.now(), 0.0)
            yield WaitEvent(changed, timeout)

    def _connect_one(self, token: object) -> Procedure[None]:
        # Order of operations, step 3.
        started = self.now()
        conn: ConnT | None = None
        try:
            conn = yield Connect()
            assert conn is not None
            if self._configure is not None:
                yield CallBack(self._configure, conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the configure callback left the connection in a transaction"
                    )
        except BaseException as ex:
            # Nothing awaited from here on (a plain callback at most): a
            # cancelled connect is reported too.
            if conn is not None:
                conn._close()
            yield from self._connect_failed(token, ex)
            if not isinstance(ex, Exception):
                raise
            return
        if token not in self._connects:
            # close() gave up on this connect already.
            yield Close(conn)
            return
        self._connects.discard(token)
        now = self.now()
        kept = self._policy.connected(conn, now, int((now - started) * 1000.0))
        self._kick()
        if not kept:
            yield Close(conn)

    def _connect_failed(self, token: object, error: BaseException) -> Procedure[None]:
        if token not in self._connects:
            return
        self._connects.discard(token)
        call_back = self._policy.connect_failed(error, self.now())
        self._kick()
        if self._policy.closed or not isinstance(error, Exception):
            return
        logger.warning("pool %r: connection attempt failed: %s", self.name, error)
        if call_back and self._reconnect_failed is not None:
            try:
                yield CallBack(self._reconnect_failed, self, plain=True)
            except Exception:
                logger.exception("pool %r: reconnect_failed callback raised", self.name)
