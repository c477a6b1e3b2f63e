"""``executemany()``: one query run with many parameter sets.

The ``ExecuteMany`` mixin of ``BaseCursor`` (bases layer): it converts every
parameter set first, then sends them all before reading (one pipeline with
libpq >= 14), preparing the statement once when the prepare rules say so.

Must not: wait, take a lock, or import a concurrency framework; the adapter
drives the generator under the connection's lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from . import _pipeline, errors, generators
from ._arguments import check_iterable
from ._encodings import may_change_encoding
from ._queries import Params, PostgresQuery, Query
from .pq import ExecStatus, Format, PGresult, TransactionStatus, version
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection
    from ._cursor_base import BaseCursor
    from ._link import Link
    from ._transformer import Transformer

__all__ = ["ExecuteMany"]

_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)
#: The first libpq version with pipeline mode (``PQlibVersion()``).
_PIPELINE_LIBPQ = 140000


class ExecuteMany:
    """The ``executemany()`` part of ``BaseCursor`` (a mixin)."""

    if TYPE_CHECKING:  # provided by BaseCursor
        _conn: BaseConnection
        _link: Link
        _binary: bool
        _results: list[PGresult]
        _rowcount: int

        def _check_open(self) -> None: ...
        def _reset(self) -> None: ...
        def _fresh_transformer(self) -> Transformer: ...
        def _check_encoding_changed(self) -> None: ...
        def _select_result(self, index: int) -> None: ...

    def _executemany_gen(
        self, query: Query, params_seq: Iterable[Params], *, returning: bool = False
    ) -> PQGen[None]:
        """Run ``query`` once per parameter set, sending them all before reading.

        Every parameter set is converted before anything is sent, so a value
        that cannot be dumped raises with nothing executed. With libpq >= 14
        the statements go in one pipeline (see
        ``generators.pipeline_execute_many``): with no transaction open
        (autocommit), they form one implicit transaction and an error rolls
        them all back; otherwise they run inside the current transaction.
        Older libpq runs them one by one.

        ``rowcount`` becomes the sum of every statement's; with ``returning``
        the result of each statement is kept, reachable with ``nextset()``.
        """
        check_iterable("executemany() params_seq", params_seq)
        self._check_open()
        self._reset()
        link = self._link
        pgconn = self._conn.pgconn
        tx = self._fresh_transformer()
        result_format = Format.BINARY if self._binary else Format.TEXT
        commands: list[generators.PipelineCommand] = []
        for params in params_seq:
            pg_query = PostgresQuery(tx)
            pg_query.convert(query, params)
            values, types, formats = list(pg_query.params or ()), pg_query.types, pg_query.formats
            commands.append((pg_query.query, values, types[:], formats[:], result_format))
        if not commands:
            self._rowcount = 0
            return
        if _pipeline.copies_with_client(commands[0][0]):
            # Several in one pipeline, the first would turn the next into a
            # protocol violation that ends the session (``_pipeline``, rule 8).
            raise errors.NotSupportedError(
                "COPY cannot run through executemany(): use cursor.copy()"
            )
        if len(commands) > 1 and may_change_encoding(commands[0][0]):
            raise errors.NotSupportedError(
                "executemany() cannot run a statement that may change the client"
                " encoding (its text names client_encoding, SET NAMES or RESET/DISCARD"
                " ALL): every parameter set is encoded before the first one runs."
                " Call execute() once per parameter set instead"
            )
        if link.pipeline is not None:
            cursor = cast("BaseCursor[Any]", self)  # (the only class this mixin is part of)
            yield from _pipeline.executemany_gen(cursor, commands, returning)
            return
        manager = link.prepare_manager
        # As in execute(): a prepared statement found missing is run again
        # only if no transaction was open (all the statements were rolled back).
        rerun_safe = pgconn.transaction_status == TransactionStatus.IDLE
        if rerun_safe and manager.has_evicted:
            yield from link.deallocate_evicted_gen()  # (as in execute())
        while True:
            yield from link.start_query_gen()
            if version() < _PIPELINE_LIBPQ:
                per_command = []
                for command in commands:
                    pgconn.send_query_params(*command)
                    per_command.append((yield from link.results_gen()))
                    manager.check_results(per_command[-1])
                    link.check_results(per_command[-1])  # stop at the first error
                break
            sent = commands[:]  # (rewritten to run by name)
            name = yield from self._prepare_many_gen(sent)
            # Interrupted half-way, libpq is left in pipeline mode with results
            # pending: the recovery after an interruption syncs and leaves it.
            per_command = yield from generators.pipeline_execute_many(pgconn, sent, prepared=name)
            link.deliver_pending_notifies()
            missing = False
            for command, command_results in zip(sent, per_command):
                missing |= manager.check_results(command_results, by_name=command[0] is name)
            if not (missing and rerun_safe):
                break
            rerun_safe = False
            if pgconn.transaction_status == TransactionStatus.INERROR:
                yield from link.exec_command_gen(b"ROLLBACK")  # our own BEGIN's transaction
        codec = tx.encoding.python_codec
        for command_results in per_command:
            if any(r.status in _COPY_STATUSES for r in command_results):
                raise errors.NotSupportedError(
                    "COPY cannot run through executemany() (it was ended, and the"
                    " transaction aborted if one was open): use cursor.copy()"
                )
            link.check_results(command_results, codec)  # the pipeline's first error
            if not command_results:
                raise errors.InternalError("executemany() got no result for a statement")
        yield from link.deallocate_evicted_gen()
        rowcount = sum(r.command_tuples or 0 for results in per_command for r in results)
        self._check_encoding_changed()
        if returning:
            self._results = [results[-1] for results in per_command if results]
            self._select_result(0)
        self._rowcount = rowcount

    def _prepare_many_gen(self, commands: list[generators.PipelineCommand]) -> PQGen[bytes | None]:
        """Prepare the statement of an ``executemany`` if the prepare rules say so.

        Each parameter set counts as one execution towards
        ``prepare_threshold``: a batch of that many or more is prepared once
        (one round trip) and executed by name, so the server parses and plans
        it once rather than per row. The commands with the statement's
        parameter types (a None value changes them) are rewritten to run it;
        return its name, or None if nothing runs prepared.
        """
        link = self._link
        manager = link.prepare_manager
        query, _, types, _, _ = commands[0]
        key, name, must_prepare, by_name = manager.decide_many(query, [c[2] for c in commands])
        if name is None:
            return None
        if must_prepare:
            self._conn.pgconn.send_prepare(name, query, param_types=types)
            yield from link.checked_results_gen()
            manager.prepared(key, name)
        for i, command in enumerate(commands):
            if by_name[i]:
                commands[i] = (name, *command[1:])
        return name
