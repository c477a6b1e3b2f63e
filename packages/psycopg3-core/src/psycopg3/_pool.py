"""The connection pool's policy, written once for every flavour.

``PoolPolicy`` decides; the pools of the adapter packages act. It keeps the
books (which connections exist, which are idle, who is waiting) and answers
the pool's questions: which idle connection to hand out, whom to give a
returned or new connection to, how many connections to open now, which ones
to close because they are too old or idle too long, when to try again after
a failed connect. The procedures of ``psycopg3._pool_procs`` act on its
answers; the pool's I/O is generators (``psycopg3._pool_io``).

Must not: import a concurrency framework, sleep, read a clock (callers pass
``now``, from the clock of their framework), call user callbacks, or do I/O
outside the generators.

Rules the pools rely on:

1. Every method is synchronous and never waits: a blocking pool calls it
   under its mutex; an async pool between two ``await`` s, which makes it
   atomic.
2. A connection is counted from the moment its connect is started
   (``start_connects()``) until ``discard()`` or a ``False`` from
   ``give_back()``: ``pool_size`` never overshoots ``max_size`` and a slot
   is never lost.
3. A waiter given a connection owns it, even if it gives up a moment later:
   ``abandon()`` then hands the connection on. No connection is lost to a
   cancelled or timed-out request.
4. Opening connections on demand is one at a time: a burst of short
   requests is served by the connections coming back, and the pool only
   grows if requests still wait when the new one arrives.
5. After a failed connect, the next one waits longer each time
   (``psycopg3._pool_backoff``). Failing for ``reconnect_timeout`` makes
   ``connect_failed()`` return True once, so that the pool calls the user's
   ``reconnect_failed``; attempts go on at the longest delay.
6. A pool belongs to the process that made it. In a forked child its
   connections are the parent's (disowned there: see ``psycopg3.pq``) and
   its threads or tasks do not exist: every use raises ``check_process()``'s
   error before touching a lock or a connection, and ``close()`` only lets
   the child's copy go, sending nothing.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from . import errors
from ._connection_base import BaseConnection
from ._pool_backoff import (
    RECONNECT_INITIAL_DELAY,
    RECONNECT_JITTER,
    RECONNECT_MAX_DELAY,
    Backoff,
)
from ._pool_books import COUNTERS, Entry, PoolWaiter, check_limits, check_sizes

__all__ = [
    "PoolPolicy",
    "PoolWaiter",
    "check_sizes",
    "RECONNECT_INITIAL_DELAY",
    "RECONNECT_MAX_DELAY",
    "RECONNECT_JITTER",
]

C = TypeVar("C", bound=BaseConnection)

#: Each connection's ``max_lifetime`` is shortened by up to this fraction, so
#: that connections opened together are not all replaced at once.
LIFETIME_SPREAD = 0.05


class PoolPolicy(Generic[C]):
    """The books and decisions of one pool; see the module's rules.

    :param min_size: connections kept open, idle or not.
    :param max_size: the most connections open at once.
    :param max_waiting: the most requests waiting at once (0: no limit);
        one more raises ``TooManyRequests``.
    :param max_lifetime: seconds after which a connection is replaced when
        it is next idle.
    :param max_idle: seconds after which an idle connection beyond
        ``min_size`` is closed.
    :param reconnect_timeout: seconds of failed connects after which
        ``connect_failed()`` returns True.
    :param name: the pool's name, in error messages.
    """

    def __init__(
        self,
        *,
        min_size: int,
        max_size: int | None,
        max_waiting: int,
        max_lifetime: float,
        max_idle: float,
        reconnect_timeout: float,
        name: str,
    ):
        self.min_size, self.max_size = check_sizes(min_size, max_size)
        check_limits(max_waiting, max_lifetime, max_idle, reconnect_timeout)
        self.max_waiting = max_waiting
        self.max_lifetime = max_lifetime
        self.max_idle = max_idle
        self.reconnect_timeout = reconnect_timeout
        self.name = name
        self.closed = False
        self._random = random.Random()
        self._entries: dict[C, Entry] = {}
        # Idle connections, most recently returned last: handed out from the
        # end (warm), closed from the start when idle too long.
        self._idle: list[C] = []
        # Handed to a request and not returned yet: what ``take_back()`` accepts.
        self._lent: set[C] = set()
        self._waiters: deque[PoolWaiter[C]] = deque()
        self._opening = 0
        self._growing = False
        self._backoff = Backoff(reconnect_timeout)
        #: The error of the last failed connect, until one succeeds.
        self.last_error: BaseException | None = None
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._creator_pid = os.getpid()

    # -- process (rule 6) ------------------------------------------------

    @property
    def inherited(self) -> bool:
        """True in a forked child of the process that made the pool."""
        return os.getpid() != self._creator_pid

    def check_process(self) -> None:
        """Raise InterfaceError in a forked child; call it before any other step.

        (A lock the parent's threads held at fork() stays held in the child.)
        """
        if os.getpid() != self._creator_pid:
            raise errors.InterfaceError(
                f"pool {self.name!r} was opened by process {self._creator_pid}; a forked"
                " child cannot use it (its connections are the parent's) — open a new"
                " pool in the child"
            )

    # -- size ------------------------------------------------------------

    @property
    def size(self) -> int:
        """The connections open or being opened."""
        return len(self._entries) + self._opening

    @property
    def open_count(self) -> int:
        """The connections open (idle, in use or being returned), not those being opened."""
        return len(self._entries)

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def waiting_count(self) -> int:
        return len(self._waiters)

    def resize(self, min_size: int, max_size: int | None, now: float) -> list[C]:
        """Change the sizes; return the idle connections to close now.

        Connections in use beyond a smaller ``max_size`` are closed when
        they come back.
        """
        self.min_size, self.max_size = check_sizes(min_size, max_size)
        surplus = self.size - self.max_size
        to_close: list[C] = []
        while surplus > 0 and self._idle:
            to_close.append(self._forget(self._idle.pop(0)))
            surplus -= 1
        return to_close

    # -- requests --------------------------------------------------------

    def checkout(self, now: float) -> tuple[C | None, list[C]]:
        """Take an idle connection for a request, if there is one.

        :return: the connection, or None (then ``enqueue()``), and the
            expired idle connections met on the way, to close.
        """
        self._check_open()
        self._counters["requests_num"] += 1
        expired: list[C] = []
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                self._counters["connections_lost"] += 1
            elif now < self._entries[conn].expires_at:
                self._lent.add(conn)
                return conn, expired
            expired.append(self._forget(conn))
        return None, expired

    def enqueue(self, wake: Callable[[], None]) -> PoolWaiter[C]:
        """Queue a request that found no idle connection.

        :raises TooManyRequests: if ``max_waiting`` requests already wait.
        """
        self._check_open()
        if self.max_waiting and len(self._waiters) >= self.max_waiting:
            self._counters["requests_errors"] += 1
            raise errors.TooManyRequests(
                f"pool {self.name!r}: {len(self._waiters)} requests are already waiting"
                f" for a connection (max_waiting={self.max_waiting})"
            )
        waiter: PoolWaiter[C] = PoolWaiter(wake)
        self._waiters.append(waiter)
        self._counters["requests_queued"] += 1
        return waiter

    def abandon(self, waiter: PoolWaiter[C], now: float) -> None:
        """Withdraw a request that stopped waiting (timeout, cancellation).

        A connection it was given meanwhile goes to the next request, or
        back to the idle ones (rule 3).
        """
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        conn, waiter.conn = waiter.conn, None
        if conn is not None:
            self._lent.discard(conn)
            if not self.give_back(conn, now):
                conn._close()

    def timed_out(self, timeout: float) -> errors.PoolTimeout:
        """Count a request that waited ``timeout`` in vain; return its error."""
        self._counters["requests_errors"] += 1
        return self._timeout_error(f"no connection available after {timeout:g} s")

    def not_ready(self, timeout: float) -> errors.PoolTimeout:
        """The error of a ``wait()`` that saw fewer than ``min_size`` open in ``timeout``."""
        return self._timeout_error(
            f"{self.open_count} connections of {self.min_size} ready after {timeout:g} s"
        )

    def _timeout_error(self, what: str) -> errors.PoolTimeout:
        message = f"pool {self.name!r}: {what}"
        if self.last_error is not None:
            message += f"; the last connection attempt failed: {self.last_error}"
        return errors.PoolTimeout(message)

    def served(self, wait_ms: int) -> None:
        """Count the time a request waited before it got a connection."""
        self._counters["requests_wait_ms"] += wait_ms

    # -- connections coming and going ------------------------------------

    def give_back(self, conn: C, now: float) -> bool:
        """Place a usable connection: to the oldest request, or idle.

        :return: False if the pool does not keep it (closed pool, too old,
            beyond ``max_size``): the caller closes it; the policy forgot it.
        """
        if conn not in self._entries:
            raise errors.ProgrammingError(f"pool {self.name!r}: {conn!r} is not this pool's")
        if self.closed or now >= self._entries[conn].expires_at or self.size > self.max_size:
            self._forget(conn)
            return False
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.conn = conn
            self._lent.add(conn)
            waiter.wake()
            return True
        self._entries[conn].idle_since = now
        self._idle.append(conn)
        return True

    def discard(self, conn: C, *, lost: bool = False) -> None:
        """Forget a connection that is closed or unusable; its slot is free.

        :param lost: True if it was found broken at a check, rather than
            returned bad by its user.
        """
        if conn in self._idle:
            self._idle.remove(conn)
        if conn in self._entries:
            self._forget(conn)
            self._counters["connections_lost" if lost else "returns_bad"] += 1

    def owns(self, conn: BaseConnection) -> bool:
        return conn in self._entries

    def take_back(self, conn: C) -> None:
        """Accept a connection a request returns, before its hygiene.

        Then ``give_back()`` or ``discard()`` it.

        :raises ProgrammingError: if it is not this pool's, or was not handed
            out (returned twice): giving it back again would place it twice.
        """
        if conn not in self._entries:
            raise errors.ProgrammingError(f"pool {self.name!r}: {conn!r} is not this pool's")
        if conn not in self._lent:
            raise errors.ProgrammingError(
                f"pool {self.name!r}: {conn!r} is not in use: was it returned twice?"
            )
        self._lent.remove(conn)

    def start_connects(self, now: float) -> int:
        """Decide how many connects to start now, and count them as started.

        Enough to reach ``min_size``; one more while requests wait and no
        on-demand connect is running (rule 4); none while backing off.
        """
        if self.closed or not self._backoff.may_start(now):
            return 0
        count = max(self.min_size - self.size, 0)
        if self._waiters and not self._growing and self.size + count < self.max_size:
            waiting = len(self._waiters) - self._opening - count
            if waiting > 0:
                self._growing = True
                count += 1
        if self._backoff.failing_since is not None:
            # While the server refuses, one attempt at a time probes it.
            count = min(count, 1 if self._opening == 0 else 0)
        self._opening += count
        self._counters["connections_num"] += count
        return count

    def connected(self, conn: C, now: float, connect_ms: int) -> bool:
        """Take in a connection that a started connect opened (and configured).

        :return: as ``give_back()``: False means close it.
        """
        self._connect_ended()
        self._counters["connections_ms"] += connect_ms
        self._backoff.succeeded()
        self.last_error = None
        lifetime = self.max_lifetime * (1.0 - LIFETIME_SPREAD * self._random.random())
        self._entries[conn] = Entry(now + lifetime, now)
        return self.give_back(conn, now)

    def connect_failed(self, error: BaseException, now: float) -> bool:
        """Record a started connect that failed; schedule the next (rule 5).

        :return: True once per ``reconnect_timeout`` of failures: the pool
            then calls the user's ``reconnect_failed`` callback.
        """
        self._connect_ended()
        self._counters["connections_errors"] += 1
        self.last_error = error
        return self._backoff.failed(now, self._random.random)

    def _connect_ended(self) -> None:
        self._opening -= 1
        # A connect ending, well or not, lets the next on-demand one start.
        self._growing = False

    # -- maintenance -----------------------------------------------------

    def expired(self, now: float) -> list[C]:
        """Take the idle connections to close: too old, or idle too long beyond ``min_size``."""
        to_close: list[C] = []
        for conn in list(self._idle):
            if now >= self._entries[conn].expires_at:
                self._idle.remove(conn)
                to_close.append(self._forget(conn))
        # The longest idle first: the most recently used stay warm.
        while (
            self._idle
            and self.size > self.min_size
            and now - self._entries[self._idle[0]].idle_since >= self.max_idle
        ):
            to_close.append(self._forget(self._idle.pop(0)))
        return to_close

    def next_deadline(self) -> float | None:
        """When ``expired()`` or ``start_connects()`` will next have something to do."""
        times = [self._entries[conn].expires_at for conn in self._idle]
        if self._idle and self.size > self.min_size:
            times.append(self._entries[self._idle[0]].idle_since + self.max_idle)
        if self._backoff.retry_at is not None:
            times.append(self._backoff.retry_at)
        return min(times, default=None)

    def take_idle(self) -> list[C]:
        """Take every idle connection, to check them (``pool.check()``).

        They count as in use until given back or discarded.
        """
        self._check_open()
        conns, self._idle = self._idle, []
        return conns

    def close(self) -> tuple[list[C], list[PoolWaiter[C]]]:
        """Close the pool; return the idle connections to close and the woken requests.

        Each waiting request gets ``PoolClosed``. Connections in use are
        closed when they come back.
        """
        self.closed = True
        conns = [self._forget(conn) for conn in self._idle]
        self._idle = []
        waiters = list(self._waiters)
        self._waiters.clear()
        for waiter in waiters:
            waiter.error = errors.PoolClosed(f"pool {self.name!r} was closed")
            waiter.wake()
        return conns, waiters

    def stats(self) -> dict[str, int]:
        """The pool's figures now: sizes, and counters since the pool opened."""
        return {
            "pool_min": self.min_size,
            "pool_max": self.max_size,
            "pool_size": self.size,
            "pool_available": len(self._idle),
            "requests_waiting": len(self._waiters),
            **self._counters,
        }

    def _forget(self, conn: C) -> C:
        del self._entries[conn]
        self._lent.discard(conn)
        return conn

    def _check_open(self) -> None:
        if self.closed:
            raise errors.PoolClosed(f"pool {self.name!r} is closed")
