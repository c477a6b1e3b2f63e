"""A listener waits on the socket without the lock in the blocking flavours too.

The same loop as the async flavours' (``NotifyIteration.start_wait()``),
driven by ``BlockingConnectionBase``: an idle listener sleeps for its whole
timeout, and a command on the listening connection starts at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fix_wait import wait_until
from psycopg3.waiting import PQGen


@pytest.mark.parametrize("flavour", ["sync", "gevent"], indirect=True)
def test_blocking_listener_sleeps_and_lets_queries_in(flavour: Any, dsn: str) -> None:
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
        # Time is the subject: an idle second, during which the old sliced
        # loop woke up 20 times; a sleeping listener waits once.
        assert list(conn.notifies(timeout=1.0)) == []
        assert 1 <= len(waits) <= 2
        assert waits[0] is not None and waits[0] > 0.5
        # While it waits, the lock is free: a command starts at once.
        waits.clear()
        received: list[Any] = []
        spawn, join, until = _runner(flavour.name)
        listener = spawn(lambda: received.extend(conn.notifies(stop_after=1)))
        until(lambda: len(waits) == 1, "the listener to wait")
        assert not conn.lock.operation.locked()
        assert conn.execute("select 41 + 1").fetchone() == (42,)
        conn.execute("notify lockless_blocking, 'hello'")
        join(listener)
        assert [n.payload for n in received] == ["hello"]
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
