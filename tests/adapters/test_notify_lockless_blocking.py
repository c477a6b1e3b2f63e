"""A listener waits on the socket without the lock in the blocking flavours too.

The same loop as the async flavours' (``NotifyIteration.start_wait()``),
driven by ``BlockingConnectionBase``: a command on the listening connection
starts at once, an idle listener does not wake, ``close()`` from another
thread wakes it. A thread blocked in ``poll()`` is not woken when another
thread reads the socket, so the listener also waits on a wake-up pipe of
its own, written to by whoever queues a notification for it: no slices, and
no lost wake-up.

The listener's waits are watched through the connection's
``_wait_for_notifies`` (the framework's ``wait_any_readable``), and the
lock's acquisitions through a counting stand-in for ``lock.operation``: the
assertions count what happened, they do not time it.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Sequence
from typing import Any

import pytest

import psycopg3
from fix_flavours import load_doc_gevent_adapter
from fix_wait import wait_until
from notifying import fd_is_open
from psycopg3_sync.waiting import THREADS

BLOCKING = pytest.mark.parametrize("flavour", ["sync", "gevent"], indirect=True)


class CountingLock:
    """Stands in for ``lock.operation``: who asked for it, and whether it was held then."""

    def __init__(self, lock: Any, current: Any):
        self._lock = lock
        self._current = current
        #: (thread or greenlet, held by another when asked), one per acquisition.
        self.asked: list[tuple[object, bool]] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.asked.append((self._current(), self._lock.locked()))
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    def run_when_free(self, action: Any) -> None:
        self._lock.run_when_free(action)

    def by(self, task: object) -> list[bool]:
        """Whether the lock was held, at each acquisition by ``task``."""
        return [held for asker, held in self.asked if asker == task]


class Watch:
    """The waits of a listening blocking connection: how many, on which fds, how long."""

    def __init__(self, conn: Any):
        self.started = 0
        self.ended = 0
        #: The fds and the timeout of each wait.
        self.filenos: list[tuple[int, ...]] = []
        self.timeouts: list[float | None] = []
        #: Whether every fd of the wait was still open once it ended.
        self.open_at_end: list[bool] = []
        self.lock = CountingLock(conn.lock.operation, conn.framework.current_task)
        conn.lock.operation = self.lock
        waiter = conn._wait_for_notifies

        def watching(filenos: Sequence[int], timeout: float | None) -> bool:
            self.filenos.append(tuple(filenos))
            self.timeouts.append(timeout)
            self.started += 1
            try:
                return bool(waiter(filenos, timeout))
            finally:
                self.ended += 1
                self.open_at_end.append(all(fd_is_open(fd) for fd in filenos))

        conn._wait_for_notifies = watching

    def waiting(self) -> int:
        """How many listeners are inside a wait now (and so not holding the lock)."""
        return self.started - self.ended


def _pipes_open() -> set[int]:
    """The inodes of the pipes this process has open (Linux: /proc/self/fd)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("pipe:"):
                found.add(os.stat(f"/proc/self/fd/{name}").st_ino)
        except OSError:
            pass  # the fd of the listdir itself, or one closed meanwhile
    return found


@pytest.fixture
def listening(flavour: Any, dsn: str) -> Any:
    conn = flavour._connect(dsn, autocommit=True)
    try:
        conn.execute("listen lockless_blocking")
        yield conn
    finally:
        conn.close()


@BLOCKING
def test_idle_blocking_listener_does_not_wake(listening: Any) -> None:
    watch = Watch(listening)
    pipes_before = _pipes_open()
    # Time is the subject: an idle second, in which a listener waking in
    # 50 ms slices took the lock 20 times. Here it reads once, then waits
    # once until the deadline.
    assert list(listening.notifies(timeout=1.0)) == []
    assert len(watch.lock.asked) <= 2, watch.lock.asked
    assert watch.started <= 2, watch.started
    assert watch.timeouts[0] is not None and watch.timeouts[0] > 0.5
    # A wait that timed out, unwoken, closed its wake-up pipe too.
    assert _pipes_open() <= pipes_before


@BLOCKING
def test_a_notification_queued_before_the_wait_wakes_it(listening: Any) -> None:
    # The lost wake-up, step by step: the wait is registered under the
    # lock, and another thread's command reads a notification before the
    # listener is in poll(). The socket has nothing left to read; the
    # wake-up pipe has.
    conn = listening
    iteration = conn._start_notifies(None, None)
    try:
        with conn.lock:
            wait = iteration.start_wait(conn, wakeable=True)
        assert wait is not None
        with wait:
            conn.execute("notify lockless_blocking, 'meanwhile'")
            assert conn.framework.wait_any_readable(wait.filenos, timeout=30) is True
            wait.ended(True)
        assert iteration.pop() == psycopg3.Notify(
            "lockless_blocking", "meanwhile", conn.info.backend_pid
        )
    finally:
        iteration.close()


@BLOCKING
def test_blocking_listener_lets_queries_in(flavour: Any, listening: Any) -> None:
    # Not an async test: the listener runs in a thread (sync) or a greenlet
    # (gevent) of its own, as a user's would.
    conn = listening
    watch = Watch(conn)
    received: list[Any] = []
    spawn, join, until = _runner(flavour.name)
    listener = spawn(lambda: received.extend(conn.notifies(stop_after=1)))
    until(lambda: watch.waiting() == 1, "the listener to wait")
    # It waits on a duplicate of the socket and on its wake-up pipe, not on
    # the socket's own number.
    assert conn.pgconn.socket not in watch.filenos[0] and len(watch.filenos[0]) == 2
    # While it waits, the lock is free: a command starts at once.
    assert conn.execute("select 41 + 1").fetchone() == (42,)
    assert watch.lock.by(conn.framework.current_task()) == [False]
    # This command reads the notification from the socket itself (it is
    # in its results): the listener, woken through its pipe, gets it from
    # the queue.
    conn.execute("notify lockless_blocking, 'hello'")
    join(listener)
    assert [n.payload for n in received] == ["hello"]
    # Each wait is for as long as the iteration allows: no slices.
    assert watch.timeouts == [None] * watch.started


@BLOCKING
def test_close_from_another_thread_wakes_the_blocking_listener(
    flavour: Any, listening: Any
) -> None:
    conn = listening
    watch = Watch(conn)
    errors: list[BaseException] = []
    pipes_before = _pipes_open()

    def listen() -> None:
        try:
            for _ in conn.notifies():
                pytest.fail("nothing was sent")
        except psycopg3.OperationalError as ex:
            errors.append(ex)

    spawn, join, until = _runner(flavour.name)
    listener = spawn(listen)
    until(lambda: watch.waiting() == 1, "the listener to wait")
    conn.close()
    join(listener)
    assert len(errors) == 1 and "closed while waiting" in str(errors[0])
    # One wait, woken by the close (it had no timeout to end it).
    assert watch.started == watch.ended == 1
    # The fds waited on were still open when the wait ended: no other file
    # could have taken their numbers while the wait was made on them...
    assert watch.open_at_end == [True]
    # ...and they were closed after: the socket's duplicate with the
    # connection, the wake-up pipe (both its ends) with the wait.
    assert conn._notify._watch_fd == -1
    assert _pipes_open() <= pipes_before


@BLOCKING
def test_each_waiting_listener_is_woken(flavour: Any, listening: Any) -> None:
    # Two listeners wait; one command reads two notifications and queues
    # them: each listener is woken (a wake-up taken by one of them must not
    # leave the other asleep), and each yields one.
    conn = listening
    watch = Watch(conn)
    received: list[list[str]] = [[], []]
    spawn, join, until = _runner(flavour.name)
    listeners = [
        spawn(lambda got=got: got.extend(n.payload for n in conn.notifies(stop_after=1)))
        for got in received
    ]
    until(lambda: watch.waiting() == 2, "both listeners to wait")
    conn.execute(
        "select pg_notify('lockless_blocking', 'one'), pg_notify('lockless_blocking', 'two')"
    )
    for listener in listeners:
        join(listener)
    assert sorted(received) == [["one"], ["two"]]


@pytest.mark.parametrize("gathered", [True, False], ids=["epoll", "poll"])
@pytest.mark.parametrize("framework", ["threads", "gevent"])
def test_wait_any_readable(framework: str, gathered: bool, monkeypatch: Any) -> None:
    # The framework's primitive the listener waits with: several fds, a
    # timeout, a hang-up counted as readable. Gathered in an epoll fd for
    # the framework's waiter, or without epoll (gevent's monkey patching
    # removes it), in poll().
    if not gathered:
        monkeypatch.delattr(select, "epoll", raising=False)
    elif not hasattr(select, "epoll"):
        pytest.skip("no epoll here")  # the other case is the only one
    wait = THREADS if framework == "threads" else load_doc_gevent_adapter().Connection.framework
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with a, b, c, d:
        filenos = [a.fileno(), c.fileno()]
        assert wait.wait_any_readable(filenos, timeout=0) is False
        assert wait.wait_any_readable(filenos, timeout=0.001) is False
        d.send(b"x")
        assert wait.wait_any_readable(filenos, timeout=None) is True
        c.recv(1)
        assert wait.wait_any_readable(filenos, timeout=0) is False
        b.shutdown(socket.SHUT_WR)
        assert wait.wait_any_readable(filenos, timeout=None) is True


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


@BLOCKING
def test_notification_read_by_another_threads_copy_reaches_the_listener(
    flavour: Any, dsn: str
) -> None:
    # The same, through a COPY: its end reads the notification (sent at its
    # commit) with its last results, outside the paths that deliver a
    # command's notifications; the listener, whose poll() saw nothing, gets
    # it all the same.
    spawn, join, _ = _runner(flavour.name)
    statement = "copy (select pg_notify('lost_copy', 'x')) to stdout"
    for round in range(30):
        conn = flavour._connect(dsn, autocommit=True)
        try:
            conn.execute("listen lost_copy")
            received: list[Any] = []
            listener = spawn(
                lambda conn=conn, got=received: got.extend(conn.notifies(stop_after=1))
            )
            with conn.cursor() as cur, cur.copy(statement) as copy:
                assert [bytes(data) for data in copy] == [b"\n"]
            join(listener)
            assert len(received) == 1, f"round {round}"
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
