"""Server-side (named) cursors: the rows stay on the server until fetched.

``BaseServerCursor`` builds the generators of a cursor declared with SQL's
``DECLARE``: ``DECLARE`` (and a describe of its portal, for ``description``)
on execute, ``FETCH FORWARD n`` to fetch, ``MOVE ABSOLUTE`` to scroll,
``CLOSE`` to close. The client only ever holds one batch of rows, which is
what keeps reading a huge result in bounded memory. ``AsyncServerCursorBase``
is its async API, for any framework: each call takes the lock (a checkpoint),
and ``async for`` also checkpoints every ``CHECKPOINT_ROWS`` rows of a batch
(rule 8 of ``psycopg3._block_lock``).

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors
from ._arguments import check_str
from ._block_lock import CHECKPOINT_ROWS
from ._column import Column
from ._cursor_base import BaseCursor, Params, Query, _scroll_target
from ._link import AsyncLink
from ._queries import PostgresQuery
from .pq import Format, PGresult, TransactionStatus
from .rows import Row, RowFactory
from .waiting import PQGen

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
    from ._connection_base import BaseConnection
    from ._transformer import Transformer

__all__ = ["BaseServerCursor", "AsyncServerCursorBase"]

T = TypeVar("T")

#: Rows fetched at a time when iterating over a server-side cursor.
DEFAULT_ITERSIZE = 100


class BaseServerCursor(BaseCursor[Row]):
    """Framework-free state and generators of a server-side cursor.

    :param connection: the connection the cursor lives on.
    :param name: the name of the cursor on the server (quoted as an identifier).
    :param scrollable: True for ``SCROLL`` (allows scrolling backwards), False
        for ``NO SCROLL``, None for the server's default.
    :param withhold: declare ``WITH HOLD``: the cursor survives the commit of
        its transaction (until closed).
    """

    def __init__(
        self,
        connection: BaseConnection,
        name: str,
        *,
        binary: bool = False,
        row_factory: RowFactory[Row] | None = None,
        scrollable: bool | None = None,
        withhold: bool = False,
    ):
        check_str("cursor() name", name)
        super().__init__(connection, binary=binary, row_factory=row_factory)
        self._name = name
        self.scrollable = scrollable
        self.withhold = withhold
        #: Rows fetched by each round trip of an iteration.
        self.itersize = DEFAULT_ITERSIZE
        self._declared = False
        self._portal: PGresult | None = None
        self._portal_codec = "utf-8"
        self._position = 0
        # A fetched batch whose rows failed to load or to be made: (result,
        # its transformer, the first row not returned). The next fetch starts
        # there, so a failing row is never skipped.
        self._held: tuple[PGresult, Transformer, int] | None = None
        self._fetch_format = Format.BINARY if binary else Format.TEXT

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        state = "closed" if self._closed else "declared" if self._declared else "new"
        return f"<{cls} {self._name!r} [{state}] at 0x{id(self):x}>"

    @property
    def name(self) -> str:
        """The name of the cursor on the server."""
        return self._name

    @property
    def description(self) -> list[Column] | None:
        """The columns of the declared query (DB-API), known before any fetch."""
        portal = self._portal
        if portal is None or portal.nfields == 0:
            return None
        # Described in the encoding of the DECLARE, whatever it is now.
        encoding = self._portal_codec
        return [Column(portal, i, encoding) for i in range(portal.nfields)]

    @property
    def rownumber(self) -> int | None:
        """How many rows the server cursor has moved past: the index of the next one."""
        return self._rownumber() if self._declared else None

    def _rownumber(self) -> int:
        held = self._held  # (its rows not returned yet are ahead)
        return self._position if held is None else self._position - held[0].ntuples + held[2]

    def _quoted_name(self) -> bytes:
        return self._conn.pgconn.escape_identifier(self._name.encode(self._conn.encoding))

    def _declare_statement(self, query: bytes) -> bytes:
        parts = [b"DECLARE ", self._quoted_name()]
        if self.scrollable is not None:
            parts.append(b" SCROLL" if self.scrollable else b" NO SCROLL")
        parts.append(b" CURSOR WITH HOLD FOR " if self.withhold else b" CURSOR FOR ")
        parts.append(query)
        return b"".join(parts)

    def _run_gen(
        self,
        command: bytes,
        params: list[bytes | None] | None = None,
        codec: str | None = None,
        **kw: Any,
    ) -> PQGen[PGresult]:
        """Run one statement (extended protocol); return its result or raise its error.

        ``codec``: the client encoding's, if the caller has just read it.
        """
        link = self._link
        self._conn.pgconn.send_query_params(command, params, **kw)
        results = yield from link.results_gen()
        link.check_results(results, codec)
        return results[-1]

    def _declare_gen(
        self, query: Query, params: Params | None = None, *, binary: bool | None = None
    ) -> PQGen[None]:
        """Declare the cursor for ``query`` (closing a previous one), then describe it.

        The parameters travel apart from the SQL text, as for any query: the
        server accepts them in ``DECLARE``. Opens the DB-API transaction first
        if one is due (a cursor without hold lives in a transaction).
        """
        self._check_open()
        if self._declared:
            yield from self._close_on_server_gen()
        self._reset()
        conn = self._conn
        if binary is not None:
            self._fetch_format = Format.BINARY if binary else Format.TEXT
        tx = self._fresh_transformer()
        pg_query = PostgresQuery(tx)
        pg_query.convert(query, params)
        yield from self._link.start_query_gen()
        yield from self._run_gen(
            self._declare_statement(pg_query.query),
            pg_query.params,
            tx.encoding.python_codec,
            param_types=pg_query.types,
            param_formats=pg_query.formats,
        )
        self._declared = True
        self._position = 0
        self._held = None
        self._rowcount = 0
        conn.pgconn.send_describe_portal(self._name.encode(conn.encoding))
        results = yield from self._link.checked_results_gen()
        self._portal = results[-1]
        self._portal_codec = conn.encoding
        self._set_row_maker()

    def _check_declared(self) -> None:
        if self._closed or self._link.closed_by_user:
            raise errors.InterfaceError("the cursor is closed")
        if not self._declared:
            raise errors.ProgrammingError("no query declared: call execute() first")
        self._link.check_usable()

    def _fetchmany_size(self, size: int | None) -> int:
        size = self.arraysize if size is None else size
        if size < 0:
            raise errors.ProgrammingError(f"fetchmany() size must not be negative, got {size}")
        return size

    def _fetch_gen(self, size: int | None) -> PQGen[list[Row]]:
        """Fetch up to ``size`` rows (all the remaining ones if None) from the server."""
        self._check_declared()
        if size == 0:
            return []  # FETCH FORWARD 0 would fetch the current row again
        held = self._held
        if held is not None:
            rows = self._take_held(held, size)
            if size is not None:
                size -= len(rows)
            if size == 0 or self._held is not None:
                return rows
            try:
                return rows + (yield from self._fetch_gen(size))
            except BaseException:
                self._held = held  # (the rows taken stay for the next fetch)
                raise
        yield from self._link.start_query_gen()  # a WITH HOLD cursor, after a commit
        count = b"ALL" if size is None else b"%d" % size
        command = b"FETCH FORWARD " + count + b" FROM " + self._quoted_name()
        # The client encoding may have changed since the DECLARE or the last FETCH.
        tx = self._fresh_transformer()
        codec = tx.encoding.python_codec
        result = yield from self._run_gen(command, None, codec, result_format=self._fetch_format)
        ntuples = result.ntuples
        self._position += ntuples
        self._rowcount += ntuples
        if ntuples == 0:
            return []
        return self._take_held((result, tx, 0), None)

    def _take_held(self, held: tuple[PGresult, Transformer, int], size: int | None) -> list[Row]:
        """Load and make up to ``size`` rows of a fetched batch, from its first not returned.

        If that raises, the batch is held (``_held``) from the same row.
        """
        result, tx, start = held
        end = result.ntuples if size is None else min(result.ntuples, start + size)
        self._held = held
        tx.set_pgresult(result)
        try:
            rows = self._make_rows(tx.load_rows(start, end))
        finally:
            tx.set_pgresult(None, set_loaders=False)  # keep only one batch alive
        self._held = None if end == result.ntuples else (result, tx, end)
        return rows

    def _scroll_gen(self, value: int, mode: str) -> PQGen[None]:
        """Move the server cursor with ``MOVE ABSOLUTE`` to the row computed here.

        :raises IndexError: if the target is before the first row or past the
            last one (then the cursor is left after the last row).
        :raises ProgrammingError: for a backward move of a ``NO SCROLL`` cursor.
        """
        self._check_declared()
        target = _scroll_target(self._rownumber(), value, mode)
        if target < 0:
            raise IndexError(f"cannot scroll to row {target}: rows start at 0")
        if self.scrollable is False and target < self._position:
            raise errors.ProgrammingError(
                "cannot scroll backwards: the cursor was declared with scrollable=False"
            )
        yield from self._link.start_query_gen()
        command = b"MOVE ABSOLUTE %d FROM " % target + self._quoted_name()
        result = yield from self._run_gen(command)
        self._position = target
        self._held = None
        if target > 0 and not result.command_tuples:
            raise IndexError(f"cannot scroll to row {target}: the cursor has fewer rows")

    def _close_on_server_gen(self) -> PQGen[None]:
        """``CLOSE`` the cursor if it still exists on the server.

        A cursor without hold ends with its transaction; a failed transaction
        must not be touched. Otherwise ``pg_cursors`` tells if the cursor is
        there (closing a missing one would fail the transaction).
        """
        self._declared = False
        self._portal = None
        conn = self._conn
        if conn.closed:
            return
        status = conn.pgconn.transaction_status
        if status == TransactionStatus.INTRANS or (
            status == TransactionStatus.IDLE and self.withhold
        ):
            name = self._name.encode(conn.encoding)
            exists = yield from self._run_gen(
                b"select 1 from pg_catalog.pg_cursors where name = $1", [name]
            )
            if exists.ntuples:
                yield from self._run_gen(b"CLOSE " + self._quoted_name())

    def _close_gen(self) -> PQGen[None]:
        """Close the cursor here and on the server; closing twice does nothing."""
        if self._closed:
            return
        try:
            if self._declared:
                yield from self._close_on_server_gen()
        finally:
            self._close()


class AsyncCursorFace:
    """What both async cursors share: ``async with`` gives the cursor."""

    if TYPE_CHECKING:

        @property
        def connection(self) -> AsyncConnectionBase: ...

    async def __aenter__(self: T) -> T:
        return self


class AsyncServerCursorBase(AsyncCursorFace, BaseServerCursor[Row]):
    """The async API of a server-side cursor, for any framework."""

    _conn: AsyncConnectionBase
    _link: AsyncLink
    _link_class = AsyncLink

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        await self.close()

    async def execute(
        self, query: Query, params: Params | None = None, *, binary: bool | None = None
    ) -> AsyncServerCursorBase[Row]:
        """Declare the cursor on the server for ``query``; no row is fetched yet."""
        async with self._conn.lock:
            await self._link.wait(self._declare_gen(query, params, binary=binary))
        return self

    async def fetchone(self) -> Row | None:
        """Fetch the next row from the server, or None."""
        async with self._conn.lock:
            rows = await self._link.wait(self._fetch_gen(1))
        return rows[0] if rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        """Fetch up to ``size`` (default ``arraysize``) rows from the server."""
        async with self._conn.lock:
            return await self._link.wait(self._fetch_gen(self._fetchmany_size(size)))

    async def fetchall(self) -> list[Row]:
        """Fetch every remaining row from the server."""
        async with self._conn.lock:
            return await self._link.wait(self._fetch_gen(None))

    async def __aiter__(self) -> AsyncIterator[Row]:
        checkpoint = self._conn.lock.checkpoint
        while True:
            async with self._conn.lock:
                rows = await self._link.wait(self._fetch_gen(self.itersize))
            # (a batch larger than CHECKPOINT_ROWS, from a large itersize)
            for n, row in enumerate(rows, 1):
                yield row
                if not n % CHECKPOINT_ROWS:
                    await checkpoint()
            if len(rows) < self.itersize:
                return

    async def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the server cursor (``MOVE``) by ``value`` rows, or to row ``value``."""
        async with self._conn.lock:
            await self._link.wait(self._scroll_gen(value, mode))

    async def close(self) -> None:
        """Close the cursor on the server too, if it still exists there."""
        async with self._conn.lock:
            await self._link.wait(self._close_gen())
