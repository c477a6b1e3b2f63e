"""LISTEN/NOTIFY: the ``Notify`` type, the per-connection queue and handlers.

Must not: wait, take a lock, or import a concurrency framework. Its waits
are generators (``generators.wait_readable``) that the flavours drive with
their waiter, and the lock is the flavours' to take (see ``notifies()`` in
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

Rules of waiting (``NotifyIteration.start_wait()``), so that a listener
never stands in the way of the connection's other users:

6. The lock is held only to read: ``PQconsumeInput`` and ``PQnotifies``,
   and the connection's state, are touched under it, never while another
   command runs. What arrived is read before each wait, and after it (the
   loop's next turn): what woke the listener is never left unread.
7. The wait itself is made without the lock, for as long as the
   iteration's timeout allows (no slices): an idle listener sleeps, and a
   command of another task or thread starts at once, its results read by
   that command alone. The listener, woken by their arrival, waits for the
   lock like any user, reads what is left once the command is over, and
   waits again: it never spins while another command's results are pending.
8. The wait is on a duplicate of the connection's socket (``os.dup``), one
   per connection, shared by its listeners: readiness is the socket's, but
   the framework registers another number, so the listener's registration
   and a command's own on the socket's number never meet (asyncio keeps one
   reader per number, trio refuses a second waiter). The duplicate is
   closed once the connection is closed and no wait uses it: its number is
   never reused by another file while a wait is registered on it.
9. ``close()`` with a wait in progress shuts the socket down
   (``shutdown_socket``): the wait returns at once, and the listener finds
   the connection closed (``OperationalError``, "closed while waiting").
10. A thread blocked in ``poll()`` is not woken when another thread reads
    the data that made the socket readable (a command's results, with a
    notification among them). So a blocking listener's wait is *wakeable*:
    it is also made on a pipe of its own, written to under the lock by
    whoever queues a notification while the wait is registered, or closes
    the connection. (While a listener waits, the blocking connection
    delivers what libpq parsed after each step of a command, whatever read
    it: a COPY's end, a drain.) The write end is closed once, by whoever
    takes it first: the waker, having written its byte (a wait ends once
    woken), or the wait as it ends, unwoken. Neither uses it after the
    other took it: its number is never written to once another file may
    have it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from . import errors, generators
from ._encodings import pgconn_py_encoding
from ._link import AsyncLink, Link

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
    from ._connection_base import BaseConnection
    from .pq import PGconn, PGnotify
    from .waiting import PQGen

logger = logging.getLogger("psycopg3")

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

    __slots__ = ("queue", "handlers", "iterations", "dropping", "_dup", "_watches", "_ended")

    def __init__(self) -> None:
        self.queue: deque[Notify] = deque()
        self.handlers: list[NotifyHandler] = []
        self.iterations = 0
        self.dropping = False
        # The duplicate of the socket that waits are made on (rule 8), if
        # any (a list: ``pop()`` is atomic, so it is closed once though the
        # last wait's end and the connection's close run together); the
        # waits using it; whether the connection is closed.
        self._dup: list[int] = []
        self._watches: set[SocketWait] = set()
        self._ended = False

    @property
    def waiting(self) -> bool:
        """Tell if a ``notifies()`` wait is in progress without the lock (rule 9)."""
        return bool(self._watches)

    @property
    def _watch_fd(self) -> int:
        # The socket's duplicate, -1 if none.
        return self._dup[0] if self._dup else -1

    def _watch(self, wait: SocketWait, fileno: int) -> int:
        # Under the lock, the connection open: ``fileno`` is its socket's.
        if not self._dup:
            self._dup.append(os.dup(fileno))
        self._watches.add(wait)
        return self._dup[0]

    def _unwatch(self, wait: SocketWait) -> None:
        self._watches.discard(wait)
        if self._ended and not self._watches:
            _close_taken(self._dup)

    def _wake(self) -> None:
        # Under the lock (rule 10). (``tuple()`` of a set runs without
        # letting another thread in: a wait ending meanwhile cannot break it.)
        for wait in tuple(self._watches):
            wait._wake()

    def end(self) -> None:
        """The connection is closed: wake the waits, close the fds once unused (rules 8-10)."""
        self._wake()
        self._ended = True
        if not self._watches:
            _close_taken(self._dup)

    def __del__(self) -> None:
        # A connection dropped without close(): its PGconn is finished the same way.
        _close_taken(self._dup)

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
                if self._watches:
                    self._wake()

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


def _close_taken(holder: list[int]) -> None:
    # Close the fd in ``holder`` (one or none) if this thread takes it first.
    try:
        fd = holder.pop()
    except IndexError:  # none, or taken by another thread
        return
    os.close(fd)


class NotifyIteration:
    """The bookkeeping of one ``notifies()`` iteration: what to yield, how long to wait.

    A flavour iterates it so (``AsyncNotifies`` is the async one)::

        while (notify := iteration.pop()) is None and not iteration.is_over():
            with conn.lock:
                wait = iteration.start_wait(conn)
            if wait is not None:
                with wait:  # (without the lock)
                    waiter(wait.gen(), timeout=wait.timeout)

    A blocking flavour asks for a wakeable wait (rule 10), and waits on
    its ``filenos``, telling it how the wait ended::

            wait = iteration.start_wait(conn, wakeable=True)
            ...
                with wait:
                    wait.ended(wait_any_readable(wait.filenos, timeout=wait.timeout))

    :param state: the connection's ``NotifyState``.
    :param timeout: seconds the whole iteration may last, None for no limit.
    :param stop_after: how many notifications to yield at most, None for no limit.
    """

    __slots__ = ("_state", "_deadline", "_left", "_read_due", "_open")

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
        # What arrived must be read before the deadline may end the iteration:
        # at its start (even with ``timeout=0``) and when a wait was woken.
        self._read_due = True
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

    def is_over(self) -> bool:
        """Tell if the iteration ends here (call it when ``pop()`` returned None)."""
        if self._left == 0:
            return True
        return not self._read_due and self._remaining() == 0.0

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def start_wait(self, conn: BaseConnection, *, wakeable: bool = False) -> SocketWait | None:
        """Read what arrived; if nothing is queued, return the wait to make next (rules 6-10).

        Call it holding the connection's lock; make the wait returned
        without it, then call ``pop()`` again. None: make no wait, go on.

        :param wakeable: give the wait a wake-up pipe (rule 10): for
            listeners that are threads, which another thread's command
            must be able to wake.

        :raises OperationalError: if the connection is closed or lost.
        """
        self._read_due = False
        # Queued meanwhile by another task's or thread's command (rule 1),
        # or read now: yield it first.
        if Link(conn).receive_notifies() or self._state.queue:
            return None
        timeout = self._remaining()
        if timeout == 0.0:
            return None
        return SocketWait(self, conn.pgconn.socket, timeout, wakeable)

    def close(self) -> None:
        """End the iteration (idempotent): its notifications are no longer kept for it."""
        if self._open:
            self._open = False
            self._state.iterations -= 1

    def __del__(self) -> None:
        # A caller that breaks out of the loop just drops the iterator.
        self.close()


class SocketWait:
    """One wait of a ``notifies()`` iteration for the socket, made without the lock.

    Made by ``NotifyIteration.start_wait()`` under the lock (the duplicate of
    the socket is made there, while the connection is surely open);
    ``with wait:`` around the wait ends it, whatever happens.
    """

    __slots__ = ("_iteration", "fileno", "filenos", "timeout", "_wake_write")

    def __init__(
        self, iteration: NotifyIteration, socket: int, timeout: float | None, wakeable: bool
    ):
        self._iteration = iteration
        #: The timeout to give the waiter: the iteration's time left, None for no limit.
        self.timeout = timeout
        # The pipe's write end, until the waker or the wait's end takes it (rule 10).
        self._wake_write: list[int] = []
        wake_read = -1
        if wakeable:
            wake_read, wake_write = os.pipe()
            self._wake_write.append(wake_write)
        try:
            #: The file descriptor waited on: a duplicate of the socket (rule 8).
            self.fileno = iteration._state._watch(self, socket)
        except BaseException:
            if wakeable:
                os.close(wake_read)
                _close_taken(self._wake_write)
            raise
        #: What a wakeable wait waits on, for reading: the socket's
        #: duplicate and its wake-up pipe (rule 10); else ``fileno`` alone.
        self.filenos = (self.fileno, wake_read) if wakeable else (self.fileno,)

    def gen(self) -> PQGen[None]:
        """Wait once for the socket to be readable (or the timeout to expire)."""
        self.ended((yield from generators.wait_readable(self.fileno)) != 0)

    def ended(self, ready: bool) -> None:
        """Tell how the wait ended: ``ready`` if one of ``filenos`` was readable."""
        if ready:
            self._iteration._read_due = True

    def _wake(self) -> None:
        # Rule 10: once, by whoever takes the write end first.
        try:
            wake_write = self._wake_write.pop()
        except IndexError:  # not wakeable, woken already, or ended
            return
        try:
            os.write(wake_write, b"!")
        except OSError:
            pass  # (EPIPE: the wait ended meanwhile, its read end is closed)
        finally:
            os.close(wake_write)

    def __enter__(self) -> SocketWait:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._iteration._state._unwatch(self)
        _close_taken(self._wake_write)
        if len(self.filenos) > 1:
            os.close(self.filenos[1])


class AsyncNotifies:
    """What an async ``conn.notifies()`` returns: ``async for notify in ...``.

    The lock is taken only to read what arrived; the wait for the socket is
    made without it, with the adapter's ``waiter`` (rules 6-9). A
    cancellation during a wait needs no cancel request: the wait is not a
    command, and the connection stays usable.
    """

    __slots__ = ("_conn", "_link", "_iteration")

    def __init__(self, conn: AsyncConnectionBase, timeout: float | None, stop_after: int | None):
        self._conn = conn
        self._link = AsyncLink(conn)
        self._iteration = self._link.start_notifies(timeout, stop_after)

    def __aiter__(self) -> AsyncNotifies:
        return self

    async def __anext__(self) -> Notify:
        conn = self._conn
        iteration = self._iteration
        try:
            # A checkpoint, also for a notification already received: before
            # taking one, so a cancellation here loses none.
            await conn.lock.checkpoint()
            while True:
                notify = iteration.pop()
                if notify is not None:
                    return notify
                if iteration.is_over():
                    raise StopAsyncIteration
                async with conn.lock:
                    wait = iteration.start_wait(conn)
                if wait is not None:
                    with wait:
                        # The plain waiter: no interruption policy, as no
                        # command of ours is in progress (another task's may be).
                        await self._link.wait_plain(wait.gen(), timeout=wait.timeout)
        except BaseException:
            iteration.close()
            raise
