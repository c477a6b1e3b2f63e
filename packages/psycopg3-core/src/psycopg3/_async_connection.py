"""The async connection, written once for every async framework.

``async with lock`` and ``await`` are plain Python: these classes work with
any framework through its ``AsyncFramework`` (see ``psycopg3._framework``):
an adapter subclasses ``AsyncConnectionBase``, sets ``framework`` to its
framework's object, and adds the typing of its own cursor classes.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from . import errors
from ._async_blocks import AsyncPipeline, AsyncTransaction
from ._block_lock import AsyncConnectionLock
from ._connection_base import DRAIN_TIMEOUT, RECOVER_POLL_INTERVAL, BaseConnection, shutdown_socket
from ._cursor_base import CursorFactory, Params, Query
from ._dns import resolve_conninfo
from ._framework import AsyncFramework, AsyncLock
from ._notify import AsyncNotifies
from ._prepare import DEFAULT_PREPARE_THRESHOLD
from ._tpc import Xid
from ._transaction_control import BlockFactory
from .conninfo import conninfo_to_dict, make_conninfo
from .rows import RowFactory
from .waiting import PQGen

if TYPE_CHECKING:
    from ._async_cursor import AsyncCursorBase
    from ._server_cursor import AsyncServerCursorBase

__all__ = ["AsyncConnectionBase", "AsyncLock", "ConnectContext"]

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound="AsyncConnectionBase")


class AsyncConnectionBase(
    BaseConnection, BlockFactory[AsyncTransaction, AsyncPipeline], CursorFactory, ABC
):
    """The async connection API, on the primitives of ``framework``."""

    #: The framework's primitives: the adapter's one ``AsyncFramework``.
    framework: ClassVar[AsyncFramework]

    #: The adapter's cursor classes, which ``cursor()`` makes.
    cursor_class: ClassVar[type[AsyncCursorBase[Any]]]
    server_cursor_class: ClassVar[type[AsyncServerCursorBase[Any]]]

    #: Serialises the commands and owns the blocks (see ``_block_lock``).
    lock: AsyncConnectionLock

    _transaction_class = AsyncTransaction
    _pipeline_class = AsyncPipeline

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        framework = self.framework
        self.lock = AsyncConnectionLock(
            framework.new_lock,
            framework.current_task,
            new_event=framework.new_event,
            home=framework.home,
            checkpoint=framework.checkpoint,
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
    ) -> ConnectContext[ConnT]:
        """Connect to a PostgreSQL server; an adapter's ``connect()`` is this method.

        Use as ``conn = await connect(dsn)`` or ``async with connect(dsn) as
        conn:`` (the block commits on success, rolls back on error, and closes
        the connection). Host names are resolved by the framework first:
        libpq's own lookup would block the event loop (see ``psycopg3._dns``).

        :param conninfo: a libpq connection string or URI.
        :param autocommit: whether each command commits on its own.
        :param row_factory: the shape of the rows of the connection's cursors
            (``psycopg3.rows``).
        :param prepare_threshold: after how many runs a query is prepared
            (None: never, as PgBouncer in transaction mode needs).
        :param kwargs: connection parameters overriding those in ``conninfo``.
        :raises OperationalError: if the connection cannot be made.
        """

        async def connect() -> ConnT:
            framework = cls.framework
            params = conninfo_to_dict(make_conninfo(conninfo, **kwargs))
            gen, timeout = cls._connect_gen(await resolve_conninfo(params, framework.resolve))
            pgconn = await framework.wait(gen, timeout=timeout)
            return cls(
                pgconn,
                autocommit=autocommit,
                row_factory=row_factory,
                prepare_threshold=prepare_threshold,
            )

        return ConnectContext(connect)

    async def _wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        """Drive ``gen`` with the framework's waiter, with the interruption policy.

        :param timeout: the waiter's timeout (``Ready.NONE`` after it).
        """
        framework = self.framework
        try:
            return await framework.wait(gen, timeout=timeout)
        except BaseException as ex:
            if self._interrupted():
                # Shielded: a level-triggered cancellation (trio) would stop
                # the recovery at its first wait. It is bounded by its own
                # deadlines. A cancellation received meanwhile adds nothing
                # to the exception raised below.
                try:
                    await framework.shield(self._recover)
                except framework.cancelled_error():
                    pass
            elif (closed := self._closed_while_waiting(ex)) is not None:
                raise closed from ex
            raise

    async def _wait_plain(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        # The framework's waiter alone: ``notifies()`` waits with it, without
        # the lock and without the interruption policy (no command is its own).
        return await self.framework.wait(gen, timeout=timeout)

    async def _recover(self) -> None:
        await self.framework.wait(self._recover_gen(), timeout=RECOVER_POLL_INTERVAL)

    async def close(self) -> None:
        """Close the connection; closing twice does nothing.

        A task waiting on the connection gets an ``OperationalError``; one
        waiting for another task's block to end finds the connection closed.
        From outside its event loop it does not wait: if that loop still
        runs (in another thread), the connection is closed there, soon after.
        """
        if self._close_now():
            # A checkpoint, after closing: closed even if cancelled here.
            await self.lock.checkpoint()

    def _close_now(self) -> bool:
        # True if closed here, in the connection's own loop.
        home = self.lock.home
        if self.lock.in_home() or home is None:
            self._close_here()
            return True
        if not self.framework.call_in_home(home, self._close_here):
            # That loop has stopped: no wait of ours is in progress there.
            self._close()
        return False

    def _close_here(self) -> None:
        if not self.closed:
            # Wake any task still waiting on the socket before the fd goes.
            self.framework.wake_waiters(self.pgconn.socket)
        self._close()

    async def cancel(self) -> None:
        """Ask the server to cancel the command in progress, without blocking the loop.

        Callable while another task waits on the connection. Returns once
        the server took the request, or after ``CANCEL_TIMEOUT`` if it does
        not answer; a failure is logged, not raised.
        """
        await self.framework.wait(self._cancel_gen(), timeout=RECOVER_POLL_INTERVAL)

    def _close(self) -> None:
        lock = self.lock
        if self._notify.waiting and not self.closed:
            # notifies() waits without the lock, on a duplicate of the socket
            # (see ``psycopg3._notify``, rule 9): this wakes it.
            self.pgconn.with_socket(shutdown_socket)
        if lock.operation.locked() and lock.in_home() and not self.closed:
            # Another task (or this one, in a COPY block) is inside a command,
            # maybe between the end of one wait and the start of the next:
            # the fd must stay this connection's until the command leaves, or
            # its number, reused by a connection opened meanwhile, would get
            # that task's next wait. Shutting the socket down makes that wait
            # return at once (the command then fails, see
            # ``_closed_while_waiting()``); the PGconn is freed when the lock
            # is released. Until then the connection counts as closed.
            self._closed_by_user = True
            self.pgconn.with_socket(shutdown_socket)
            lock.run_when_free(super()._close)
        else:
            super()._close()
        # Blocks never left: the tasks waiting for them wake (and find it closed).
        lock.abandon()

    async def __aenter__(self: ConnT) -> ConnT:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            async with self.lock:
                await self._wait(self._exit_gen(exc))
        except BaseException:
            self._close_now()  # (no checkpoint: a cancellation would take the error's place)
            raise
        if exc is None:
            await self.close()
        else:
            self._close_now()  # (the same, for the block's exception)

    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool = False,
        prepare: bool | None = None,
    ) -> AsyncCursorBase[Any]:
        """Execute a query on a new cursor and return the cursor (see ``Cursor.execute``)."""
        cur: AsyncCursorBase[Any] = self.cursor(binary=binary)
        await cur.execute(query, params, prepare=prepare)
        return cur

    async def commit(self) -> None:
        """Commit the current transaction."""
        async with self.lock:
            await self._wait(self._commit_gen())

    async def rollback(self) -> None:
        """Roll back the current transaction."""
        async with self.lock:
            await self._wait(self._rollback_gen())

    def notifies(
        self, *, timeout: float | None = None, stop_after: int | None = None
    ) -> AsyncNotifies:
        """Return an async iterator of the notifications received (``psycopg3.Notify``).

        ``async for notify in conn.notifies():`` yields what was queued
        first (received during earlier commands), then waits for more. The
        wait does not hold the connection's lock: other tasks' commands
        start at once meanwhile, and their notifications reach this
        iteration; the lock is taken only to read what arrived. Leaving the
        loop (``break``, a cancellation) leaves the connection idle and
        usable.

        :param timeout: stop after this many seconds in total; None: never.
        :param stop_after: stop after yielding this many; None: never.
        :raises OperationalError: if the connection is closed or lost while
            iterating.
        """
        return AsyncNotifies(self, timeout, stop_after)

    async def _wait_shielded(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` under the lock to its end, even if the caller is being cancelled.

        It ends ``transaction()`` and ``pipeline()`` blocks, for the task
        that owns them: their COMMIT or ROLLBACK must run even when the
        block is left by a cancellation and the task is cancelled again
        meanwhile, within ``DRAIN_TIMEOUT``. It takes the lock's operation
        lock only (the task running it may be another, shielding one).
        """

        async def run() -> T:
            await self.lock.operation.acquire()
            try:
                return await self._wait(gen)
            finally:
                self.lock.release_operation()

        try:
            return await self.framework.shield(run, timeout=DRAIN_TIMEOUT)
        except TimeoutError as ex:
            raise errors.OperationalError("ending the block did not finish in time") from ex

    async def tpc_begin(self, xid: Xid | str) -> None:
        """Begin a two-phase transaction (see ``BaseConnection.xid()``).

        :raises ProgrammingError: in a transaction, in autocommit mode.
        """
        self._check_no_pipeline("tpc_begin")
        async with self.lock:
            await self._wait(self._tpc_begin_gen(xid))

    async def tpc_prepare(self) -> None:
        """Prepare the two-phase transaction (``PREPARE TRANSACTION``)."""
        self._check_no_pipeline("tpc_prepare")
        async with self.lock:
            await self._wait(self._tpc_prepare_gen())

    async def tpc_commit(self, xid: Xid | str | None = None) -> None:
        """Commit the two-phase transaction, or the prepared one ``xid``."""
        self._check_no_pipeline("tpc_commit")
        async with self.lock:
            await self._wait(self._tpc_finish_gen(True, xid))

    async def tpc_rollback(self, xid: Xid | str | None = None) -> None:
        """Roll back the two-phase transaction, or the prepared one ``xid``."""
        self._check_no_pipeline("tpc_rollback")
        async with self.lock:
            await self._wait(self._tpc_finish_gen(False, xid))

    async def tpc_recover(self) -> list[Xid]:
        """Return the server's prepared transactions, oldest first."""
        self._check_no_pipeline("tpc_recover")
        async with self.lock:
            return await self._wait(self._tpc_recover_gen())


class ConnectContext(Generic[ConnT]):
    """What an async ``connect()`` returns: awaitable, and an async context manager.

    ``conn = await connect(...)`` and ``async with connect(...) as conn:``
    both work; the second closes the connection at the end of the block.
    """

    def __init__(self, connect: Callable[[], Awaitable[ConnT]]):
        self._connect = connect
        self._conn: ConnT | None = None

    def __await__(self) -> Generator[Any, None, ConnT]:
        return self._connect().__await__()

    async def __aenter__(self) -> ConnT:
        self._conn = await self._connect()
        return self._conn

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)
