"""The async connection pool: the pool's procedures driven with ``await``.

Layer: pool drivers. ``AsyncPoolBase`` interprets the procedures of
``psycopg3._pool_procs`` (where the order of operations is stated) with
plain ``await``; an adapter subclasses it, defines the few hooks only its
framework can (public methods: a clock, events, starting and stopping its
tasks) and names its connection class, whose framework object does the
rest (connecting, driving a generator, shielding from cancellation). The
books are touched only between two ``await`` s, so each stretch of a
procedure is atomic without a lock. ``psycopg3._blocking_pool`` is the same
for blocking frameworks.

Must not: import asyncio, trio, anyio or any other framework.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar, cast

from . import _pool_effects as fx
from ._async_connection import AsyncConnectionBase
from ._connection_base import RECOVER_POLL_INTERVAL
from ._pool_effects import PoolEvent, Procedure
from ._pool_io import health_gen
from ._pool_procs import PoolProcedures, PoolRow
from .pq import TransactionStatus
from .waiting import PQGen

__all__ = ["AsyncPoolBase", "PoolEvent"]

T = TypeVar("T")
ConnT = TypeVar("ConnT", bound=AsyncConnectionBase)
EventT = TypeVar("EventT", bound=PoolEvent)


class AsyncPoolBase(PoolProcedures[ConnT, EventT, Awaitable[None], PoolRow]):
    """A pool of async connections, minus what only a framework can do.

    The parameters are ``PoolProcedures``': ``configure``, ``reset`` and
    ``check`` are ``async def`` s, ``reconnect_failed`` a plain function.
    """

    # -- the framework's hooks (with ``now()`` and ``new_event()``) ---------

    @abstractmethod
    async def wait_event(self, event: EventT, timeout: float | None) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds passed (False).

        :param timeout: None: no limit.
        """

    @abstractmethod
    def spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``task()`` in the background, where ``stop_background()`` stops it.

        :raises PoolClosed: if the pool is not open (``open_hint`` says how).
        """

    @abstractmethod
    async def stop_background(self, timeout: float) -> None:
        """Cancel the tasks ``spawn()`` started; wait ``timeout`` at most for them to end.

        Also when the calling task is being cancelled.
        """

    # -- what the connection class's framework gives -----------------------

    #: The adapter's connection class: what the pool opens, on its framework.
    connection_class: type[AsyncConnectionBase]

    async def _run_shielded(self, task: Callable[[], Awaitable[T]]) -> T:
        # The cancellation is not lost: it is raised once the task is done.
        return await self.connection_class.framework.shield(task)

    async def _checkpoint(self) -> None:
        # Every coroutine of the API is a checkpoint, also when it need not wait.
        await self.connection_class.framework.checkpoint()

    async def _connect(self) -> ConnT:
        return cast(ConnT, await self.connection_class.connect(self.conninfo, **self.kwargs))

    async def _drive(self, gen: PQGen[T]) -> T:
        return await self.connection_class.framework.wait(gen, timeout=RECOVER_POLL_INTERVAL)

    # -- the interpreter -------------------------------------------------

    async def _run(self, procedure: Procedure[T]) -> T:
        run = fx.Stepper(procedure)
        while (effect := run.advance()) is not None:
            try:
                run.value = await self._perform(effect)
            except BaseException as ex:
                run.error = ex
        return run.result

    async def _perform(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.WaitEvent):
            return await self.wait_event(effect.event, effect.timeout)  # type: ignore[arg-type]
        if isinstance(effect, fx.Close):
            await effect.conn.close()
        elif isinstance(effect, fx.CallBack):
            result = effect.fn(effect.arg)
            if not effect.plain:
                await result
        elif isinstance(effect, fx.Drive):
            async with effect.conn.lock:
                return await self._drive(effect.gen)
        elif isinstance(effect, fx.Connect):
            return await self._connect()
        elif isinstance(effect, fx.Spawn):
            self._start(effect.procedure, effect.name)
        elif isinstance(effect, fx.Shielded):
            return await self._run_shielded(partial(self._run, effect.procedure))
        elif isinstance(effect, fx.StopBackground):
            await self.stop_background(effect.timeout)
        return None

    def _start(self, procedure: Procedure[None], name: str) -> None:
        self.spawn(partial(self._run, procedure))

    # -- the API ---------------------------------------------------------

    async def wait(self, timeout: float = 30.0) -> None:
        """Wait until ``min_size`` connections are open.

        :raises PoolTimeout: if they are not within ``timeout`` seconds.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        await self._checkpoint()
        await self._run(self._wait_proc(timeout))

    async def close(self, timeout: float = 5.0) -> None:
        """Close the pool: idle connections now, those in use when they come back.

        Requests waiting get ``PoolClosed``; the pool's tasks are cancelled
        and awaited, ``timeout`` seconds at most. Closing twice does nothing.
        """
        if not self._policy.inherited:  # a forked child lets its copy go (policy's rule 6)
            await self._run(self._close_proc(timeout))

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[ConnT]:
        """Borrow a connection for the block: ``async with pool.connection() as conn:``.

        On a clean exit an open transaction is committed; on an exception
        (cancellation included) it is rolled back when the connection comes
        back.

        :param timeout: as in ``getconn()``.
        """
        conn = await self.getconn(timeout)
        try:
            yield conn
            if conn._session_status() == TransactionStatus.INTRANS:
                await conn.commit()
        finally:
            await self.putconn(conn)

    async def getconn(self, timeout: float | None = None) -> ConnT:
        """Take a connection; give it back with ``putconn()``.

        :param timeout: seconds to wait for one (None: the pool's ``timeout``).
        :raises PoolTimeout: if none was available in time.
        :raises TooManyRequests: if ``max_waiting`` requests already wait.
        :raises PoolClosed: if the pool is not open.
        """
        self._policy.check_process()
        await self._checkpoint()  # (before taking one: a cancellation here loses none)
        return await self._run(self._getconn_proc(timeout))

    async def putconn(self, conn: ConnT) -> None:
        """Give back a connection taken with ``getconn()``.

        A command in progress is cancelled, a transaction rolled back, then
        the ``reset`` callback runs; a connection failing any of them, too
        old, or returned to a closed pool is closed. This runs to its end
        even if the caller is cancelled meanwhile (the cancellation follows).

        :raises ProgrammingError: if it is not this pool's, or was already
            given back.
        """
        self._policy.check_process()
        await self._run(self._putconn_proc(conn))
        await self._checkpoint()  # (after: the connection is back whatever happens here)

    def stats(self) -> dict[str, int]:
        """The pool's figures: sizes now, and counters since it opened."""
        self._policy.check_process()
        return self._policy.stats()

    async def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's sizes; connections are opened or closed to follow.

        :param max_size: None: ``min_size``.
        """
        self._policy.check_process()
        await self._checkpoint()
        await self._run(self._resize_proc(min_size, max_size))

    async def check(self) -> None:
        """Check every idle connection now; broken ones are replaced."""
        self._policy.check_process()
        await self._run(self._check_proc(self.check_connection))

    @staticmethod
    async def check_connection(conn: AsyncConnectionBase) -> None:
        """Check that ``conn`` answers; usable as the pool's ``check`` callback.

        :raises OperationalError: if it does not.
        """
        async with conn.lock:
            await conn._wait(health_gen(conn), timeout=RECOVER_POLL_INTERVAL)
