"""trio's primitives for the core: the waiter ``wait_trio`` and ``TRIO``.

``wait_trio`` waits on ``trio.lowlevel.wait_readable/writable``.

Cancellation (a cancel scope, a nursery failing, Ctrl-C) propagates as trio
delivers it; the generator is closed first.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import trio

from psycopg3.abc import AsyncEvent, AsyncFramework, AsyncLock
from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_trio", "TrioFramework", "TRIO"]

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


class TrioFramework(AsyncFramework):
    """What the core needs of trio (see ``psycopg3.abc.AsyncFramework``)."""

    name = "trio"

    async def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        return await wait_trio(gen, timeout=timeout)

    def wake_waiters(self, fileno: int) -> None:
        trio.lowlevel.notify_closing(fileno)

    async def resolve(self, host: str, port: str) -> list[str]:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def shield(self, work: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        # A cancellation received meanwhile is delivered at the next
        # checkpoint: trio's cancellation is level-triggered.
        with trio.CancelScope(shield=True) as scope:
            if timeout is not None:
                scope.deadline = trio.current_time() + timeout
            return await work()
        raise TimeoutError(f"not done within {timeout} s")

    def cancelled_error(self) -> type[BaseException]:
        return trio.Cancelled

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def new_lock(self) -> AsyncLock:
        return trio.Lock()

    def new_event(self) -> AsyncEvent:
        return trio.Event()

    def current_task(self) -> Hashable:
        return trio.lowlevel.current_task()

    def home(self) -> Hashable | None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None

    def call_in_home(self, home: Hashable, action: Callable[[], None]) -> bool:
        assert isinstance(home, trio.lowlevel.TrioToken)
        try:
            # Its waits are registered in that run's I/O manager: only it may touch them.
            home.run_sync_soon(action)
        except trio.RunFinishedError:
            return False
        return True


#: The trio framework, as ``Connection.framework``.
TRIO = TrioFramework()
