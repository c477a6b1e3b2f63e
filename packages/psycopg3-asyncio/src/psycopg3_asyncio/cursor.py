"""The asyncio ``Cursor`` and ``ServerCursor``: the core's async cursors, for asyncio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg3.abc import AsyncCursorBase, AsyncServerCursorBase, Row

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Cursor", "ServerCursor"]


class Cursor(AsyncCursorBase[Row]):
    """A cursor for asyncio: the DB-API cursor with ``await`` where it waits."""

    _conn: Connection[Any]

    @property
    def connection(self) -> Connection[Any]:
        """The connection this cursor belongs to."""
        return self._conn


class ServerCursor(AsyncServerCursorBase[Row]):
    """A server-side (named) cursor for asyncio: rows stay on the server until fetched."""

    _conn: Connection[Any]

    @property
    def connection(self) -> Connection[Any]:
        """The connection this cursor belongs to."""
        return self._conn
