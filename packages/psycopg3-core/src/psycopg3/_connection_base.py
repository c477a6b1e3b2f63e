"""The state and logic of a connection that do not involve waiting.

``BaseConnection`` holds everything an adapter's ``Connection`` needs except
the waiting itself: it builds the generators that the adapter hands to its
waiter, and decides what happens when a wait is interrupted.

Must not: wait, sleep, take a lock, or import a concurrency framework. An
adapter's method is a line under its lock: ``return wait(self._xxx_gen())``.

It is made of mixins, one module per concern, all in the bases layer:
``_interruption`` (what an interrupted wait leads to: the interruption policy
and its deadlines, ``CANCEL_TIMEOUT``, ``DRAIN_TIMEOUT``…, re-exported here),
``_server_messages`` (notices and notifications), ``_transaction``
(transaction characteristics), ``_transaction_control`` (commit, rollback,
the block factories) and ``_tpc`` (two-phase commit).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
import weakref
from typing import Any

from . import _interruption, errors, generators
from ._arguments import check_bool, check_callable, check_int
from ._attempts import split_attempts
from ._block_lock import AsyncConnectionLock, ConnectionLock
from ._conn_info import ConnectionInfo
from ._encodings import pgconn_encoding
from ._interruption import CANCEL_RETRY_INTERVAL as CANCEL_RETRY_INTERVAL
from ._interruption import CANCEL_TIMEOUT as CANCEL_TIMEOUT
from ._interruption import DRAIN_TIMEOUT as DRAIN_TIMEOUT
from ._interruption import RECOVER_POLL_INTERVAL as RECOVER_POLL_INTERVAL
from ._interruption import Interruption
from ._notify import NotifyState
from ._pipeline_queue import PipelineState, unsupported
from ._prepare import DEFAULT_PREPARE_THRESHOLD, MISSING_STATEMENT_SQLSTATE, PrepareManager
from ._server_messages import NoticeHandler as NoticeHandler
from ._server_messages import ServerMessages, _forward_notices
from ._tpc import TwoPhaseCommit
from ._transaction import BaseTransaction, TransactionCharacteristics
from ._transaction_control import TransactionControl
from .adapt import AdaptersMap
from .adapt import adapters as global_adapters
from .conninfo import conninfo_to_dict, make_conninfo, timeout_from_conninfo
from .pq import ExecStatus, PGconn, PGresult, TransactionStatus
from .rows import RowFactory, tuple_row
from .waiting import PQGen

logger = logging.getLogger("psycopg3")

_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)

#: Longest wait between two checks of the connect deadline.
CONNECT_POLL_INTERVAL = 1.0


#: The connections of this process, to reset their locks in a forked child.
_OPEN: weakref.WeakSet[BaseConnection] = weakref.WeakSet()


def shutdown_socket(fileno: int) -> None:
    """Shut a connection's socket down both ways, leaving the fd open (libpq closes it).

    Every wait on it, present or future, returns at once, and the server
    sees the disconnection; closing the fd instead would let its number be
    reused while a wait may still be made on it.
    """
    import socket  # (here: it imports selectors, which the core keeps out of its imports)

    sock = socket.socket(fileno=fileno)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected: nothing to wake
    finally:
        sock.detach()


def _after_fork_in_child() -> None:
    # Runs in the child right after fork(), after the PGconns were disowned.
    for conn in list(_OPEN):
        conn._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class BaseConnection(
    TransactionCharacteristics, TransactionControl, TwoPhaseCommit, ServerMessages, Interruption
):
    """Framework-free state and generators of a connection.

    :param pgconn: a connected ``PGconn`` in non-blocking mode.
    :param autocommit: whether each command commits on its own.
    """

    # The DB-API exception classes as attributes (a PEP 249 extension), so that
    # code holding only a connection can catch them.
    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(
        self,
        pgconn: PGconn,
        *,
        autocommit: bool = False,
        row_factory: RowFactory[Any] | None = None,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
    ):
        try:
            check_bool("connect() autocommit", autocommit)
            if row_factory is not None:
                check_callable("connect() row_factory", row_factory)
            check_int("connect() prepare_threshold", prepare_threshold, minimum=0, none_ok=True)
        except errors.ProgrammingError:
            pgconn.finish()  # (before it is ours: __del__ has nothing to say of it)
            raise
        self.pgconn = pgconn
        self._autocommit = autocommit
        self._closed_by_user = False
        self._broken = False
        self.adapters = AdaptersMap(global_adapters)
        #: The row factory of the cursors this connection creates (``psycopg3.rows``).
        self.row_factory: RowFactory[Any] = row_factory or tuple_row
        #: The ``transaction()`` blocks entered and not left, innermost last.
        self._transaction_blocks: list[BaseTransaction] = []
        self._notice_handlers: list[NoticeHandler] = []
        # Through a weak reference: a PGconn -> connection cycle would let the
        # garbage collector finish the PGconn before the connection can warn
        # that it was left open, and keep both alive until it runs.
        pgconn.notice_handler = _forward_notices(weakref.ref(self))
        self._prepare_manager = PrepareManager(prepare_threshold)
        #: The queue of the active ``pipeline()`` block, None outside one.
        self._pipeline: PipelineState | None = None
        self._notify = NotifyState()
        _OPEN.add(self)

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.closed:
            return f"<{cls} [closed] at 0x{id(self):x}>"
        status = self.pgconn.transaction_status.name
        return f"<{cls} [{status}] at 0x{id(self):x}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Bound as a default: at interpreter exit the module may be gone.
        pgconn = getattr(self, "pgconn", None)
        if pgconn is None or pgconn.closed or not pgconn.owned_here or _warn is None:
            return
        # The PGconn finishes itself when collected: this only tells the user
        # that a connection was left to the garbage collector.
        _warn(
            f"{type(self).__qualname__} was garbage collected while open;"
            " close it, or use it as a context manager",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )

    def _after_fork_in_child(self) -> None:
        # The lock was copied in whatever state the parent's threads or tasks
        # left it: held by one of them, it would stay held forever here, and
        # a use of the connection would hang instead of raising the clear
        # error of the disowned PGconn. The core's connection locks make
        # their locks anew (also because the child may run another event
        # loop than the parent's).
        lock = getattr(self, "lock", None)
        if isinstance(lock, (ConnectionLock, AsyncConnectionLock)):
            lock.after_fork_in_child()

    # -- state -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection was closed, by the user or by a failure."""
        # pgconn.closed, not its status: a connection lost and then closed
        # has no PGconn left to ask, and in a forked child the status is no
        # longer readable; either way the connection is not open.
        return self._closed_by_user or self._broken or self.pgconn.closed

    def _session_status(self) -> TransactionStatus:
        """The transaction status while open; UNKNOWN once closed.

        One libpq call where ``closed`` then ``transaction_status`` make two:
        libpq answers UNKNOWN for a connection whose status is not OK.
        """
        if self._closed_by_user or self._broken or self.pgconn.pgconn_ptr is None:
            return TransactionStatus.UNKNOWN
        return self.pgconn.transaction_status

    @property
    def broken(self) -> bool:
        """True if the connection was lost or abandoned, not closed by the user."""
        if not self._broken and not self._closed_by_user and self.pgconn.closed:
            # (Once broken the PGconn is finished: its status cannot be read.)
            self._broken = True
        return self._broken

    @property
    def prepare_threshold(self) -> int | None:
        """Executions of a query after which it is prepared on the server.

        None disables automatic preparing (needed behind PgBouncer in
        transaction mode); 0 prepares every query from its first execution.
        """
        return self._prepare_manager.prepare_threshold

    @prepare_threshold.setter
    def prepare_threshold(self, value: int | None) -> None:
        check_int("prepare_threshold", value, minimum=0, none_ok=True)
        self._prepare_manager.prepare_threshold = value

    @property
    def prepared_max(self) -> int:
        """How many prepared statements the connection keeps (least used go first)."""
        return self._prepare_manager.prepared_max

    @prepared_max.setter
    def prepared_max(self, value: int) -> None:
        self._prepare_manager.prepared_max = value

    def _deallocate_evicted_gen(self) -> PQGen[None]:
        """Deallocate the statements the cache let go, outside transactions only.

        (In a transaction a failing DEALLOCATE would abort the user's work.)
        A statement already gone (deallocated by the user's SQL) is not an
        error: the user's command, which succeeded, must not seem to fail.
        """
        if self._pipeline is not None or self.pgconn.transaction_status != TransactionStatus.IDLE:
            return  # (a pipeline block deallocates them when it ends)
        for name in self._prepare_manager.take_evicted():
            self.pgconn.send_query(b"DEALLOCATE " + name)
            results = yield from self._results_gen()
            if not any(
                r.status == ExecStatus.FATAL_ERROR
                and r.error_field(ord("C")) == MISSING_STATEMENT_SQLSTATE
                for r in results
            ):
                self._check_results(results)

    @property
    def autocommit(self) -> bool:
        """Whether each command is committed on its own."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        check_bool("autocommit", value)
        self._check_usable()
        if self._transaction_blocks:
            raise errors.ProgrammingError(
                "cannot change autocommit inside a transaction() block: leave the block first"
            )
        self._check_no_transaction(
            in_tpc="cannot change autocommit in a two-phase transaction:"
            " call tpc_commit() or tpc_rollback() first",
            in_transaction="cannot change autocommit inside a transaction:"
            " call commit() or rollback() first",
        )
        self._autocommit = value

    @property
    def encoding(self) -> str:
        """The Python codec matching the connection's client encoding."""
        return pgconn_encoding(self.pgconn)

    def _check_usable(self) -> None:
        # Cheap on purpose: it runs before every command. A connection lost
        # since the last command is found out by libpq when sending.
        if self.pgconn.inherited:
            raise self.pgconn.inherited_error()
        if self._closed_by_user:
            raise errors.InterfaceError("the connection is closed")
        if self._broken:
            raise errors.OperationalError("the connection is lost (it is broken)")

    def _close(self) -> None:
        if not self.closed:
            self._closed_by_user = True
        self.pgconn.finish()
        self._notify.end()  # (the listeners' duplicate of the socket: ``_notify`` rule 8)

    def _mark_broken(self) -> None:
        self._broken = True
        self.pgconn.finish()

    @property
    def info(self) -> ConnectionInfo:
        """What the connection is connected to: host, port, server version, status…"""
        return ConnectionInfo(self.pgconn)

    def _log_failed_rollback(self, ex: BaseException) -> None:
        logger.warning("rollback on leaving the transaction block failed: %s", ex)

    # -- connecting ------------------------------------------------------

    @classmethod
    def _connect_gen(cls, conninfo: str = "", **kwargs: Any) -> tuple[PQGen[PGconn], float | None]:
        """Return the connect generator and the timeout its waiter must use.

        :param conninfo: a libpq connection string or URI.
        :param kwargs: connection parameters; they override ``conninfo``.
        """
        params = conninfo_to_dict(make_conninfo(conninfo, **kwargs))
        timeout = timeout_from_conninfo(params)
        attempts = [attempt.encode("utf-8") for attempt in split_attempts(params)]
        gen = generators.connect_attempts(attempts, timeout=timeout)
        wait_timeout = None if timeout is None else min(timeout, CONNECT_POLL_INTERVAL)
        return gen, wait_timeout

    # -- commands --------------------------------------------------------

    def _needs_begin(self) -> bool:
        """Tell if the DB-API implicit transaction must be opened first."""
        if self._autocommit:
            return False
        pipeline = self._pipeline
        if pipeline is not None and pipeline.begin_pending:
            return False  # queued, not answered yet: the status does not show it
        return self.pgconn.transaction_status == TransactionStatus.IDLE

    def _start_query_gen(self) -> PQGen[None]:
        """Open a transaction first if the DB-API implicit one is due.

        Only for commands that need the connection to themselves: refused in
        a pipeline block (where cursors have their own path).
        """
        self._check_usable()
        if self._pipeline is not None:
            raise unsupported("this operation")
        if self._needs_begin():
            yield from self._exec_command_gen(self._begin_command())

    def _exec_command_gen(self, command: bytes) -> PQGen[None]:
        """Run a parameterless command, raising if the server reports an error.

        In a pipeline block the command is queued and synced at once.
        """
        self._check_usable()
        if self._pipeline is not None:
            yield from self._pipeline.command_gen(command)
            return
        codec = self.encoding
        self.pgconn.send_query(command)
        results = yield from self._results_gen()
        self._check_results(results, codec)

    def _results_gen(self) -> PQGen[list[PGresult]]:
        """Flush the command just sent and return its results.

        A COPY started by a plain execute is ended at once (the COPY has its
        own API): what follows it is read, and the COPY result is left last
        for ``_check_results()`` to report.
        """
        if self._pipeline is not None:
            # Sent by code that does not know pipelines: keep the queue in step, refuse.
            raise self._pipeline.adopt_foreign("this operation")
        results = yield from generators.execute(self.pgconn)
        self._deliver_pending_notifies()
        if results and results[-1].status in _COPY_STATUSES:
            # (read from its module at each use: tests shorten it there)
            deadline = time.monotonic() + _interruption.DRAIN_TIMEOUT
            yield from generators.drain(self.pgconn, deadline=deadline)
        return results

    def _check_results(self, results: list[PGresult], codec: str | None = None) -> None:
        # codec: the encoding the command was sent in, to read its error in:
        # a failed transaction reverts a SET client_encoding made in it after
        # sending the error (see psycopg3._encodings, rule 5).
        for result in results:
            status = result.status
            if status == ExecStatus.FATAL_ERROR or status == ExecStatus.BAD_RESPONSE:
                error = errors.error_from_result(result, codec or self.encoding)
                if error.sqlstate is None:
                    # libpq's own error (lost synchronisation, a message it
                    # cannot parse…): what follows on the wire cannot be trusted.
                    self._mark_broken()
                raise error
            if status in _COPY_STATUSES:
                raise errors.NotSupportedError(
                    "COPY cannot run through execute(): it was aborted, and the"
                    " transaction with it if one was open"
                )
