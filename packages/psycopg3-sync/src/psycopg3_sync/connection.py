"""The blocking ``Connection`` and ``connect()``: the core's blocking base on threads.

The API and its logic are ``psycopg3.abc.BlockingConnectionBase``'s; this
module gives it ``wait_select``, a ``threading.Lock`` that can run a
deferred close, the thread identity, and the types of this package's
classes. Layer: adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from psycopg3.abc import (
    DEFAULT_PREPARE_THRESHOLD,
    BlockingConnectionBase,
    ConnectionLock,
    Params,
    PQGen,
    Query,
)
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import wait_select

__all__ = ["Connection", "connect"]

T = TypeVar("T")
R = TypeVar("R")


class Connection(BlockingConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for blocking code.

    Safe to share between threads: its operations are serialised by a lock,
    and a ``transaction()`` or ``pipeline()`` block owns it for the thread
    that entered it until the block ends (other threads wait meanwhile).
    Use as a context manager to commit on success (roll back on error) and
    close at the end of the block. Generic in the type of its cursors' rows,
    which ``connect(..., row_factory=...)`` decides.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The operation lock can run a deferred close() as it is released.
        self.lock = ConnectionLock(_ConnectionLock, threading.get_ident)

    @staticmethod
    def waiter(gen: PQGen[T], *, timeout: float | None = None) -> T:
        # (looked up at each call: a test may replace the module's wait_select)
        return wait_select(gen, timeout=timeout)

    @overload
    def cursor(
        self, *, binary: bool = False, row_factory: None = None
    ) -> Cursor[ConnectionRow]: ...

    @overload
    def cursor(self, *, binary: bool = False, row_factory: RowFactory[R]) -> Cursor[R]: ...

    @overload
    def cursor(
        self,
        name: str,
        *,
        binary: bool = False,
        row_factory: None = None,
        scrollable: bool | None = None,
        withhold: bool = False,
    ) -> ServerCursor[ConnectionRow]: ...

    @overload
    def cursor(
        self,
        name: str,
        *,
        binary: bool = False,
        row_factory: RowFactory[R],
        scrollable: bool | None = None,
        withhold: bool = False,
    ) -> ServerCursor[R]: ...

    def cursor(
        self,
        name: str = "",
        *,
        binary: bool = False,
        row_factory: RowFactory[Any] | None = None,
        scrollable: bool | None = None,
        withhold: bool = False,
    ) -> Cursor[Any] | ServerCursor[Any]:
        """Return a new cursor on this connection; a server-side one if ``name`` is given.

        :param name: the name of a server-side cursor (``DECLARE``), or "".
        :param binary: ask for results in binary format.
        :param row_factory: the shape of the rows (default: ``self.row_factory``).
        :param scrollable: server-side cursors: ``SCROLL`` (True), ``NO SCROLL``
            (False), or the server's default (None).
        :param withhold: server-side cursors: declare ``WITH HOLD``.
        """
        self._check_usable()
        if name:
            return ServerCursor(
                self,
                name,
                binary=binary,
                row_factory=row_factory,
                scrollable=scrollable,
                withhold=withhold,
            )
        return Cursor(self, binary=binary, row_factory=row_factory)

    if TYPE_CHECKING:  # typing only: the base's methods run

        @classmethod
        def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: RowFactory[Any] | None = None,
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> Connection[Any]: ...

        def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool = False,
            prepare: bool | None = None,
        ) -> Cursor[ConnectionRow]: ...


class _ConnectionLock:
    """A ``threading.Lock`` that can run a deferred ``close()`` as it is released.

    ``close()`` from a thread that cannot take the lock hands the freeing of
    the PGconn to whoever holds it: the PGconn is never freed while another
    thread may be inside libpq with it, and ``close()`` never waits for a
    thread that may hold the lock for long (a COPY block).
    """

    __slots__ = ("_lock", "_guard", "_pending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        self._pending: Callable[[], None] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        with self._guard:
            pending, self._pending = self._pending, None
            if pending is None:
                self._lock.release()
                return
        try:
            pending()
        finally:
            self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def run_when_free(self, action: Callable[[], None]) -> None:
        """Run ``action`` under the lock: now if it is free, else when it is released."""
        with self._guard:
            if not self._lock.acquire(blocking=False):
                self._pending = action
                return
        try:
            action()
        finally:
            self.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@overload
def connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: RowFactory[R], **kwargs: Any
) -> Connection[R]: ...


@overload
def connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: None = None, **kwargs: Any
) -> Connection: ...


def connect(conninfo: str = "", *, autocommit: bool = False, **kwargs: Any) -> Connection[Any]:
    """Connect to a PostgreSQL server.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters (``host``, ``dbname``…) overriding
        those in ``conninfo``; ``row_factory`` (``psycopg3.rows``) sets the
        shape of the rows of the connection's cursors; ``prepare_threshold``
        sets when queries are prepared (None: never, as PgBouncer in
        transaction mode needs).
    :raises OperationalError: if the connection cannot be made.
    """
    return Connection.connect(conninfo, autocommit=autocommit, **kwargs)
