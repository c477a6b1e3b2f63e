"""The blocking ``Connection`` and ``connect()``: thin drivers of the core."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from psycopg3 import Notify, Pipeline, Transaction, Xid
from psycopg3.abc import (
    DEFAULT_PREPARE_THRESHOLD,
    RECOVER_POLL_INTERVAL,
    BaseConnection,
    ConnectionLock,
    NotifyIteration,
    PQGen,
    shutdown_socket,
)
from psycopg3.generators import wait_readable
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import wait_select

__all__ = ["Connection", "connect"]

T = TypeVar("T")
R = TypeVar("R")


class Connection(BaseConnection, Generic[ConnectionRow]):
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
        # notifies() iterations polling the socket without the lock (their
        # count changes under the lock): close() must wake them.
        self._lockless_waits = 0

    @classmethod
    def connect(
        cls,
        conninfo: str = "",
        *,
        autocommit: bool = False,
        row_factory: RowFactory[Any] | None = None,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        **kwargs: Any,
    ) -> Connection[Any]:
        """Connect to a server: see ``psycopg3_sync.connect()``."""
        gen, timeout = cls._connect_gen(conninfo, **kwargs)
        pgconn = wait_select(gen, timeout=timeout)
        return cls(
            pgconn,
            autocommit=autocommit,
            row_factory=row_factory,
            prepare_threshold=prepare_threshold,
        )

    def __enter__(self) -> Connection[ConnectionRow]:
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
        """Close the connection; closing twice does nothing. Returns at once.

        Callable from any thread: a thread waiting on the connection wakes
        up with an ``OperationalError``; one inside a COPY block gets an
        ``InterfaceError`` at its next write, read or at the block's end.
        """
        if self.lock.operation.acquire(blocking=False):
            try:
                if self._lockless_waits and not self.closed:
                    shutdown_socket(self.pgconn.socket)  # wake the notifies() poller
                self._close()
            finally:
                self.lock.operation.release()
            self.lock.abandon()  # (wake the threads waiting for a block never left)
            return
        # Another thread (or this one, in a COPY block) holds the operation
        # lock, and may be inside libpq: the PGconn is freed only when the lock
        # is released. (The operation lock alone: a block open in another
        # thread must not delay closing.)
        # Until then the connection counts as closed, and shutting the socket
        # down wakes a thread blocked in poll() (closing the fd would not).
        # That thread may finish the PGconn meanwhile: the socket is shut
        # down only if it is still the PGconn's (see PGconn.with_socket).
        if not self.closed:
            self._closed_by_user = True
            self.pgconn.with_socket(shutdown_socket)
        self.lock.operation.run_when_free(self._close)
        self.lock.abandon()

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

    def execute(
        self, query: Any, params: Any = None, *, binary: bool = False, prepare: bool | None = None
    ) -> Cursor[ConnectionRow]:
        """Execute a query on a new cursor and return the cursor (see ``Cursor.execute``)."""
        cur = self.cursor(binary=binary)
        cur.execute(query, params, prepare=prepare)
        return cur

    def commit(self) -> None:
        """Commit the current transaction."""
        with self.lock:
            self._wait(self._commit_gen())

    def rollback(self) -> None:
        """Roll back the current transaction."""
        with self.lock:
            self._wait(self._rollback_gen())

    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> Transaction:
        """Return a transaction block: ``with conn.transaction() as tx:`` (see the core)."""
        return Transaction(self, savepoint_name, force_rollback)

    def pipeline(self) -> Pipeline:
        """Return a pipeline block: ``with conn.pipeline() as p:`` (libpq >= 14; see the core).

        :raises NotSupportedError: on entering, if libpq is older than 14.
        """
        return Pipeline(self)

    def notifies(
        self, *, timeout: float | None = None, stop_after: int | None = None
    ) -> Generator[Notify, None, None]:
        """Return a generator of the notifications received (``psycopg3.Notify``).

        ``for notify in conn.notifies():`` yields what was queued first
        (received during earlier commands), then waits for more. The wait
        itself does not hold the connection's lock: other threads' commands
        run meanwhile, and their notifications reach this iteration.
        Leaving the loop leaves the connection idle and usable.

        :param timeout: stop after this many seconds in total; None: never.
        :param stop_after: stop after yielding this many; None: never.
        :raises OperationalError: if the connection is closed or lost while
            iterating.
        """
        return self._iterate_notifies(self._start_notifies(timeout, stop_after))

    def _iterate_notifies(self, iteration: NotifyIteration) -> Generator[Notify, None, None]:
        try:
            while True:
                notify = iteration.pop()
                if notify is not None:
                    yield notify
                    continue
                wait = iteration.next_wait()
                if wait is None:
                    return
                with self.lock:
                    if self._receive_notifies():
                        continue
                    fileno = self.pgconn.socket
                    self._lockless_waits += 1
                # poll() is level-triggered and several threads may poll one
                # socket: a query running meanwhile gets its results as usual.
                # Waiting without the lock is what lets it run: a thread
                # blocked on a threading.Lock has no turn guaranteed.
                try:
                    wait_select(wait_readable(fileno), timeout=wait)
                finally:
                    with self.lock:
                        self._lockless_waits -= 1
                with self.lock:
                    self._receive_notifies()
        finally:
            iteration.close()

    def tpc_begin(self, xid: Xid | str) -> None:
        """Begin a two-phase transaction with an id made by ``xid()``."""
        self._check_no_pipeline("tpc_begin")
        with self.lock:
            self._wait(self._tpc_begin_gen(xid))

    def tpc_prepare(self) -> None:
        """Prepare the two-phase transaction (``PREPARE TRANSACTION``)."""
        self._check_no_pipeline("tpc_prepare")
        with self.lock:
            self._wait(self._tpc_prepare_gen())

    def tpc_commit(self, xid: Xid | str | None = None) -> None:
        """Commit the two-phase transaction, or the prepared one ``xid``."""
        self._check_no_pipeline("tpc_commit")
        with self.lock:
            self._wait(self._tpc_finish_gen(True, xid))

    def tpc_rollback(self, xid: Xid | str | None = None) -> None:
        """Roll back the two-phase transaction, or the prepared one ``xid``."""
        self._check_no_pipeline("tpc_rollback")
        with self.lock:
            self._wait(self._tpc_finish_gen(False, xid))

    def tpc_recover(self) -> list[Xid]:
        """Return the server's prepared transactions, oldest first."""
        self._check_no_pipeline("tpc_recover")
        with self.lock:
            return self._wait(self._tpc_recover_gen())

    def cancel(self) -> None:
        """Ask the server to cancel the command in progress; callable from any thread.

        Returns once the server took the request, or after ``CANCEL_TIMEOUT``
        if it does not answer; a failure is logged, not raised.
        """
        wait_select(self._cancel_gen(), timeout=RECOVER_POLL_INTERVAL)

    def _wait(self, gen: PQGen[T]) -> T:
        try:
            return wait_select(gen)
        except BaseException as ex:
            if self._interrupted():
                wait_select(self._recover_gen(), timeout=RECOVER_POLL_INTERVAL)
            elif (closed := self._closed_while_waiting(ex)) is not None:
                raise closed from ex
            raise


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
