"""The trio ``Connection`` and ``trio_connect()``: thin drivers of the core."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import trio

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
from .waiting import wait_trio

__all__ = ["Connection", "trio_connect", "connect"]

T = TypeVar("T")
R = TypeVar("R")


class Connection(AsyncConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for trio.

    Safe to share between tasks: its operations are serialised by a
    ``trio.Lock``, and a ``transaction()`` or ``pipeline()`` block owns it
    for the task that entered it until the block ends (others wait).
    ``async with`` commits on success (rolls back on error) and closes at the
    end of the block. A cancel scope expiring during a command sends a cancel
    request and drains the connection, shielded and bounded, before the
    cancellation goes on.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = AsyncConnectionLock(
            trio.Lock, trio.lowlevel.current_task, new_event=trio.Event, home=_running_trio
        )
        self.waiter = wait_trio

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
        """Connect to a server: see ``trio_connect()``."""
        gen, timeout = await cls._async_connect_gen(conninfo, kwargs, _resolve)
        pgconn = await wait_trio(gen, timeout=timeout)
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Commit or roll back even when the block is left by a cancellation.
        with trio.CancelScope(shield=True):
            await super().__aexit__(exc_type, exc, tb)

    async def _wait_shielded(self, gen: PQGen[T]) -> T:
        # A transaction block's COMMIT or ROLLBACK must run even when the
        # block is left by a cancellation: shielded, within DRAIN_TIMEOUT.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + DRAIN_TIMEOUT):
            return await super()._wait_shielded(gen)
        raise OperationalError("ending the transaction block did not finish in time")

    async def close(self) -> None:
        """Close the connection; closing twice does nothing.

        A task waiting on the connection gets an ``OperationalError``; one
        waiting for another task's block to end finds the connection closed.
        From outside its trio run it does not wait: if that run goes on (in
        another thread), the connection is closed there, soon after.
        """
        home = self.lock.home
        if self.lock.in_home() or not isinstance(home, trio.lowlevel.TrioToken):
            self._close_here()
            return
        try:
            # Its waits are registered in that run's I/O manager: only it may touch them.
            home.run_sync_soon(self._close_here)
        except trio.RunFinishedError:
            self._close()  # (no wait of ours is in progress in a finished run)

    def _close_here(self) -> None:
        if not self.closed:
            # Wake any task still waiting on the socket before the fd goes.
            trio.lowlevel.notify_closing(self.pgconn.socket)
        self._close()

    async def cancel(self) -> None:
        """Ask the server to cancel the command in progress, without blocking trio.

        Callable while another task waits on the connection. Returns once
        the server took the request, or after ``CANCEL_TIMEOUT`` if it does
        not answer; a failure is logged, not raised.
        """
        await wait_trio(self._cancel_gen(), timeout=RECOVER_POLL_INTERVAL)

    async def _wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        try:
            return await wait_trio(gen, timeout=timeout)
        except trio.ClosedResourceError as ex:
            # close() called from another task while this one waited.
            raise OperationalError("the connection was closed while waiting for the server") from ex
        except BaseException as ex:
            if self._interrupted():
                # trio's cancellation is level-triggered: unshielded, the
                # recovery would be cancelled again at its first checkpoint.
                # It is bounded by its own deadlines.
                with trio.CancelScope(shield=True):
                    await wait_trio(self._recover_gen(), timeout=RECOVER_POLL_INTERVAL)
            elif (closed := self._closed_while_waiting(ex)) is not None:
                raise closed from ex
            raise


def _running_trio() -> trio.lowlevel.TrioToken | None:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


async def _resolve(host: str, port: str) -> list[str]:
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@overload
def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: RowFactory[R], **kwargs: Any
) -> ConnectContext[Connection[R]]: ...


@overload
def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, row_factory: None = None, **kwargs: Any
) -> ConnectContext[Connection]: ...


def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
) -> ConnectContext[Connection[Any]]:
    """Connect to a PostgreSQL server from trio.

    Use as ``conn = await trio_connect(dsn)`` or
    ``async with trio_connect(dsn) as conn:``.

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


connect = trio_connect
