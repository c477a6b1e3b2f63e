"""The trio ``Connection`` and ``trio_connect()``: thin drivers of the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import trio

from psycopg3.abc import DEFAULT_PREPARE_THRESHOLD, AsyncConnectionBase, ConnectContext
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import TRIO

if TYPE_CHECKING:
    from psycopg3.abc import Params, Query

__all__ = ["Connection", "trio_connect", "connect"]

R = TypeVar("R")


class Connection(AsyncConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for trio.

    Safe to share between tasks: its operations are serialised by a
    ``trio.Lock``, and a ``transaction()`` or ``pipeline()`` block owns it
    for the task that entered it until the block ends (others wait).
    ``async with`` commits on success (rolls back on error) and closes at the
    end of the block. A cancel scope expiring during a command sends a cancel
    request and drains the connection, shielded and bounded, before the
    cancellation goes on.
    """

    framework = TRIO
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

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        # Commit or roll back even when the block is left by a cancellation
        # (level-triggered: the first wait would be cancelled again).
        with trio.CancelScope(shield=True):
            await super().__aexit__(exc_type, exc, tb)


trio_connect = Connection.connect


connect = trio_connect
