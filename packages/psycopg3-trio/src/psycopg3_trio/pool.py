"""The trio ``ConnectionPool``: the core's ``AsyncPoolBase`` in a nursery the user owns.

``async with open_pool(dsn) as pool:`` opens a nursery; the pool's
background tasks run in a nursery nested in it (so that closing the pool
cancels them and not the block), and leaving the block waits for them: no
task of the pool ever runs outside the block.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import trio

from psycopg3.abc import AsyncPoolBase
from psycopg3.errors import PoolClosed, ProgrammingError
from psycopg3.rows import ConnectionRow

from .connection import Connection

__all__ = ["ConnectionPool", "open_pool"]


class ConnectionPool(AsyncPoolBase[Connection[ConnectionRow], trio.Event, ConnectionRow]):
    """A pool of trio ``Connection`` s shared by the tasks of a block.

    Use it only as ``async with open_pool(dsn) as pool:`` (or ``async with
    ConnectionPool(dsn) as pool:``); ``async with pool.connection() as
    conn:`` borrows a connection. The parameters are ``AsyncPoolBase``'s.
    """

    connection_class = Connection
    open_hint = "use `async with open_pool(...) as pool:`"
    _stack: AsyncExitStack | None = None
    _nursery: trio.Nursery | None = None
    _stopped: trio.Event | None = None

    async def __aenter__(self) -> ConnectionPool[ConnectionRow]:
        if self._stack is not None:
            raise ProgrammingError(f"pool {self.name!r} is already open")
        stack = AsyncExitStack()
        outer = await stack.enter_async_context(trio.open_nursery())
        try:
            self._stopped = trio.Event()
            self._nursery = await outer.start(self._host)
            self.start_maintenance()
        except BaseException:
            outer.cancel_scope.cancel()
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.close()
        finally:
            stack, self._stack = self._stack, None
            if stack is not None:
                # The block's own exception is not passed to the nursery,
                # which would wrap it in an ExceptionGroup: it goes on as is.
                await stack.aclose()

    async def _host(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        # The nursery of the pool's tasks; close() cancels it.
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(nursery)
                await trio.sleep_forever()
        finally:
            assert self._stopped is not None
            self._stopped.set()

    def now(self) -> float:
        return trio.current_time()

    def new_event(self) -> trio.Event:
        return trio.Event()

    async def wait_event(self, event: trio.Event, timeout: float | None) -> bool:
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await event.wait()
            return True
        return False

    def spawn(self, task: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None:
            raise PoolClosed(f"pool {self.name!r} is not open: {self.open_hint}")
        self._nursery.start_soon(task)

    async def stop_background(self, timeout: float) -> None:
        if self._nursery is None or self._stopped is None:
            return
        self._nursery.cancel_scope.cancel()
        # Shielded: closing from a cancelled block still waits for the tasks.
        with trio.move_on_after(timeout) as scope:
            scope.shield = True
            await self._stopped.wait()


#: ``async with open_pool(dsn, min_size=4) as pool:``: the same as ``ConnectionPool(...)``.
open_pool = ConnectionPool
