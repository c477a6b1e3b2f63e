"""The state and logic of a connection that do not involve waiting.

``BaseConnection`` holds everything an adapter's ``Connection`` needs except
the waiting itself: it builds the generators that the adapter hands to its
waiter, and decides what happens when a wait is interrupted.

Must not: wait, sleep, take a lock, or import a concurrency framework. An
adapter's method is a line under its lock: ``return wait(self._xxx_gen())``.

The interruption policy, written once here for every adapter:

1. A wait that raises (Ctrl-C, task cancellation, a cancel scope, a lost
   connection) is reported by the adapter to ``_interrupted()``.
2. If the connection is lost, it is marked broken and nothing more is done.
3. If a command was in progress, the adapter drives ``_recover_gen()``,
   shielded from further cancellation: it sends a cancel request (bounded by
   ``CANCEL_TIMEOUT``; see ``psycopg3._cancel`` for how it avoids blocking),
   then reads and discards the rest of the command, repeating the request
   while the server stays silent.
4. A recovery that fails or does not finish in time closes the connection
   and marks it broken: never a hang, never stale results handed to the
   next command, never a late cancel request hitting the next command.
5. Only then is the original exception re-raised.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from . import errors, generators
from ._arguments import check_bool, check_callable, check_int
from ._attempts import split_attempts
from ._block_lock import AsyncConnectionLock, ConnectionLock
from ._cancel import CancelOutcome, WorkerStarter, cancel, start_os_thread
from ._conn_info import ConnectionInfo
from ._encodings import pgconn_encoding
from ._notify import NotifyHandler, NotifyIteration, NotifyState
from ._pipeline import PipelineState, unsupported
from ._prepare import DEFAULT_PREPARE_THRESHOLD, MISSING_STATEMENT_SQLSTATE, PrepareManager
from ._tpc import TwoPhaseCommit
from ._transaction import BaseTransaction, TransactionCharacteristics
from .adapt import AdaptersMap
from .adapt import adapters as global_adapters
from .conninfo import conninfo_to_dict, make_conninfo, timeout_from_conninfo
from .pq import ExecStatus, PGconn, PGresult, TransactionStatus
from .rows import RowFactory, tuple_row
from .waiting import PQGen

logger = logging.getLogger("psycopg3")

#: Seconds given to a cancel request before giving up on it.
CANCEL_TIMEOUT = 5.0
#: Seconds given to the drain after an interruption before closing.
DRAIN_TIMEOUT = 5.0
#: Seconds of silence from the server during a drain before the cancel
#: request is sent again (doubling each time).
CANCEL_RETRY_INTERVAL = 0.5
#: The waiter timeout for ``_recover_gen()`` and ``_cancel_gen()``: how
#: often they wake up to check their deadlines when nothing happens.
RECOVER_POLL_INTERVAL = 0.1
_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)

#: Longest wait between two checks of the connect deadline.
CONNECT_POLL_INTERVAL = 1.0


#: What ``add_notice_handler()`` accepts: called with each notice or warning.
NoticeHandler = Callable[[errors.Diagnostic], None]


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


def _forward_notices(conn_ref: weakref.ref[BaseConnection]) -> Callable[[PGresult], None]:
    def forward(result: PGresult) -> None:
        conn = conn_ref()
        if conn is not None:
            conn._on_notice(result)

    return forward


class BaseConnection(TransactionCharacteristics, TwoPhaseCommit):
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

    #: How a cancel request gets an OS thread with a libpq older than 17,
    #: whose ``PQcancel`` blocks (see ``psycopg3._cancel``, rule 5). An
    #: adapter for a framework that patches ``threading`` (gevent, eventlet)
    #: sets it to a ``WorkerStarter`` reaching real threads.
    start_cancel_worker: WorkerStarter = staticmethod(start_os_thread)

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
        if self._tpc_xid is not None:
            raise errors.ProgrammingError(
                "cannot change autocommit in a two-phase transaction:"
                " call tpc_commit() or tpc_rollback() first"
            )
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            raise errors.ProgrammingError(
                "cannot change autocommit inside a transaction: call commit() or rollback() first"
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

    def _mark_broken(self) -> None:
        self._broken = True
        self.pgconn.finish()

    @property
    def info(self) -> ConnectionInfo:
        """What the connection is connected to: host, port, server version, status…"""
        return ConnectionInfo(self.pgconn)

    # -- notices ---------------------------------------------------------

    def add_notice_handler(self, handler: NoticeHandler) -> None:
        """Call ``handler`` with each notice or warning the server sends.

        The handler receives a ``psycopg3.errors.Diagnostic`` (``severity``,
        ``message_primary``…), in the order the server sent them, while the
        connection is busy: it must not use the connection. An exception it
        raises is logged and ignored. Once a handler is added, notices are no
        longer logged by default.
        """
        self._notice_handlers.append(handler)

    def remove_notice_handler(self, handler: NoticeHandler) -> None:
        """Stop calling a handler added by ``add_notice_handler()``.

        :raises ValueError: if the handler was not added.
        """
        self._notice_handlers.remove(handler)

    def _on_notice(self, result: PGresult) -> None:
        # libpq frees the result when we return: read every field now.
        diag = errors.Diagnostic(result, self.encoding)
        diag.__setstate__(diag.__getstate__())
        if not self._notice_handlers:
            severity = diag.severity_nonlocalized or ""
            level = logging.WARNING if severity == "WARNING" else logging.INFO
            logger.log(level, "server %s: %s", severity.lower() or "notice", diag.message_primary)
            return
        for handler in list(self._notice_handlers):
            try:
                handler(diag)
            except Exception:
                logger.exception("the notice handler %r failed", handler)

    def _log_failed_rollback(self, ex: BaseException) -> None:
        logger.warning("rollback on leaving the transaction block failed: %s", ex)

    # -- notifications ---------------------------------------------------

    def add_notify_handler(self, handler: NotifyHandler) -> None:
        """Call ``handler`` with each ``psycopg3.Notify`` the connection receives.

        It is called as soon as a notification is read: during any command
        (in the thread or task running it, with the connection's lock held:
        it must not use the connection) or during ``notifies()``. An
        exception it raises is logged and ignored. See ``psycopg3._notify``
        for which notifications ``notifies()`` still yields afterwards.
        """
        self._notify.handlers.append(handler)

    def remove_notify_handler(self, handler: NotifyHandler) -> None:
        """Stop calling a handler added by ``add_notify_handler()``.

        :raises ValueError: if the handler was not added.
        """
        self._notify.handlers.remove(handler)

    def _start_notifies(self, timeout: float | None, stop_after: int | None) -> NotifyIteration:
        """Begin a ``notifies()`` iteration; warn if it cannot receive anything yet."""
        self._check_usable()
        self._check_no_pipeline("notifies")
        if self.pgconn.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            # The classic DB-API trap: LISTEN opened a transaction and is not
            # committed yet, and nothing is delivered inside a transaction.
            # (ACTIVE is another thread's command in progress, not a transaction.)
            logger.warning(
                "notifies() called inside a transaction: PostgreSQL delivers notifications"
                " only between transactions (and LISTEN takes effect at commit);"
                " commit first, or use autocommit"
            )
        return NotifyIteration(self._notify, timeout, stop_after)

    def _deliver_pending_notifies(self) -> None:
        """Deliver the notifications libpq parsed along with a command's results.

        Call it wherever results are read: with none pending (the usual
        case) it costs one ``PQnotifies`` call.
        """
        pgnotify = self.pgconn.notifies()
        if pgnotify is not None:
            self._notify.deliver(self.pgconn, [pgnotify, *generators.read_notifies(self.pgconn)])

    def _check_listening(self) -> None:
        if self.closed:
            raise errors.OperationalError(
                "the connection was closed while waiting for notifications"
            )

    def _receive_notifies(self) -> bool:
        """Read, without waiting, what the server sent; deliver its notifications.

        Run under the connection's lock. Return True if any was delivered.
        """
        self._check_listening()
        try:
            received = generators.read_notifies(self.pgconn)
        except errors.OperationalError:
            if self.pgconn.closed:
                self._mark_broken()
            raise
        if received:
            self._notify.deliver(self.pgconn, received)
        return bool(received)

    def _notifies_gen(self) -> PQGen[None]:
        """Wait once for notifications (see ``generators.notifies``) and deliver them.

        Drive it under the lock with a waiter timeout of at most
        ``NOTIFY_POLL_INTERVAL``: it returns when it times out, so that the
        caller can check its deadline and let other users of the connection in.
        """
        self._check_listening()
        received = yield from generators.notifies(self.pgconn)
        if received:
            self._notify.deliver(self.pgconn, received)

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
            deadline = time.monotonic() + DRAIN_TIMEOUT
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

    def _check_no_pipeline(self, method: str) -> None:
        if self._pipeline is not None:
            raise unsupported(f"{method}()")

    def _in_block(self) -> bool:
        """Tell if a ``transaction()`` or ``pipeline()`` block is open (it owns the lock)."""
        return bool(self._transaction_blocks) or self._pipeline is not None

    def _check_no_transaction_block(self, method: str) -> None:
        if self._transaction_blocks:
            raise errors.ProgrammingError(
                f"{method}() cannot be used inside a transaction() block: leave the block to"
                " commit, or raise psycopg3.Rollback in it to roll back"
            )

    def _commit_gen(self) -> PQGen[None]:
        self._check_usable()
        self._check_no_transaction_block("commit")
        self._check_not_tpc("commit")
        if self._pipeline is not None:
            # The status is exact only after a sync; the batch's first error
            # is raised here, and nothing is committed.
            yield from self._pipeline.sync_gen()
            self._pipeline.raise_unreported()
        if self.pgconn.transaction_status == TransactionStatus.IDLE:
            return
        yield from self._exec_command_gen(b"COMMIT")

    def _rollback_gen(self) -> PQGen[None]:
        self._check_usable()
        self._check_no_transaction_block("rollback")
        self._check_not_tpc("rollback")
        if self._pipeline is not None:
            yield from self._pipeline.sync_gen()
            if self.pgconn.transaction_status == TransactionStatus.INERROR:
                # The errors that failed the transaction go with it.
                self._pipeline.discard_unreported()
        if self.pgconn.transaction_status == TransactionStatus.IDLE:
            return
        yield from self._exec_command_gen(b"ROLLBACK")

    def _exit_gen(self, exc: BaseException | None) -> PQGen[None]:
        """What leaving a ``with`` block does before closing: commit or roll back."""
        if self.closed:
            return
        if exc is None:
            yield from self._commit_gen()
            return
        try:
            yield from self._rollback_gen()
        except errors.Error as ex:
            # The user's exception matters more than a failed rollback.
            logger.warning("rollback on leaving the connection block failed: %s", ex)

    # -- interruption ----------------------------------------------------

    def _interrupted(self) -> bool:
        """Report that a wait raised; return True if cancel and drain must run."""
        if self._closed_by_user or self._broken:
            return False
        if self.pgconn.closed:
            self._mark_broken()
            return False
        pipeline = self._pipeline
        if pipeline is not None and not pipeline.abandoned:
            # An error raised by the pipeline's own logic between waits: the
            # queued commands are still wanted (rule 6 of ``_pipeline``).
            return False
        return self.pgconn.transaction_status == TransactionStatus.ACTIVE

    def _closed_while_waiting(self, ex: BaseException) -> errors.OperationalError | None:
        """The error to raise instead of ``ex`` if ``close()`` ended the wait that raised it.

        Closed from another task or thread, a wait fails with whatever the
        framework or libpq makes of a vanished socket (an ``OSError``, a
        framework's own exception, "server closed the connection"): the
        adapter raises this clear error from it. A cancellation, a server's
        error and an ``InterfaceError`` (already about the closing) are kept.
        """
        if not self._closed_by_user or not isinstance(ex, Exception):
            return None
        if isinstance(ex, errors.InterfaceError) or getattr(ex, "sqlstate", None):
            return None
        return errors.OperationalError(
            "the connection was closed (close() from another task or thread) while waiting"
            " for the server: the operation did not complete (an open transaction is"
            " rolled back by the server; a statement or COMMIT already running there may"
            " have finished)"
        )

    def _cancel_gen(self) -> PQGen[CancelOutcome]:
        """Send a cancel request for the command in progress, within ``CANCEL_TIMEOUT``.

        The generator behind the public ``cancel()``: it never touches the
        connection's own socket, so it runs while another thread or task
        waits on the connection. Drive it with a waiter timeout of
        ``RECOVER_POLL_INTERVAL``.
        """
        if self.pgconn.inherited:
            raise self.pgconn.inherited_error()  # the command is the parent's
        if self.closed:
            return CancelOutcome.FAILED
        return (yield from self._cancel_request(self.pgconn))

    def _cancel_request(self, pgconn: PGconn) -> PQGen[CancelOutcome]:
        deadline = time.monotonic() + CANCEL_TIMEOUT
        return cancel(pgconn, deadline=deadline, start_worker=self.start_cancel_worker)

    def _recover_gen(self) -> PQGen[None]:
        """Cancel and drain the interrupted command; never raises Exception.

        The adapter drives it after ``_interrupted()`` returned True,
        shielded from further cancellation, with a waiter timeout of
        ``RECOVER_POLL_INTERVAL``. It ends within ``CANCEL_TIMEOUT`` +
        ``DRAIN_TIMEOUT`` (plus a repeated request's own bound) with the
        connection idle and in sync, or closed and marked broken:

        * a cancel request that got no answer in time may still arrive later
          and cancel an innocent command: the connection is closed;
        * while the server stays silent the request is repeated, with
          growing intervals: it may have reached the server before the
          command did, and the server ignores those;
        * a drain that fails or runs out of time closes the connection.

        If the recovery is itself interrupted (the waiter closes it), the
        connection is closed too: its state is unknown.
        """
        pgconn = self.pgconn

        def cancel_again() -> PQGen[None]:
            outcome = yield from self._cancel_request(pgconn)
            if outcome == CancelOutcome.TIMED_OUT:
                raise errors.OperationalError("a repeated cancel request got no answer in time")

        try:
            outcome = yield from self._cancel_request(pgconn)
            if outcome == CancelOutcome.TIMED_OUT:
                raise errors.OperationalError("the cancel request got no answer in time")
            yield from generators.drain(
                pgconn,
                deadline=time.monotonic() + DRAIN_TIMEOUT,
                on_silence=cancel_again,
                silence=CANCEL_RETRY_INTERVAL,
            )
        except Exception as ex:
            logger.warning("closing the connection after an interruption: %s", ex)
            self._mark_broken()
        except BaseException:
            self._mark_broken()
            raise
