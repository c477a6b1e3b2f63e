"""What a connection does when a wait is interrupted: cancel, drain, or give up.

The ``Interruption`` mixin of ``BaseConnection`` (bases layer): it decides
whether an interrupted command must be recovered and builds the generators
that send the cancel request and drain what is left. Its deadlines are the
module constants below (patch them here: the code reads them from here).

Must not: wait, sleep, take a lock, or import a concurrency framework; the
adapter drives the generators with its waiter.

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
import time
from typing import TYPE_CHECKING

from . import errors, generators
from ._cancel import CancelOutcome, WorkerStarter, cancel, start_os_thread
from .pq import PGconn, TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._pipeline import PipelineState

__all__ = [
    "CANCEL_TIMEOUT",
    "DRAIN_TIMEOUT",
    "CANCEL_RETRY_INTERVAL",
    "RECOVER_POLL_INTERVAL",
    "Interruption",
]

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


class Interruption:
    """The interruption part of ``BaseConnection`` (a mixin): cancel and recover."""

    #: How a cancel request gets an OS thread with a libpq older than 17,
    #: whose ``PQcancel`` blocks (see ``psycopg3._cancel``, rule 5). An
    #: adapter for a framework that patches ``threading`` (gevent, eventlet)
    #: sets it to a ``WorkerStarter`` reaching real threads.
    start_cancel_worker: WorkerStarter = staticmethod(start_os_thread)

    if TYPE_CHECKING:  # provided by BaseConnection
        pgconn: PGconn
        _closed_by_user: bool
        _broken: bool
        _pipeline: PipelineState | None

        @property
        def closed(self) -> bool: ...
        def _mark_broken(self) -> None: ...

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
