"""The async connection pool, written once for every async framework.

``AsyncPoolBase`` drives the policy of ``psycopg3._pool`` with plain
``await``; an adapter subclasses it and implements the few hooks only its
framework can (a clock, events, starting tasks, shielding from cancellation,
connecting, driving a generator). The books are touched only between two
``await`` s, so each policy call is atomic without a lock.

The order of operations (the threads pool of ``psycopg3_sync`` is the twin
of this module, step for step):

1. ``getconn``: ``checkout()`` an idle connection; else ``enqueue()`` a
   waiter, kick maintenance if the pool may grow, wait on the waiter's
   event until the deadline.
   Any exception while waiting (timeout, cancellation) ``abandon()`` s the
   waiter, which hands on a connection given meanwhile. Then the ``check``
   callback: failing, the connection is discarded and another one is taken
   within the same deadline.
2. ``putconn``: ``take_back()`` (ownership, returned twice), then shielded
   from cancellation: ``reset_gen`` under the connection's lock, the
   ``reset`` callback, then ``give_back()`` if usable, else ``discard()``.
   Kick maintenance when a slot was freed (discarded, or not kept: closed),
   so that a replacement opens, or when the idle connection's deadlines
   come before maintenance's next wake-up.
3. connector task (one per connect that ``start_connects()`` counted):
   connect, ``configure`` callback, then ``connected()``; on any failure,
   cancellation included, ``connect_failed()`` (and maybe the user's
   ``reconnect_failed``) and the half-opened connection is closed. Each
   counted connect ends in exactly one of the two.
4. maintenance task (one per pool): close what ``expired()`` returns, start
   the connectors ``start_connects()`` asks for, sleep until
   ``next_deadline()`` or until kicked.
5. ``close``: ``close()`` the policy (waiters get ``PoolClosed``), close
   the idle connections, cancel and await the background tasks, then
   report as failed the counted connects whose task never ran.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from . import errors
from ._async_connection import AsyncConnectionBase
from ._connection_base import RECOVER_POLL_INTERVAL
from ._pool import PoolPolicy, health_gen, is_clean, reset_gen
from .pq import TransactionStatus
from .waiting import PQGen

__all__ = ["AsyncPoolBase", "PoolEvent"]

logger = logging.getLogger("psycopg3")

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound=AsyncConnectionBase)
EventT = TypeVar("EventT", bound="PoolEvent")

_names = itertools.count(1)


class PoolEvent(Protocol):
    """What the pool needs of a framework's event: ``set()`` it (waiting is a hook)."""

    def set(self) -> None: ...


class AsyncPoolBase(ABC, Generic[ConnT, EventT]):
    """A pool of async connections, minus what only a framework can do.

    :param conninfo: the connection string of every connection.
    :param kwargs: more arguments of the flavour's ``Connection.connect()``.
    :param min_size: connections kept open, idle or not.
    :param max_size: the most connections open at once (None: ``min_size``).
    :param name: the pool's name, in errors and logs.
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
    :param configure: ``async def``, awaited with each new connection
        before its first use; it must leave no transaction open.
    :param reset: ``async def``, awaited with each returned connection once
        it is idle; raising discards the connection.
    :param check: ``async def``, awaited with a connection before handing it
        out; raising discards it, and another one is tried.
    """

    #: How to open this flavour's pool, in the error of a pool not open.
    _open_hint = "open it first"

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
        reconnect_failed: Callable[[Any], None] | None = None,
        configure: Callable[[ConnT], Awaitable[None]] | None = None,
        reset: Callable[[ConnT], Awaitable[None]] | None = None,
        check: Callable[[ConnT], Awaitable[None]] | None = None,
    ):
        self.conninfo = conninfo
        self.kwargs = dict(kwargs or {})
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
        # Replaced by a new one at each kick: maintenance and wait() sleep
        # on the one current when they last looked at the books.
        self._changed = self._new_event()
        # One token per connect counted by start_connects() and not yet
        # reported: close() reports those whose task never ran.
        self._connects: set[object] = set()
        # When maintenance wakes up by itself next (None: only when kicked).
        self._wake_at: float | None = None

    # -- the framework's hooks -------------------------------------------

    @abstractmethod
    def _now(self) -> float:
        """The framework's clock, in seconds (the policy's ``now``)."""

    @abstractmethod
    def _new_event(self) -> EventT:
        """A new event, not set (created outside any task too)."""

    @abstractmethod
    async def _wait_event(self, event: EventT, timeout: float | None) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds passed (False)."""

    @abstractmethod
    def _spawn(self, task: Callable[[], Awaitable[None]]) -> None:
        """Start ``task()`` in the background, where ``_stop_background()`` stops it."""

    @abstractmethod
    async def _stop_background(self, timeout: float) -> None:
        """Cancel the tasks ``_spawn()`` started; wait ``timeout`` at most for them to end."""

    @abstractmethod
    async def _run_shielded(self, task: Callable[[], Awaitable[T]]) -> T:
        """Run ``task()`` to its end even if the caller is cancelled meanwhile.

        The cancellation is not lost: it is raised once the task is done.
        """

    @abstractmethod
    async def _connect(self) -> ConnT:
        """Open a connection: the flavour's ``Connection.connect(conninfo, **kwargs)``."""

    @abstractmethod
    async def _drive(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` with the flavour's waiter, ``timeout=RECOVER_POLL_INTERVAL``."""

    # -- life ------------------------------------------------------------

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

    def _open(self) -> None:
        # Start maintenance, which starts the connectors; opening twice does nothing.
        self._policy.check_process()
        if self._policy.closed:
            raise errors.PoolClosed(f"pool {self.name!r} was closed; it cannot be reopened")
        if not self._opened:
            self._opened = True
            self._spawn(self._maintain)

    async def wait(self, timeout: float = 30.0) -> None:
        """Wait until ``min_size`` connections are open.

        :raises PoolTimeout: if they are not within ``timeout`` seconds.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        self._check_open()
        deadline = self._now() + timeout
        while self._policy.open_count < self._policy.min_size:
            self._check_open()
            remaining = deadline - self._now()
            if remaining <= 0:
                raise self._policy.not_ready(timeout)
            await self._wait_event(self._changed, remaining)

    async def close(self, timeout: float = 5.0) -> None:
        """Close the pool: idle connections now, those in use when they come back.

        Requests waiting get ``PoolClosed``; the pool's tasks are cancelled
        and awaited, ``timeout`` seconds at most. Closing twice does nothing.
        """
        if self._policy.inherited:
            return  # a forked child: nothing here is its to close (rule 6 of the policy)
        to_close, _ = self._policy.close()
        self._kick()
        for conn in to_close:
            await conn.close()
        await self._stop_background(timeout)
        # Connects whose task was cancelled before it ran: no task reports them.
        now = self._now()
        for _ in range(len(self._connects)):
            self._policy.connect_failed(errors.PoolClosed(f"pool {self.name!r} was closed"), now)
        self._connects.clear()

    # -- requests --------------------------------------------------------

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[ConnT]:
        """Borrow a connection for the block: ``async with pool.connection() as conn:``.

        On a clean exit an open transaction is committed; on an exception
        (cancellation included) it is rolled back when the connection comes
        back.

        :param timeout: as in ``getconn()``.
        """
        conn = await self.getconn(timeout)
        try:
            yield conn
            if conn._session_status() == TransactionStatus.INTRANS:
                await conn.commit()
        finally:
            await self.putconn(conn)

    async def getconn(self, timeout: float | None = None) -> ConnT:
        """Take a connection; give it back with ``putconn()``.

        :param timeout: seconds to wait for one (None: the pool's ``timeout``).
        :raises PoolTimeout: if none was available in time.
        :raises TooManyRequests: if ``max_waiting`` requests already wait.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        if timeout is None:
            timeout = self.timeout
        deadline = self._now() + timeout
        while True:
            conn = await self._take(deadline, timeout)
            if self._check is None:
                return conn
            try:
                await self._check(conn)
            except Exception as ex:
                logger.warning("pool %r: check failed, connection discarded: %s", self.name, ex)
                await self._discard(conn, lost=True)
                continue
            except BaseException:
                # Cancelled while checking: the connection's state is unknown.
                await self._discard(conn, lost=True)
                raise
            return conn

    async def _take(self, deadline: float, timeout: float) -> ConnT:
        self._check_open()
        started = self._now()
        conn, expired = self._policy.checkout(started)
        if expired:
            self._kick()
            for old in expired:
                await old.close()
        if conn is not None:
            return conn
        event = self._new_event()
        waiter = self._policy.enqueue(event.set)
        if self._policy.size < self._policy.max_size:
            self._kick()  # maintenance may open one more (rule 4)
        try:
            await self._wait_event(event, max(deadline - self._now(), 0.0))
        except BaseException:
            # Rule 3: a connection given meanwhile goes to the next request.
            self._policy.abandon(waiter, self._now())
            self._kick()
            raise
        if waiter.error is not None:
            raise waiter.error
        if waiter.conn is None:
            self._policy.abandon(waiter, self._now())
            self._kick()
            raise self._policy.timed_out(timeout)
        self._policy.served(int((self._now() - started) * 1000.0))
        return waiter.conn

    async def putconn(self, conn: ConnT) -> None:
        """Give back a connection taken with ``getconn()``.

        A command in progress is cancelled, a transaction rolled back, then
        the ``reset`` callback runs; a connection failing any of them, too
        old, or returned to a closed pool is closed. This runs to its end
        even if the caller is cancelled meanwhile (the cancellation follows).

        :raises ProgrammingError: if it is not this pool's, or was already
            given back.
        """
        self._policy.check_process()
        self._policy.take_back(conn)
        if self._reset is None and is_clean(conn) and not _lock_held(conn):
            # Nothing to reset: placing it back does not wait, so it needs no
            # shield (a task per return, in asyncio).
            await self._give_back(conn)
            return
        await self._run_shielded(lambda: self._reset_and_give_back(conn))

    async def _reset_and_give_back(self, conn: ConnT) -> None:
        usable = False
        try:
            if _lock_held(conn):
                # Waiting for the lock could be waiting forever: the task
                # holding it may be the one returning the connection, from
                # inside its COPY block. Closing wakes whoever holds it.
                raise errors.ProgrammingError("returned while still in use")
            async with conn.lock:
                usable = await self._drive(reset_gen(conn))
            if usable and self._reset is not None:
                await self._reset(conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the reset callback left the connection in a transaction"
                    )
        except Exception as ex:
            logger.warning("pool %r: reset failed, connection discarded: %s", self.name, ex)
            usable = False
        finally:
            if usable:
                await self._give_back(conn)
            else:
                await self._discard(conn)

    async def _give_back(self, conn: ConnT) -> None:
        if self._policy.give_back(conn, self._now()):
            # An idle connection brings its own deadlines (max_lifetime,
            # max_idle): maintenance may sleep past them, or forever.
            deadline = self._policy.next_deadline()
            if deadline is not None and (self._wake_at is None or deadline < self._wake_at):
                self._kick()
        else:
            self._kick()
            await conn.close()

    async def _discard(self, conn: ConnT, lost: bool = False) -> None:
        self._policy.discard(conn, lost=lost)
        self._kick()
        await conn.close()

    # -- the rest of the API ---------------------------------------------

    def stats(self) -> dict[str, int]:
        """The pool's figures: sizes now, and counters since it opened."""
        self._policy.check_process()
        return self._policy.stats()

    async def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's sizes; connections are opened or closed to follow.

        :param max_size: None: ``min_size``.
        """
        self._policy.check_process()
        to_close = self._policy.resize(min_size, max_size, self._now())
        self._kick()
        for conn in to_close:
            await conn.close()

    async def check(self) -> None:
        """Check every idle connection now; broken ones are replaced."""
        self._policy.check_process()
        self._check_open()
        conns = self._policy.take_idle()
        for index, conn in enumerate(conns):
            try:
                await self.check_connection(conn)
            except Exception as ex:
                logger.warning("pool %r: idle connection lost: %s", self.name, ex)
                await self._discard(conn, lost=True)
            except BaseException:
                # Cancelled: this one goes back if it survived the
                # interruption, the unchecked ones as they were.
                if conn.closed:
                    await self._discard(conn, lost=True)
                else:
                    await self._give_back(conn)
                for unchecked in conns[index + 1 :]:
                    await self._give_back(unchecked)
                raise
            else:
                await self._give_back(conn)

    @staticmethod
    async def check_connection(conn: AsyncConnectionBase) -> None:
        """Check that ``conn`` answers; usable as the pool's ``check`` callback.

        :raises OperationalError: if it does not.
        """
        async with conn.lock:
            await conn._wait(health_gen(conn), timeout=RECOVER_POLL_INTERVAL)

    # -- background tasks ------------------------------------------------

    def _kick(self) -> None:
        # The books changed: maintenance and wait() look again.
        changed, self._changed = self._changed, self._new_event()
        changed.set()

    def _check_open(self) -> None:
        if not self._opened:
            raise errors.PoolClosed(f"pool {self.name!r} is not open: {self._open_hint}")
        if self._policy.closed:
            raise errors.PoolClosed(f"pool {self.name!r} is closed")

    async def _maintain(self) -> None:
        while not self._policy.closed:
            changed = self._changed
            now = self._now()
            to_close = self._policy.expired(now)
            for _ in range(self._policy.start_connects(now)):
                token = object()
                self._connects.add(token)
                self._spawn(partial(self._connect_one, token))
            for conn in to_close:
                await conn.close()
            self._wake_at = deadline = self._policy.next_deadline()
            timeout = None if deadline is None else max(deadline - self._now(), 0.0)
            await self._wait_event(changed, timeout)

    async def _connect_one(self, token: object) -> None:
        started = self._now()
        conn: ConnT | None = None
        try:
            conn = await self._connect()
            if self._configure is not None:
                await self._configure(conn)
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    raise errors.ProgrammingError(
                        "the configure callback left the connection in a transaction"
                    )
        except BaseException as ex:
            # No await from here on: a cancelled connect is reported too.
            if conn is not None:
                conn._close()
            self._connect_failed(token, ex)
            if not isinstance(ex, Exception):
                raise
            return
        if token not in self._connects:
            # close() gave up on this connect already.
            await conn.close()
            return
        self._connects.discard(token)
        now = self._now()
        kept = self._policy.connected(conn, now, int((now - started) * 1000.0))
        self._kick()
        if not kept:
            await conn.close()

    def _connect_failed(self, token: object, error: BaseException) -> None:
        if token not in self._connects:
            return
        self._connects.discard(token)
        call_back = self._policy.connect_failed(error, self._now())
        self._kick()
        if self._policy.closed or not isinstance(error, Exception):
            return
        logger.warning("pool %r: connection attempt failed: %s", self.name, error)
        if call_back and self._reconnect_failed is not None:
            try:
                self._reconnect_failed(self)
            except Exception:
                logger.exception("pool %r: reconnect_failed callback raised", self.name)


def _lock_held(conn: AsyncConnectionBase) -> bool:
    # asyncio's, trio's and anyio's locks all have locked().
    locked = getattr(conn.lock, "locked", None)
    return bool(locked()) if locked is not None else False
