"""The trio ``Cursor``: the core's async cursor, bound to trio's connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg3.abc import AsyncCursorBase

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Cursor"]


class Cursor(AsyncCursorBase):
    """A cursor for trio: the DB-API cursor with ``await`` where it waits."""

    _conn: Connection

    @property
    def connection(self) -> Connection:
        """The connection this cursor belongs to."""
        return self._conn
