"""COPY FROM STDIN and COPY TO STDOUT: the state and generators of a COPY block.

``cur.copy(statement)`` returns a block object; entering it runs the COPY
statement, leaving it ends the COPY. The COPY data formats (text rows with
their escapes, the binary file layout) are written and parsed here, without
I/O; the waiting goes through the connection's ``_wait()`` like every other
command, with the generators of ``generators`` (``copy_put``, ``copy_end``,
``copy_get``).

``BaseCopy`` is shared by the blocking ``Copy`` (``_blocking_blocks``) and
the ``AsyncCopy`` (``_async_blocks``). Layer: bases.

Must not: import a concurrency framework, wait, or sleep.

The rules of a COPY block:

1. Entering opens the DB-API implicit transaction if one is due, then runs
   the statement (parameters are merged into its text as literals: COPY takes
   no bind parameters). A statement that is not a COPY raises
   ``ProgrammingError`` once its results are read: the connection is idle.
   Refused in a pipeline: libpq cannot run COPY in pipeline mode.
2. The connection's lock is held from entering to leaving: the connection is
   busy with the COPY for that long, so other threads or tasks wait for the
   block to end. Inside the block, use the connection only through the block
   object (another command would wait for the lock the block holds).
3. Memory is bounded whatever the size of the data: rows written are
   formatted into a buffer sent to libpq in blocks of about ``BUFFER_SIZE``
   (one ctypes call per block, not per row), and each block waits until the
   socket took it; data read is taken a block at a time.
4. Leaving a COPY FROM STDIN normally sends the end of the data and reads
   the command's result: a server error (a constraint, bad data) raises its
   own class. Leaving it by an exception makes the server abort the COPY
   (nothing of it is kept) with a message naming the exception; the
   server's ``QueryCanceled`` is dropped and the block's own exception goes
   on unchanged.
5. A COPY TO STDOUT left before its end (by ``break``, ``return`` or an
   exception) is cancelled and drained: what is left could be gigabytes,
   while a cancel request costs one round trip whatever the size. As with
   any cancelled statement, a transaction open around it is then failed
   (roll it back); read the data to its end, or limit it in the query, to
   keep the transaction. The cancel and drain are the connection's own
   interruption policy: the block raises ``_CopyAbandoned`` inside the
   connection's wait, and the adapter's ``_wait()`` recovers as it does from
   any interrupted command.
6. An interruption inside a wait (Ctrl-C, a task cancellation, a cancel
   scope) is recovered by the adapter's ``_wait()`` (cancel, then drain,
   which ends the COPY); the block then finds the COPY over and does
   nothing more when it is left, unless the interruption was caught inside
   a COPY FROM block left normally: leaving it then raises
   ``OperationalError``, as none of its data was kept.
7. A connection closed during the block (by ``close()`` from another task
   or thread, or lost) makes every later write and read, and leaving the
   block normally, raise ``InterfaceError``: a COPY never looks done when it
   was not.
8. Every method of ``AsyncCopy`` is a checkpoint (rule 8 of
   ``psycopg3._block_lock``), before it changes anything, though its data
   may go to or come from libpq's buffers without a wait; the row by row
   ones, ``write_row()`` and ``rows()``, checkpoint at their first row then
   every ``CHECKPOINT_ROWS`` rows (one per row made COPY FROM 1.6 times
   slower). Leaving the block by an exception adds none of its own: a
   cancellation must not take that exception's place.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import errors, generators
from ._adapt.base import Buffer
from ._copy_format import (
    BINARY_HEADER,
    BINARY_TRAILER,
    BinaryColumn,
    BinaryParser,
    TextDump,
    TextParser,
    abort_message,
    format_binary_row,
    format_text_row,
    in_column,
    merge_params,
)
from ._queries import (
    Params,
    Query,
)
from ._transformer import Transformer
from .pq import ExecStatus, Format, PGresult, PipelineStatus, TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._cursor_base import BaseCursor

__all__ = ["BaseCopy", "BUFFER_SIZE"]

logger = logging.getLogger("psycopg3")

#: Bytes of COPY data gathered before they are handed to libpq, and the
#: most taken from libpq in one read.
BUFFER_SIZE = 64 * 1024

_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


class _CopyAbandoned(Exception):
    """Raised inside the connection's wait to have the COPY cancelled (rule 5)."""


# -- the block ---------------------------------------------------------------


class BaseCopy:
    """The state of a COPY block and its generators; get one from ``cur.copy()``.

    :param cursor: the cursor running the COPY.
    :param statement: a ``COPY … FROM STDIN`` or ``COPY … TO STDOUT``
        statement, with ``%s`` placeholders if ``params`` is given.
    :param params: values merged into the statement as literals.
    """

    def __init__(self, cursor: BaseCursor[Any], statement: Query, params: Params | None = None):
        self._cursor = cursor
        self._conn = cursor._conn
        self._link = cursor._link  # (the cursor's: of the kind its waiting needs)
        self._statement = statement
        self._params = params
        # pending -> active (COPY running) -> finished (results read) -> closed (block left)
        self._state = "pending"
        self._direction = ExecStatus.COPY_IN
        self._binary = False
        self._tx: Transformer | None = None
        self._buffer = bytearray()
        self._text_dumps: dict[type, TextDump] = {}
        self._types: list[int] | None = None
        self._binary_columns: list[BinaryColumn] | None = None
        self._rows_written = False
        self._raw_written = False
        self._parser: TextParser | BinaryParser | None = None
        self._pending_rows: deque[list[bytes | None]] = deque()

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        way = "FROM STDIN" if self._direction == ExecStatus.COPY_IN else "TO STDOUT"
        fmt = " BINARY" if self._binary else ""
        return f"<{cls} [{self._state}{fmt} {way}] at 0x{id(self):x}>"

    @property
    def binary(self) -> bool:
        """Whether the COPY data is in binary format (as the server reported it)."""
        return self._binary

    def set_types(self, types: Sequence[int | str]) -> None:
        """Declare the type of each column, by OID or name (``"int4"``, ``"text[]"``).

        Rows read are then loaded with those types' loaders, and rows written
        in binary format are dumped as exactly those types (binary COPY data
        must match the columns' types).

        :raises ProgrammingError: outside the block, or for an unknown type name.
        """
        tx = self._active_tx()
        oids: list[int] = []
        for item in types:
            if isinstance(item, int):
                oids.append(item)
                continue
            try:
                oids.append(tx.adapters.types.get_oid(item))
            except KeyError:
                raise errors.ProgrammingError(
                    f"unknown type name {item!r}: use its OID, or register its TypeInfo"
                ) from None
        self._types = oids
        fmt = Format.BINARY if self._binary else Format.TEXT
        if self._direction == ExecStatus.COPY_OUT:
            tx.set_loader_types(oids, fmt)
        elif self._binary:
            self._binary_columns = [BinaryColumn(tx, oid, n) for n, oid in enumerate(oids)]

    # -- state checks ------------------------------------------------------

    def _active_tx(self) -> Transformer:
        if self._state == "pending":
            raise errors.ProgrammingError(
                "the COPY has not started: use the object in a `with cur.copy(...)` block"
            )
        if self._state == "closed":
            raise errors.ProgrammingError(
                "the COPY block has ended: this copy object cannot be used any more"
            )
        if self._state == "active" and self._conn.closed:
            # Closed from another task or thread (or lost) during the block:
            # nothing may look written, or read to its end (rule 7).
            raise self._closed_error()
        assert self._tx is not None
        return self._tx

    def _closed_error(self) -> errors.Error:
        if self._direction == ExecStatus.COPY_IN:
            return errors.InterfaceError(
                "the connection was closed during the COPY: nothing more can be written,"
                " and the data of this COPY was not committed"
            )
        return errors.InterfaceError(
            "the connection was closed during the COPY: the data read so far is incomplete"
        )

    def _check_direction(self, direction: ExecStatus, method: str) -> Transformer:
        tx = self._active_tx()
        if self._direction != direction:
            way = "COPY … FROM STDIN" if direction == ExecStatus.COPY_IN else "COPY … TO STDOUT"
            raise errors.ProgrammingError(f"{method}() works only in a {way} block")
        return tx

    def _copy_in_progress(self) -> bool:
        # After an interruption the adapter's recovery ended the COPY.
        return self._link.session_status() == TransactionStatus.ACTIVE

    # -- starting ----------------------------------------------------------

    def _start_gen(self) -> PQGen[None]:
        cursor, conn, link = self._cursor, self._conn, self._link
        cursor._check_open()
        if self._state != "pending":
            raise errors.ProgrammingError(
                "a COPY block can be entered only once: call cur.copy() again"
            )
        link.check_no_pipeline("copy")
        if conn.pgconn.pipeline_status != PipelineStatus.OFF:
            raise errors.NotSupportedError(
                "COPY cannot run in pipeline mode (libpq does not support it):"
                " run it after the pipeline() block"
            )
        cursor._reset()
        # A transformer of its own: the cursor's loads the COPY's final result
        # while rows read before it may still be waiting to be loaded.
        tx = self._tx = Transformer(cursor)
        statement = merge_params(self._statement, self._params, tx)
        yield from link.start_query_gen()
        conn.pgconn.send_query(statement)
        results = yield from generators.execute(conn.pgconn)
        status = results[-1].status if results else None
        if status not in (ExecStatus.COPY_IN, ExecStatus.COPY_OUT):
            # COPY BOTH (replication) is refused here while it is running:
            # the adapter's recovery then ends it.
            link.check_results(results)
            raise errors.ProgrammingError(
                "cur.copy() needs a COPY … FROM STDIN or COPY … TO STDOUT statement;"
                " the statement given ran as an ordinary one"
            )
        self._direction = ExecStatus(status)
        self._binary = results[-1].binary_tuples
        self._parser = BinaryParser() if self._binary else TextParser()
        self._state = "active"

    # -- writing -----------------------------------------------------------

    # The public methods check their use before anything waits: an error
    # raised inside the connection's wait while the COPY runs would make the
    # adapter cancel the COPY (rule 6).

    def _check_writable(self, method: str) -> Transformer:
        tx = self._check_direction(ExecStatus.COPY_IN, method)
        if self._state != "active":
            raise errors.ProgrammingError("the COPY has ended: nothing more can be written")
        return tx

    def _write_gen(self, data: Buffer | str) -> PQGen[None]:
        tx = self._check_writable("write")
        if isinstance(data, str):
            data = data.encode(tx.encoding.python_codec, tx.encoding.errors)
        self._raw_written = True
        return self._send_gen(data)

    def _send_gen(self, data: Buffer) -> PQGen[None]:
        if len(data) < BUFFER_SIZE:
            self._buffer += data
            if len(self._buffer) >= BUFFER_SIZE:
                yield from self._flush_gen()
            return
        # Large data is not copied into the buffer: it goes in slices.
        yield from self._flush_gen()
        view = memoryview(data).cast("B")
        for start in range(0, len(view), BUFFER_SIZE):
            yield from generators.copy_put(self._conn.pgconn, view[start : start + BUFFER_SIZE])

    def _add_row(self, values: Sequence[Any]) -> bool:
        """Format a row into the buffer; return True if the buffer is due to be sent."""
        tx = self._check_writable("write_row")
        types = self._types
        if types is not None and len(values) != len(types):
            raise errors.ProgrammingError(
                f"the row has {len(values)} values but set_types() declared {len(types)} columns"
            )
        if self._binary:
            columns = self._binary_columns
            if columns is None:
                raise errors.ProgrammingError(
                    "binary COPY data must match the columns' types exactly:"
                    " call set_types() with them before write_row()"
                )
            dumped: list[Buffer | None] = []
            for n, (value, column) in enumerate(zip(values, columns)):
                try:
                    dumped.append(None if value is None else column(value))
                except (errors.ProgrammingError, errors.DataError) as ex:
                    raise in_column(ex, n) from ex
            row = format_binary_row(dumped)
            if not self._rows_written:
                row = BINARY_HEADER + row
        else:
            row = format_text_row(tx, values, self._text_dumps)
        # Only whole rows reach the buffer: a value that fails leaves none.
        self._rows_written = True
        self._buffer += row
        return len(self._buffer) >= BUFFER_SIZE

    def _flush_gen(self) -> PQGen[None]:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        yield from generators.copy_put(self._conn.pgconn, data)

    # -- reading -----------------------------------------------------------

    def _read_gen(self) -> PQGen[bytes]:
        self._check_direction(ExecStatus.COPY_OUT, "read")
        return self._receive_gen()

    def _receive_gen(self) -> PQGen[bytes]:
        if self._state != "active":
            return b""
        pgconn = self._conn.pgconn
        data, ended = yield from generators.copy_get(pgconn, BUFFER_SIZE)
        if ended:
            # The results now, so a server error raises here, after the rows
            # that came before it.
            self._end_with((yield from generators.fetch_many(pgconn)))
        return data

    def _check_rows(self) -> Transformer:
        tx = self._check_direction(ExecStatus.COPY_OUT, "read_row")
        if self._types is None and self._binary:
            raise errors.ProgrammingError(
                "binary COPY data carries no types: call set_types() before reading rows"
            )
        return tx

    def _read_row_gen(self) -> PQGen[tuple[Any, ...] | None]:
        return self._receive_row_gen(self._check_rows())

    def _receive_row_gen(self, tx: Transformer) -> PQGen[tuple[Any, ...] | None]:
        parser = self._parser
        assert parser is not None
        pending = self._pending_rows
        while not pending:
            if self._state != "active":
                return None
            pending.extend(parser.parse((yield from self._receive_gen())))
        return self._load_row(tx, pending.popleft())

    def _parsed_row(self) -> tuple[Any, ...] | None:
        """The next row if a block already read holds it, else None: no waiter needed.

        A block holds hundreds of rows: ``read_row()`` goes through the
        connection's waiter only when they are all taken.
        """
        if not self._pending_rows:
            return None
        return self._load_row(self._check_rows(), self._pending_rows.popleft())

    def _load_row(self, tx: Transformer, record: list[bytes | None]) -> tuple[Any, ...]:
        if self._types is not None:
            return tx.load_sequence(record)
        codec, handler = tx.encoding.python_codec, tx.encoding.errors
        return tuple(None if v is None else v.decode(codec, handler) for v in record)

    # -- ending ------------------------------------------------------------

    def _end_with(self, results: list[PGresult]) -> None:
        """Take the final results of the COPY: set ``rowcount``, raise an error."""
        self._state = "finished"
        if results and results[-1].status in _COPY_STATUSES:
            # Another COPY in the same statement: refused while it runs, so
            # that the adapter's recovery ends it.
            raise errors.NotSupportedError("a copy() block runs a single COPY statement")
        self._link.check_results(results)
        cursor = self._cursor
        cursor._results = results
        cursor._select_result(0)

    @contextmanager
    def _ending(self, exc: BaseException | None) -> Iterator[None]:
        """Around the wait on ``_exit_gen()``: what its failure means, then the block is closed."""
        try:
            yield
        except _CopyAbandoned:
            pass  # (cancelled and drained by the connection's recovery: rule 5)
        except Exception as ex:
            if exc is None:
                raise
            # The block's own exception says more than a failed abort.
            logger.warning("aborting the COPY failed: %s", ex)
        finally:
            self._state = "closed"

    def _exit_gen(self, exc: BaseException | None) -> PQGen[None]:
        """End the COPY as the block is left (rules 4 to 6)."""
        if self._state != "active":
            return
        if self._conn.closed:
            self._state = "finished"
            if exc is None:
                raise self._closed_error()
            return
        if not self._copy_in_progress():
            self._state = "finished"
            if exc is None and self._direction == ExecStatus.COPY_IN:
                # An interruption inside the block, caught there: the recovery
                # aborted the COPY, so the block must not end as if it succeeded.
                raise errors.OperationalError(
                    "the COPY was interrupted and aborted: none of its data was committed"
                )
            return
        pgconn = self._conn.pgconn
        if self._direction == ExecStatus.COPY_OUT:
            self._state = "finished"
            raise _CopyAbandoned
        if exc is not None:
            self._buffer.clear()
            self._state = "finished"
            codec = self._conn.encoding
            yield from generators.copy_end(pgconn, abort_message(exc, codec))
            return  # the results hold the QueryCanceled we provoked
        if self._binary and (self._rows_written or not self._raw_written):
            if not self._rows_written:
                self._buffer += BINARY_HEADER  # no row at all: still a valid file
            self._buffer += BINARY_TRAILER
        yield from self._flush_gen()
        self._end_with((yield from generators.copy_end(pgconn, None)))
