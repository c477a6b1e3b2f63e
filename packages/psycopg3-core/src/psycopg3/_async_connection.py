"""The async connection methods shared by every async adapter.

``async with lock`` and ``await`` are plain Python: these classes work with
any framework's lock and waiter. An adapter subclasses them, creates its
lock, sets its ``waiter``, and provides ``_wait()`` (its waiter plus the
interruption policy of ``BaseConnection``), ``close()``, ``cancel()`` and
``connect()``.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._block_lock import AsyncConnectionLock
from ._connection_base import BaseConnection, shutdown_socket
from ._cursor_base import Params, Query
from ._dns import Resolver, resolve_conninfo
from ._notify import AsyncNotifies
from ._pipeline import AsyncPipeline
from ._tpc import Xid
from ._transaction import AsyncTransaction
from .conninfo import conninfo_to_dict, make_conninfo
from .pq import PGconn
from .waiting import AsyncWaiter, PQGen

if TYPE_CHECKING:
    from ._async_cursor import AsyncCursorBase

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound="AsyncConnectionBase")


class AsyncLock(Protocol):
    """What we need of a framework's lock (``asyncio.Lock``, ``trio.Lock``...)."""

    async def acquire(self) -> Any: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


class AsyncConnectionBase(BaseConnection, ABC):
    """The async connection API, minus what only a framework can do."""

    #: Built by the adapter from its lock class and current task (see ``_block_lock``).
    lock: AsyncConnectionLock
    #: The adapter's waiter, set by it: ``notifies()`` waits with it, without
    #: the lock and without the interruption policy (no command is its own).
    waiter: AsyncWaiter

    @classmethod
    async def _async_connect_gen(
        cls, conninfo: str, kwargs: dict[str, Any], resolve: Resolver
    ) -> tuple[PQGen[PGconn], float | None]:
        """Like ``_connect_gen()``, with host names resolved by ``resolve`` first.

        libpq's own lookup would block the event loop: the framework's
        resolver does it instead (see ``psycopg3._dns``).
        """
        params = conninfo_to_dict(make_conninfo(conninfo, **kwargs))
        return cls._connect_gen(await resolve_conninfo(params, resolve))

    @abstractmethod
    async def _wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        """Drive ``gen`` with the framework's waiter, recovering from interruptions.

        :param timeout: the waiter's timeout (``Ready.NONE`` after it).
        """

    async def close(self) -> None:
        """Close the connection; closing twice does nothing."""
        self._close()

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
            lock.run_when_free(self._finish)
        else:
            self._finish()
        # Blocks never left: the tasks waiting for them wake (and find it closed).
        lock.abandon()

    def _finish(self) -> None:
        super()._close()
        self._notify.end()  # (after the socket: see ``psycopg3._notify``, rule 8)

    @abstractmethod
    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """Return a new cursor on this connection; a server-side one if ``name`` is given.

        The parameters, which an adapter's overloads type precisely:

        :param name: the name of a server-side cursor (``DECLARE``), or "".
        :param binary: ask for results in binary format.
        :param row_factory: the shape of the rows (default: ``self.row_factory``).
        :param scrollable: server-side cursors: ``SCROLL`` (True), ``NO SCROLL``
            (False), or the server's default (None).
        :param withhold: server-side cursors: declare ``WITH HOLD``.
        """

    async def __aenter__(self: ConnT) -> ConnT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            async with self.lock:
                await self._wait(self._exit_gen(exc))
        finally:
            await self.close()

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

    def pipeline(self) -> AsyncPipeline:
        """Return a pipeline block: ``async with conn.pipeline() as p:`` (libpq >= 14).

        Inside it, ``execute()`` sends without waiting; each cursor gets its
        result when it fetches, or at ``await p.sync()`` and the block's end
        (see ``psycopg3._pipeline`` and ``docs/pipeline.md``).

        :raises NotSupportedError: on entering, if libpq is older than 14.
        """
        return AsyncPipeline(self)

    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncTransaction:
        """Return a transaction block: ``async with conn.transaction() as tx:``.

        See ``psycopg3._transaction`` for the rules (BEGIN or SAVEPOINT,
        commit on success, rollback on error, ``psycopg3.Rollback``).

        :param savepoint_name: the name of the block's savepoint, if it uses one.
        :param force_rollback: roll back at the end even if the block succeeds.
        """
        return AsyncTransaction(self, savepoint_name, force_rollback)

    async def _wait_shielded(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` under the lock to its end, even if the caller is being cancelled.

        It ends ``transaction()`` and ``pipeline()`` blocks, for the task
        that owns them: it takes the lock's operation lock only (the task
        running it may be another, shielding one). An adapter overrides it
        to shield the wait from cancellation, within ``DRAIN_TIMEOUT``.
        """
        await self.lock.operation.acquire()
        try:
            return await self._wait(gen)
        finally:
            self.lock.release_operation()

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)
