"""The blocking ``Connection`` and ``connect()``: thin drivers of the core."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any, TypeVar

from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT, BaseConnection, PQGen

from .cursor import Cursor
from .waiting import wait_select

__all__ = ["Connection", "connect"]

T = TypeVar("T")


class Connection(BaseConnection):
    """A connection to a PostgreSQL server, for blocking code.

    Safe to share between threads: its operations are serialised by a lock.
    Use as a context manager to commit on success (roll back on error) and
    close at the end of the block.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()

    @classmethod
    def connect(cls, conninfo: str = "", *, autocommit: bool = False, **kwargs: Any) -> Connection:
        """Connect to a server: see ``psycopg3_sync.connect()``."""
        gen, timeout = cls._connect_gen(conninfo, **kwargs)
        return cls(wait_select(gen, timeout=timeout), autocommit=autocommit)

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with self.lock:
                self._wait(self._exit_gen(exc))
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection; closing twice does nothing.

        Callable from any thread: a thread waiting on the connection wakes
        up with an ``OperationalError``.
        """
        if not self.closed and self.lock.locked():
            # Another thread may be blocked in poll() on this socket: closing
            # the fd would not wake it, shutting the socket down does.
            _shutdown(self.pgconn.socket)
        self._close()

    def cursor(self, *, binary: bool = False) -> Cursor:
        """Return a new cursor on this connection."""
        self._check_usable()
        return Cursor(self, binary=binary)

    def execute(self, query: Any, params: Any = None, *, binary: bool = False) -> Cursor:
        """Execute a query on a new cursor and return the cursor."""
        cur = self.cursor(binary=binary)
        cur.execute(query, params)
        return cur

    def commit(self) -> None:
        """Commit the current transaction."""
        with self.lock:
            self._wait(self._commit_gen())

    def rollback(self) -> None:
        """Roll back the current transaction."""
        with self.lock:
            self._wait(self._rollback_gen())

    def cancel(self) -> None:
        """Ask the server to cancel the command in progress; callable from any thread."""
        if not self.closed:
            self._cancel_function()()

    def _wait(self, gen: PQGen[T]) -> T:
        try:
            return wait_select(gen)
        except BaseException:
            if self._interrupted():
                worker = threading.Thread(target=self._cancel_function(), daemon=True)
                worker.start()
                worker.join(CANCEL_TIMEOUT)
                wait_select(self._drain_gen(), timeout=DRAIN_TIMEOUT)
            raise


def _shutdown(fileno: int) -> None:
    sock = socket.socket(fileno=fileno)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected: nothing to wake
    finally:
        sock.detach()  # the fd stays libpq's, to close


def connect(conninfo: str = "", *, autocommit: bool = False, **kwargs: Any) -> Connection:
    """Connect to a PostgreSQL server.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters (``host``, ``dbname``…) overriding
        those in ``conninfo``.
    :raises OperationalError: if the connection cannot be made.
    """
    return Connection.connect(conninfo, autocommit=autocommit, **kwargs)
