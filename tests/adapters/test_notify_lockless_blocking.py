"""A listener waits on the socket without the lock in the blocking flavours too.

The same loop as the async flavours' (``NotifyIteration.start_wait()``),
driven by ``BlockingConnectionBase``: a command on the listening connection
starts at once. Unlike the async flavours' it waits in slices: a thread
blocked in poll() is not woken when another thread reads the socket.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fix_wait import wait_until
from psycopg3._blocking_connection import NOTIFY_SLICE
from psycopg3.waiting import PQGen


@pytest.mark.parametrize("flavour", ["sync", "gevent"], indirect=True)
def test_blocking_listener_lets_queries_in(flavour: Any, dsn: str) -> None:
    # Not an async test: the listener runs in a thread (sync) or a greenlet
    # (gevent) of its own, as a user's would.
    conn = flavour._connect(dsn, autocommit=True)
    try:
        conn.execute("listen lockless_blocking")
        waits: list[float | None] = []
        plain = conn._wait_plain

        def counting(gen: PQGen[Any], *, timeout: float | None = None) -> Any:
            waits.append(timeout)
            return plain(gen, timeout=timeout)

        conn._wait_plain = counting
        received: list[Any] = []
        spawn, join, until = _runner(flavour.name)
        listener = spawn(lambda: received.extend(conn.notifies(stop_after=1)))
        until(lambda: len(waits) >= 1, "the listener to wait")
        # While it waits, the lock is free: a command starts at once.
        assert not conn.lock.operation.locked()
        assert conn.execute("select 41 + 1").fetchone() == (42,)
        # This command reads the notification from the socket itself (it is
        # in its results): the listener gets it from the queue.
        conn.execute("notify lockless_blocking, 'hello'")
        join(listener)
        assert [n.payload for n in received] == ["hello"]
        # Each wait is a slice: a thread blocked in poll() is not woken when
        # another thread reads the data (see _iterate_notifies()).
        assert all(timeout is not None and timeout <= NOTIFY_SLICE for timeout in waits)
    finally:
        conn.close()


@pytest.mark.parametrize("flavour", ["sync"], indirect=True)
def test_notification_read_by_another_thread_reaches_the_listener(flavour: Any, dsn: str) -> None:
    # A lost wake-up found by the model test: the listener sleeps in poll()
    # while another thread's command reads the notification off the socket.
    for round in range(30):
        conn = flavour._connect(dsn, autocommit=True)
        try:
            conn.execute("listen lost_wakeup")
            received = threading.Event()

            def listen(conn: Any = conn, received: threading.Event = received) -> None:
                for _ in conn.notifies(stop_after=1):
                    received.set()

            listener = threading.Thread(target=listen)
            listener.start()
            conn.execute(f"notify lost_wakeup, '{round}'")
            listener.join(30)
            assert not listener.is_alive() and received.is_set(), f"round {round}"
        finally:
            conn.close()


def _runner(name: str) -> tuple[Any, Any, Any]:
    """How the flavour runs a listener beside the test, and waits for a condition."""
    if name == "gevent":
        import gevent

        def until(condition: Any, what: str) -> None:
            # The hub must run for the listener's greenlet to: yield to it.
            with gevent.Timeout(50, AssertionError(f"still waiting for {what}")):
                while not condition():
                    gevent.sleep(0.001)

        return gevent.spawn, lambda greenlet: greenlet.join(30), until

    def spawn(action: Any) -> Any:
        thread = threading.Thread(target=action)
        thread.start()
        return thread

    return spawn, lambda thread: thread.join(30), wait_until
