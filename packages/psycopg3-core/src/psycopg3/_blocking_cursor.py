"""The blocking cursor methods shared by every blocking adapter.

``BlockingCursorBase`` (client-side) and ``BlockingServerCursorBase``
(``DECLARE``/``FETCH``) are the DB-API cursors for blocking frameworks,
twins of ``AsyncCursorBase`` and ``AsyncServerCursorBase`` without
``await``. Layer: connection/cursor bases, beside ``_blocking_connection``.

Must not: import a concurrency framework, or wait other than through the
connection's ``lock`` and its link's ``wait()`` (``psycopg3._link``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ._blocking_blocks import Copy
from ._cursor_base import BaseCursor, Params, Query
from ._link import BlockingLink, Link
from ._server_cursor import BaseServerCursor
from .rows import Row, RowFactory

if TYPE_CHECKING:
    from ._blocking_connection import BlockingConnectionBase

__all__ = ["BlockingCursorBase", "BlockingServerCursorBase"]

T = TypeVar("T")
R = TypeVar("R")
ServerCursorT = TypeVar("ServerCursorT", bound="BlockingServerCursorBase[Any]")


class _BlockingCursorFace:
    """What both blocking cursors share: ``with`` closes the cursor."""

    _conn: BlockingConnectionBase
    _link: BlockingLink
    _link_class: ClassVar[type[Link]] = BlockingLink

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    if TYPE_CHECKING:

        @property
        def connection(self) -> BlockingConnectionBase: ...

        def close(self) -> None: ...


class BlockingCursorBase(_BlockingCursorFace, BaseCursor[Row]):
    """The blocking cursor API: the DB-API cursor, for any blocking framework."""

    _conn: BlockingConnectionBase
    _link: BlockingLink

    @overload
    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        prepare: bool | None = None,
    ) -> BlockingCursorBase[Row]: ...

    @overload
    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        row_factory: RowFactory[R],
        prepare: bool | None = None,
    ) -> BlockingCursorBase[R]: ...

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        row_factory: RowFactory[Any] | None = None,
        prepare: bool | None = None,
    ) -> BlockingCursorBase[Any]:
        """Execute a query, with ``%s`` or ``%(name)s`` placeholders for ``params``.

        :param binary: ask for results in binary format (default: the cursor's).
        :param row_factory: the shape of this execution's rows, instead of the
            cursor's ``row_factory``.
        :param prepare: prepare the statement on the server (True), never
            (False), or after ``conn.prepare_threshold`` executions (None).
        """
        gen = self._execute_gen(
            query, params, binary=binary, row_factory=row_factory, prepare=prepare
        )
        with self._conn.lock:
            self._link.wait(gen)
        return self

    def executemany(
        self, query: Query, params_seq: Iterable[Params], *, returning: bool = False
    ) -> None:
        """Execute ``query`` once per parameter set, sent without waiting for each reply.

        :param returning: keep each statement's result (``INSERT … RETURNING``),
            one per ``nextset()``.
        """
        with self._conn.lock:
            self._link.wait(self._executemany_gen(query, params_seq, returning=returning))

    def callproc(self, name: str, params: Params | None = None) -> Params | None:
        """Call a database function; its result is fetched like a query's.

        :return: ``params``, unchanged (PostgreSQL has no output parameters).
        """
        with self._conn.lock:
            self._link.wait(self._callproc_gen(name, params))
        return params

    def copy(self, statement: Query, params: Params | None = None) -> Copy:
        """Return a COPY block: ``with cur.copy("COPY t FROM STDIN") as copy:``.

        :param statement: a ``COPY … FROM STDIN`` or ``COPY … TO STDOUT``
            statement; ``%s`` placeholders are filled with ``params`` as SQL
            literals (COPY takes no bind parameters).
        """
        return Copy(self, statement, params)

    def _fetch_pending(self) -> None:
        # A command sent in a pipeline block: wait for its result (one
        # attribute check on the fetch path outside pipelines).
        with self._conn.lock:
            self._link.wait(self._pending_gen())

    def fetchone(self) -> Row | None:
        """Return the next row of the current result, or None."""
        if self._pending is not None:
            self._fetch_pending()
        return self._fetchone()

    def fetchmany(self, size: int | None = None) -> list[Row]:
        """Return up to ``size`` (default ``arraysize``) further rows."""
        if self._pending is not None:
            self._fetch_pending()
        return self._fetchmany(size)

    def fetchall(self) -> list[Row]:
        """Return the remaining rows of the current result."""
        if self._pending is not None:
            self._fetch_pending()
        return self._fetchall()

    def scroll(self, value: int, mode: str = "relative") -> None:
        """Move in the current result by ``value`` rows, or to row ``value`` if absolute.

        :raises IndexError: if that leaves the result.
        """
        if self._pending is not None:
            self._fetch_pending()
        self._scroll(value, mode)

    def __iter__(self) -> Iterator[Row]:
        if self._pending is not None:
            self._fetch_pending()
        return iter(self._iter_rows())

    def close(self) -> None:
        """Close the cursor; its results are released."""
        self._close()


class BlockingServerCursorBase(_BlockingCursorFace, BaseServerCursor[Row]):
    """The blocking API of a server-side cursor: rows come in ``FETCH`` batches.

    ``fetchmany(n)`` asks the server for ``n`` rows, iteration for
    ``itersize`` at a time.
    """

    _conn: BlockingConnectionBase
    _link: BlockingLink

    def execute(
        self: ServerCursorT,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
    ) -> ServerCursorT:
        """Declare the cursor on the server for ``query``; no row is fetched yet."""
        with self._conn.lock:
            self._link.wait(self._declare_gen(query, params, binary=binary))
        return self

    def fetchone(self) -> Row | None:
        """Fetch the next row from the server, or None."""
        with self._conn.lock:
            rows = self._link.wait(self._fetch_gen(1))
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[Row]:
        """Fetch up to ``size`` (default ``arraysize``) rows from the server."""
        with self._conn.lock:
            return self._link.wait(self._fetch_gen(self._fetchmany_size(size)))

    def fetchall(self) -> list[Row]:
        """Fetch every remaining row from the server."""
        with self._conn.lock:
            return self._link.wait(self._fetch_gen(None))

    def __iter__(self) -> Iterator[Row]:
        while True:
            with self._conn.lock:
                rows = self._link.wait(self._fetch_gen(self.itersize))
            yield from rows
            if len(rows) < self.itersize:
                return

    def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the server cursor (``MOVE``) by ``value`` rows, or to row ``value``."""
        with self._conn.lock:
            self._link.wait(self._scroll_gen(value, mode))

    def close(self) -> None:
        """Close the cursor on the server too, if it still exists there."""
        with self._conn.lock:
            self._link.wait(self._close_gen())
