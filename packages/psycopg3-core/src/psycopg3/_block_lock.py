"""The connection's lock: commands one at a time, and blocks owned by one task.

Must not: import a concurrency framework or wait on anything but the locks
the adapter hands in. An adapter builds its ``lock`` from its framework's
lock class and a function naming the running thread or task:
``ConnectionLock(threading.Lock, threading.get_ident)``,
``AsyncConnectionLock(trio.Lock, trio.lowlevel.current_task)``.

The rules, written once here for every adapter:

1. Every command holds the *operation* lock while it runs, as a plain lock
   would: libpq sees one command at a time.
2. A ``transaction()`` or ``pipeline()`` block owns the connection for the
   thread or task that entered it, from its entering (``claim()``) until the
   outermost open block ends (``settle()``). Its commands, nested blocks,
   cursors and COPY run as usual.
3. Any other thread or task that takes the lock meanwhile waits until the
   blocks end, then runs outside them: its autocommit insert is never mixed
   into (and rolled back with) someone else's transaction. A task that the
   owner starts while its blocks are open is no other task: it joins them
   (its commands run in the blocks, one at a time with the owner's, and its
   own blocks nest as savepoints), else waiting for it inside the block
   would hang. ``claim()`` puts a token, new for each ownership, in the
   owner's context (a ``ContextVar``); asyncio and trio copy the spawning
   task's context into a new task, so the child holds the token, and one
   holding the lock's *current* token is the owner. A task started before
   the block, or by another task, holds no such token: it waits. A token
   left in a child's context after the ownership ended is stale, compared
   with nothing. Threads do not inherit contexts: a thread started inside a
   blocking block waits like any other (joining it inside the block hangs,
   as with any lock).
4. Waiting is done on a second lock of the adapter's class, the *gate*,
   which the owner holds for the life of its blocks; a waiter only takes it
   and lets it go at once, so the owner never waits long for it.
5. Leaving a block is refused to a thread or task that does not own it
   (``check_owner()``): waiting for ourselves would hang.
6. An async connection belongs to the event loop it was opened in (``home``:
   a function naming the running loop, None outside any): from another one
   every command is refused (``check_home()``), as the framework's locks and
   the fd's registration belong to that loop.
7. ``abandon()`` (the connection is closing) ends the ownership of blocks
   never left, so that the tasks waiting for them wake (and find the
   connection closed); async waiters wait on an event for this, when the
   adapter gives its event class, as a framework's lock can be released only
   by its owner. A blocking owner's ``settle()`` and another thread's
   ``abandon()`` may run at once: one of them ends the ownership, once (the
   async ones run in the loop's thread, with no await between check and end).
8. Every coroutine of the async API is a checkpoint, in trio's sense: the
   task may be cancelled there, and other tasks may run. Those that take the
   lock are one already on trio and anyio, whose locks are checkpoints (on
   asyncio, whose lock is not, they yield when they wait on the socket: a
   call with nothing to send, such as entering a pipeline, does not); the
   others await ``checkpoint()``, the adapter's hook, once per call, before
   they change anything (so a cancellation there leaves all as it was), or
   after closing for ``close()`` (closed even when cancelled, as trio's
   ``aclose()``). Entering a connection's or cursor's ``async with`` is no
   checkpoint, as with trio's resources: it never fails, so the block
   always closes what it holds. Leaving a cursor's or COPY's block by an
   exception adds no checkpoint of its own: a cancellation must not take
   that exception's place. Iterating over rows already received, and
   COPY's ``write_row()``, await ``checkpoint()`` at the first row then
   every ``CHECKPOINT_ROWS`` rows: other tasks run while a large result is
   consumed or written, at a cost lost in the cost of the rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from typing import Any, Generic, Protocol, TypeVar

from . import errors

__all__ = ["ConnectionLock", "AsyncConnectionLock", "CHECKPOINT_ROWS"]

#: Rows taken between two checkpoints when iterating over rows already
#: received (rule 8): about a millisecond of loading, so a 200,000-row loop
#: lets other tasks run 200 times, for one checkpoint (a few µs) per 1000 rows.
CHECKPOINT_ROWS = 1000


class _SyncLock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


_L = TypeVar("_L", bound=_SyncLock)


class _AsyncLock(Protocol):
    async def acquire(self) -> Any: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


class _AsyncEvent(Protocol):
    async def wait(self) -> Any: ...

    def set(self) -> Any: ...


async def _no_checkpoint() -> None:
    """The checkpoint of an adapter that gives none: such calls never yield."""


class _Token:
    """One ownership of a lock's blocks, held in the owner's context (rule 3)."""

    __slots__ = ()


#: The ownership tokens the running context holds, copied into the tasks it spawns.
_held_tokens: ContextVar[tuple[_Token, ...]] = ContextVar("psycopg3_block_owners", default=())


class _Ownership:
    """Who owns the connection's blocks; shared by the two lock classes."""

    _current: Callable[[], Hashable]

    def __init__(self, current: Callable[[], Hashable]):
        self._current = current
        #: The thread or task whose blocks are open, None if there are none.
        self.owner: Hashable | None = None
        self._token: _Token | None = None

    def _must_wait(self) -> bool:
        return self.owner is not None and not self.owns()

    def _holds_token(self) -> bool:
        token = self._token
        return token is not None and any(held is token for held in _held_tokens.get())

    def _take(self) -> None:
        self.owner = self._current()
        token = self._token = _Token()
        _held_tokens.set((*_held_tokens.get(), token))

    def _give_back(self) -> None:
        token, self._token = self._token, None
        self.owner = None
        held = _held_tokens.get()
        if any(t is token for t in held):
            _held_tokens.set(tuple(t for t in held if t is not token))

    def owns(self) -> bool:
        """Tell if the running thread or task owns the open blocks, or joined them (rule 3)."""
        owner = self.owner
        return owner is not None and (owner == self._current() or self._holds_token())

    def check_owner(self, action: str) -> None:
        """Raise ``ProgrammingError`` if another thread or task owns the open blocks."""
        if self._must_wait():
            raise errors.ProgrammingError(
                f"cannot {action} from this thread or task: the connection's transaction"
                " or pipeline blocks belong to the one that entered them; leave them there"
            )


class ConnectionLock(_Ownership, Generic[_L]):
    """The lock of a blocking connection: ``with conn.lock:`` (see the module's rules).

    :param new_lock: the lock class (``threading.Lock``, or an adapter's own
        with the same methods; ``operation`` is of that class).
    :param current: returns the identity of the running thread.
    """

    def __init__(self, new_lock: Callable[[], _L], current: Callable[[], Hashable]):
        super().__init__(current)
        self._new_lock = new_lock
        #: Held while a command runs (rule 1); ``close()`` takes it alone.
        self.operation = new_lock()
        self._gate = new_lock()
        # The owner's settle() and a closing thread's abandon() may run at
        # once: the ownership ends, and the gate is released, once (an extra
        # release would raise, or open the gate of the next owner's blocks).
        self._ending = new_lock()

    def after_fork_in_child(self) -> None:
        """Make the locks anew: a parent's thread may have held them at fork()."""
        self.owner = None
        self._token = None
        self.operation = self._new_lock()
        self._gate = self._new_lock()
        self._ending = self._new_lock()

    def __enter__(self) -> ConnectionLock[_L]:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.operation.release()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the operation lock, after another thread's blocks end (rule 3)."""
        while True:
            if not self.operation.acquire(blocking):
                return False
            if not self._must_wait():
                return True
            self.operation.release()
            if not blocking:
                return False
            self._gate.acquire()
            self._gate.release()

    def release(self) -> None:
        self.operation.release()

    def locked(self) -> bool:
        """Tell if a command runs or blocks are open: the connection is in use."""
        return self.owner is not None or self.operation.locked()

    def claim(self) -> None:
        """Make the running thread the owner, before a block's first command (rule 2).

        Call it holding the lock; ``settle()`` gives the ownership back.
        """
        if self.owns():
            return
        self._gate.acquire()
        self._take()

    def settle(self, blocks_open: bool) -> None:
        """Give the ownership back once no block is open (rule 2)."""
        if blocks_open:
            return
        self._ending.acquire()
        try:
            if self.owns():
                self._give_back()
                self._gate.release()
        finally:
            self._ending.release()

    def abandon(self) -> None:
        """End the ownership of blocks never left: the connection is closing (rule 7)."""
        self._ending.acquire()
        try:
            if self.owner is not None:
                self._give_back()
                self._gate.release()
        finally:
            self._ending.release()


class AsyncConnectionLock(_Ownership):
    """The lock of an async connection: ``async with conn.lock:`` (see the module's rules).

    :param new_lock: the framework's lock class (``asyncio.Lock``, ``trio.Lock``).
    :param current: returns the identity of the running task.
    :param new_event: the framework's event class (``asyncio.Event``,
        ``trio.Event``): tasks waiting for a block to end wait on one, which
        ``abandon()`` can set from any task (rule 7). Without it they wait on
        a lock, and only the block's end wakes them.
    :param home: returns the running event loop (or trio token), None
        outside any; the connection belongs to the one running when the
        lock is built (rule 6). Without it no loop is checked.
    :param checkpoint: a coroutine function of no argument that lets other
        tasks run and raises a pending cancellation (``trio.lowlevel.checkpoint``,
        ``anyio.lowlevel.checkpoint``, ``lambda: asyncio.sleep(0)``); it
        becomes ``checkpoint`` (rule 8). Without it that does nothing.
    """

    def __init__(
        self,
        new_lock: Callable[[], _AsyncLock],
        current: Callable[[], Hashable],
        *,
        new_event: Callable[[], _AsyncEvent] | None = None,
        home: Callable[[], object | None] | None = None,
        checkpoint: Callable[[], Awaitable[Any]] | None = None,
    ):
        super().__init__(current)
        #: ``await lock.checkpoint()``: a cancel point and a schedule point (rule 8).
        self.checkpoint = checkpoint if checkpoint is not None else _no_checkpoint
        self._new_lock = new_lock
        #: Held while a command runs (rule 1).
        self.operation = new_lock()
        self._gate = new_lock()
        self._new_event = new_event
        self._ended: _AsyncEvent | None = None
        self._running_loop = home
        #: The event loop (or trio token) the connection belongs to (rule 6).
        self.home = home() if home is not None else None
        # Run when the operation lock is next released (``run_when_free()``).
        self._when_free: Callable[[], None] | None = None

    def in_home(self) -> bool:
        """Tell if the running event loop is the connection's own (rule 6)."""
        running_loop = self._running_loop
        if running_loop is None:
            return True
        running = running_loop()
        if self.home is None and running is not None:
            self.home = running  # (built outside any loop: the first one takes it)
        return running is self.home

    def check_home(self) -> None:
        """Raise ``InterfaceError`` if run outside the connection's event loop (rule 6)."""
        if not self.in_home():
            raise errors.InterfaceError(
                "this connection belongs to the event loop it was opened in (another"
                " asyncio loop, trio run or thread is running now): open one connection"
                " per event loop"
            )

    def check_owner(self, action: str) -> None:
        """Raise if run outside the connection's loop, or if another task owns the blocks."""
        self.check_home()
        super().check_owner(action)

    def after_fork_in_child(self) -> None:
        """Make the locks anew: a parent's task may have held them at fork()."""
        self.owner = None
        self._token = None
        self.operation = self._new_lock()
        self._gate = self._new_lock()
        self._ended = None
        self._when_free = None
        # The child runs its own loop, if any: a use must meet the fork
        # error of the disowned PGconn, not the loop check (rule 6).
        self.home = None

    async def __aenter__(self) -> AsyncConnectionLock:
        self.check_home()
        while True:
            await self.operation.acquire()
            if not self._must_wait():
                return self
            self.operation.release()
            await self._wait_for_blocks()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.release_operation()

    def release_operation(self) -> None:
        """Release the operation lock, then run what waited for it (``run_when_free()``)."""
        self.operation.release()
        action, self._when_free = self._when_free, None
        if action is not None:
            action()  # (no await since the release: before any other task runs)

    def run_when_free(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if no command runs, else when the running one releases the lock.

        Call it from the connection's loop (rule 6): a plain function with no
        await, it cannot race with the release.
        """
        if self.operation.locked():
            self._when_free = action
        else:
            action()

    async def _wait_for_blocks(self) -> None:
        ended = self._ended
        if ended is not None:
            await ended.wait()
        else:
            await self._gate.acquire()
            self._gate.release()

    def locked(self) -> bool:
        """Tell if a command runs or blocks are open: the connection is in use."""
        return self.owner is not None or self.operation.locked()

    async def claim(self) -> None:
        """Make the running task the owner, before a block's first command (rule 2).

        Call it holding the lock; ``settle()``, in the same task, gives it back.
        """
        if self.owns():
            return
        if self._new_event is not None:
            self._ended = self._new_event()
        else:
            await self._gate.acquire()
        self._take()

    def settle(self, blocks_open: bool) -> None:
        """Give the ownership back once no block is open (rule 2)."""
        if not blocks_open and self.owns():
            self._end_ownership()

    def abandon(self) -> None:
        """End the ownership of blocks never left: the connection is closing (rule 7).

        The tasks waiting for the blocks wake, when the adapter gave its
        event class (a lock can be released only by its owner).
        """
        if self.owner is not None and (self._ended is not None or self.owns()):
            self._end_ownership()

    def _end_ownership(self) -> None:
        self._give_back()
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.set()
        else:
            self._gate.release()
