"""``wait_asyncio``: the waiter for asyncio, on the loop's reader/writer callbacks.

Whatever happens (result, error, task cancellation) the file descriptor is
left with no reader or writer registered, and cancellation propagates.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from psycopg3.errors import OperationalError
from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_asyncio", "notify_closing"]

T = TypeVar("T")

# (reading, writing) for each request: IntFlag arithmetic is slow on a path
# that every query takes.
_DIRECTIONS = {Wait.R: (True, False), Wait.W: (False, True), Wait.RW: (True, True)}

# The waits in progress, by file descriptor: only so that notify_closing()
# can wake them. An entry lives exactly as long as its wait.
_waiting: dict[int, set[asyncio.Future[Ready]]] = {}


def notify_closing(fileno: int) -> None:
    """Wake every wait on ``fileno`` with an error: the fd is about to close.

    asyncio would otherwise leave such a wait pending forever, its reader
    silently dropped by the kernel along with the file descriptor (trio and
    anyio have the same function for the same reason).
    """
    for future in _waiting.get(fileno, ()):
        if not future.done():
            future.set_exception(
                OperationalError("the connection was closed while waiting for the server")
            )


async def wait_asyncio(gen: PQGen[T], *, timeout: float | None = None) -> T:
    """Drive ``gen`` to its end without blocking the event loop.

    :param gen: a generator following the contract of ``psycopg3.waiting``.
    :param timeout: seconds after which a wait is answered ``Ready.NONE``.
    :return: the generator's return value.
    """
    loop = asyncio.get_running_loop()
    try:
        fileno, wait = next(gen)
        while True:
            future: asyncio.Future[Ready] = loop.create_future()

            def wake(ready: Ready, future: asyncio.Future[Ready] = future) -> None:
                if not future.done():
                    future.set_result(ready)

            reading, writing = _DIRECTIONS[wait]
            if reading:
                loop.add_reader(fileno, wake, Ready.R)
            if writing:
                loop.add_writer(fileno, wake, Ready.W)
            timer = None if timeout is None else loop.call_later(timeout, wake, Ready.NONE)
            waits = _waiting.setdefault(fileno, set())
            waits.add(future)
            try:
                ready = await future
            finally:
                waits.discard(future)
                if not waits:
                    _waiting.pop(fileno, None)
                if reading:
                    loop.remove_reader(fileno)
                if writing:
                    loop.remove_writer(fileno)
                if timer is not None:
                    timer.cancel()
            fileno, wait = gen.send(ready)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]
    except BaseException:
        gen.close()
        raise
