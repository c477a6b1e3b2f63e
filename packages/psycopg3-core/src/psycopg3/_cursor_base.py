"""The state and logic of a cursor that do not involve waiting.

``BaseCursor`` converts queries and parameters, builds the execute generator,
keeps the results and turns their rows into Python objects. The adapters'
cursors only drive ``_execute_gen`` under the connection's lock.

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import errors
from ._column import Column
from ._queries import PostgresQuery
from ._transformer import Transformer
from .adapt import AdaptersMap
from .pq import ExecStatus, Format, PGresult
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection

Query = str | bytes
Params = Sequence[Any] | Mapping[str, Any]
Row = tuple[Any, ...]

_TUPLES_STATUSES = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE)


class BaseCursor:
    """Framework-free state of a cursor: results, position, description.

    :param connection: the connection the cursor sends its commands through.
    :param binary: ask the server for results in binary format by default.
    """

    def __init__(self, connection: BaseConnection, *, binary: bool = False):
        self._conn = connection
        self.adapters = AdaptersMap(connection.adapters)
        self._binary = binary
        self.arraysize = 1
        self._closed = False
        self._tx: Transformer | None = None
        self._tx_client_encoding: bytes | None = None
        self._reset()

    def _reset(self) -> None:
        self._results: list[PGresult] = []
        self._index = 0
        self._result: PGresult | None = None
        self._pos = 0
        self._ntuples = 0
        self._rowcount = -1

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        state = "closed" if self._closed else f"{len(self._results)} results"
        return f"<{cls} [{state}] at 0x{id(self):x}>"

    # -- attributes --------------------------------------------------------

    @property
    def pgconn(self) -> Any:
        """The libpq connection of the cursor's connection."""
        return self._conn.pgconn

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called or the connection closed."""
        return self._closed or self._conn.closed

    @property
    def description(self) -> list[Column] | None:
        """The columns of the current result (DB-API), None if it has no rows."""
        result = self._result
        if result is None or result.status not in _TUPLES_STATUSES:
            return None
        encoding = self._conn.encoding
        return [Column(result, i, encoding) for i in range(result.nfields)]

    @property
    def rowcount(self) -> int:
        """Rows produced or affected by the current result; -1 if unknown."""
        return self._rowcount

    @property
    def rownumber(self) -> int | None:
        """The index of the next row to fetch in the current result."""
        return self._pos if self._result is not None else None

    @property
    def pgresult(self) -> PGresult | None:
        """The current libpq result, if any."""
        return self._result

    def setinputsizes(self, sizes: Any) -> None:
        """Do nothing: DB-API allows it, PostgreSQL does not need it."""

    def setoutputsize(self, size: Any, column: int | None = None) -> None:
        """Do nothing: DB-API allows it, PostgreSQL does not need it."""

    # -- executing ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.InterfaceError("the cursor is closed")
        self._conn._check_usable()

    def _transformer(self) -> Transformer:
        tx = self._tx
        if tx is None:
            tx = self._tx = Transformer(self)
        return tx

    def _fresh_transformer(self) -> Transformer:
        """The transformer for a new command: a new one if the encoding changed.

        ``SET client_encoding`` may run between two commands: the transformer
        reads the encoding once, so it is replaced when the server reports
        another one.
        """
        encoding = self._conn.pgconn.parameter_status(b"client_encoding")
        tx = self._tx
        if tx is None or encoding != self._tx_client_encoding:
            tx = self._tx = Transformer(self)
            self._tx_client_encoding = encoding
        return tx

    def _execute_gen(
        self, query: Query, params: Params | None = None, *, binary: bool | None = None
    ) -> PQGen[None]:
        """Send a query with its parameters and read every result.

        Without parameters (and without binary results) the query goes through
        the simple protocol, so it may hold several statements separated by
        semicolons; with parameters, it is one statement whose values are sent
        apart from the SQL text as ``$1, $2…``.
        """
        self._check_open()
        self._reset()
        conn = self._conn
        pgconn = conn.pgconn
        binary = self._binary if binary is None else binary
        tx = self._fresh_transformer()
        pg_query = PostgresQuery(tx)
        pg_query.convert(query, params)
        if conn._needs_begin():
            yield from conn._exec_command_gen(b"BEGIN")
        result_format = Format.BINARY if binary else Format.TEXT
        if pg_query.params is None and not binary:
            pgconn.send_query(pg_query.query)
        else:
            pgconn.send_query_params(
                pg_query.query,
                pg_query.params,
                param_types=pg_query.types,
                param_formats=pg_query.formats,
                result_format=result_format,
            )
        results = yield from conn._results_gen()
        conn._check_results(results)
        self._results = results
        self._select_result(0)

    def _select_result(self, index: int) -> None:
        self._index = index
        result = self._result = self._results[index] if index < len(self._results) else None
        self._pos = 0
        if result is None:
            self._ntuples = 0
            self._rowcount = -1
            return
        tx = self._transformer()
        tx.set_pgresult(result)
        if result.status in _TUPLES_STATUSES:
            self._ntuples = result.ntuples
            self._rowcount = self._ntuples
        else:
            self._ntuples = 0
            affected = result.command_tuples
            self._rowcount = affected if affected is not None else -1

    def nextset(self) -> bool | None:
        """Move to the next result of a multi-statement query (DB-API).

        :return: True if there is one, None otherwise.
        """
        self._check_open()
        if self._index + 1 < len(self._results):
            self._select_result(self._index + 1)
            return True
        return None

    # -- fetching (no I/O: results are on the client) ----------------------

    def _check_fetch(self) -> PGresult:
        if self._closed:
            raise errors.InterfaceError("the cursor is closed")
        result = self._result
        if result is None:
            raise errors.ProgrammingError("no result available: call execute() first")
        if result.status not in _TUPLES_STATUSES:
            status = ExecStatus(result.status).name
            raise errors.ProgrammingError(f"the last operation produced no rows (status: {status})")
        return result

    def _fetchone(self) -> Row | None:
        self._check_fetch()
        pos = self._pos
        if pos >= self._ntuples:
            return None
        self._pos = pos + 1
        return self._transformer().load_row(pos)

    def _fetchmany(self, size: int | None) -> list[Row]:
        self._check_fetch()
        if size is None:
            size = self.arraysize
        if size < 0:
            raise errors.ProgrammingError(f"fetchmany() size must not be negative, got {size}")
        pos = self._pos
        end = min(pos + size, self._ntuples)
        self._pos = end
        return self._transformer().load_rows(pos, end) if end > pos else []

    def _fetchall(self) -> list[Row]:
        self._check_fetch()
        pos = self._pos
        self._pos = self._ntuples
        return self._transformer().load_rows(pos, self._ntuples) if self._ntuples > pos else []

    def _iter_rows(self) -> Iterable[Row]:
        while (row := self._fetchone()) is not None:
            yield row

    def _close(self) -> None:
        self._closed = True
        self._reset()
