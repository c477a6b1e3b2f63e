"""asyncio's primitives for the core: the waiter ``wait_asyncio`` and ``ASYNCIO``.

``wait_asyncio`` waits on the loop's reader/writer callbacks.

Whatever happens (result, error, task cancellation) the file descriptor is
left with no reader or writer registered, and cancellation propagates.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from psycopg3.abc import AsyncEvent, AsyncFramework, AsyncLock
from psycopg3.errors import OperationalError
from psycopg3.waiting import PQGen, Ready, Wait

__all__ = ["wait_asyncio", "AsyncioFramework", "ASYNCIO"]

T = TypeVar("T")

# (reading, writing) for each request: IntFlag arithmetic is slow on a path
# that every query takes.
_DIRECTIONS = {Wait.R: (True, False), Wait.W: (False, True), Wait.RW: (True, True)}

# The waits in progress, by file descriptor: only so that wake_waiters()
# can wake them. An entry lives exactly as long as its wait.
_waiting: dict[int, set[_Wait]] = {}


class _Wait:
    """One wait in progress: its future and what it registered with its loop."""

    __slots__ = ("future", "loop", "reading", "writing")

    def __init__(self, future: asyncio.Future[Ready], loop: asyncio.AbstractEventLoop, wait: Wait):
        self.future = future
        self.loop = loop
        self.reading, self.writing = _DIRECTIONS[wait]

    def unregister(self, fileno: int) -> None:
        """Remove the reader and writer of this wait; only once."""
        if self.reading:
            self.loop.remove_reader(fileno)
        if self.writing:
            self.loop.remove_writer(fileno)
        self.reading = self.writing = False


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

            waiting = _Wait(future, loop, wait)
            if waiting.reading:
                loop.add_reader(fileno, wake, Ready.R)
            if waiting.writing:
                loop.add_writer(fileno, wake, Ready.W)
            timer = None if timeout is None else loop.call_later(timeout, wake, Ready.NONE)
            waits = _waiting.setdefault(fileno, set())
            waits.add(waiting)
            try:
                ready = await future
            finally:
                waits.discard(waiting)
                if not waits and _waiting.get(fileno) is waits:
                    del _waiting[fileno]
                # Already done by wake_waiters() if the fd closed meanwhile:
                # the number may belong to another socket by now.
                waiting.unregister(fileno)
                if timer is not None:
                    timer.cancel()
            fileno, wait = gen.send(ready)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]
    except BaseException:
        gen.close()
        raise


class AsyncioFramework(AsyncFramework):
    """What the core needs of asyncio (see ``psycopg3.abc.AsyncFramework``)."""

    name = "asyncio"

    async def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        return await wait_asyncio(gen, timeout=timeout)

    def wake_waiters(self, fileno: int) -> None:
        """Wake every wait on ``fileno`` with an error: the fd is about to close.

        The wait's reader and writer are removed now, while the fd is still
        open: left for the waiting task to remove when it next runs, they would
        stay in the loop's selector after the fd closed, and the next socket
        given the same number (a reconnection) would find them there (a
        ``FileNotFoundError`` from the selector, or its reader removed by the
        old wait). asyncio would otherwise also leave the wait pending forever
        (trio and anyio have ``notify_closing()`` for the same reason).
        """
        for waiting in list(_waiting.get(fileno, ())):
            waiting.unregister(fileno)
            if not waiting.future.done():
                waiting.future.set_exception(
                    OperationalError("the connection was closed while waiting for the server")
                )

    async def resolve(self, host: str, port: str) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def shield(self, work: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        task = asyncio.ensure_future(_bounded(work, timeout))
        cancelled: asyncio.CancelledError | None = None
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as ex:
                cancelled = ex
        if cancelled is not None:
            if not task.cancelled():
                task.exception()  # (retrieved: it is superseded by the cancellation)
            # The same exception: it carries the message of whoever cancelled
            # (anyio's cancel scopes recognise theirs by it).
            raise cancelled
        return task.result()

    def cancelled_error(self) -> type[BaseException]:
        return asyncio.CancelledError

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def new_lock(self) -> AsyncLock:
        return asyncio.Lock()

    def new_event(self) -> AsyncEvent:
        return asyncio.Event()

    def current_task(self) -> Hashable:
        return asyncio.current_task()

    def home(self) -> Hashable | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def call_in_home(self, home: Hashable, action: Callable[[], None]) -> bool:
        assert isinstance(home, asyncio.AbstractEventLoop)
        if not home.is_running():
            return False
        # Its waits are registered in that loop's selector: only its thread may touch them.
        home.call_soon_threadsafe(action)
        return True


async def _bounded(work: Callable[[], Awaitable[T]], timeout: float | None) -> T:
    if timeout is None:
        return await work()
    try:
        return await asyncio.wait_for(work(), timeout)
    except asyncio.TimeoutError as ex:  # (not the built-in one before Python 3.11)
        raise TimeoutError(f"not done within {timeout} s") from ex


#: The asyncio framework, as ``Connection.framework``.
ASYNCIO = AsyncioFramework()
