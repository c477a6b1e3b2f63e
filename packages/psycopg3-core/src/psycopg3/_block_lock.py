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
   into (and rolled back with) someone else's transaction.
4. Waiting is done on a second lock of the adapter's class, the *gate*,
   which the owner holds for the life of its blocks; a waiter only takes it
   and lets it go at once, so the owner never waits long for it.
5. Leaving a block is refused to a thread or task that does not own it
   (``check_owner()``): waiting for ourselves would hang.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from . import errors

__all__ = ["ConnectionLock", "AsyncConnectionLock"]


class _SyncLock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


_L = TypeVar("_L", bound=_SyncLock)


class _AsyncLock(Protocol):
    async def acquire(self) -> Any: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


class _Ownership:
    """Who owns the connection's blocks; shared by the two lock classes."""

    _current: Callable[[], Hashable]

    def __init__(self, current: Callable[[], Hashable]):
        self._current = current
        #: The thread or task whose blocks are open, None if there are none.
        self.owner: Hashable | None = None

    def _must_wait(self) -> bool:
        owner = self.owner
        return owner is not None and owner != self._current()

    def owns(self) -> bool:
        """Tell if the running thread or task owns the open blocks."""
        owner = self.owner
        return owner is not None and owner == self._current()

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

    def after_fork_in_child(self) -> None:
        """Make the locks anew: a parent's thread may have held them at fork()."""
        self.owner = None
        self.operation = self._new_lock()
        self._gate = self._new_lock()

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
        self.owner = self._current()

    def settle(self, blocks_open: bool) -> None:
        """Give the ownership back once no block is open (rule 2)."""
        if not blocks_open and self.owns():
            self.owner = None
            self._gate.release()


class AsyncConnectionLock(_Ownership):
    """The lock of an async connection: ``async with conn.lock:`` (see the module's rules).

    :param new_lock: the framework's lock class (``asyncio.Lock``, ``trio.Lock``).
    :param current: returns the identity of the running task.
    """

    def __init__(self, new_lock: Callable[[], _AsyncLock], current: Callable[[], Hashable]):
        super().__init__(current)
        self._new_lock = new_lock
        #: Held while a command runs (rule 1).
        self.operation = new_lock()
        self._gate = new_lock()

    def after_fork_in_child(self) -> None:
        """Make the locks anew: a parent's task may have held them at fork()."""
        self.owner = None
        self.operation = self._new_lock()
        self._gate = self._new_lock()

    async def __aenter__(self) -> AsyncConnectionLock:
        while True:
            await self.operation.acquire()
            if not self._must_wait():
                return self
            self.operation.release()
            await self._gate.acquire()
            self._gate.release()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.operation.release()

    def locked(self) -> bool:
        """Tell if a command runs or blocks are open: the connection is in use."""
        return self.owner is not None or self.operation.locked()

    async def claim(self) -> None:
        """Make the running task the owner, before a block's first command (rule 2).

        Call it holding the lock; ``settle()``, in the same task, gives it back.
        """
        if self.owns():
            return
        await self._gate.acquire()
        self.owner = self._current()

    def settle(self, blocks_open: bool) -> None:
        """Give the ownership back once no block is open (rule 2)."""
        if not blocks_open and self.owns():
            self.owner = None
            self._gate.release()
