"""The connection pools of the three flavours, presented with one async shape.

Pool tests that do not depend on how a flavour interrupts a request are
written once, as ``async def`` tests parametrised over ``POOL_FLAVOURS``
(``@pytest.mark.parametrize("flavour", POOL_FLAVOURS, indirect=True)``,
which also picks anyio's backend). They reach the pool through the
``pools`` fixture, a `PoolKit`:

* ``async with pools.open(dsn, min_size=2, ...) as pool:`` opens a pool of
  the flavour (trio: ``open_pool()``, whose nursery the test's task owns;
  asyncio: ``async with ConnectionPool(...)``; sync: ``open()``/``close()``)
  and yields a `PoolHandle`.
* ``PoolHandle`` has the async API's shape. The sync pool's blocking calls
  run in worker threads (``anyio.to_thread``), so that a request waiting
  for a connection does not block the loop that would give one back; the
  sync connections it hands out are wrapped in ``fix_flavours.SyncFacade``,
  whose calls block the loop: they are short, and only the pool's own
  threads run meanwhile.

The pool modules are imported on first use, not when this plugin loads: a
pool module that does not import must fail the pool tests only.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import anyio
import pytest

from fix_flavours import Flavour, SyncFacade

#: The flavours that have a pool, for ``parametrize("flavour", ..., indirect=True)``.
POOL_FLAVOURS = ["sync", "asyncio", "trio"]
#: The pools of the async flavours.
ASYNC_POOL_FLAVOURS = ["asyncio", "trio"]


def pool_module(flavour: str) -> ModuleType:
    """The pool module of a flavour: ``psycopg3_<flavour>.pool``."""
    return importlib.import_module(f"psycopg3_{flavour}.pool")


def unwrap(conn: Any) -> Any:
    """The connection itself, under a ``SyncFacade`` or not."""
    return conn.target if isinstance(conn, SyncFacade) else conn


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable: a pool method may be sync in one flavour."""
    if inspect.isawaitable(value):
        return await value
    return value


class PoolHandle:
    """A pool of any flavour, with the async API's shape.

    :param pool: the flavour's ``ConnectionPool``, open.
    :param is_sync: whether it is the blocking pool (its calls then run in
        worker threads).
    """

    def __init__(self, pool: Any, is_sync: bool):
        self.pool = pool
        self.is_sync = is_sync

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.is_sync:
            return await anyio.to_thread.run_sync(partial(method, *args, **kwargs))
        return await maybe_await(method(*args, **kwargs))

    def _wrap(self, conn: Any) -> Any:
        return SyncFacade(conn) if self.is_sync else conn

    async def getconn(self, timeout: float | None = None) -> Any:
        return self._wrap(await self._call(self.pool.getconn, timeout=timeout))

    async def putconn(self, conn: Any) -> None:
        await self._call(self.pool.putconn, unwrap(conn))

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """``pool.connection()``; the sync one is entered and left in a worker thread."""
        if not self.is_sync:
            async with self.pool.connection(timeout=timeout) as conn:
                yield conn
            return
        manager = self.pool.connection(timeout=timeout)
        conn = await anyio.to_thread.run_sync(manager.__enter__)
        try:
            yield SyncFacade(conn)
        except BaseException as ex:
            exit_ = partial(manager.__exit__, type(ex), ex, ex.__traceback__)
            if not await anyio.to_thread.run_sync(exit_):
                raise
        else:
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)

    async def wait(self, timeout: float = 30.0) -> None:
        await self._call(self.pool.wait, timeout)

    async def check(self) -> None:
        await self._call(self.pool.check)

    async def resize(self, min_size: int, max_size: int | None = None) -> None:
        await self._call(self.pool.resize, min_size, max_size)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.pool.stats()
        return result

    async def settled(self, size: int) -> dict[str, int]:
        """Wait until ``size`` connections are open and idle and nobody waits; return the stats.

        Connections come back and are replaced in the background: the books
        are read once they balance, and an ``AssertionError`` follows if
        they never do.
        """
        # Imported here: plugins load in name order, fix_wait after this one.
        from fix_wait import await_until

        stats = self.stats()

        def balanced() -> bool:
            nonlocal stats
            stats = self.stats()
            return (
                stats["pool_size"] == size
                and stats["pool_available"] == size
                and stats["requests_waiting"] == 0
            )

        await await_until(balanced, f"the pool to settle to {size} idle connections")
        return stats

    async def pids(self, count: int) -> set[int]:
        """Borrow ``count`` connections at once, check that each works; return their pids."""
        conns = [await self.getconn(timeout=10) for _ in range(count)]
        try:
            for conn in conns:
                cur = await conn.execute("select pg_backend_pid()")
                assert await cur.fetchone() == (conn.pgconn.backend_pid,)
            return {conn.pgconn.backend_pid for conn in conns}
        finally:
            for conn in conns:
                await self.putconn(conn)


@dataclass
class PoolKit:
    """The pool of one flavour: its module, and how to open one."""

    name: str

    @property
    def module(self) -> ModuleType:
        return pool_module(self.name)

    @property
    def ConnectionPool(self) -> Any:  # noqa: N802 - the class, by its name
        return self.module.ConnectionPool

    @property
    def is_sync(self) -> bool:
        return self.name == "sync"

    @asynccontextmanager
    async def open(self, conninfo: str, **kwargs: Any) -> AsyncIterator[PoolHandle]:
        """Open a pool of the flavour for the block; close it (and stop its work) after."""
        if self.name == "trio":
            async with self.module.open_pool(conninfo, **kwargs) as pool:
                yield PoolHandle(pool, is_sync=False)
        elif self.name == "asyncio":
            async with self.ConnectionPool(conninfo, **kwargs) as pool:
                yield PoolHandle(pool, is_sync=False)
        else:
            pool = self.ConnectionPool(conninfo, **kwargs)
            await anyio.to_thread.run_sync(pool.open)
            try:
                yield PoolHandle(pool, is_sync=True)
            finally:
                await anyio.to_thread.run_sync(pool.close)


@pytest.fixture
def pools(flavour: Flavour) -> PoolKit:
    """The pool of the test's flavour (one of ``POOL_FLAVOURS``)."""
    if flavour.name not in POOL_FLAVOURS:
        raise pytest.UsageError(f"no pool for the {flavour.name} flavour: use POOL_FLAVOURS")
    return PoolKit(flavour.name)
