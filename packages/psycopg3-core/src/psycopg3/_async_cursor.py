"""The async cursor methods shared by every async adapter.

``async with lock`` and ``await`` are plain Python: this class works with any
framework's lock and waiter, through its connection's ``lock`` and
``_wait()``.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from ._cursor_base import BaseCursor, Params, Query, Row

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase

T = TypeVar("T")


class AsyncCursorBase(BaseCursor):
    """The async cursor API: the DB-API cursor with ``await`` where it waits."""

    _conn: AsyncConnectionBase

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def execute(
        self, query: Query, params: Params | None = None, *, binary: bool | None = None
    ) -> AsyncCursorBase:
        """Execute a query, with ``%s`` or ``%(name)s`` placeholders for ``params``."""
        async with self._conn.lock:
            await self._conn._wait(self._execute_gen(query, params, binary=binary))
        return self

    async def fetchone(self) -> Row | None:
        """Return the next row of the current result, or None."""
        return self._fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        """Return up to ``size`` (default ``arraysize``) further rows."""
        return self._fetchmany(size)

    async def fetchall(self) -> list[Row]:
        """Return the remaining rows of the current result."""
        return self._fetchall()

    async def __aiter__(self) -> AsyncIterator[Row]:
        while (row := self._fetchone()) is not None:
            yield row

    async def close(self) -> None:
        """Close the cursor; its results are released."""
        self._close()
