"""Threads' primitives for the core: the waiter ``wait_select`` and ``THREADS``.

It uses ``poll()`` where the platform has it, so file descriptors above
``FD_SETSIZE`` work, and ``select()`` elsewhere. Ctrl-C interrupts the wait
(KeyboardInterrupt propagates, after the generator is closed).
"""

from __future__ import annotations

import math
import select
import threading
from collections.abc import Hashable
from typing import TypeVar

from psycopg3.abc import BlockingFramework, PlainLock
from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_select", "ThreadsFramework", "THREADS"]

T = TypeVar("T")

_HAS_POLL = hasattr(select, "poll")

# Flag arithmetic on IntFlag members costs microseconds; a wait is on the
# path of every query, so the translations are tables built once.
if _HAS_POLL:
    _POLL_EVENTS = {
        Wait.R: select.POLLIN,
        Wait.W: select.POLLOUT,
        Wait.RW: select.POLLIN | select.POLLOUT,
    }
    # An error or a hang-up wakes either direction, so that libpq gets to
    # see (and report) it.
    _READ_EVENTS = select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL
    _WRITE_EVENTS = select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL

    def _ready_for(wait: Wait, events: int) -> Ready:
        ready = 0
        if wait & Wait.R and events & _READ_EVENTS:
            ready |= Ready.R
        if wait & Wait.W and events & _WRITE_EVENTS:
            ready |= Ready.W
        return Ready(ready)

    _EVENT_MASK = 0x3F
    _READY_TABLE = {
        wait: [_ready_for(wait, events) for events in range(_EVENT_MASK + 1)]
        for wait in (Wait.R, Wait.W, Wait.RW)
    }


def wait_select(gen: PQGen[T], *, timeout: float | None = None) -> T:
    """Drive ``gen`` to its end, blocking the thread while it waits.

    :param gen: a generator following the contract of ``psycopg3.waiting``.
    :param timeout: seconds after which a wait is answered ``Ready.NONE``.
    :return: the generator's return value.
    """
    try:
        fileno, wait = next(gen)
        if not _HAS_POLL:
            return _wait_with_select(gen, fileno, wait, timeout)
        # In whole milliseconds, rounded up: a timeout under 1 ms rounded
        # down would answer at once, and a caller near its deadline would spin.
        timeout_ms = -1 if timeout is None else max(math.ceil(timeout * 1000.0), 0)
        poller = select.poll()
        registered = -1
        while True:
            if fileno != registered:
                if registered >= 0:
                    poller.unregister(registered)
                registered = fileno
            poller.register(fileno, _POLL_EVENTS[wait])
            events = poller.poll(timeout_ms)
            ready = _READY_TABLE[wait][events[0][1] & _EVENT_MASK] if events else Ready.NONE
            fileno, wait = gen.send(ready)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]
    except BaseException:
        gen.close()
        raise


def _wait_with_select(gen: PQGen[T], fileno: int, wait: Wait, timeout: float | None) -> T:
    try:
        while True:
            readers = [fileno] if wait & Wait.R else []
            writers = [fileno] if wait & Wait.W else []
            rlist, wlist, xlist = select.select(readers, writers, [fileno], timeout)
            ready = Ready.NONE
            if rlist or (xlist and wait & Wait.R):
                ready |= Ready.R
            if wlist or (xlist and wait & Wait.W):
                ready |= Ready.W
            fileno, wait = gen.send(ready)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]


class ThreadsFramework(BlockingFramework):
    """What the core needs of threads (see ``psycopg3.abc.BlockingFramework``).

    libpq resolves host names itself: blocking the calling thread is what a
    blocking connect does anyway.
    """

    name = "threads"

    def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        return wait_select(gen, timeout=timeout)

    def new_lock(self) -> PlainLock:
        return threading.Lock()

    def current_task(self) -> Hashable:
        return threading.get_ident()


#: Threads, as ``Connection.framework``.
THREADS = ThreadsFramework()
