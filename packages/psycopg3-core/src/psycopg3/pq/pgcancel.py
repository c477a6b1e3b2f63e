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
from typing import Any, ClassVar

from ..errors import InterfaceError, OperationalError
from . import _libpq as impl
from . import _live
from ._accessors import libpq_property
from ._enums import PollingStatus, polling_status

__all__ = ["PGcancel", "PGcancelConn"]

_ERRBUF_SIZE = 256


def _check_process(creator_pid: int) -> None:
    if os.getpid() != creator_pid:
        raise InterfaceError(
            f"this cancel request was made by process {creator_pid}; a forked child"
            " cannot cancel its parent's queries — open a new connection in the child"
        )


class _CancelObject:
    """What both cancel objects share: a libpq pointer, released once and counted."""

    __slots__ = ("_cancel_ptr", "_creator_pid", "__weakref__")

    #: What repr and errors call the object, and its states: (usable, released).
    _noun: ClassVar[str]
    _states: ClassVar[tuple[str, str]]
    #: The libpq function that releases the pointer (not a descriptor: never bound).
    _libpq_release: ClassVar[Any]
    #: Whether a forked child releases the pointer (else it only drops it).
    _release_in_child: ClassVar[bool]

    def __init__(self, ptr: int):
        self._cancel_ptr: int | None = ptr
        self._creator_pid = os.getpid()
        next(_live.PGCANCEL.made)

    def __del__(self, _getpid: Any = os.getpid, _freed: Any = _live.PGCANCEL.freed) -> None:
        # Defaults bind what __del__ needs: module globals may be gone at exit.
        self._release(_getpid, _freed)

    def __repr__(self) -> str:
        state = self._states[self._cancel_ptr is None]
        return f"<{type(self).__name__} [{state}] at 0x{id(self):x}>"

    def _ptr(self) -> int:
        ptr = self._cancel_ptr
        if ptr is None:
            raise OperationalError(f"the {self._noun} was {self._states[1]}")
        _check_process(self._creator_pid)
        return ptr

    def _release(self, getpid: Any, freed: Any) -> None:
        # Idempotent: __del__, free() and finish().
        ptr = self._cancel_ptr
        if ptr is None:
            return
        self._cancel_ptr = None
        release = self._libpq_release
        if release is not None and getpid is not None:
            if self._release_in_child or getpid() == self._creator_pid:
                release(ptr)
            next(freed)


class PGcancel(_CancelObject):
    """A cancel handle made by `PGconn.get_cancel()`.

    `cancel()` is blocking (it opens a new connection to the server), and
    libpq makes it safe to call from a thread other than the one using the
    connection. The thread that calls `cancel()` should be the one to
    `free()` the handle (or let it be collected): freeing it while another
    thread is inside `cancel()` would hand libpq freed memory.
    """

    __slots__ = ()

    _noun = "cancel handle"
    _states = ("ready", "freed")
    _libpq_release = impl.PQfreeCancel
    # It only frees memory: harmless in a forked child.
    _release_in_child = True

    def free(self) -> None:
        """Free the handle now (idempotent)."""
        self._release(os.getpid, _live.PGCANCEL.freed)

    def cancel(self) -> None:
        """Ask the server to cancel the query running on the connection.

        Success only means the request was delivered: the query may have
        finished anyway. Blocks until the server answered (``PQcancel``).

        :raises OperationalError: if the handle was freed or the request
            could not be sent, with libpq's message.
        :raises InterfaceError: in a forked child of the process that made it.
        """
        ptr = self._ptr()
        errbuf = create_string_buffer(_ERRBUF_SIZE)
        if not impl.PQcancel(ptr, errbuf, _ERRBUF_SIZE):
            message = errbuf.value.decode("utf-8", "replace").strip()
            raise OperationalError(f"sending the cancel request failed: {message}")


def _message_text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace").strip() if raw else ""


class PGcancelConn(_CancelObject):
    """A non-blocking cancel request (libpq 17+), made by `PGconn.cancel_conn()`.

    Like a connection of its own: `start()` it, then `poll()` until
    ``PollingStatus.OK`` or ``FAILED``, waiting on `socket` in the direction
    each poll asks for. Independent of the ``PGconn`` it was made from.
    """

    __slots__ = ()

    _noun = "cancel connection"
    _states = ("open", "finished")
    _libpq_release = impl.PQcancelFinish
    # It closes the request's socket, which a forked child shares with its
    # parent: the child drops the pointer instead.
    _release_in_child = False

    def start(self) -> None:
        """Start sending the request (``PQcancelStart``).

        :raises OperationalError: if it cannot start, with libpq's message.
        """
        if not impl.PQcancelStart(self._ptr()):
            raise OperationalError(f"sending the cancel request failed: {self.error_message}")

    def poll(self) -> PollingStatus:
        """Advance the request (``PQcancelPoll``)."""
        return polling_status(impl.PQcancelPoll(self._ptr()))

    socket = libpq_property(
        impl.PQcancelSocket, int, "The socket to wait on before the next `poll()`."
    )
    error_message = libpq_property(
        impl.PQcancelErrorMessage, _message_text, 'libpq\'s message about the request, "" if none.'
    )

    def finish(self) -> None:
        """Close the request's connection and free it (idempotent)."""
        self._release(os.getpid, _live.PGCANCEL.freed)
