"""``wait_trio``: the waiter for trio, on ``trio.lowlevel.wait_readable/writable``.

Cancellation (a cancel scope, a nursery failing, Ctrl-C) propagates as trio
delivers it; the generator is closed first.
"""

from __future__ import annotations

import math
from typing import TypeVar

import trio

from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_trio"]

T = TypeVar("T")


async def wait_trio(gen: PQGen[T], *, timeout: float | None = None) -> T:
    """Drive ``gen`` to its end without blocking trio's run loop.

    :param gen: a generator following the contract of ``psycopg3.waiting``.
    :param timeout: seconds after which a wait is answered ``Ready.NONE``.
    :return: the generator's return value.
    """
    wait_readable = trio.lowlevel.wait_readable
    try:
        fileno, wait = next(gen)
        while True:
            if timeout is None and wait == Wait.R:
                # The hot path: one wait per query round trip.
                await wait_readable(fileno)
                ready = Ready.R
            else:
                with trio.move_on_after(math.inf if timeout is None else timeout):
                    ready = Ready.NONE
                    ready = await _wait_one(fileno, wait)
            fileno, wait = gen.send(ready)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]
    except BaseException:
        gen.close()
        raise


async def _wait_one(fileno: int, wait: Wait) -> Ready:
    if wait == Wait.R:
        await trio.lowlevel.wait_readable(fileno)
        return Ready.R
    if wait == Wait.W:
        await trio.lowlevel.wait_writable(fileno)
        return Ready.W
    # Either direction: wait for both, the first one ready stops the other.
    ready = Ready.NONE
    closed = False
    async with trio.open_nursery() as nursery:

        async def wait_for(direction: Ready) -> None:
            nonlocal ready, closed
            try:
                if direction == Ready.R:
                    await trio.lowlevel.wait_readable(fileno)
                else:
                    await trio.lowlevel.wait_writable(fileno)
            except trio.ClosedResourceError:
                # notify_closing() wakes both waits: one plain error for the
                # caller, not an ExceptionGroup of two.
                closed = True
            ready |= direction
            nursery.cancel_scope.cancel()

        nursery.start_soon(wait_for, Ready.R)
        nursery.start_soon(wait_for, Ready.W)
    if closed:
        raise trio.ClosedResourceError("the file descriptor was closed while waited on")
    return ready
