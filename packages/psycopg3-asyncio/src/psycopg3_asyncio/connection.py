"""The asyncio ``Connection`` and ``asyncio_connect()``: thin drivers of the core."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar, overload

from psycopg3.abc import (
    DEFAULT_PREPARE_THRESHOLD,
    DRAIN_TIMEOUT,
    RECOVER_POLL_INTERVAL,
    AsyncConnectionBase,
    AsyncConnectionLock,
    ConnectContext,
    PQGen,
)
from psycopg3.errors import OperationalError
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import notify_closing, wait_asyncio

__all__ = ["Connection", "asyncio_connect", "connect"]

T = TypeVar("T")
R = TypeVar("R")


class Connection(AsyncConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for asyncio.

    Safe to share between tasks: its operations are serialised by an
    ``asyncio.Lock``, and a ``transaction()`` or ``pipeline()`` block owns it
    for the task that entered it until the block ends (others wait).
    ``async with`` commits on success (rolls back on error) and closes at the
    end of the block. A task cancelled during a command sends a cancel request
    and drains the connection, shielded and bounded, before the cancellation
    goes on.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = AsyncConnectionLock(
            asyncio.Lock, asyncio.current_task, new_event=asyncio.Event, home=_running_loop
        )
        self.waiter = wait_asyncio

    @classmethod
    async def connect(
        cls,
        conninfo: str = "",
        *,
        autocommit: bool = False,
        row_factory: RowFactory[Any] | None = None,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        **kwargs: Any,
    ) -> Connection[Any]:
        """Connect to a server: see ``asyncio_connect()``."""
        gen, timeout = await cls._async_connect_gen(conninfo, kwargs, _resolve)
        pgconn = await wait_asyncio(gen, timeout=timeout)
        return cls(
            pgconn,
            autocommit=autocommit,
            row_factory=row_factory,
            prepare_threshold=prepare_threshold,
        )

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

    async def close(self) -> None:
        """Close the connection; closing twice does nothing.

        A task waiting on the connection gets an ``OperationalError``; one
        waiting for another task's block to end finds the connection closed.
        From outside its event loop it does not wait: if that loop still
        runs (in another thread), the connection is closed there, soon after.
        """
        home = self.lock.home
        if self.lock.in_home() or not isinstance(home, asyncio.AbstractEventLoop):
            self._close_here()
        elif home.is_running():
            # Its waits are registered in that loop's selector: only its thread may touch them.
            home.call_soon_threadsafe(self._close_here)
        else:
            # That loop has stopped: no wait of ours is in progress there.
            self._close()

    def _close_here(self) -> None:
        if not self.closed:
            notify_closing(self.pgconn.socket)
        self._close()

    async def cancel(self) -> None:
        """Ask the server to cancel the command in progress, without blocking the loop.

        Callable while another task waits on the connection. Returns once
        the server took the request, or after ``CANCEL_TIMEOUT`` if it does
        not answer; a failure is logged, not raised.
        """
        await wait_asyncio(self._cancel_gen(), timeout=RECOVER_POLL_INTERVAL)

    async def _wait_shielded(self, gen: PQGen[T]) -> T:
        # Ending a block: its COMMIT or ROLLBACK must complete even if the
        # task is cancelled again meanwhile; within DRAIN_TIMEOUT.
        return await _shielded(self._wait_bounded(gen))

    async def _wait_bounded(self, gen: PQGen[T]) -> T:
        try:
            return await asyncio.wait_for(super()._wait_shielded(gen), DRAIN_TIMEOUT)
        except asyncio.TimeoutError as ex:
            raise OperationalError("ending the block did not finish in time") from ex

    async def _wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        try:
            return await wait_asyncio(gen, timeout=timeout)
        except BaseException as ex:
            if self._interrupted():
                recovery = wait_asyncio(self._recover_gen(), timeout=RECOVER_POLL_INTERVAL)
                await _run_shielded(recovery)
            elif (closed := self._closed_while_waiting(ex)) is not None:
                raise closed from ex
            raise


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _resolve(host: str, port: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _run_shielded(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to its end even if the current task is cancelled again.

    The recovery is bounded by its own deadlines, and no cancellation is
    lost: the caller re-raises the exception it is handling.
    """
    task = asyncio.ensure_future(coro)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
    task.result()


async def _shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end though the current task is cancelled meanwhile.

    A cancellation received meanwhile goes on once it is done (its result,
    or error, then dropped).
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as ex:
            cancelled = ex
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # (retrieved: it is superseded by the cancellation)
        raise cancelled
    return task.result()


@overload
def asyncio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: RowFactory[R], **kwargs: Any
) -> ConnectContext[Connection[R]]: ...


@overload
def asyncio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: None = None, **kwargs: Any
) -> ConnectContext[Connection]: ...


def asyncio_connect(
    conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
) -> ConnectContext[Connection[Any]]:
    """Connect to a PostgreSQL server from asyncio.

    Use as ``conn = await asyncio_connect(dsn)`` or
    ``async with asyncio_connect(dsn) as conn:``.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters overriding those in ``conninfo``;
        ``row_factory`` (``psycopg3.rows``) sets the shape of the rows of the
        connection's cursors; ``prepare_threshold``
        sets when queries are prepared (None: never, as PgBouncer in
        transaction mode needs).
    :raises OperationalError: if the connection cannot be made.
    """
    return ConnectContext(lambda: Connection.connect(conninfo, autocommit=autocommit, **kwargs))


connect = asyncio_connect
