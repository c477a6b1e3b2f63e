"""The asyncio ``Connection`` and ``asyncio_connect()``: thin drivers of the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from psycopg3.abc import DEFAULT_PREPARE_THRESHOLD, AsyncConnectionBase, ConnectContext
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import ASYNCIO

if TYPE_CHECKING:
    from psycopg3.abc import Params, Query

__all__ = ["Connection", "asyncio_connect", "connect"]

R = TypeVar("R")


class Connection(AsyncConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for asyncio.

    Safe to share between tasks: its operations are serialised by an
    ``asyncio.Lock``, and a ``transaction()`` or ``pipeline()`` block owns it
    for the task that entered it until the block ends (others wait).
    ``async with`` commits on success (rolls back on error) and closes at the
    end of the block. A task cancelled during a command sends a cancel request
    and drains the connection, shielded and bounded, before the cancellation
    goes on.
    """

    framework = ASYNCIO
    cursor_class = Cursor
    server_cursor_class = ServerCursor

    if TYPE_CHECKING:
        # The core's methods, typed with this flavour's classes.
        # (The base's connect() returns the connection's own type: these
        # overloads refine its row type, which the base cannot express.)
        @overload  # type: ignore[override]
        @classmethod
        def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: RowFactory[R],
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> ConnectContext[Connection[R]]: ...

        @overload
        @classmethod
        def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: None = None,
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> ConnectContext[Connection]: ...

        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any: ...

        @overload
        def cursor(
            self, *, binary: bool = False, row_factory: None = None
        ) -> Cursor[ConnectionRow]: ...

        @overload
        def cursor(self, *, binary: bool = False, row_factory: RowFactory[R]) -> Cursor[R]: ...

        @overload
        def cursor(
            self,
            name: str,
            *,
            binary: bool = False,
            row_factory: None = None,
            scrollable: bool | None = None,
            withhold: bool = False,
        ) -> ServerCursor[ConnectionRow]: ...

        @overload
        def cursor(
            self,
            name: str,
            *,
            binary: bool = False,
            row_factory: RowFactory[R],
            scrollable: bool | None = None,
            withhold: bool = False,
        ) -> ServerCursor[R]: ...

        def cursor(self, *args: Any, **kwargs: Any) -> Any: ...

        async def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool = False,
            prepare: bool | None = None,
        ) -> Cursor[ConnectionRow]: ...


asyncio_connect = Connection.connect


connect = asyncio_connect
