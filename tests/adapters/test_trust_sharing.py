"""One connection shared by two tasks or threads while one of them is in a block.

Issue 14, case 6, in every flavour: a ``transaction()`` or ``pipeline()``
block owns the connection for the task (thread) that entered it until it
ends; another task using the connection meanwhile waits, and its work then
runs outside the block, as it believes. Only the owner may leave its block.

The other party is a thread in the blocking flavour, a task in the async
ones. Order is asserted with events and with what ``admin`` sees on the
server, never with sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from fix_flavours import ASYNC_FLAVOURS, backend_state, rows
from psycopg3 import ProgrammingError, Rollback
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio


class Other:
    """The other user of the connection: a thread (blocking flavour) or a task.

    ``run(work)`` starts ``work(conn)`` over there — a plain function given
    the blocking connection, or a coroutine function given the async one —
    and returns once it is about to call the connection. The task is started
    when the helper is made, before any block, and gets its work through a
    channel: a task the block's owner started inside the block would join
    the block instead (see test_trust_child_tasks.py).
    """

    def __init__(self, flavour: Any, conn: Any):
        self._sync = flavour.is_sync
        self._conn = conn.target if flavour.is_sync else conn
        self._thread: threading.Thread | None = None
        self._done_sync = threading.Event()
        self._done = anyio.Event()
        self._send, self._receive = anyio.create_memory_object_stream[Any](1)
        self._started = False
        self.result: Any = None
        self.error: BaseException | None = None

    async def serve(self) -> None:
        """The other task's body, started before the test enters any block."""
        async with self._receive:
            async for work, started in self._receive:
                started.set()
                try:
                    self.result = await work(self._conn)
                except BaseException as ex:  # noqa: BLE001 - checked by the test
                    self.error = ex
                self._done.set()

    async def run(self, work: Callable[[Any], Any]) -> None:
        self._started = True
        if self._sync:
            started = threading.Event()

            def target() -> None:
                started.set()
                try:
                    self.result = work(self._conn)
                except BaseException as ex:  # noqa: BLE001 - checked by the test
                    self.error = ex
                self._done_sync.set()

            self._thread = threading.Thread(target=target)
            self._thread.start()
            started.wait()
            return
        started_async = anyio.Event()
        await self._send.send((work, started_async))
        await started_async.wait()

    @property
    def done(self) -> bool:
        return self._done_sync.is_set() if self._sync else self._done.is_set()

    async def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        elif self._started:
            await self._done.wait()


@asynccontextmanager
async def other_user(flavour: Any, conn: Any) -> AsyncIterator[Other]:
    other = Other(flavour, conn)
    async with anyio.create_task_group() as group:
        if not flavour.is_sync:
            group.start_soon(other.serve)
        try:
            yield other
            await other.wait()
        finally:
            other._send.close()  # (the other task ends, closing its end)
            if flavour.is_sync:
                other._receive.close()


def insert(table: str, value: int, flavour: Any) -> Callable[[Any], Any]:
    if flavour.is_sync:
        return lambda conn: conn.execute(f"insert into {table} values ({value})").rowcount

    async def work(conn: Any) -> int:
        cur = await conn.execute(f"insert into {table} values ({value})")
        return int(cur.rowcount)

    return work


@pytest.mark.parametrize("kind", ["transaction", "pipeline"])
async def test_other_users_insert_waits_for_the_block(
    flavour: Any, dsn: str, admin: Any, table: str, kind: str
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        pid = conn.pgconn.backend_pid
        async with other_user(flavour, conn) as other:
            with pytest.raises(ZeroDivisionError):
                async with getattr(conn, kind)():
                    await conn.execute(f"insert into {table} values (1)")
                    await other.run(insert(table, 2, flavour))
                    # The owner goes on; the other user's insert waits.
                    await conn.execute(f"insert into {table} values (3)")
                    cur = await conn.execute("select 4")
                    assert await cur.fetchone() == (4,)
                    if kind == "transaction":
                        assert backend_state(admin, pid) == "idle in transaction"
                    assert not other.done
                    assert rows(admin, table) == []
                    1 / 0  # noqa: B018 - the block rolls back (a pipeline keeps autocommit rows)
            await other.wait()
        # The other user's insert ran after the block, outside it: reported, durable.
        assert other.error is None
        assert other.result == 1
        assert 2 in rows(admin, table)
        expected = [2] if kind == "transaction" else [1, 2, 3]
        assert rows(admin, table) == expected
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert backend_state(admin, pid) == "idle"
    finally:
        await conn.close()


async def test_other_users_block_waits_and_stays_apart(
    flavour: Any, dsn: str, admin: Any, table: str
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        if flavour.is_sync:

            def other_block(raw: Any) -> None:
                with raw.transaction():
                    raw.execute(f"insert into {table} values (2)")

        else:

            async def other_block(conn: Any) -> None:  # type: ignore[misc]
                async with conn.transaction():
                    await conn.execute(f"insert into {table} values (2)")

        async with other_user(flavour, conn) as other:
            async with conn.transaction() as mine:
                await conn.execute(f"insert into {table} values (1)")
                await other.run(other_block)
                await conn.execute(f"insert into {table} values (3)")
                assert not other.done
                raise Rollback(mine)
        assert other.error is None
        assert mine.status == "rolled_back"
        assert rows(admin, table) == [2]
        assert conn.info.transaction_status == TransactionStatus.IDLE
    finally:
        await conn.close()


async def test_only_the_owner_leaves_its_block(
    flavour: Any, dsn: str, admin: Any, table: str
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        # The other user is there before the block (one started in it would join it).
        async with other_user(flavour, conn) as other:
            block = conn.transaction()
            tx = await block.__aenter__()
            await conn.execute(f"insert into {table} values (1)")

            if flavour.is_sync:

                def leave(raw: Any) -> Any:
                    return tx.__exit__(None, None, None)

            else:

                async def leave(conn: Any) -> Any:  # type: ignore[misc]
                    return await tx.__aexit__(None, None, None)

            await other.run(leave)
            await other.wait()
            # Refused at once, not a hang: the block is still the owner's.
            assert isinstance(other.error, ProgrammingError)
            assert "belong to the one that entered them" in str(other.error)
            assert tx.status == "active"
            assert rows(admin, table) == []
            await block.__aexit__(None, None, None)
        assert tx.status == "committed"
        assert rows(admin, table) == [1]
        assert backend_state(admin, conn.pgconn.backend_pid) == "idle"
    finally:
        await conn.close()


async def test_owner_uses_the_connection_freely(
    flavour: Any, dsn: str, admin: Any, table: str
) -> None:
    # No hang: the owner's nested blocks, pipelines and cursors run at once.
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.transaction():
            async with conn.pipeline():
                await conn.execute(f"insert into {table} values (1)")
                async with conn.transaction():
                    await conn.execute(f"insert into {table} values (2)")
            async with conn.cursor() as cur:
                await cur.execute(f"select count(*) from {table}")
                assert await cur.fetchone() == (2,)
        assert rows(admin, table) == [1, 2]
        assert not conn.lock.locked()
    finally:
        await conn.close()


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.parametrize("kind", ["transaction", "pipeline"])
async def test_block_cancelled_before_entering_owns_nothing(
    aconn: Any, flavour: Any, kind: str
) -> None:
    # Found by the model tests: entering under a cancel scope already
    # cancelled claimed the connection, then the undo (left by the scope's
    # next cancellation) skipped giving the claim back: every other task
    # waited for ever. (A blocking block has no cancel scope to enter under.)
    block = aconn.transaction() if kind == "transaction" else aconn.pipeline()
    entered = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await block.__aenter__()
        entered = True  # (asyncio enters a pipeline without a checkpoint)
    assert entered != scope.cancelled_caught
    if entered:
        await block.__aexit__(None, None, None)
    assert not aconn.lock.locked(), "an entering that did not finish still owns the connection"
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    answers: list[Any] = []

    async def other() -> None:
        cur = await aconn.execute("select %s::int", (7,))
        answers.append(await cur.fetchone())

    async with anyio.create_task_group() as group:
        group.start_soon(other)
    assert answers == [(7,)]
