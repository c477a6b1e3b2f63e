"""``PGconn``: a typed wrapper of libpq's connection, bytes in and bytes out.

Must not: wait on the socket, decide policy (what a failed result means, how
to retry), or pass a finished connection's pointer to libpq.

Rules of this module:

1. Every method starts with ``self._ptr()``: the one guard that raises
   OperationalError on a finished connection instead of handing NULL to C.
2. Every C string and C int built from caller data goes through
   ``_cstrings``, which rejects NUL bytes and values a C int cannot hold.
3. A failed libpq call raises OperationalError with libpq's message; a
   result with an error status is returned, not raised (that is policy).
4. ``__del__`` finishes the connection once, and never in a forked child:
   there PQfinish would send Terminate on the parent's socket.
5. A connection inherited through ``fork()`` is disowned in the child at
   once (see ``_disown_inherited``): it never sends or reads a byte there.
6. ``finish()`` and the few reads made from any thread while another one
   may finish the connection (``closed``, ``with_socket()``, the cancel
   handles) exclude each other (``_lifetime``): such a read sees the
   connection open and alive, or finished, never half freed; and its
   socket is never a number that the system has already given to another
   file. The guard is held only around short calls that never wait for
   the server.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ..errors import InterfaceError, OperationalError
from . import _libpq as impl
from . import _live
from ._accessors import libpq_property, or_empty
from ._cstrings import check_nul
from ._enums import (
    ConnStatus,
    PollingStatus,
    conn_status,
    polling_status,
    transaction_status,
)
from ._escaping import EscapingMixin
from ._execute import ExecuteMixin, missing_feature
from ._info import InfoMixin
from .pgcancel import PGcancel, PGcancelConn
from .pgresult import PGresult

__all__ = ["PGconn", "NoticeHandler"]

logger = logging.getLogger("psycopg3")

NoticeHandler = Callable[[PGresult], None]


def _deliver_notice(conn_ref: weakref.ref[PGconn], res_ptr: int | None) -> None:
    # Runs inside a libpq call, through C: nothing may propagate from here.
    conn = conn_ref()
    handler = conn.notice_handler if conn is not None else None
    if handler is None or res_ptr is None:
        return
    result = PGresult.borrow(res_ptr)
    try:
        handler(result)
    except Exception:
        logger.exception("error in the notice handler %r", handler)
    finally:
        # libpq frees the notice after we return: a handler that kept the
        # result gets "the result was cleared", not freed memory.
        result.clear()


class PGconn(ExecuteMixin, InfoMixin, EscapingMixin):
    """A libpq connection. Build it with `connect()` or `connect_start()`.

    Its methods are grouped by concern in mixins (each with ``__slots__ = ()``):
    queries, COPY and pipelines in ``_execute``; the server's and session's
    description in ``_info``; escaping and password hashing in ``_escaping``.
    This class keeps the lifetime, the status, the socket and cancelling.
    """

    __slots__ = (
        "_pgconn_ptr",
        "_lifetime",
        "_creator_pid",
        "_disowned",
        "_notice_receiver",
        "notice_handler",
        "__weakref__",
    )

    def __init__(self, pgconn_ptr: int):
        self._pgconn_ptr: int | None = pgconn_ptr
        # (Rule 6.) Reentrant: a notice handler or a collected object's
        # __del__ running in a thread that holds it must not hang there.
        self._lifetime = threading.RLock()
        self._creator_pid = os.getpid()
        self._disowned = False
        next(_live.PGCONN.made)
        _OPEN.add(self)
        #: Called with each notice (a borrowed `PGresult`) the server sends.
        self.notice_handler: NoticeHandler | None = None
        conn_ref = weakref.ref(self)

        def receive_notice(arg: int | None, res_ptr: int | None) -> None:
            _deliver_notice(conn_ref, res_ptr)

        # Kept on the instance: libpq holds only the C pointer of the callback.
        self._notice_receiver = impl.PQnoticeReceiver(receive_notice)
        impl.PQsetNoticeReceiver(pgconn_ptr, self._notice_receiver, None)

    @classmethod
    def connect(cls, conninfo: bytes) -> PGconn:
        """Connect, blocking until done (``PQconnectdb``): for scripts and tests.

        :raises OperationalError: if the connection failed, with libpq's message.
        :raises DataError: if *conninfo* contains a NUL byte.
        """
        ptr = impl.PQconnectdb(check_nul(conninfo, "conninfo"))
        if not ptr:
            raise MemoryError("libpq could not allocate a connection")
        conn = cls(ptr)
        if conn.status == ConnStatus.BAD:
            message = conn._message()
            conn.finish()
            raise OperationalError(f"connection failed: {message}")
        return conn

    @classmethod
    def connect_start(cls, conninfo: bytes) -> PGconn:
        """Start connecting without blocking (``PQconnectStart``).

        Drive it with `connect_poll()`. The connection is returned even if its
        status is already BAD (for instance a conninfo libpq cannot parse), so
        that the caller can read `error_message`.

        :raises DataError: if *conninfo* contains a NUL byte.
        """
        ptr = impl.PQconnectStart(check_nul(conninfo, "conninfo"))
        if not ptr:
            raise MemoryError("libpq could not allocate a connection")
        return cls(ptr)

    def connect_poll(self) -> PollingStatus:
        """Advance a connection started by `connect_start()`."""
        return polling_status(impl.PQconnectPoll(self._ptr()))

    def finish(self) -> None:
        """Close the connection and free it (idempotent).

        In a forked child it only drops the handle: the connection is the
        parent's, and stays open there.
        """
        with self._lifetime:
            ptr = self._pgconn_ptr
            if ptr is not None:
                self._pgconn_ptr = None
                next(_live.PGCONN.freed)
                if os.getpid() == self._creator_pid:  # (a fork the hook did not see)
                    impl.PQfinish(ptr)

    def __del__(
        self,
        _finish: Any = impl.PQfinish,
        _getpid: Any = os.getpid,
        _freed: Any = _live.PGCONN.freed,
    ) -> None:
        # Defaults bind what __del__ needs: module globals may be gone at exit.
        ptr = self._pgconn_ptr
        if ptr is None:
            return
        self._pgconn_ptr = None
        next(_freed)
        if _finish is not None and _getpid is not None and _getpid() == self._creator_pid:
            _finish(ptr)

    def __repr__(self) -> str:
        name = type(self).__name__
        ptr = self._pgconn_ptr
        if self._disowned:
            return f"<{name} [inherited from process {self._creator_pid}] at 0x{id(self):x}>"
        if ptr is None:
            return f"<{name} [closed] at 0x{id(self):x}>"
        status = conn_status(impl.PQstatus(ptr)).name
        where = " ".join(
            f"{key}={value.decode('utf-8', 'replace')}"
            for key, value in (
                ("host", impl.PQhost(ptr)),
                ("port", impl.PQport(ptr)),
                ("dbname", impl.PQdb(ptr)),
                ("user", impl.PQuser(ptr)),
            )
            if value
        )
        return f"<{name} [{status}] {where} at 0x{id(self):x}>"

    def _ptr(self) -> int:
        ptr = self._pgconn_ptr
        if ptr is None:
            if self._disowned:
                raise self.inherited_error()
            raise OperationalError("the connection is closed")
        return ptr

    def inherited_error(self) -> InterfaceError:
        """The error of any use, in a forked child, of a connection its parent opened."""
        return InterfaceError(
            f"this connection was opened by process {self._creator_pid}; a forked child"
            " cannot use it — open a new connection in the child"
        )

    def _disown(self) -> None:
        # In a forked child, right after fork(): see ``_disown_inherited``.
        # A parent's thread may have held the guard at fork(): it never
        # returns it here.
        self._lifetime = threading.RLock()
        ptr = self._pgconn_ptr
        if ptr is None:
            return
        fileno = int(impl.PQsocket(ptr))
        self._pgconn_ptr = None
        self._disowned = True
        next(_live.PGCONN.freed)
        if fileno >= 0:
            try:
                os.close(fileno)
            except OSError:
                pass  # not open in the child: nothing to let go

    def _message(self) -> str:
        ptr = self._pgconn_ptr
        raw: bytes | None = impl.PQerrorMessage(ptr) if ptr is not None else None
        return raw.decode("utf-8", "replace").strip() if raw else "no message from libpq"

    def _error(self, what: str) -> OperationalError:
        return OperationalError(f"{what} failed: {self._message()}")

    @property
    def pgconn_ptr(self) -> int | None:
        """The address of the C ``PGconn``, None once finished."""
        return self._pgconn_ptr

    # --- status ---

    @property
    def owned_here(self) -> bool:
        """False in a forked child: the connection belongs to the parent process."""
        return not self._disowned and os.getpid() == self._creator_pid

    @property
    def inherited(self) -> bool:
        """True in a forked child: the connection was disowned (see ``_disown_inherited``)."""
        return self._disowned

    @property
    def closed(self) -> bool:
        """True if the connection was finished or is broken (status BAD); any thread."""
        with self._lifetime:  # (rule 6)
            ptr = self._pgconn_ptr
            return ptr is None or impl.PQstatus(ptr) == ConnStatus.BAD

    # One libpq call each, on the connection's pointer (see ``_accessors``).
    status = libpq_property(impl.PQstatus, conn_status, "The connection status (``PQstatus``).")
    transaction_status = libpq_property(
        impl.PQtransactionStatus,
        transaction_status,
        "The transaction status of the session (``PQtransactionStatus``).",
    )
    error_message = libpq_property(
        impl.PQerrorMessage, or_empty, 'The last error message of the connection, b"" if none.'
    )

    @property
    def socket(self) -> int:
        """The file descriptor of the connection's socket.

        :raises OperationalError: if there is no open socket.
        """
        fd = int(impl.PQsocket(self._ptr()))
        if fd < 0:
            raise OperationalError("the connection has no open socket")
        return fd

    def with_socket(self, action: Callable[[int], None]) -> bool:
        """Call ``action`` with the socket's fd, the connection kept from finishing meanwhile.

        Callable from any thread, while another one may finish the
        connection (rule 6): ``action`` (which must not wait) never gets
        the number of an fd already closed, perhaps reused by another file.

        :return: False, without calling ``action``, if the connection is
            finished or has no open socket.
        """
        with self._lifetime:
            ptr = self._pgconn_ptr
            fd = int(impl.PQsocket(ptr)) if ptr is not None else -1
            if fd < 0:
                return False
            action(fd)
            return True

    @property
    def nonblocking(self) -> bool:
        """Whether sending blocks; set it True before using the ``send_*`` calls."""
        return bool(impl.PQisnonblocking(self._ptr()))

    @nonblocking.setter
    def nonblocking(self, value: bool) -> None:
        if impl.PQsetnonblocking(self._ptr(), 1 if value else 0) != 0:
            raise self._error("setting the nonblocking mode")

    # --- cancel ---

    def get_cancel(self) -> PGcancel:
        """Return a handle to cancel the running query; callable from any thread.

        :raises OperationalError: if the connection is finished (even by
            another thread meanwhile: rule 6).
        """
        with self._lifetime:
            cancel_ptr = impl.PQgetCancel(self._ptr())
            if not cancel_ptr:
                raise self._error("creating the cancel handle")
        return PGcancel(cancel_ptr)

    def cancel_conn(self) -> PGcancelConn:
        """Return a non-blocking cancel request for the running query (libpq 17+).

        Callable from any thread, like `get_cancel()`.

        :raises NotSupportedError: with a libpq older than 17.
        :raises OperationalError: if the connection is finished (rule 6).
        """
        with self._lifetime:  # (rule 6)
            ptr = self._ptr()
            if impl.PQcancelCreate is None:
                raise missing_feature("non-blocking cancel requests", 170000)
            cancel_ptr = impl.PQcancelCreate(ptr)
        if not cancel_ptr:
            raise MemoryError("libpq could not allocate a cancel request")
        return PGcancelConn(cancel_ptr)


# -- fork -----------------------------------------------------------------
#
# A child made by fork() shares the parent's sockets: whatever it sent or
# read on an inherited connection would land in the parent's session (a
# COMMIT of the parent's open transaction, stolen results), and PQfinish
# alone sends Terminate (and, over TLS, a close_notify), ending the
# parent's session. So, in the child, right after fork() and before any of
# its code runs, every PGconn still open is disowned:
#
# 1. Its pointer is dropped: no method can hand it to libpq again; each one
#    raises ``inherited_error()`` instead (the guard of ``_ptr()``, which
#    costs the parent nothing).
# 2. The child's copy of the socket's descriptor is closed. That sends
#    nothing (the parent's descriptor keeps the socket open); kept, it
#    would keep the server's session alive after the parent's death, for
#    as long as the child lives.
# 3. The libpq structure is leaked, never PQfinish'ed. The other way (point
#    the descriptor at /dev/null with dup2, PQfinish at close or collection)
#    fails when, by then, the child has closed and reused that descriptor
#    number (a daemon closing every descriptor, then opening files):
#    PQfinish would close the child's file. The memory is the parent's,
#    shared copy-on-write: leaking it costs the child nothing new.
#
# ``os.register_at_fork`` runs the hook for os.fork(), multiprocessing's
# "fork" start method, and C code that follows Python's fork protocol.

_OPEN: weakref.WeakSet[PGconn] = weakref.WeakSet()


def _disown_inherited() -> None:
    for conn in list(_OPEN):
        conn._disown()
    _OPEN.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_disown_inherited)
