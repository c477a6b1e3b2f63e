"""Connections shared by many tasks or threads: every result reaches the caller that asked.

Each query carries a value unique to its caller and its turn (``(task, i)``);
the caller checks it gets exactly that back. A crossed result (one caller
receiving another's row) would mean the protocol was interleaved: the
connection's lock must serialise whole operations, in every flavour, even
when callers are cancelled at random moments.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import wait_until
from psycopg3 import errors


def _expected(task: int, i: int) -> tuple[int, str]:
    return task * 1000 + i, f"task {task} query {i}"


@pytest.mark.anyio
@pytest.mark.scenario("R5")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_50_tasks_over_3_connections(flavour: Any, dsn: str, observe: Any) -> None:
    conns = [await flavour.connect(dsn, autocommit=True) for _ in range(3)]
    crossed: list[tuple[tuple[int, str], Any]] = []
    done = [0]

    async def worker(task: int) -> None:
        conn = conns[task % len(conns)]
        for i in range(100):
            expected = _expected(task, i)
            cur = await conn.execute("select %s::int, %s::text", expected)
            row = await cur.fetchone()
            if row != expected:
                crossed.append((expected, row))
            done[0] += 1

    try:
        async with anyio.create_task_group() as group:
            for task in range(50):
                group.start_soon(worker, task)
    finally:
        for conn in conns:
            await conn.close()
    assert crossed == []
    assert done[0] == 5000
    observe("5000 queries from 50 tasks over 3 shared connections: 0 crossed results")


def _run_threads(target: Any, n: int) -> list[BaseException]:
    """Run ``target(i)`` in *n* threads at once; return what they raised."""
    failures: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            target(i)
        except BaseException as ex:  # noqa: BLE001 - reported by the caller
            failures.append(ex)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
        assert not thread.is_alive()
    return failures


@pytest.mark.scenario("R5", flavour="sync")
def test_8_threads_over_2_connections(dsn: str, observe: Any) -> None:
    conns = [psycopg3_sync.connect(dsn, autocommit=True) for _ in range(2)]
    crossed: list[tuple[tuple[int, str], Any]] = []
    done = [0]

    def worker(task: int) -> None:
        conn = conns[task % len(conns)]
        for i in range(250):
            expected = _expected(task, i)
            row = conn.execute("select %s::int, %s::text", expected).fetchone()
            if row != expected:
                crossed.append((expected, row))
            done[0] += 1

    try:
        failures = _run_threads(worker, 8)
    finally:
        for conn in conns:
            conn.close()
    assert failures == []
    assert crossed == []
    assert done[0] == 2000
    observe("2000 queries from 8 threads over 2 shared connections: 0 crossed results")


@pytest.fixture
def table(admin: psycopg3_sync.Connection) -> Iterator[str]:
    name = f"shared_{uuid.uuid4().hex[:12]}"
    admin.execute(f"create table {name} (id int primary key, thread int not null)")
    try:
        yield name
    finally:
        admin.execute(f"drop table {name}")


@pytest.mark.scenario("R5", flavour="sync")
def test_8_threads_insert_on_one_connection(
    dsn: str, table: str, admin: psycopg3_sync.Connection, observe: Any
) -> None:
    with psycopg3_sync.connect(dsn) as conn:

        def worker(thread: int) -> None:
            for i in range(100):
                conn.execute(f"insert into {table} values (%s, %s)", (thread * 100 + i, thread))

        failures = _run_threads(worker, 8)
        assert failures == []
        conn.commit()
    row = admin.execute(f"select count(*), count(distinct id), min(id), max(id) from {table}")
    assert row.fetchone() == (800, 800, 0, 799)
    observe("8 threads × 100 inserts on one connection: 800 rows, each once")


@pytest.mark.scenario("R5", flavour="sync")
def test_one_cursor_used_from_two_threads(dsn: str, observe: Any) -> None:
    # Misuse: the cursor's state (its current result) is shared, so a thread may
    # read the other's rows or find no result. It may raise; it must not crash
    # the process, hang, or leave the connection unusable.
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        outcomes = {"own": 0, "foreign": 0, "raised": 0}
        raised: set[str] = set()
        lock = threading.Lock()

        def worker(task: int) -> None:
            for i in range(300):
                expected = _expected(task, i)
                try:
                    cur.execute("select %s::int, %s::text", expected)
                    # sleep(0): let the other thread in between execute and fetch.
                    time.sleep(0)
                    row = cur.fetchone()
                    outcome = "own" if row == expected else "foreign"
                except psycopg3.Error as ex:
                    outcome = "raised"
                    raised.add(type(ex).__name__)
                with lock:
                    outcomes[outcome] += 1

        failures = _run_threads(worker, 2)
        assert failures == []
        assert sum(outcomes.values()) == 600
        assert not conn.broken
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.cursor().execute("select %s::int", (42,)).fetchone() == (42,)
    observe(
        f"one cursor, 2 threads × 300: {outcomes['own']} own rows, {outcomes['foreign']}"
        f" rows of the other thread, {outcomes['raised']} raised {sorted(raised)};"
        " connection fine after"
    )


@pytest.mark.scenario("R5", flavour="sync")
def test_committer_thread_racing_executes(
    dsn: str, table: str, admin: psycopg3_sync.Connection, observe: Any
) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        stop = threading.Event()
        commits = [0]

        def committer() -> None:
            while not stop.is_set():
                conn.commit()
                commits[0] += 1
                # A pause so that the commits interleave with the inserts
                # instead of starving them; how many land is not asserted.
                time.sleep(0.001)

        thread = threading.Thread(target=committer)
        thread.start()
        try:
            for i in range(500):
                conn.execute(f"insert into {table} values (%s, 0)", (i,))
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        conn.commit()
    row = admin.execute(f"select count(*), count(distinct id) from {table}").fetchone()
    assert row == (500, 500)
    observe(f"500 inserts racing a committer thread ({commits[0]} commits): all 500 rows once")


@pytest.mark.scenario("R5", flavour="sync")
def test_parallel_sleeps_overlap(dsn: str, admin: psycopg3_sync.Connection, observe: Any) -> None:
    conns = [psycopg3_sync.connect(dsn, autocommit=True) for _ in range(2)]
    pids = [conn.pgconn.backend_pid for conn in conns]

    def both_sleeping() -> bool:
        row = admin.execute(
            "select count(*) from pg_stat_activity"
            " where pid = any(%s) and state = 'active' and query like '%%pg_sleep%%'",
            (pids,),
        ).fetchone()
        return row == (2,)

    def run(i: int) -> None:
        if i < 2:
            with pytest.raises(errors.QueryCanceled):
                conns[i].execute("select pg_sleep(3600)")
            return
        # The server runs both sleeps at once: the first thread's wait let the
        # second one send its query (the wait releases the GIL). Then both end.
        try:
            wait_until(both_sleeping, "both sleeps to run at once")
        finally:
            admin.execute("select pg_cancel_backend(pid) from unnest(%s::int[]) pid", (pids,))

    try:
        failures = _run_threads(run, 3)
    finally:
        for conn in conns:
            conn.close()
    assert failures == []
    observe("two pg_sleep(3600) in two threads: both running on the server at once")


@pytest.mark.anyio
@pytest.mark.scenario("R5")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_random_cancellations_over_shared_connections(
    flavour: Any, dsn: str, observe: Any
) -> None:
    # Cancel scopes with random deadlines (anyio cancels an asyncio task with
    # task.cancel(), a trio one with its own cancel scope): whatever a cancel
    # interrupts, every result that does come back must be the caller's own.
    rng = random.Random(5)
    conns = [await flavour.connect(dsn, autocommit=True) for _ in range(3)]
    crossed: list[tuple[tuple[int, str], Any]] = []
    counts = {"result": 0, "cancelled": 0, "broken": 0}
    unexpected: list[BaseException] = []

    async def worker(task: int) -> None:
        conn = conns[task % len(conns)]
        for i in range(40):
            if conn.broken:
                counts["broken"] += 1
                return
            expected = _expected(task, i)
            sleep = rng.choice([0, 0, 0.002, 0.01])
            # One query in four without a deadline: some results come back
            # whatever the load, and the others are cancelled at random moments.
            deadline = math.inf if rng.random() < 0.25 else rng.uniform(0, 0.04)
            row = None
            with anyio.move_on_after(deadline) as scope:
                try:
                    cur = await conn.execute(
                        "select %s::int, %s::text, pg_sleep(%s)", (*expected, sleep)
                    )
                    row = await cur.fetchone()
                except psycopg3.Error as ex:
                    if not conn.broken:
                        unexpected.append(ex)
                    continue
            if scope.cancelled_caught:
                counts["cancelled"] += 1
                continue
            counts["result"] += 1
            if row is None or row[:2] != expected:
                crossed.append((expected, row))

    try:
        async with anyio.create_task_group() as group:
            for task in range(12):
                group.start_soon(worker, task)
        states = []
        for conn in conns:
            if conn.broken:
                states.append("broken")
                continue
            cur = await conn.execute("select %s::int", (7,))
            assert await cur.fetchone() == (7,)
            states.append("usable")
    finally:
        for conn in conns:
            await conn.close()
    observe(
        f"12 tasks × 40 queries over 3 connections, random cancel scopes: {counts['result']}"
        f" results, {counts['cancelled']} cancelled, 0 crossed; connections {states};"
        f" other errors: {[type(e).__name__ for e in unexpected]}"
    )
    assert crossed == []
    assert unexpected == []
    assert counts["result"] > 0 and counts["cancelled"] > 0
