"""The blocks of async connections: ``AsyncTransaction``, ``AsyncPipeline``, ``AsyncCopy``.

Each one drives its core base's generators (``BaseTransaction``,
``BasePipeline``, ``BaseCopy``) under the connection's ``lock`` through its
link's ``wait()`` (``psycopg3._link``), as an adapter method does; the rules
of each block are in its base's module. ``_AsyncBlock`` writes once how a
block that owns the connection (rule 2 of ``psycopg3._block_lock``) is entered
and left: leaving runs through the link's ``wait_shielded()``, so that the
final COMMIT, ROLLBACK or sync completes (within a deadline) even when the
block is left by a cancellation and the task is cancelled again. Layer:
drivers, beside ``_async_connection``.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ._adapt.base import Buffer
from ._block_lock import CHECKPOINT_ROWS
from ._copy import BaseCopy
from ._link import AsyncLink, Link
from ._pipeline import BasePipeline
from ._transaction import BaseTransaction

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
    from .waiting import PQGen

__all__ = ["AsyncTransaction", "AsyncPipeline", "AsyncCopy"]

T = TypeVar("T")
X = TypeVar("X")
BlockT = TypeVar("BlockT", bound="_AsyncBlock[Any]")


class _AsyncBlock(Generic[X]):
    """Enter and leave a block that owns the connection for its task until it ends.

    Entering claims the ownership under the lock and runs ``_enter_locked()``;
    if that does not finish, ``_undo_enter()`` runs (outside the lock) and the
    ownership is given back. Leaving runs ``_exit_gen()``, shielded, and gives
    the ownership back once no block is open, however either ended.
    """

    __slots__ = ()

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _link_class: ClassVar[type[Link]] = AsyncLink
    #: What leaving is called in the error raised to another task.
    _leaving: ClassVar[str]

    if TYPE_CHECKING:  # the block's own, or its base's

        async def _enter_locked(self) -> None: ...
        async def _undo_enter(self) -> None: ...
        def _exit_gen(self, exc: BaseException | None) -> PQGen[X]: ...
        def _check_exit_after_failure(self) -> None: ...

    async def __aenter__(self: BlockT) -> BlockT:
        conn, link = self._conn, self._link
        lock = conn.lock
        entered = False
        try:
            async with lock:
                await lock.claim()
                await self._enter_locked()
                entered = True
        finally:
            if not entered:
                try:
                    await self._undo_enter()
                finally:
                    # Even when a shielded undo is left by a new cancellation
                    # (it goes on in its own task): a claim never given back
                    # would make every other task wait for ever.
                    lock.settle(link.in_block())
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> X:
        conn, link = self._conn, self._link
        conn.lock.check_owner(self._leaving)
        try:
            return await link.wait_shielded(self._exit_gen(exc))
        except BaseException:
            self._check_exit_after_failure()
            raise
        finally:
            conn.lock.settle(link.in_block())


class AsyncTransaction(_AsyncBlock[bool], BaseTransaction):
    """A transaction block for async connections: ``async with conn.transaction() as tx:``.

    Undoing an entering that did not finish runs shielded too.
    """

    __slots__ = ()

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _leaving = "leave a transaction block"

    async def _enter_locked(self) -> None:
        await self._link.wait(self._enter_gen())

    async def _undo_enter(self) -> None:
        sent = self._sent
        if sent is not None:
            try:
                await self._link.wait_shielded(self._undo_enter_gen())
            finally:
                self._check_undone(sent)


class AsyncPipeline(_AsyncBlock[None], BasePipeline):
    """A pipeline block for async connections: ``async with conn.pipeline() as p:``."""

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _leaving = "leave a pipeline block"

    async def _enter_locked(self) -> None:
        self._enter()

    async def _undo_enter(self) -> None:
        pass  # (entering sends nothing)

    async def sync(self) -> None:
        """Send a sync point, wait for every result so far, raise the first unreported error."""
        async with self._conn.lock:
            await self._link.wait(self._sync_gen())


class AsyncCopy(BaseCopy):
    """A COPY block for async connections: ``async with cur.copy("COPY …") as copy:``.

    The methods of `Copy`, awaited; ``async for`` gives raw blocks and
    ``async for row in copy.rows()`` rows.
    """

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _rows_to_checkpoint = 1  # (write_row(), rule 8)

    async def __aenter__(self) -> AsyncCopy:
        conn, link = self._conn, self._link
        await conn.lock.__aenter__()
        try:
            await link.wait(self._start_gen())
        except BaseException:
            await conn.lock.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        conn, link = self._conn, self._link
        try:
            with self._ending(exc):
                if exc is None and self._state != "active":
                    await conn.lock.checkpoint()  # (nothing left to end: no wait)
                await link.wait(self._exit_gen(exc))
        finally:
            await conn.lock.__aexit__(None, None, None)

    async def write(self, buffer: Buffer | str) -> None:
        """Send raw COPY data (in the COPY's format); ``str`` is encoded first."""
        await self._conn.lock.checkpoint()
        await self._link.wait(self._write_gen(buffer))

    async def write_row(self, values: Sequence[Any]) -> None:
        """Send a row, its values adapted like query parameters (see `Copy.write_row()`)."""
        self._rows_to_checkpoint -= 1
        if not self._rows_to_checkpoint:
            self._rows_to_checkpoint = CHECKPOINT_ROWS
            await self._conn.lock.checkpoint()
        if self._add_row(values):
            await self._link.wait(self._flush_gen())

    async def read(self) -> bytes:
        """Return the next block of raw COPY data; ``b""`` at the end."""
        await self._conn.lock.checkpoint()
        return await self._next_block()

    async def _next_block(self) -> bytes:
        return await self._link.wait(self._read_gen())

    async def read_row(self) -> tuple[Any, ...] | None:
        """Return the next row, or None at the end (see `Copy.read_row()`)."""
        await self._conn.lock.checkpoint()
        return await self._next_row()

    async def _next_row(self) -> tuple[Any, ...] | None:
        row = self._parsed_row()
        return row if row is not None else await self._link.wait(self._read_row_gen())

    def rows(self) -> AsyncIterator[tuple[Any, ...]]:
        """Iterate over the rows (see `read_row()`): ``async for row in copy.rows()``."""
        return _AsyncReader(self._next_row, self._conn.lock.checkpoint, CHECKPOINT_ROWS)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _AsyncReader(self._next_block, self._conn.lock.checkpoint, 1)


class _AsyncReader(AsyncIterator[T]):
    """Iterate over what ``read`` returns until None or ``b""``.

    ``checkpoint`` is awaited before the first item, then every ``every``
    items. An iterator object rather than an async generator: one left
    before its end (``break``) holds nothing to finalise, where an async
    generator would be reported by trio as garbage collected unexhausted.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[T | None]],
        checkpoint: Callable[[], Awaitable[Any]],
        every: int,
    ):
        self._read = read
        self._checkpoint = checkpoint
        self._every = every
        self._countdown = 1

    async def __anext__(self) -> T:
        self._countdown -= 1
        if not self._countdown:
            self._countdown = self._every
            await self._checkpoint()
        item = await self._read()
        if item is None or item == b"":
            raise StopAsyncIteration
        return item
