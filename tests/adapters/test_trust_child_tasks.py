"""Tasks started by a block's owner inside the block join it (issue 14, "none hangs").

A task that the owner of a ``transaction()`` or ``pipeline()`` block starts
while the block is open (an anyio task group, a trio nursery, asyncio's
``gather``/``TaskGroup`` opened in the block) runs its commands in the
block, one at a time with the owner's: it does not wait for the block to
end, which would hang, as the block waits for it. A task started before the
block still waits, and its work runs outside the block.

The async flavours only: a thread does not inherit the owner's context, so
a thread started inside a blocking block waits like any other.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from fix_flavours import ASYNC_FLAVOURS, rows
from psycopg3.pq import TransactionStatus

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True),
    # The old rule hung here: fail instead.
    pytest.mark.timeout(20),
]


async def child(conn: Any, table: str, value: int, answers: dict[int, Any]) -> None:
    await conn.execute(f"insert into {table} values (%s)", (value,))
    cur = await conn.execute("select %s::text", (f"tag-{value}",))
    answers[value] = await cur.fetchone()


async def test_child_tasks_join_the_transaction(aconn: Any, admin: Any, table: str) -> None:
    answers: dict[int, Any] = {}
    async with aconn.transaction():
        await aconn.execute(f"insert into {table} values (0)")
        async with anyio.create_task_group() as group:
            for value in (1, 2, 3):
                group.start_soon(child, aconn, table, value, answers)
        # The children's rows are in the block's transaction: not yet visible.
        assert aconn.info.transaction_status == TransactionStatus.INTRANS
        assert rows(admin, table) == []
        cur = await aconn.execute(f"select count(*) from {table}")
        assert await cur.fetchone() == (4,)
    assert answers == {v: (f"tag-{v}",) for v in (1, 2, 3)}
    assert rows(admin, table) == [0, 1, 2, 3]
    assert not aconn.lock.locked()


async def test_child_tasks_roll_back_with_the_block(aconn: Any, admin: Any, table: str) -> None:
    answers: dict[int, Any] = {}
    with pytest.raises(ZeroDivisionError):
        async with aconn.transaction():
            await aconn.execute(f"insert into {table} values (0)")
            async with anyio.create_task_group() as group:
                for value in (1, 2, 3):
                    group.start_soon(child, aconn, table, value, answers)
            1 / 0  # noqa: B018 - the block rolls back
    assert answers == {v: (f"tag-{v}",) for v in (1, 2, 3)}
    assert rows(admin, table) == []
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert not aconn.lock.locked()


async def test_child_tasks_join_the_pipeline(aconn: Any, admin: Any, table: str) -> None:
    answers: dict[int, Any] = {}
    async with aconn.transaction():
        async with aconn.pipeline():
            async with anyio.create_task_group() as group:
                for value in (1, 2, 3):
                    group.start_soon(child, aconn, table, value, answers)
            assert rows(admin, table) == []
    assert answers == {v: (f"tag-{v}",) for v in (1, 2, 3)}
    assert rows(admin, table) == [1, 2, 3]
    assert not aconn.lock.locked()


async def test_child_nested_blocks_are_savepoints(aconn: Any, admin: Any, table: str) -> None:
    async def nested(value: int) -> None:
        async with aconn.transaction(force_rollback=value == 2):
            await aconn.execute(f"insert into {table} values (%s)", (value,))

    async with aconn.transaction():
        async with anyio.create_task_group() as group:
            group.start_soon(nested, 1)
        async with anyio.create_task_group() as group:
            group.start_soon(nested, 2)
        assert rows(admin, table) == []
    assert rows(admin, table) == [1]
    assert not aconn.lock.locked()


async def test_task_started_before_the_block_still_waits(
    aconn: Any, admin: Any, table: str
) -> None:
    aconn.autocommit = True
    go = anyio.Event()
    done = anyio.Event()

    async def early() -> None:
        await go.wait()
        await aconn.execute(f"insert into {table} values (2)")
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(early)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(ZeroDivisionError):
            async with aconn.transaction():
                await aconn.execute(f"insert into {table} values (1)")
                go.set()
                await anyio.wait_all_tasks_blocked()
                # The early task waits for the block to end.
                assert not done.is_set()
                await aconn.execute(f"insert into {table} values (3)")
                assert rows(admin, table) == []
                1 / 0  # noqa: B018 - the block rolls back
        await done.wait()
    # Its insert ran after the block, outside it: kept though the block rolled back.
    assert rows(admin, table) == [2]
    assert aconn.info.transaction_status == TransactionStatus.IDLE


async def test_child_after_the_block_waits_like_any_other(aconn: Any, admin: Any) -> None:
    # A task started inside a block that outlives it holds a stale token:
    # once the block ended, a new block of the owner excludes it again.
    aconn.autocommit = True
    go = anyio.Event()
    ran: list[Any] = []

    async def late() -> None:
        await go.wait()
        cur = await aconn.execute("select 1")
        ran.append((await cur.fetchone(), aconn.info.transaction_status))

    async with anyio.create_task_group() as group:
        async with aconn.transaction():
            group.start_soon(late)
        async with aconn.transaction():
            await aconn.execute("select 0")
            go.set()
            await anyio.wait_all_tasks_blocked()
            assert ran == []
    assert ran == [((1,), TransactionStatus.IDLE)]
