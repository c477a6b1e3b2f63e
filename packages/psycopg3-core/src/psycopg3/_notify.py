"""LISTEN/NOTIFY: the ``Notify`` type, the per-connection queue and handlers.

Must not: wait, take a lock, or import a concurrency framework. The waiting
is ``generators.notifies()``; the adapters drive it (see ``notifies()`` in
each flavour).

Rules of delivery, written once here for every flavour:

1. libpq keeps the notifications it parses while a command runs; after each
   command's results the connection takes them (one ``PQnotifies`` call when
   there are none) and delivers them: nothing received is lost because it
   arrived during a query rather than during ``notifies()``.
2. A delivered notification goes to every handler (``add_notify_handler``),
   in the thread or task that received it; a handler that raises is logged.
3. It is also queued for ``notifies()`` if an iteration is running (it will
   yield it) or if no handler is registered (a later ``notifies()`` yields
   it). Taken by a handler while nobody iterates, it is not kept: a
   connection that only uses handlers does not pile up notifications.
4. The queue is bounded (``NOTIFY_QUEUE_MAX``): past it the oldest are
   dropped, with one logged warning until the queue is read again.
5. An iteration holds nothing between two items: it stops after
   ``timeout`` seconds in total, after ``stop_after`` items, or when the
   caller stops iterating; several iterations on one connection share the
   queue (each notification is yielded once).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from . import errors
from ._encodings import pgconn_py_encoding

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
    from .pq import PGconn, PGnotify

logger = logging.getLogger("psycopg3")

#: The waiter timeout of one wait for notifications: how long a listener
#: holds the connection before letting other users of it in, and how often it
#: checks its deadline and whether the connection was closed.
NOTIFY_POLL_INTERVAL = 0.05
#: How many notifications a connection keeps for ``notifies()``.
NOTIFY_QUEUE_MAX = 10_000


class Notify(NamedTuple):
    """A notification sent by ``NOTIFY channel, 'payload'`` or ``pg_notify()``."""

    #: The channel it was sent on (the name given to ``LISTEN``).
    channel: str
    #: The payload; "" when none was given.
    payload: str
    #: The backend process id of the session that sent it.
    pid: int


#: What ``add_notify_handler()`` accepts: called with each notification received.
NotifyHandler = Callable[[Notify], None]


class NotifyState:
    """A connection's notification queue, handlers and running iterations."""

    __slots__ = ("queue", "handlers", "iterations", "dropping")

    def __init__(self) -> None:
        self.queue: deque[Notify] = deque()
        self.handlers: list[NotifyHandler] = []
        self.iterations = 0
        self.dropping = False

    def deliver(self, pgconn: PGconn, received: list[PGnotify]) -> None:
        """Deliver notifications received on ``pgconn``, in order (rules 2-4)."""
        encoding = pgconn_py_encoding(pgconn)
        # The session's encoding when they arrive; with no Python codec,
        # ASCII only (see psycopg3._encodings, rule 3).
        codec = encoding.python_codec
        # Never raise here: a notification the codec cannot read still arrives.
        how = "surrogateescape" if encoding.errors == "surrogateescape" else "replace"
        for pgnotify in received:
            notify = Notify(
                pgnotify.relname.decode(codec, how),
                pgnotify.extra.decode(codec, how),
                pgnotify.be_pid,
            )
            for handler in list(self.handlers):
                try:
                    handler(notify)
                except Exception:
                    logger.exception("the notify handler %r failed", handler)
            if self.iterations or not self.handlers:
                self._enqueue(notify)

    def _enqueue(self, notify: Notify) -> None:
        queue = self.queue
        if len(queue) >= NOTIFY_QUEUE_MAX:
            if not self.dropping:
                self.dropping = True
                logger.warning(
                    "%d notifications are waiting for notifies(): dropping the oldest",
                    len(queue),
                )
            queue.popleft()
        queue.append(notify)


class NotifyIteration:
    """The bookkeeping of one ``notifies()`` iteration: what to yield, how long to wait.

    :param state: the connection's ``NotifyState``.
    :param timeout: seconds the whole iteration may last, None for no limit.
    :param stop_after: how many notifications to yield at most, None for no limit.
    """

    __slots__ = ("_state", "_deadline", "_left", "_waited", "_open")

    def __init__(self, state: NotifyState, timeout: float | None, stop_after: int | None):
        self._open = False  # for __del__, if the arguments are refused
        if timeout is not None and (not isinstance(timeout, (int, float)) or not timeout >= 0):
            raise errors.ProgrammingError(
                f"notifies() timeout must be >= 0 or None, not {timeout!r}"
            )
        if stop_after is not None and (
            isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 0
        ):
            raise errors.ProgrammingError(
                f"notifies() stop_after must be an int >= 0 or None, not {stop_after!r}"
            )
        self._state = state
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._left = stop_after
        self._waited = False
        self._open = True
        state.iterations += 1

    def pop(self) -> Notify | None:
        """Return the next queued notification to yield, None if none is due."""
        queue = self._state.queue
        if not queue or self._left == 0:
            return None
        if self._left is not None:
            self._left -= 1
        notify = queue.popleft()
        if not queue:
            self._state.dropping = False
        return notify

    def next_wait(self) -> float | None:
        """Return the waiter timeout of the next wait, or None if the iteration is over.

        The first wait happens even with ``timeout=0``: what already arrived
        is read without waiting.
        """
        if self._left == 0:
            return None
        if self._deadline is None:
            return NOTIFY_POLL_INTERVAL
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 and self._waited:
            return None
        self._waited = True
        return max(0.0, min(NOTIFY_POLL_INTERVAL, remaining))

    def close(self) -> None:
        """End the iteration (idempotent): its notifications are no longer kept for it."""
        if self._open:
            self._open = False
            self._state.iterations -= 1

    def __del__(self) -> None:
        # A caller that breaks out of the loop just drops the iterator.
        self.close()


class AsyncNotifies:
    """What an async ``conn.notifies()`` returns: ``async for notify in ...``.

    Each wait takes the connection's lock for one slice of at most
    ``NOTIFY_POLL_INTERVAL``, so other tasks' commands get in between (the
    frameworks' locks are fair). A cancellation during a wait needs no cancel
    request: the connection is idle, and stays usable.
    """

    __slots__ = ("_conn", "_iteration")

    def __init__(self, conn: AsyncConnectionBase, timeout: float | None, stop_after: int | None):
        self._conn = conn
        self._iteration = conn._start_notifies(timeout, stop_after)

    def __aiter__(self) -> AsyncNotifies:
        return self

    async def __anext__(self) -> Notify:
        conn = self._conn
        iteration = self._iteration
        try:
            while True:
                notify = iteration.pop()
                if notify is not None:
                    return notify
                wait = iteration.next_wait()
                if wait is None:
                    raise StopAsyncIteration
                async with conn.lock:
                    await conn._wait(conn._notifies_gen(), timeout=wait)
        except BaseException:
            iteration.close()
            raise
