"""One connection shared by many tasks or threads: every result reaches its caller."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS, backend_state, in_pg_sleep
from fix_wait import await_until, wait_until


@pytest.mark.scenario("R5")
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


@pytest.mark.scenario("R5", flavour="sync")
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


@pytest.mark.scenario("C5")
@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_close_from_another_task(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await flavour.connect(dsn)
    pid = conn.pgconn.backend_pid
    errors: list[BaseException] = []

    async def query() -> None:
        try:
            await conn.execute("select pg_sleep(30)")
        except psycopg3.OperationalError as ex:
            errors.append(ex)

    async with anyio.create_task_group() as group:
        group.start_soon(query)
        await await_until(lambda: sleeping(admin, pid), "the query to run")
        await conn.close()
    # The waiting task was woken by close(), not by the end of the query.
    assert sleeping(admin, pid)
    admin.execute("select pg_terminate_backend(%s)", (pid,))
    assert len(errors) == 1 and "closed" in str(errors[0])
    assert conn.closed


@pytest.mark.scenario("C5", flavour="sync")
def test_close_from_another_thread(dsn: str, admin: Any) -> None:
    conn = psycopg3_sync.connect(dsn)
    pid = conn.pgconn.backend_pid
    errors: list[BaseException] = []

    def query() -> None:
        try:
            conn.execute("select pg_sleep(30)")
        except psycopg3.Error as ex:
            errors.append(ex)

    thread = threading.Thread(target=query)
    thread.start()
    wait_until(lambda: sleeping(admin, pid), "the query to run")
    conn.close()
    thread.join(30)
    assert not thread.is_alive()
    # The waiting thread was woken by close(), not by the end of the query.
    assert sleeping(admin, pid)
    admin.execute("select pg_terminate_backend(%s)", (pid,))
    assert len(errors) == 1 and isinstance(errors[0], psycopg3.OperationalError)


def sleeping(admin: Any, pid: int) -> bool:
    """Backend ``pid`` is in its ``pg_sleep``."""
    return backend_state(admin, pid) == "active" and in_pg_sleep(admin, pid)


@pytest.mark.scenario("C5", flavour="sync")
def test_close_racing_queries_never_crashes(dsn: str) -> None:
    # close() from another thread at random moments of a query: the PGconn
    # must never be freed while the querying thread is inside libpq with it
    # (a crash would take the whole test process down).
    import random

    rng = random.Random(42)
    outcomes: list[str] = []
    for _ in range(40):
        conn = psycopg3_sync.connect(dsn, autocommit=True)

        def query(conn: psycopg3_sync.Connection = conn) -> None:
            try:
                for _ in range(5):
                    conn.execute("select pg_sleep(0.02)").fetchall()
                outcomes.append("finished")
            except psycopg3.Error:
                outcomes.append("interrupted")

        thread = threading.Thread(target=query)
        thread.start()
        # Time is the subject: close() lands at a random moment of the queries.
        time.sleep(rng.uniform(0, 0.1))
        conn.close()
        thread.join(10)
        assert not thread.is_alive()
        assert conn.closed
    assert len(outcomes) == 40
    assert "interrupted" in outcomes
