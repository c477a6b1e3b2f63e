"""One connection shared by many tasks or threads: every result reaches its caller."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_shared_connection_tasks(aconn: Any) -> None:
    seen: list[int] = []

    async def worker(n: int) -> None:
        for i in range(20):
            value = n * 1000 + i
            cur = aconn.cursor()
            await cur.execute("select %s::int, pg_sleep(0.001)", (value,))
            row = await cur.fetchone()
            assert row is not None and row[0] == value
            seen.append(value)

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(worker, n)
    assert sorted(seen) == sorted(n * 1000 + i for n in range(10) for i in range(20))


def test_shared_connection_threads(dsn: str) -> None:
    failures: list[BaseException] = []
    count = [0]

    with psycopg3_sync.connect(dsn, autocommit=True) as conn:

        def worker(n: int) -> None:
            try:
                for i in range(50):
                    value = n * 1000 + i
                    row = conn.execute("select %s::int", (value,)).fetchone()
                    assert row == (value,)
                    count[0] += 1
            except BaseException as ex:  # noqa: BLE001 - reported below
                failures.append(ex)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert count[0] == 400
