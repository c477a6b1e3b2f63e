"""The state and logic of a cursor that do not involve waiting.

``BaseCursor`` converts queries and parameters, builds the execute generator,
keeps the results and turns their rows into Python objects. The adapters'
cursors only drive ``_execute_gen`` under the connection's lock.

It is made of mixins, one module per concern, in the same (bases) layer:
``_cursor_fetch`` (fetching and scrolling the rows of the current result) and
``_cursor_many`` (``executemany()``).

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from . import _pipeline, errors
from ._arguments import check_callable, check_str
from ._column import Column
from ._cursor_fetch import _TUPLES_STATUSES, RowFetching
from ._cursor_fetch import _scroll_target as _scroll_target
from ._cursor_many import ExecuteMany
from ._encodings import changed_encoding, pgconn_py_encoding
from ._link import Link
from ._queries import Params, PostgresQuery, Query
from ._transformer import Transformer
from .adapt import AdaptersMap
from .pq import Format, PGresult, TransactionStatus
from .rows import Row, RowFactory, RowMaker, tuple_row
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection
    from ._pipeline_queue import PipelineEntry

__all__ = ["BaseCursor", "CursorFactory", "Params", "Query", "Row"]


class BaseCursor(RowFetching[Row], ExecuteMany):
    """Framework-free state of a cursor: results, position, description.

    Generic in the type of its rows, which its row factory decides.

    :param connection: the connection the cursor sends its commands through.
    :param binary: ask the server for results in binary format by default.
    :param row_factory: what rows look like (see ``psycopg3.rows``); by
        default the connection's ``row_factory``.
    """

    #: The kind of link the cursor reaches its connection's internals through.
    _link_class: ClassVar[type[Link]] = Link

    def __init__(
        self,
        connection: BaseConnection,
        *,
        binary: bool = False,
        row_factory: RowFactory[Row] | None = None,
    ):
        if row_factory is not None:
            check_callable("cursor() row_factory", row_factory)
        self._conn = connection
        self._link = self._link_class(connection)
        self.adapters = AdaptersMap(connection.adapters)
        self._binary = binary
        if row_factory is None:
            row_factory = connection.row_factory
        self._row_factory: RowFactory[Any] = row_factory
        self.arraysize = 1
        self._closed = False
        self._tx: Transformer | None = None
        self._tx_client_encoding: bytes | None = None
        self._reset()

    def _reset(self) -> None:
        self._results: list[PGresult] = []
        # The factory of one execute() call, None to use the cursor's.
        self._execute_row_factory: RowFactory[Any] | None = None
        # None while rows are the loaded tuples themselves (the fast path).
        self._make_row: RowMaker[Any] | None = None
        self._index = 0
        self._result: PGresult | None = None
        self._pos = 0
        self._ntuples = 0
        self._rowcount = -1
        # In a pipeline block: the entry of the command whose result is due
        # (see ``psycopg3._pipeline``). Fetch methods check it first.
        self._pending: PipelineEntry | None = None

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        state = "closed" if self._closed else f"{len(self._results)} results"
        return f"<{cls} [{state}] at 0x{id(self):x}>"

    # -- attributes --------------------------------------------------------

    @property
    def row_factory(self) -> RowFactory[Row]:
        """The row factory of the cursor; setting it also changes the current result's rows."""
        return self._row_factory

    @row_factory.setter
    def row_factory(self, row_factory: RowFactory[Row]) -> None:
        check_callable("row_factory", row_factory)
        self._row_factory = row_factory
        self._execute_row_factory = None
        if self._result is not None and self._result.status in _TUPLES_STATUSES:
            self._set_row_maker()

    def _set_row_maker(self) -> None:
        factory = self._execute_row_factory or self._row_factory
        if factory is tuple_row:
            self._make_row = None
            return
        pos = self._pos
        try:
            self._make_row = factory(self)
        except Exception as ex:
            # Raised when a row is fetched, not here: the command has run (it
            # may have written), and execute() must not report it failed.
            self._make_row = _failed_row_factory(factory, ex)
        finally:
            self._pos = pos  # (a callable that iterated the cursor took no row)

    @property
    def connection(self) -> BaseConnection:
        """The connection this cursor belongs to (typed by each flavour)."""
        return self._conn

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
        # The encoding the result came in, not the connection's now.
        encoding = self._transformer().encoding.python_codec
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
        self._link.check_usable()

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

    def _check_encoding_changed(self) -> None:
        """Call after a command's results: did the command change the client encoding?

        If so, the server said so only after the last result (see
        ``psycopg3._encodings``, rule 5): the results are read with an
        encoding that accepts only text both encodings read alike, and the
        next command gets a transformer in the new encoding.
        """
        pgconn = self._conn.pgconn
        old_tx = self._tx
        if (
            old_tx is None
            or pgconn.parameter_status(b"client_encoding") == self._tx_client_encoding
        ):
            return
        tx = self._tx = Transformer(self)
        tx.encoding = changed_encoding(old_tx.encoding, pgconn_py_encoding(pgconn))
        self._tx_client_encoding = None

    def _execute_gen(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        row_factory: RowFactory[Any] | None = None,
        prepare: bool | None = None,
    ) -> PQGen[None]:
        """Send a query with its parameters and read every result.

        Without parameters (and without binary results) the query goes through
        the simple protocol, so it may hold several statements separated by
        semicolons; with parameters, it is one statement whose values are sent
        apart from the SQL text as ``$1, $2…``. ``row_factory``, if given,
        shapes the rows of this execution's results only. ``prepare``: True
        prepares the statement now, False never, None after the connection's
        ``prepare_threshold`` executions (see ``psycopg3._prepare``).
        """
        self._check_open()
        self._reset()
        if row_factory is not None:
            check_callable("execute() row_factory", row_factory)
        self._execute_row_factory = row_factory
        link = self._link
        pgconn = self._conn.pgconn
        binary = self._binary if binary is None else binary
        tx = self._fresh_transformer()
        pg_query = PostgresQuery(tx)
        pg_query.convert(query, params)
        if link.pipeline is not None:
            yield from _pipeline.execute_gen(self, pg_query, binary, prepare)
            return
        result_format = Format.BINARY if binary else Format.TEXT
        manager = link.prepare_manager
        # A prepared statement found missing (rule 5 of ``_prepare``) is run
        # again only if no transaction was open: its failure lost nothing else.
        rerun_safe = pgconn.transaction_status == TransactionStatus.IDLE
        if rerun_safe and manager.has_evicted:
            # Out of autocommit no command ends outside a transaction: the
            # statements evicted meanwhile are deallocated before the BEGIN.
            yield from link.deallocate_evicted_gen()
        while True:
            if link.needs_begin():
                yield from link.begin_gen()
            results, by_name = yield from self._send_gen(pg_query, result_format, prepare)
            if not (manager.check_results(results, by_name=by_name) and rerun_safe):
                break
            rerun_safe = False
            if pgconn.transaction_status == TransactionStatus.INERROR:
                yield from link.exec_command_gen(b"ROLLBACK")  # our own BEGIN's transaction
        self._check_encoding_changed()
        link.check_results(results, tx.encoding.python_codec)
        yield from link.deallocate_evicted_gen()
        self._results = results
        self._select_result(0)

    def _send_gen(
        self, pg_query: PostgresQuery, result_format: Format, prepare: bool | None
    ) -> PQGen[tuple[list[PGresult], bool]]:
        """Send a converted query, preparing it first if due; return its results.

        :return: the results, and whether the query ran by a statement's name.
        """
        link = self._link
        pgconn = self._conn.pgconn
        manager = link.prepare_manager
        if pg_query.params is None and result_format == Format.TEXT:
            # The simple protocol (several statements allowed): never prepared.
            pgconn.send_query(pg_query.query)
            return (yield from link.results_gen()), False
        key = pg_query.prepare_key()
        name, must_prepare = manager.decide(key, prepare)
        if must_prepare:
            assert name is not None
            pgconn.send_prepare(name, pg_query.query, param_types=pg_query.types)
            yield from link.checked_results_gen()
            manager.prepared(key, name)
        self._send_converted(pg_query, result_format, name)
        return (yield from link.results_gen()), name is not None

    def _send_converted(
        self, pg_query: PostgresQuery, result_format: Format, name: bytes | None
    ) -> None:
        """Send a converted query: by the name of its prepared statement if given."""
        if name is None:
            self._conn.pgconn.send_query_params(
                pg_query.query,
                pg_query.params,
                param_types=pg_query.types,
                param_formats=pg_query.formats,
                result_format=result_format,
            )
        else:
            self._conn.pgconn.send_query_prepared(
                name, pg_query.params, param_formats=pg_query.formats, result_format=result_format
            )

    def _pending_gen(self) -> PQGen[None]:
        """Wait for the result of the command sent in a pipeline; raise its error."""
        return _pipeline.pending_result_gen(self)

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
            self._set_row_maker()
        else:
            self._make_row = None
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

    def _close(self) -> None:
        self._closed = True
        self._reset()
        self._release_result()

    def __del__(self) -> None:
        self._release_result()

    def _release_result(self) -> None:
        # The transformer and its adapters reference each other: a result the
        # transformer holds would otherwise live on, however large, until the
        # garbage collector finds that cycle.
        tx = getattr(self, "_tx", None)
        if tx is not None:
            tx.set_pgresult(None, set_loaders=False)

    def _callproc_gen(self, name: str, params: Params | None) -> PQGen[None]:
        """Call the function ``name`` as ``select * from name(...)``.

        ``name`` is quoted as an identifier (a dotted name is split into schema
        and function): it is matched as written, case included. A mapping of
        parameters is passed by name (``arg => value``).
        """
        self._check_open()
        check_str("callproc() name", name)
        encoding = self._conn.encoding
        escape = self._conn.pgconn.escape_identifier

        def quote(identifier: str) -> bytes:
            # '%' would read as a placeholder: double it.
            return escape(identifier.encode(encoding)).replace(b"%", b"%%")

        function = b".".join(quote(part) for part in name.split("."))
        values: list[Any] = []
        if params is None:
            arguments = b""
        elif isinstance(params, Sequence):
            values = list(params)
            arguments = b", ".join([b"%s"] * len(values))
        else:
            values = list(params.values())
            arguments = b", ".join(quote(str(key)) + b" => %s" for key in params)
        query = b"select * from " + function + b"(" + arguments + b")"
        yield from self._execute_gen(query, values)


def _failed_row_factory(factory: Any, error: Exception) -> RowMaker[Any]:
    """A row maker raising, for each row, why ``factory`` could not make one."""

    def make_row(values: Sequence[Any]) -> Any:
        raise errors.ProgrammingError(
            f"the row factory {factory!r} failed when given the cursor"
            f" ({type(error).__name__}: {error}): a row factory takes the cursor and"
            " returns a function making a row of the values (see psycopg3.rows)"
        ) from error

    return make_row


class CursorFactory:
    """``cursor()`` for a connection class that names its cursor classes.

    Shared by the blocking and the async connection bases: an adapter sets
    ``cursor_class`` and ``server_cursor_class``, and types ``cursor()``
    with overloads naming them.
    """

    cursor_class: ClassVar[type[Any]]
    server_cursor_class: ClassVar[type[Any]]

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """Return a new cursor on this connection; a server-side one if ``name`` is given.

        :param name: the name of a server-side cursor (``DECLARE``), or "".
        :param binary: ask for results in binary format.
        :param row_factory: the shape of the rows (default: ``self.row_factory``).
        :param scrollable: server-side cursors: ``SCROLL`` (True), ``NO SCROLL``
            (False), or the server's default (None).
        :param withhold: server-side cursors: declare ``WITH HOLD``.
        """
        return self._new_cursor(*args, **kwargs)

    def _new_cursor(
        self,
        name: str = "",
        *,
        binary: bool = False,
        row_factory: RowFactory[Any] | None = None,
        scrollable: bool | None = None,
        withhold: bool = False,
    ) -> Any:
        self._check_usable()
        if name:
            return self.server_cursor_class(
                self,
                name,
                binary=binary,
                row_factory=row_factory,
                scrollable=scrollable,
                withhold=withhold,
            )
        return self.cursor_class(self, binary=binary, row_factory=row_factory)

    if TYPE_CHECKING:

        def _check_usable(self) -> None: ...  # (BaseConnection's)
