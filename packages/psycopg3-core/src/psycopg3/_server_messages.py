"""What the server sends unasked: notices and notifications.

The ``ServerMessages`` mixin of ``BaseConnection`` (bases layer): the
handlers of notices (``add_notice_handler()``) and of ``LISTEN``
notifications (``add_notify_handler()``, ``notifies()``), and the delivery of
what libpq parsed along with a command's results.

Must not: wait, sleep, take a lock, or import a concurrency framework; a
handler is called with the connection busy and must not use it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import errors, generators
from ._notify import NotifyHandler, NotifyIteration, NotifyState
from .pq import PGconn, PGresult, TransactionStatus

__all__ = ["NoticeHandler", "ServerMessages"]

logger = logging.getLogger("psycopg3")

#: What ``add_notice_handler()`` accepts: called with each notice or warning.
NoticeHandler = Callable[[errors.Diagnostic], None]


def _forward_notices(conn_ref: weakref.ref[ServerMessages]) -> Callable[[PGresult], None]:
    """The PGconn's notice handler, passing each notice to the connection if still alive."""

    def forward(result: PGresult) -> None:
        conn = conn_ref()
        if conn is not None:
            conn._on_notice(result)

    return forward


class ServerMessages:
    """The notices and notifications part of ``BaseConnection`` (a mixin)."""

    if TYPE_CHECKING:  # provided by BaseConnection
        pgconn: PGconn
        _notice_handlers: list[NoticeHandler]
        _notify: NotifyState

        @property
        def closed(self) -> bool: ...
        @property
        def encoding(self) -> str: ...
        def _check_usable(self) -> None: ...
        def _check_no_pipeline(self, method: str) -> None: ...
        def _mark_broken(self) -> None: ...

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
