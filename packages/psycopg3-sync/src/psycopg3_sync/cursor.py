"""The blocking ``Cursor`` and ``ServerCursor``: the core's blocking cursors, typed.

Every method is ``psycopg3.abc.BlockingCursorBase``'s (or
``BlockingServerCursorBase``'s); what is here only tells type checkers that
they return this package's classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from psycopg3.abc import BlockingCursorBase, BlockingServerCursorBase, Params, Query, Row
from psycopg3.rows import RowFactory

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Cursor", "ServerCursor"]

R = TypeVar("R")


class Cursor(BlockingCursorBase[Row]):
    """A DB-API cursor for blocking code."""

    if TYPE_CHECKING:  # typing only: the base's methods run
        _conn: Connection[Any]

        @property
        def connection(self) -> Connection[Any]: ...

        @overload
        def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool | None = None,
            prepare: bool | None = None,
        ) -> Cursor[Row]: ...

        @overload
        def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool | None = None,
            row_factory: RowFactory[R],
            prepare: bool | None = None,
        ) -> Cursor[R]: ...

        def execute(self, *args: Any, **kwargs: Any) -> Any: ...


class ServerCursor(BlockingServerCursorBase[Row]):
    """A server-side (named) cursor for blocking code: rows stay on the server.

    Rows come in ``FETCH`` batches: ``fetchmany(n)`` asks for ``n``,
    iteration for ``itersize`` at a time.
    """

    if TYPE_CHECKING:  # typing only: the base's methods run
        _conn: Connection[Any]

        @property
        def connection(self) -> Connection[Any]: ...
