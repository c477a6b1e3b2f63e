"""close() and cancel() from another thread, at the moment the PGconn is finished.

Issue 14, races found by reading the code (ownership class). A blocking
connection's ``close()`` and ``cancel()`` are callable from any thread: they
run without the connection's lock, while the thread holding it may finish
the PGconn (its own ``close()``, or a connection found lost). Each read of
the PGconn they make must see it open, or finished, never freed between
the check and the use:

* ``close()`` shuts the socket down (to wake a thread blocked on it): never
  on a finished PGconn, whose fd number may already be another socket's;
* ``cancel()`` makes a cancel handle from the PGconn: on a finished one it
  does nothing (a failure is logged, not raised, as documented).

The window is opened on purpose: a subclass pauses the chosen thread when
it next reads ``closed``, which both read just before touching the PGconn;
the main thread finishes the PGconn meanwhile, then lets it go on. Events
only, no sleeps.

An async connection closes in its event loop's thread, where nothing runs
between the check and the use; but its ``cancel()`` may be awaited in
another thread's event loop (it does not use the connection's socket), and
there it meets the same race.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import trio

import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from fix_flavours import recording_thread

#: A bound for a hang only (the test fails instead of stalling the suite).
HANG = 30


class _PausingMixin:
    """Makes a connection's ``closed`` pause one thread once, right after reading it."""

    pause_thread: threading.Thread | None = None
    paused = threading.Event()
    resume = threading.Event()

    def pause_next_check(self, thread: threading.Thread) -> None:
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.pause_thread = thread

    @property
    def closed(self) -> bool:
        value: bool = super().closed  # type: ignore[misc]
        if self.pause_thread is threading.current_thread():
            self.pause_thread = None
            self.paused.set()
            assert self.resume.wait(HANG)
        return value


class _PausingConnection(_PausingMixin, psycopg3_sync.Connection[Any]):
    pass


class _PausingAsyncioConnection(_PausingMixin, psycopg3_asyncio.Connection[Any]):
    pass


class _PausingTrioConnection(_PausingMixin, psycopg3_trio.Connection[Any]):
    pass


def test_close_from_a_thread_while_the_lock_holder_finishes(dsn: str) -> None:
    conn = _PausingConnection.connect(dsn)
    raised: list[BaseException] = []
    conn.lock.acquire()  # as a command in progress in this thread does
    closer = recording_thread(conn.close, raised)
    conn.pause_next_check(closer)
    closer.start()
    try:
        # The closer found the lock taken and the connection open: it is
        # about to shut the socket down.
        assert conn.paused.wait(HANG)
        conn.lock.release()
        conn.close()  # the lock is free now: the PGconn is finished here
        assert conn.pgconn.pgconn_ptr is None
        # Its fd number is free: the next socket opened likely gets it.
        with psycopg3_sync.connect(dsn) as other:
            conn.resume.set()
            closer.join(HANG)
            assert not closer.is_alive()
            assert raised == []
            assert conn.closed
            # The closer did not shut down a socket that is no longer its own.
            assert other.execute("select 42").fetchone() == (42,)
    finally:
        conn.resume.set()
        closer.join(HANG)
        conn.close()


def test_cancel_from_a_thread_while_the_connection_closes(dsn: str) -> None:
    conn = _PausingConnection.connect(dsn)
    raised: list[BaseException] = []
    canceller = recording_thread(conn.cancel, raised)
    conn.pause_next_check(canceller)
    canceller.start()
    try:
        # The canceller found the connection open: it is about to make the
        # cancel handle from the PGconn.
        assert conn.paused.wait(HANG)
        conn.close()
        assert conn.pgconn.pgconn_ptr is None
        conn.resume.set()
        canceller.join(HANG)
        assert not canceller.is_alive()
        assert raised == []  # nothing to cancel any more: nothing raised
        assert conn.closed
    finally:
        conn.resume.set()
        canceller.join(HANG)
        conn.close()


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_cancel_from_another_event_loop_while_the_connection_closes(
    dsn: str, framework: str
) -> None:
    raised: list[BaseException] = []

    async def home() -> None:
        conn: Any
        if framework == "asyncio":
            conn = await _PausingAsyncioConnection.connect(dsn)
            canceller = recording_thread(lambda: asyncio.run(conn.cancel()), raised)
        else:
            conn = await _PausingTrioConnection.connect(dsn)
            canceller = recording_thread(lambda: trio.run(conn.cancel), raised)
        conn.pause_next_check(canceller)
        canceller.start()
        try:
            # (Blocking this loop is harmless: the canceller runs its own.)
            assert conn.paused.wait(HANG)
            await conn.close()
            assert conn.pgconn.pgconn_ptr is None
            conn.resume.set()
            canceller.join(HANG)
            assert not canceller.is_alive()
            assert raised == []
        finally:
            conn.resume.set()
            canceller.join(HANG)
            await conn.close()

    if framework == "asyncio":
        asyncio.run(home())
    else:
        trio.run(home)
