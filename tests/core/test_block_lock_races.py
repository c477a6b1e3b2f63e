"""The blocking connection lock: the owner settling while another thread abandons.

Issue 14, races found by reading the code. ``settle()`` (the owner leaves
its last block) and ``abandon()`` (``close()`` from another thread) both end
the ownership and release the gate the waiting threads wait on: run at the
same time, the gate must be released once, never twice (a second release
raises, or opens the gate of the next owner's blocks).

The window is opened on purpose, with no server: the lock is built with a
``current`` function that pauses the owner inside ``settle()``, right after
it found itself the owner, and with locks that tell when a thread has to
wait for one. Events only, no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from fix_flavours import recording_thread
from psycopg3.abc import ConnectionLock

#: A bound for a hang only (the test fails instead of stalling the suite).
HANG = 30


def _observed_locks(contended: threading.Event) -> Callable[[], _ObservedLock]:
    def new_lock() -> _ObservedLock:
        return _ObservedLock(contended)

    return new_lock


class _ObservedLock:
    """A ``threading.Lock`` that sets ``contended`` when a thread has to wait for it."""

    def __init__(self, contended: threading.Event):
        self._lock = threading.Lock()
        self._contended = contended

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        self._contended.set()
        return self._lock.acquire(True, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


class _PausingIdentity:
    """``threading.get_ident``, pausing a chosen thread once when it next asks."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.paused = threading.Event()
        self.resume = threading.Event()

    def __call__(self) -> Hashable:
        if self.thread is threading.current_thread():
            self.thread = None
            self.paused.set()
            assert self.resume.wait(HANG)
        return threading.get_ident()


def test_settle_and_abandon_at_once_release_the_gate_once() -> None:
    progress = threading.Event()  # the closer has finished, or waits for a lock
    current = _PausingIdentity()
    lock = ConnectionLock(_observed_locks(progress), current)
    claimed = threading.Event()
    raised: list[BaseException] = []

    def owner() -> None:
        with lock:
            lock.claim()
        claimed.set()
        with lock:
            current.thread = threading.current_thread()  # pause in settle()'s owns()
            lock.settle(False)

    def closer() -> None:
        try:
            lock.abandon()
        finally:
            progress.set()

    owner_thread = recording_thread(owner, raised)
    closer_thread = recording_thread(closer, raised)
    owner_thread.start()
    try:
        assert current.paused.wait(HANG)
        assert claimed.is_set()
        # The owner is settling, past its check: the connection closes now.
        closer_thread.start()
        assert progress.wait(HANG)
        current.resume.set()
        owner_thread.join(HANG)
        closer_thread.join(HANG)
        assert not owner_thread.is_alive() and not closer_thread.is_alive()
        assert raised == []
        assert lock.owner is None
        assert not lock.locked()
        # The gate works on: a new owner's blocks make another thread wait.
        with lock:
            lock.claim()
        other_got: list[bool] = []
        other = recording_thread(lambda: other_got.append(lock.acquire(blocking=False)), raised)
        other.start()
        other.join(HANG)
        assert other_got == [False]
        with lock:
            lock.settle(False)
        assert lock.owner is None and not lock.locked()
    finally:
        current.resume.set()
        owner_thread.join(HANG)
        if closer_thread.ident is not None:
            closer_thread.join(HANG)
