"""``wait_select``: the waiter for blocking code.

It uses ``poll()`` where the platform has it, so file descriptors above
``FD_SETSIZE`` work, and ``select()`` elsewhere. Ctrl-C interrupts the wait
(KeyboardInterrupt propagates, after the generator is closed).
"""

from __future__ import annotations

import select
from typing import TypeVar

from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_select"]

T = TypeVar("T")

_HAS_POLL = hasattr(select, "poll")
# Wait flags to poll() events; an error or hang-up wakes either direction so
# that libpq gets to see (and report) it.
_POLL_EVENTS = (
    {Wait.R: select.POLLIN, Wait.W: select.POLLOUT, Wait.RW: select.POLLIN | select.POLLOUT}
    if _HAS_POLL
    else {}
)
_POLL_READ = (select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL) if _HAS_POLL else 0
_POLL_WRITE = (
    (select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL) if _HAS_POLL else 0
)


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
        timeout_ms = -1 if timeout is None else max(int(timeout * 1000.0), 0)
        poller = select.poll()
        registered = -1
        while True:
            if fileno != registered:
                if registered >= 0:
                    poller.unregister(registered)
                registered = fileno
            poller.register(fileno, _POLL_EVENTS[wait])
            ready = Ready.NONE
            for _, events in poller.poll(timeout_ms):
                if events & _POLL_READ and wait & Wait.R:
                    ready |= Ready.R
                if events & _POLL_WRITE and wait & Wait.W:
                    ready |= Ready.W
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
