"""``wait_asyncio``: the waiter for asyncio, on the loop's reader/writer callbacks.

Whatever happens (result, error, task cancellation) the file descriptor is
left with no reader or writer registered, and cancellation propagates.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_asyncio"]

T = TypeVar("T")

# (reading, writing) for each request: IntFlag arithmetic is slow on a path
# that every query takes.
_DIRECTIONS = {Wait.R: (True, False), Wait.W: (False, True), Wait.RW: (True, True)}


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
            try:
                ready = await future
            finally:
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
