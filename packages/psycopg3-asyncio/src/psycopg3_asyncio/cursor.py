"""The asyncio ``Cursor`` and ``ServerCursor``: the core's async cursors, for asyncio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from psycopg3.abc import AsyncCursorBase, AsyncServerCursorBase, Params, Query, Row

if TYPE_CHECKING:
    from psycopg3.rows import RowFactory

    from .connection import Connection

R = TypeVar("R")

__all__ = ["Cursor", "ServerCursor"]


class Cursor(AsyncCursorBase[Row]):
    """A cursor for asyncio: the DB-API cursor with ``await`` where it waits."""

    if TYPE_CHECKING:  # typing only: the base's methods run
        _conn: Connection[Any]

        @property
        def connection(self) -> Connection[Any]: ...

        @overload
        async def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool | None = None,
            prepare: bool | None = None,
        ) -> Cursor[Row]: ...

        @overload
        async def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool | None = None,
            row_factory: RowFactory[R],
            prepare: bool | None = None,
        ) -> Cursor[R]: ...

        async def execute(self, *args: Any, **kwargs: Any) -> Cursor[Any]: ...


class ServerCursor(AsyncServerCursorBase[Row]):
    """A server-side (named) cursor for asyncio: rows stay on the server until fetched."""

    if TYPE_CHECKING:  # typing only: the base's methods run
        _conn: Connection[Any]

        @property
        def connection(self) -> Connection[Any]: ...
