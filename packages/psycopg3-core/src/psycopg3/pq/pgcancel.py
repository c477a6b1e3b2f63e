"""``PGcancel``: the data needed to ask the server to cancel a running query.

Must not: touch the ``PGconn`` it was made from (it is independent of it and
may outlive it), or pass a freed pointer to libpq.

A handle cancels the queries of the process that made it, never of another:
in a forked child it refuses to send (the query it would cancel is the
parent's), and a request in progress is dropped there, not finished (its
socket is the parent's too).
"""

from __future__ import annotations

import os
from ctypes import create_string_buffer
from typing import Any

from ..errors import InterfaceError, OperationalError
from . import _libpq as impl
from . import _live
from ._enums import PollingStatus, polling_status

__all__ = ["PGcancel", "PGcancelConn"]

_ERRBUF_SIZE = 256


def _check_process(creator_pid: int) -> None:
    if os.getpid() != creator_pid:
        raise InterfaceError(
            f"this cancel request was made by process {creator_pid}; a forked child"
            " cannot cancel its parent's queries — open a new connection in the child"
        )


class PGcancel:
    """A cancel handle made by `PGconn.get_cancel()`.

    `cancel()` is blocking (it opens a new connection to the server), and
    libpq makes it safe to call from a thread other than the one using the
    connection. The thread that calls `cancel()` should be the one to
    `free()` the handle (or let it be collected): freeing it while another
    thread is inside `cancel()` would hand libpq freed memory.
    """

    __slots__ = ("_pgcancel_ptr", "_creator_pid", "__weakref__")

    def __init__(self, pgcancel_ptr: int):
        self._pgcancel_ptr: int | None = pgcancel_ptr
        self._creator_pid = os.getpid()
        next(_live.PGCANCEL.made)

    def __del__(self, _free: Any = impl.PQfreeCancel, _freed: Any = _live.PGCANCEL.freed) -> None:
        ptr = self._pgcancel_ptr
        if ptr is not None:
            self._pgcancel_ptr = None
            if _free is not None:
                _free(ptr)
                next(_freed)

    def __repr__(self) -> str:
        state = "freed" if self._pgcancel_ptr is None else "ready"
        return f"<{type(self).__name__} [{state}] at 0x{id(self):x}>"

    def free(self) -> None:
        """Free the handle now (idempotent)."""
        ptr = self._pgcancel_ptr
        if ptr is not None:
            self._pgcancel_ptr = None
            impl.PQfreeCancel(ptr)
            next(_live.PGCANCEL.freed)

    def cancel(self) -> None:
        """Ask the server to cancel the query running on the connection.

        Success only means the request was delivered: the query may have
        finished anyway. Blocks until the server answered (``PQcancel``).

        :raises OperationalError: if the handle was freed or the request
            could not be sent, with libpq's message.
        :raises InterfaceError: in a forked child of the process that made it.
        """
        ptr = self._pgcancel_ptr
        if ptr is None:
            raise OperationalError("the cancel handle was freed")
        _check_process(self._creator_pid)
        errbuf = create_string_buffer(_ERRBUF_SIZE)
        if not impl.PQcancel(ptr, errbuf, _ERRBUF_SIZE):
            message = errbuf.value.decode("utf-8", "replace").strip()
            raise OperationalError(f"sending the cancel request failed: {message}")


class PGcancelConn:
    """A non-blocking cancel request (libpq 17+), made by `PGconn.cancel_conn()`.

    Like a connection of its own: `start()` it, then `poll()` until
    ``PollingStatus.OK`` or ``FAILED``, waiting on `socket` in the direction
    each poll asks for. Independent of the ``PGconn`` it was made from.
    """

    __slots__ = ("_ptr", "_creator_pid", "__weakref__")

    def __init__(self, cancel_conn_ptr: int):
        self._ptr: int | None = cancel_conn_ptr
        self._creator_pid = os.getpid()
        next(_live.PGCANCEL.made)

    def __del__(
        self,
        _finish: Any = impl.PQcancelFinish,
        _freed: Any = _live.PGCANCEL.freed,
        _getpid: Any = os.getpid,
    ) -> None:
        ptr = self._ptr
        if ptr is not None:
            self._ptr = None
            if _finish is not None and _getpid is not None:
                if _getpid() == self._creator_pid:  # (in a forked child: dropped)
                    _finish(ptr)
                next(_freed)

    def __repr__(self) -> str:
        state = "finished" if self._ptr is None else "open"
        return f"<{type(self).__name__} [{state}] at 0x{id(self):x}>"

    def _checked(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise OperationalError("the cancel connection was finished")
        _check_process(self._creator_pid)
        return ptr

    def start(self) -> None:
        """Start sending the request (``PQcancelStart``).

        :raises OperationalError: if it cannot start, with libpq's message.
        """
        if not impl.PQcancelStart(self._checked()):
            raise OperationalError(f"sending the cancel request failed: {self.error_message}")

    def poll(self) -> PollingStatus:
        """Advance the request (``PQcancelPoll``)."""
        return polling_status(impl.PQcancelPoll(self._checked()))

    @property
    def socket(self) -> int:
        """The socket to wait on before the next `poll()`."""
        return int(impl.PQcancelSocket(self._checked()))

    @property
    def error_message(self) -> str:
        """libpq's message about the request, "" if none."""
        raw = impl.PQcancelErrorMessage(self._checked()) or b""
        return str(raw.decode("utf-8", "replace").strip())

    def finish(self) -> None:
        """Close the request's connection and free it (idempotent)."""
        ptr = self._ptr
        if ptr is not None:
            self._ptr = None
            if os.getpid() == self._creator_pid:  # (in a forked child: dropped)
                impl.PQcancelFinish(ptr)
            next(_live.PGCANCEL.freed)
