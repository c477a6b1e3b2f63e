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
        @classmethod
        async def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: RowFactory[Any] | None = None,
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> Connection[Any]: ...

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


@overload
def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: RowFactory[R], **kwargs: Any
) -> ConnectContext[Connection[R]]: ...


@overload
def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: None = None, **kwargs: Any
) -> ConnectContext[Connection]: ...


def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
) -> ConnectContext[Connection[Any]]:
    """Connect to a PostgreSQL server from trio.

    Use as ``conn = await trio_connect(dsn)`` or
    ``async with trio_connect(dsn) as conn:``.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters overriding those in ``conninfo``;
        ``row_factory`` (``psycopg3.rows``) sets the shape of the rows of the
        connection's cursors; ``prepare_threshold``
        sets when queries are prepared (None: never, as PgBouncer in
        transaction mode needs).
    :raises OperationalError: if the connection cannot be made.
    """
    return ConnectContext(lambda: Connection.connect(conninfo, autocommit=autocommit, **kwargs))


connect = trio_connect
