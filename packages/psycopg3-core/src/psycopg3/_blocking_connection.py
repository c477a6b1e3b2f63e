"""The blocking connection, written once for every blocking framework.

``BlockingConnectionBase`` is to blocking frameworks (threads, gevent,
eventlet) what ``AsyncConnectionBase`` is to async ones: the whole
connection API, written once on the primitives of the adapter's
``BlockingFramework`` (``psycopg3._framework``): its waiter, its lock, the
identity of the running thread, and, where libpq's lookup must not block,
its name resolution. An adapter subclasses it, sets ``framework``,
``cursor_class`` and ``server_cursor_class``, and adds the typing of its
own classes. Layer: drivers, beside ``_async_connection``.

The interruption policy is the same for every blocking framework, and
written once here (``_wait``): an exception out of the wait (Ctrl-C, a
``gevent.Timeout``, a lost or closed socket) runs ``BaseConnection``'s
recovery in the same thread before it propagates. A blocking framework has
no shield: the recovery bounds itself (``CANCEL_TIMEOUT + DRAIN_TIMEOUT``).

Must not: import threading, select, gevent or any other framework; wait
other than through the framework's waiter.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ._block_lock import ConnectionLock
from ._blocking_blocks import Pipeline, Transaction
from ._connection_base import RECOVER_POLL_INTERVAL, BaseConnection, shutdown_socket
from ._cursor_base import CursorFactory, Params, Query
from ._dns import resolve_conninfo_blocking
from ._framework import BlockingFramework, PlainLock
from ._notify import Notify, NotifyIteration
from ._prepare import DEFAULT_PREPARE_THRESHOLD
from ._tpc import Xid
from ._transaction_control import BlockFactory
from .conninfo import conninfo_to_dict, make_conninfo
from .rows import RowFactory
from .waiting import PQGen

if TYPE_CHECKING:
    from ._blocking_cursor import BlockingCursorBase, BlockingServerCursorBase

__all__ = ["BlockingConnectionBase", "BlockingLock", "DeferringLock"]

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound="BlockingConnectionBase")


class BlockingLock(Protocol):
    """What a blocking connection needs of its lock class: a lock that can defer a close.

    ``acquire``, ``release`` and ``locked`` behave as ``threading.Lock``'s.
    ``run_when_free(action)`` runs ``action`` holding the lock: at once if
    it is free, else in the thread that releases it, before anyone else
    gets it. ``close()`` from another thread relies on it: the PGconn is
    freed only when no thread can be inside libpq with it.
    """

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...

    def run_when_free(self, action: Callable[[], None]) -> None: ...


class DeferringLock:
    """A framework's plain lock that can run a deferred ``close()`` as it is released.

    ``close()`` from a thread that cannot take the lock hands the freeing of
    the PGconn to whoever holds it: the PGconn is never freed while another
    thread may be inside libpq with it, and ``close()`` never waits for a
    thread that may hold the lock for long (a COPY block). It meets
    ``BlockingLock``.

    :param new_lock: the framework's lock factory (``threading.Lock``).
    """

    __slots__ = ("_lock", "_guard", "_pending")

    def __init__(self, new_lock: Callable[[], PlainLock]):
        self._lock = new_lock()
        self._guard = new_lock()
        self._pending: Callable[[], None] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        # (acquire/release rather than `with`: a plain lock need not be a
        # context manager, and this runs at the end of every command)
        self._guard.acquire()
        try:
            pending, self._pending = self._pending, None
            if pending is None:
                self._lock.release()
                return
        finally:
            self._guard.release()
        try:
            pending()
        finally:
            self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def run_when_free(self, action: Callable[[], None]) -> None:
        """Run ``action`` under the lock: now if it is free, else when it is released."""
        self._guard.acquire()
        try:
            if not self._lock.acquire(blocking=False):
                self._pending = action
                return
        finally:
            self._guard.release()
        try:
            action()
        finally:
            self.release()


class BlockingConnectionBase(
    BaseConnection, BlockFactory[Transaction, Pipeline], CursorFactory, ABC
):
    """The blocking connection API, on the primitives of ``framework``."""

    #: The framework's primitives: the adapter's one ``BlockingFramework``.
    framework: ClassVar[BlockingFramework]

    #: The adapter's cursor classes, which ``cursor()`` makes.
    cursor_class: ClassVar[type[BlockingCursorBase[Any]]]
    server_cursor_class: ClassVar[type[BlockingServerCursorBase[Any]]]

    #: Serialises the commands and owns the blocks (see ``_block_lock``).
    lock: ConnectionLock[BlockingLock]

    _transaction_class = Transaction
    _pipeline_class = Pipeline

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        framework = self.framework
        self.lock = ConnectionLock(
            partial(DeferringLock, framework.new_lock), framework.current_task
        )

    @classmethod
    def connect(
        cls: type[ConnT],
        conninfo: str = "",
        *,
        autocommit: bool = False,
        row_factory: RowFactory[Any] | None = None,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        **kwargs: Any,
    ) -> ConnT:
        """Connect to a PostgreSQL server; an adapter's ``connect()`` is this method.

        Use as ``conn = connect(dsn)`` or ``with connect(dsn) as conn:`` (the
        block commits on success, rolls back on error, and closes the
        connection).

        :param conninfo: a libpq connection string or URI.
        :param autocommit: whether each command commits on its own.
        :param row_factory: the shape of the rows of the connection's cursors
            (``psycopg3.rows``).
        :param prepare_threshold: after how many runs a query is prepared
            (None: never, as PgBouncer in transaction mode needs).
        :param kwargs: connection parameters (``host``, ``dbname``...)
            overriding those in ``conninfo``.
        :raises OperationalError: if the connection cannot be made.
        """
        framework = cls.framework
        if framework.resolve_names:
            params = conninfo_to_dict(make_conninfo(conninfo, **kwargs))
            gen, timeout = cls._connect_gen(resolve_conninfo_blocking(params, framework.resolve))
        else:
            # libpq resolves host names itself, blocking the calling thread.
            gen, timeout = cls._connect_gen(conninfo, **kwargs)
        pgconn = framework.wait(gen, timeout=timeout)
        return cls(
            pgconn,
            autocommit=autocommit,
            row_factory=row_factory,
            prepare_threshold=prepare_threshold,
        )

    def _wait(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` with the waiter; on an exception, the interruption policy."""
        try:
            return self.framework.wait(gen)
        except BaseException as ex:
            if self._interrupted():
                self.framework.wait(self._recover_gen(), timeout=RECOVER_POLL_INTERVAL)
            elif (closed := self._closed_while_waiting(ex)) is not None:
                raise closed from ex
            raise
        finally:
            if self._notify.waiting:
                self._deliver_to_listeners()

    def __enter__(self: ConnT) -> ConnT:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
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
                if self._notify.waiting and not self.closed:
                    shutdown_socket(self.pgconn.socket)  # wake the notifies() listener
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

    def _deliver_to_listeners(self) -> None:
        # A step of a command ran while a listener waits (``_wait``): the
        # data it read (a COPY's end, a drain's) may have held notifications,
        # which libpq parsed and the listener's poll() will not see (``_notify``
        # rule 10). Delivered now, they wake it.
        if not self.pgconn.closed:
            self._deliver_pending_notifies()

    def _wait_for_notifies(self, filenos: Sequence[int], timeout: float | None) -> bool:
        # The framework's wait alone: notifies() waits with it, without the
        # lock and without the interruption policy (no command is its own).
        return self.framework.wait_any_readable(filenos, timeout=timeout)

    def cancel(self) -> None:
        """Ask the server to cancel the command in progress; callable from any thread.

        Returns once the server took the request, or after ``CANCEL_TIMEOUT``
        if it does not answer; a failure is logged, not raised.
        """
        self.framework.wait(self._cancel_gen(), timeout=RECOVER_POLL_INTERVAL)

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool = False,
        prepare: bool | None = None,
    ) -> BlockingCursorBase[Any]:
        """Execute a query on a new cursor and return the cursor (see ``Cursor.execute``)."""
        cur: BlockingCursorBase[Any] = self.cursor(binary=binary)
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
        # The lock only to read what arrived; the wait, for as long as the
        # iteration allows, without it (see the rules of ``psycopg3._notify``):
        # other threads' commands run meanwhile, and an idle listener sleeps.
        # A wakeable wait (rule 10): a thread blocked in poll() is not woken
        # when another thread reads the data that made the socket readable,
        # so whoever queues a notification meanwhile wakes it through a pipe.
        try:
            while True:
                notify = iteration.pop()
                if notify is not None:
                    yield notify
                    continue
                if iteration.is_over():
                    return
                with self.lock:
                    wait = iteration.start_wait(self, wakeable=True)
                if wait is not None:
                    with wait:
                        wait.ended(self._wait_for_notifies(wait.filenos, wait.timeout))
        finally:
            iteration.close()

    def tpc_begin(self, xid: Xid | str) -> None:
        """Begin a two-phase transaction with an id made by ``xid()``.

        :raises ProgrammingError: in a transaction, in autocommit mode.
        """
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
