"""The blocking ``Cursor``: a thin driver of the core's ``BaseCursor``."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from psycopg3.abc import BaseCursor, Params, Query, Row

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Cursor"]


class Cursor(BaseCursor):
    """A DB-API cursor for blocking code."""

    _conn: Connection

    def __enter__(self) -> Cursor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connection(self) -> Connection:
        """The connection this cursor belongs to."""
        return self._conn

    def execute(
        self, query: Query, params: Params | None = None, *, binary: bool | None = None
    ) -> Cursor:
        """Execute a query, with ``%s`` or ``%(name)s`` placeholders for ``params``."""
        with self._conn.lock:
            self._conn._wait(self._execute_gen(query, params, binary=binary))
        return self

    def fetchone(self) -> Row | None:
        """Return the next row of the current result, or None."""
        return self._fetchone()

    def fetchmany(self, size: int | None = None) -> list[Row]:
        """Return up to ``size`` (default ``arraysize``) further rows."""
        return self._fetchmany(size)

    def fetchall(self) -> list[Row]:
        """Return the remaining rows of the current result."""
        return self._fetchall()

    def __iter__(self) -> Iterator[Row]:
        return iter(self._iter_rows())

    def close(self) -> None:
        """Close the cursor; its results are released."""
        self._close()
