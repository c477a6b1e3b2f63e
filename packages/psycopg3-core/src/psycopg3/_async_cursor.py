"""The async cursor methods shared by every async adapter.

``async with lock`` and ``await`` are plain Python: this class works with any
framework's lock and waiter, through its connection's ``lock`` and its
link's ``wait()`` (``psycopg3._link``). A call that does not wait (a fetch of rows already received,
``close()``) awaits ``lock.checkpoint()`` instead, and ``async for`` does
every ``CHECKPOINT_ROWS`` rows (see rule 8 of ``psycopg3._block_lock``).

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._async_blocks import AsyncCopy
from ._block_lock import CHECKPOINT_ROWS
from ._cursor_base import BaseCursor, Params, Query
from ._link import AsyncLink
from ._server_cursor import AsyncCursorFace
from .rows import Row, RowFactory

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase

T = TypeVar("T")
R = TypeVar("R")


class AsyncCursorBase(AsyncCursorFace, BaseCursor[Row]):
    """The async cursor API: the DB-API cursor with ``await`` where it waits."""

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _link_class = AsyncLink

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            await self.close()
        else:
            self._close()  # (no checkpoint: a cancellation would take exc's place)

    @overload
    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        prepare: bool | None = None,
    ) -> AsyncCursorBase[Row]: ...

    @overload
    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        row_factory: RowFactory[R],
        prepare: bool | None = None,
    ) -> AsyncCursorBase[R]: ...

    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        row_factory: RowFactory[Any] | None = None,
        prepare: bool | None = None,
    ) -> AsyncCursorBase[Any]:
        """Execute a query, with ``%s`` or ``%(name)s`` placeholders for ``params``.

        The options are those of ``BlockingCursorBase.execute()``.
        """
        gen = self._execute_gen(
            query, params, binary=binary, row_factory=row_factory, prepare=prepare
        )
        async with self._conn.lock:
            await self._link.wait(gen)
        return self

    async def executemany(
        self, query: Query, params_seq: Iterable[Params], *, returning: bool = False
    ) -> None:
        """Execute ``query`` once per parameter set, sent without waiting for each reply.

        :param returning: keep each statement's result (``INSERT … RETURNING``),
            one per ``nextset()``.
        """
        gen = self._executemany_gen(query, params_seq, returning=returning)
        async with self._conn.lock:
            await self._link.wait(gen)

    def copy(self, statement: Query, params: Params | None = None) -> AsyncCopy:
        """Return a COPY block: ``async with cur.copy("COPY t FROM STDIN") as copy:``.

        :param statement: a ``COPY … FROM STDIN`` or ``COPY … TO STDOUT``
            statement; ``%s`` placeholders are filled with ``params`` as SQL
            literals (COPY takes no bind parameters).
        """
        return AsyncCopy(self, statement, params)

    async def callproc(self, name: str, params: Params | None = None) -> Params | None:
        """Call a database function; its result is fetched like a query's.

        :return: ``params``, unchanged (PostgreSQL has no output parameters).
        """
        async with self._conn.lock:
            await self._link.wait(self._callproc_gen(name, params))
        return params

    async def _fetch_pending(self) -> None:
        # A command sent in a pipeline block: wait for its result (one
        # attribute check on the fetch path outside pipelines).
        async with self._conn.lock:
            await self._link.wait(self._pending_gen())

    async def _before_fetch(self) -> None:
        # Wait for a pipelined command's result, else just checkpoint: before
        # taking a row, so a cancellation here loses none.
        if self._pending is not None:
            await self._fetch_pending()
        else:
            await self._conn.lock.checkpoint()

    async def fetchone(self) -> Row | None:
        """Return the next row of the current result, or None."""
        await self._before_fetch()
        return self._fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        """Return up to ``size`` (default ``arraysize``) further rows."""
        await self._before_fetch()
        return self._fetchmany(size)

    async def fetchall(self) -> list[Row]:
        """Return the remaining rows of the current result."""
        await self._before_fetch()
        return self._fetchall()

    async def scroll(self, value: int, mode: str = "relative") -> None:
        """Move in the current result by ``value`` rows, or to row ``value`` if absolute.

        :raises IndexError: if that leaves the result.
        """
        await self._before_fetch()
        self._scroll(value, mode)

    async def __aiter__(self) -> AsyncIterator[Row]:
        await self._before_fetch()
        checkpoint = self._conn.lock.checkpoint
        countdown = CHECKPOINT_ROWS
        while (row := self._fetchone()) is not None:
            yield row
            countdown -= 1
            if not countdown:
                countdown = CHECKPOINT_ROWS
                await checkpoint()  # (before the next row is taken)

    async def close(self) -> None:
        """Close the cursor; its results are released."""
        self._close()
        await self._conn.lock.checkpoint()  # (closed even if cancelled here)
