"""The asyncio ``Connection`` and ``asyncio_connect()``: thin drivers of the core."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT, AsyncConnectionBase, ConnectContext, PQGen

from .cursor import Cursor
from .waiting import notify_closing, wait_asyncio

__all__ = ["Connection", "asyncio_connect", "connect"]

T = TypeVar("T")


class Connection(AsyncConnectionBase):
    """A connection to a PostgreSQL server, for asyncio.

    Safe to share between tasks: its operations are serialised by an
    ``asyncio.Lock``. ``async with`` commits on success (rolls back on error)
    and closes at the end of the block. A task cancelled during a command
    sends a cancel request and drains the connection, shielded and bounded,
    before the cancellation goes on.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
    ) -> Connection:
        """Connect to a server: see ``asyncio_connect()``."""
        gen, timeout = await cls._async_connect_gen(conninfo, kwargs, _resolve)
        return cls(await wait_asyncio(gen, timeout=timeout), autocommit=autocommit)

    def cursor(self, *, binary: bool = False) -> Cursor:
        """Return a new cursor on this connection."""
        self._check_usable()
        return Cursor(self, binary=binary)

    async def close(self) -> None:
        """Close the connection; closing twice does nothing.

        A task waiting on the connection gets an ``OperationalError``.
        """
        if not self.closed:
            notify_closing(self.pgconn.socket)
        self._close()

    async def cancel(self) -> None:
        """Ask the server to cancel the command in progress, from a worker thread."""
        if not self.closed:
            await asyncio.get_running_loop().run_in_executor(None, self._cancel_function())

    async def _wait(self, gen: PQGen[T]) -> T:
        try:
            return await wait_asyncio(gen)
        except BaseException:
            if self._interrupted():
                await _run_shielded(self._recover())
            raise

    async def _recover(self) -> None:
        cancel = asyncio.get_running_loop().run_in_executor(None, self._cancel_function())
        try:
            await asyncio.wait_for(cancel, CANCEL_TIMEOUT)
        except asyncio.TimeoutError:
            pass  # the worker frees what it owns; the drain's deadline decides
        await wait_asyncio(self._drain_gen(), timeout=DRAIN_TIMEOUT)


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


def asyncio_connect(
    conninfo: str = "", *, autocommit: bool = False, **kwargs: Any
) -> ConnectContext[Connection]:
    """Connect to a PostgreSQL server from asyncio.

    Use as ``conn = await asyncio_connect(dsn)`` or
    ``async with asyncio_connect(dsn) as conn:``.

    :param conninfo: a libpq connection string or URI.
    :param autocommit: whether each command commits on its own.
    :param kwargs: connection parameters overriding those in ``conninfo``.
    :raises OperationalError: if the connection cannot be made.
    """
    return ConnectContext(lambda: Connection.connect(conninfo, autocommit=autocommit, **kwargs))


connect = asyncio_connect
