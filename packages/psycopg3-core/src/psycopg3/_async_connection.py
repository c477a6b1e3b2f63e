"""The async connection methods shared by every async adapter.

``async with lock`` and ``await`` are plain Python: these classes work with
any framework's lock and waiter. An adapter subclasses them, creates its
lock, and provides ``_wait()`` (its waiter plus the interruption policy of
``BaseConnection``), ``close()``, ``cancel()`` and ``connect()``.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._connection_base import BaseConnection
from ._cursor_base import Params, Query
from ._dns import Resolver, resolve_conninfo
from .conninfo import conninfo_to_dict, make_conninfo
from .pq import PGconn
from .waiting import PQGen

if TYPE_CHECKING:
    from ._async_cursor import AsyncCursorBase

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound="AsyncConnectionBase")


class AsyncLock(Protocol):
    """What we need of a framework's lock: ``async with lock``."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *args: Any) -> Any: ...


class AsyncConnectionBase(BaseConnection, ABC):
    """The async connection API, minus what only a framework can do."""

    lock: AsyncLock

    @classmethod
    async def _async_connect_gen(
        cls, conninfo: str, kwargs: dict[str, Any], resolve: Resolver
    ) -> tuple[PQGen[PGconn], float | None]:
        """Like ``_connect_gen()``, with host names resolved by ``resolve`` first.

        libpq's own lookup would block the event loop: the framework's
        resolver does it instead (see ``psycopg3._dns``).
        """
        params = conninfo_to_dict(make_conninfo(conninfo, **kwargs))
        return cls._connect_gen(await resolve_conninfo(params, resolve))

    @abstractmethod
    async def _wait(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` with the framework's waiter, recovering from interruptions."""

    async def close(self) -> None:
        """Close the connection; closing twice does nothing."""
        self._close()

    @abstractmethod
    def cursor(self, *, binary: bool = False) -> AsyncCursorBase:
        """Return a new cursor on this connection."""

    async def __aenter__(self: ConnT) -> ConnT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            async with self.lock:
                await self._wait(self._exit_gen(exc))
        finally:
            await self.close()

    async def execute(
        self, query: Query, params: Params | None = None, *, binary: bool = False
    ) -> AsyncCursorBase:
        """Execute a query on a new cursor and return the cursor."""
        cur = self.cursor(binary=binary)
        await cur.execute(query, params)
        return cur

    async def commit(self) -> None:
        """Commit the current transaction."""
        async with self.lock:
            await self._wait(self._commit_gen())

    async def rollback(self) -> None:
        """Roll back the current transaction."""
        async with self.lock:
            await self._wait(self._rollback_gen())


class ConnectContext(Generic[ConnT]):
    """What an async ``connect()`` returns: awaitable, and an async context manager.

    ``conn = await connect(...)`` and ``async with connect(...) as conn:``
    both work; the second closes the connection at the end of the block.
    """

    def __init__(self, connect: Callable[[], Awaitable[ConnT]]):
        self._connect = connect
        self._conn: ConnT | None = None

    def __await__(self) -> Generator[Any, None, ConnT]:
        return self._connect().__await__()

    async def __aenter__(self) -> ConnT:
        self._conn = await self._connect()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)
