"""The trio ``Connection`` and ``trio_connect()``: thin drivers of the core."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import trio

from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT, AsyncConnectionBase, ConnectContext, PQGen
from psycopg3.errors import OperationalError

from .cursor import Cursor
from .waiting import wait_trio

__all__ = ["Connection", "trio_connect", "connect"]

T = TypeVar("T")


class Connection(AsyncConnectionBase):
    """A connection to a PostgreSQL server, for trio.

    Safe to share between tasks: its operations are serialised by a
    ``trio.Lock``. ``async with`` commits on success (rolls back on error)
    and closes at the end of the block. A cancel scope expiring during a
    command sends a cancel request and drains the connection, shielded and
    bounded, before the cancellation goes on.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = trio.Lock()

    @classmethod
    async def connect(
        cls, conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
    ) -> Connection:
        """Connect to a server: see ``trio_connect()``."""
        gen, timeout = await cls._async_connect_gen(conninfo, kwargs, _resolve)
        return cls(await wait_trio(gen, timeout=timeout), autocommit=autocommit)

    def cursor(self, *, binary: bool = False) -> Cursor:
        """Return a new cursor on this connection."""
        self._check_usable()
        return Cursor(self, binary=binary)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Commit or roll back even when the block is left by a cancellation.
        with trio.CancelScope(shield=True):
            await super().__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Close the connection; closing twice does nothing.

        A task waiting on the connection gets an ``OperationalError``.
        """
        if not self.closed:
            # Wake any task still waiting on the socket before the fd goes.
            trio.lowlevel.notify_closing(self.pgconn.socket)
        self._close()

    async def cancel(self) -> None:
        """Ask the server to cancel the command in progress, from a worker thread."""
        if not self.closed:
            await trio.to_thread.run_sync(self._cancel_function(), abandon_on_cancel=True)

    async def _wait(self, gen: PQGen[T]) -> T:
        try:
            return await wait_trio(gen)
        except trio.ClosedResourceError as ex:
            # close() called from another task while this one waited.
            raise OperationalError("the connection was closed while waiting for the server") from ex
        except BaseException:
            if self._interrupted():
                # trio's cancellation is level-triggered: unshielded, the
                # clean-up would be cancelled again at its first checkpoint.
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(CANCEL_TIMEOUT):
                        await trio.to_thread.run_sync(
                            self._cancel_function(), abandon_on_cancel=True
                        )
                    await wait_trio(self._drain_gen(), timeout=DRAIN_TIMEOUT)
            raise


async def _resolve(host: str, port: str) -> list[str]:
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def trio_connect(
    conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
) -> ConnectContext[Connection]:
    """Connect to a PostgreSQL server from trio.

    Use as ``conn = await trio_connect(dsn)`` or
    ``async with trio_connect(dsn) as conn:``.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters overriding those in ``conninfo``.
    :raises OperationalError: if the connection cannot be made.
    """
    return ConnectContext(lambda: Connection.connect(conninfo, autocommit=autocommit, **kwargs))


connect = trio_connect
