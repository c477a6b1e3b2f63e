"""The asyncio ``ConnectionPool``: the core's ``AsyncPoolBase`` on asyncio tasks.

What asyncio provides here: the loop's clock, an event whose wait can time
out without a task of its own, tasks tracked by the pool (``close()``
cancels and awaits every one of them), and shielding from cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from psycopg3.abc import AsyncPoolBase
from psycopg3.rows import ConnectionRow

from .connection import Connection

__all__ = ["ConnectionPool", "open_pool"]


class _Event:
    """A one-shot event; ``wait(timeout)`` is a future and a timer.

    ``asyncio.wait_for`` would cost a task per wait before Python 3.12, and
    could return a result while dropping a cancellation that came with it.
    """

    __slots__ = ("_is_set", "_futures")

    def __init__(self) -> None:
        self._is_set = False
        self._futures: list[asyncio.Future[bool]] = []

    def set(self) -> None:
        self._is_set = True
        for future in self._futures:
            if not future.done():
                future.set_result(True)

    async def wait(self, timeout: float | None) -> bool:
        if self._is_set:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, future)
        self._futures.append(future)
        try:
            return await future
        finally:
            self._futures.remove(future)
            if timer is not None:
                timer.cancel()


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


class ConnectionPool(AsyncPoolBase[Connection[ConnectionRow], _Event, ConnectionRow]):
    """A pool of asyncio ``Connection`` s shared by the tasks of a program.

    ``async with pool.connection() as conn:`` borrows one; ``async with
    pool:`` (or ``await pool.open()`` / ``await pool.close()``) bounds the
    pool's life and its tasks'. The parameters are ``AsyncPoolBase``'s.
    """

    connection_class = Connection
    open_hint = "call `await pool.open()` or use `async with pool:`"
    _tasks: set[asyncio.Task[None]] | None = None

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Start the pool's tasks, which open ``min_size`` connections.

        Opening an open pool does nothing.

        :param wait: return only once ``min_size`` connections are ready.
        :param timeout: how long to wait for them.
        :raises PoolClosed: if the pool was closed (it cannot be reopened).
        :raises PoolTimeout: if ``wait`` and they were not ready in time.
        """
        self.start_maintenance()
        if wait:
            await self.wait(timeout)

    async def __aenter__(self) -> ConnectionPool[ConnectionRow]:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def new_event(self) -> _Event:
        return _Event()

    async def wait_event(self, event: _Event, timeout: float | None) -> bool:
        return await event.wait(timeout)

    def spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._tasks is None:
            self._tasks = set()
        handle = asyncio.get_running_loop().create_task(task(), name=f"{self.name}-task")
        self._tasks.add(handle)
        handle.add_done_callback(self._tasks.discard)

    async def stop_background(self, timeout: float) -> None:
        if self._tasks:  # (their done callbacks, which discard them, run later)
            for task in self._tasks:
                task.cancel()
            await asyncio.wait(list(self._tasks), timeout=timeout)


#: ``async with open_pool(dsn, min_size=4) as pool:``: the same as ``ConnectionPool(...)``.
open_pool = ConnectionPool
