"""Benchmark psycopg3's adapters against peer PostgreSQL drivers on a local server.

Usage: ``python tools/bench.py [--repeat 5] [--workloads roundtrip,copy_in] [--drivers ...]
[--quick] [--json PATH] [--baseline CHECKOUT]``. The server comes from
``PSYCOPG3_TEST_DSN`` (or ``--dsn``); without one, a throwaway cluster is started through
``tools/pgcluster.py``.

Method: every measurement runs in a fresh subprocess (``bench.py --worker DRIVER WORKLOAD
N``, which prints one JSON line), so each driver is imported with its own environment
(``PSYCOPG_IMPL`` is read at import time). Each worker connects, runs a small untimed
warm-up, then times the workload with ``time.perf_counter`` (wall) and
``time.process_time`` (client CPU: on loopback, what separates drivers). Drivers are
interleaved: each repetition runs every driver once, in an order rotated by one place per
repetition, so slow drifts of the machine spread over all drivers.

``--baseline CHECKOUT`` measures our three flavours a second time, imported from another
checkout (a worktree of the commit before a change), interleaved with the rest: a change's
cost or gain shows as a ratio from one run, on the same noisy machine.

Two workloads measure latency rather than throughput, in milliseconds per operation, the
bounds the test suite only asserts generously: ``cancel`` (a running query interrupted
the way each flavour's users do it, until the connection answers again) and
``connect_timeout`` (a connect to a loopback listener that never answers, until the error).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

WORKER_TIMEOUT_S = 600.0
# workload -> what one operation is, singular and plural
WORKLOADS = {
    "roundtrip": ("query", "queries"),
    "fetch": ("row", "rows"),  # results in text format (asyncpg: always binary)
    "fetch_binary": ("row", "rows"),  # the same query, results in binary format
    "copy_in": ("row", "rows"),  # COPY FROM STDIN of Python rows, adapted by the driver
    "copy_out": ("row", "rows"),  # COPY TO STDOUT read as raw blocks
    "copy_out_rows": ("row", "rows"),  # COPY TO STDOUT parsed into typed rows
    "executemany": ("insert", "inserts"),  # one INSERT per parameter set, batched
    "pipeline": ("query", "queries"),  # `select %s` queries sent in a pipeline, each fetched
    # 50 tasks (threads for sync drivers) each borrowing a connection of a pool of 10 for
    # every `select %s` + fetch; autocommit, so that a query is one round trip
    "pool": ("query", "queries"),
    # Latency, reported in ms per operation: a running `select pg_sleep(10)` interrupted
    # the flavour's way, timed from the interrupt until `select 1` has answered
    "cancel": ("cancel", "cancels"),
    # a connect to a loopback listener that never answers, timed until the error is raised
    "connect_timeout": ("connect", "connects"),
}
LATENCY = {"cancel", "connect_timeout"}
# Workloads a driver has no API for, with the reason shown in the table.
UNSUPPORTED = {
    ("asyncpg", "copy_out_rows"): "COPY gives raw bytes only",
    ("psycopg2", "copy_out_rows"): "COPY gives raw bytes only",
    ("psycopg2", "fetch_binary"): "no binary results",
    ("asyncpg", "pipeline"): "no pipeline of fetched queries",
    ("psycopg2", "pipeline"): "no pipeline mode",
    ("psycopg2", "pool"): "ThreadedConnectionPool raises when exhausted instead of waiting",
}
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)


def fetch_sql(rows: int) -> str:
    """The one query of the fetch workloads: six columns of common types, no parameter."""
    return (
        "select i::int4, i::int8, 'row ' || i, i * 1.5::float8, (i / 7.0)::numeric(12, 4),"
        f" timestamptz '{EPOCH.isoformat()}' + i * interval '1.25 s'"
        f" from generate_series(1, {rows}) as i"
    )


def check_last_row(rows: Any, n: int) -> None:
    """Fail the run unless ``n`` rows came back and the last one holds the expected values."""
    numeric = (Decimal(n) / 7).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    # Aware datetimes compare as instants, whatever time zone a driver uses.
    expected = (n, n, f"row {n}", n * 1.5, numeric, EPOCH + timedelta(seconds=n * 1.25))
    if len(rows) != n or tuple(rows[-1]) != expected:
        raise AssertionError(f"got {len(rows)} rows ending {tuple(rows[-1])!r}, expected {n}")


COPY_TABLE = (
    "create temp table bench_copy (a int8, b text, c float8, d numeric(12, 4), e timestamptz)"
)
COPY_IN = "copy bench_copy (a, b, c, d, e) from stdin"
COPY_TYPES = ["int4", "int8", "text", "float8", "numeric", "timestamptz"]
MANY_TABLE = "create temp table bench_many (a int8, b text)"


def copy_rows(n: int) -> list[tuple[Any, ...]]:
    """The rows of the copy_in workload: the fetch workload's types, built before timing."""
    return [
        (i, f"row {i}", i * 1.5, Decimal(i) / 7, EPOCH + timedelta(seconds=i * 1.25))
        for i in range(1, n + 1)
    ]


def copy_out_sql(n: int) -> str:
    return f"copy ({fetch_sql(n)}) to stdout"


def check_count(row: Any, n: int) -> None:
    """Fail the run unless ``select count(*), sum(a)`` found the ``n`` rows written."""
    if tuple(row) != (n, n * (n + 1) // 2):
        raise AssertionError(f"table holds (count, sum) {tuple(row)!r}, expected {n} rows")


def check_copied_lines(data_lines: int, n: int) -> None:
    if data_lines != n:
        raise AssertionError(f"COPY TO gave {data_lines} lines, expected {n}")


def check_row(row: Any, expected: int) -> None:
    """Fail the run if a round trip did not give back its parameter."""
    if row is None or row[0] != expected:
        raise AssertionError(f"select returned {row!r}, expected ({expected},)")


@dataclass(frozen=True)
class Driver:
    """One driver flavour measured by the benchmark."""

    name: str
    flavour: str  # "sync", "asyncio" or "trio": which of ours it is compared with
    impl: str | None = None  # value for PSYCOPG_IMPL, or None to leave it unset
    note: str = ""
    source: str | None = None  # another checkout whose packages the worker imports


#: The suffix of the names of our drivers imported from ``--baseline``'s checkout.
BASELINE = " @base"


def baseline_drivers(checkout: str) -> list[Driver]:
    """Our three flavours again, imported from the checkout ``checkout`` (before a change)."""
    return [
        Driver(name + BASELINE, flavour, note=f"psycopg3 from {checkout}", source=checkout)
        for flavour, name in OURS.items()
    ]


def source_path(checkout: str) -> str:
    """The PYTHONPATH that makes a worker import our packages from ``checkout``."""
    packages = ["core", "sync", "asyncio", "trio"]
    return os.pathsep.join(
        str(Path(checkout, "packages", f"psycopg3-{package}", "src").resolve())
        for package in packages
    )


DRIVERS = [
    Driver("psycopg3-sync", "sync"),
    Driver("psycopg3-asyncio", "asyncio"),
    Driver("psycopg3-trio", "trio"),
    Driver(
        "psycopg (C)",
        "sync",
        impl="binary",
        note="psycopg 3 with its C speedups; pool: psycopg_pool's `ConnectionPool`",
    ),
    Driver("psycopg (python)", "sync", impl="python", note="psycopg 3 pure-Python mode"),
    Driver(
        "psycopg async (C)",
        "asyncio",
        impl="binary",
        note="AsyncConnection, C speedups; pool: psycopg_pool's `AsyncConnectionPool`",
    ),
    Driver(
        "asyncpg",
        "asyncio",
        note="`select $1::int8`; prepares every statement; binary; copy_in:"
        " `copy_records_to_table` (binary COPY); copy_out: `copy_from_query` to a callable;"
        " pool: `create_pool`, whose release runs its reset query by default (a round trip"
        " per checkout)",
    ),
    Driver(
        "psycopg2",
        "sync",
        note="`%s` interpolated client-side; text only; copy_in: rows formatted in Python"
        " into `copy_expert`; executemany: one round trip per row",
    ),
]
OURS = {"sync": "psycopg3-sync", "asyncio": "psycopg3-asyncio", "trio": "psycopg3-trio"}


# --- worker side: one driver, one workload, timed in this process ---------------------


Timing = dict[str, Any]


@contextmanager
def stopwatch(result: Timing) -> Iterator[None]:
    """Store the wall and CPU seconds spent in the block into ``result``."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    yield
    result["wall"] = time.perf_counter() - wall0
    result["cpu"] = time.process_time() - cpu0


def dbapi_workload(conn: Any, workload: str, n: int, result: Timing) -> None:
    """Run a workload on a blocking DB-API connection with ``%s`` placeholders."""
    cur = conn.cursor(binary=True) if workload == "fetch_binary" else conn.cursor()
    if workload in SYNC_EXTRA:
        SYNC_EXTRA[workload](conn, cur, n, result)
    elif workload == "roundtrip":
        for i in range(50):  # warm-up (also lets psycopg auto-prepare, as users get)
            cur.execute("select %s", (i,))
            cur.fetchone()
        with stopwatch(result):
            for i in range(n):
                cur.execute("select %s", (i,))
                row = cur.fetchone()
        check_row(row, n - 1)
    else:
        cur.execute(fetch_sql(1000))
        cur.fetchall()
        with stopwatch(result):
            cur.execute(fetch_sql(n))
            rows = cur.fetchall()
        check_last_row(rows, n)
    cur.close()


async def async_cursor_workload(conn: Any, workload: str, n: int, result: Timing) -> None:
    """Run a workload on an async connection with psycopg-style cursors."""
    cur = conn.cursor(binary=True) if workload == "fetch_binary" else conn.cursor()
    if workload in ASYNC_EXTRA:
        await ASYNC_EXTRA[workload](conn, cur, n, result)
    elif workload == "roundtrip":
        for i in range(50):
            await cur.execute("select %s", (i,))
            await cur.fetchone()
        with stopwatch(result):
            for i in range(n):
                await cur.execute("select %s", (i,))
                row = await cur.fetchone()
        check_row(row, n - 1)
    else:
        await cur.execute(fetch_sql(1000))
        await cur.fetchall()
        with stopwatch(result):
            await cur.execute(fetch_sql(n))
            rows = await cur.fetchall()
        check_last_row(rows, n)
    await conn.close()


# The COPY, executemany and pipeline workloads: psycopg and ours share the API, so one
# function serves both; psycopg2 (``copy_expert``) and asyncpg have their own below.


def sync_copy_in(conn: Any, cur: Any, n: int, result: Timing) -> None:
    rows = copy_rows(n)
    cur.execute(COPY_TABLE)
    if hasattr(cur, "copy"):
        with stopwatch(result), cur.copy(COPY_IN) as copy:
            for row in rows:
                copy.write_row(row)
    else:  # psycopg2: the rows are formatted by the caller
        import io

        with stopwatch(result):
            lines = [f"{a}\t{b}\t{c!r}\t{d}\t{e.isoformat()}\n" for a, b, c, d, e in rows]
            cur.copy_expert(COPY_IN, io.StringIO("".join(lines)))
    cur.execute("select count(*), sum(a) from bench_copy")
    check_count(cur.fetchone(), n)


def sync_copy_out(conn: Any, cur: Any, n: int, result: Timing) -> None:
    lines = 0
    if hasattr(cur, "copy"):
        with stopwatch(result), cur.copy(copy_out_sql(n)) as copy:
            for block in copy:
                lines += bytes(block).count(b"\n")
    else:

        class Sink:
            def write(self, data: str | bytes) -> None:
                nonlocal lines
                lines += data.count(b"\n" if isinstance(data, bytes) else "\n")  # type: ignore[arg-type]

        with stopwatch(result):
            cur.copy_expert(copy_out_sql(n), Sink())
    check_copied_lines(lines, n)


def sync_copy_out_rows(conn: Any, cur: Any, n: int, result: Timing) -> None:
    with stopwatch(result), cur.copy(copy_out_sql(n)) as copy:
        copy.set_types(COPY_TYPES)
        rows = list(copy.rows())
    check_last_row(rows, n)


def sync_executemany(conn: Any, cur: Any, n: int, result: Timing) -> None:
    cur.execute(MANY_TABLE)
    params = [(i, f"row {i}") for i in range(1, n + 1)]
    with stopwatch(result):
        cur.executemany("insert into bench_many (a, b) values (%s, %s)", params)
    cur.execute("select count(*), sum(a) from bench_many")
    check_count(cur.fetchone(), n)


def sync_pipeline(conn: Any, cur: Any, n: int, result: Timing) -> None:
    cursors = [conn.cursor() for _ in range(n)]
    with stopwatch(result):
        with conn.pipeline():
            for i, c in enumerate(cursors):
                c.execute("select %s", (i,))
        rows = [c.fetchone() for c in cursors]
    check_row(rows[-1], n - 1)
    if [row[0] for row in rows] != list(range(n)):
        raise AssertionError("pipelined results out of order")


SYNC_EXTRA: dict[str, Callable[[Any, Any, int, Timing], None]] = {
    "copy_in": sync_copy_in,
    "copy_out": sync_copy_out,
    "copy_out_rows": sync_copy_out_rows,
    "executemany": sync_executemany,
    "pipeline": sync_pipeline,
}


async def async_copy_in(conn: Any, cur: Any, n: int, result: Timing) -> None:
    rows = copy_rows(n)
    await cur.execute(COPY_TABLE)
    with stopwatch(result):
        async with cur.copy(COPY_IN) as copy:
            for row in rows:
                await copy.write_row(row)
    await cur.execute("select count(*), sum(a) from bench_copy")
    check_count(await cur.fetchone(), n)


async def async_copy_out(conn: Any, cur: Any, n: int, result: Timing) -> None:
    lines = 0
    with stopwatch(result):
        async with cur.copy(copy_out_sql(n)) as copy:
            async for block in copy:
                lines += bytes(block).count(b"\n")
    check_copied_lines(lines, n)


async def async_copy_out_rows(conn: Any, cur: Any, n: int, result: Timing) -> None:
    with stopwatch(result):
        async with cur.copy(copy_out_sql(n)) as copy:
            copy.set_types(COPY_TYPES)
            rows = [row async for row in copy.rows()]
    check_last_row(rows, n)


async def async_executemany(conn: Any, cur: Any, n: int, result: Timing) -> None:
    await cur.execute(MANY_TABLE)
    params = [(i, f"row {i}") for i in range(1, n + 1)]
    with stopwatch(result):
        await cur.executemany("insert into bench_many (a, b) values (%s, %s)", params)
    await cur.execute("select count(*), sum(a) from bench_many")
    check_count(await cur.fetchone(), n)


async def async_pipeline(conn: Any, cur: Any, n: int, result: Timing) -> None:
    cursors = [conn.cursor() for _ in range(n)]
    with stopwatch(result):
        async with conn.pipeline():
            for i, c in enumerate(cursors):
                await c.execute("select %s", (i,))
        rows = [await c.fetchone() for c in cursors]
    check_row(rows[-1], n - 1)
    if [row[0] for row in rows] != list(range(n)):
        raise AssertionError("pipelined results out of order")


ASYNC_EXTRA: dict[str, Callable[[Any, Any, int, Timing], Awaitable[None]]] = {
    "copy_in": async_copy_in,
    "copy_out": async_copy_out,
    "copy_out_rows": async_copy_out_rows,
    "executemany": async_executemany,
    "pipeline": async_pipeline,
}


async def asyncpg_extra(conn: Any, workload: str, n: int, result: Timing) -> None:
    """asyncpg's own API for the COPY and executemany workloads."""
    if workload == "copy_in":
        rows = copy_rows(n)
        await conn.execute(COPY_TABLE)
        with stopwatch(result):
            await conn.copy_records_to_table(
                "bench_copy", records=rows, columns=["a", "b", "c", "d", "e"]
            )
        check_count(await conn.fetchrow("select count(*), sum(a) from bench_copy"), n)
    elif workload == "copy_out":
        lines = 0

        async def sink(data: bytes) -> None:
            nonlocal lines
            lines += data.count(b"\n")

        with stopwatch(result):
            await conn.copy_from_query(fetch_sql(n), output=sink)
        check_copied_lines(lines, n)
    elif workload == "executemany":
        await conn.execute(MANY_TABLE)
        params = [(i, f"row {i}") for i in range(1, n + 1)]
        with stopwatch(result):
            await conn.executemany("insert into bench_many (a, b) values ($1, $2)", params)
        check_count(await conn.fetchrow("select count(*), sum(a) from bench_many"), n)
    else:
        raise ValueError(f"asyncpg has no {workload} workload")


async def asyncpg_workload(dsn: str, workload: str, n: int, result: Timing) -> None:
    """Run a workload on asyncpg (``$1`` placeholders, records instead of tuples)."""
    asyncpg = importlib.import_module("asyncpg")
    conn = await asyncpg.connect(**asyncpg_params(dsn))
    # asyncpg prepares `select $1` and would type the parameter as text: cast it.
    if workload in ASYNC_EXTRA:
        await asyncpg_extra(conn, workload, n, result)
    elif workload == "roundtrip":
        for i in range(50):
            await conn.fetchrow("select $1::int8", i)
        with stopwatch(result):
            for i in range(n):
                row = await conn.fetchrow("select $1::int8", i)
        check_row(row, n - 1)
    else:
        await conn.fetch(fetch_sql(1000))
        with stopwatch(result):
            rows = await conn.fetch(fetch_sql(n))
        check_last_row(rows, n)
    await conn.close()
    result["version"] = f"asyncpg {asyncpg.__version__}"


def asyncpg_params(dsn: str) -> dict[str, Any]:
    """Turn a libpq ``key=value`` conninfo string into ``asyncpg.connect`` arguments."""
    params: dict[str, Any] = {}
    for key, raw in re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn):
        value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith("'") else raw
        params[{"dbname": "database"}.get(key, key)] = int(value) if key == "port" else value
    return params


# The pool workload: every driver's pool, the same tasks. Ours and psycopg_pool share the
# API (``pool.connection()``); asyncpg has ``pool.acquire()``.
POOL_TASKS = 50
POOL_SIZE = 10
POOL_WARMUP = 5  # untimed queries per task (psycopg prepares after 5 executions)


def sync_pool_workload(pool: Any, n: int, result: Timing) -> None:
    """``POOL_TASKS`` threads share ``n`` round trips, one borrowed connection each."""
    import threading

    def task(start: int, count: int, barrier: threading.Barrier, errors: list[Exception]) -> None:
        barrier.wait()
        try:
            for i in range(start, start + count):
                with pool.connection() as conn:
                    row = conn.execute("select %s", (i,)).fetchone()
                check_row(row, i)
        except Exception as exc:
            errors.append(exc)

    def run(count: int, timing: Timing) -> None:
        barrier = threading.Barrier(POOL_TASKS + 1)
        errors: list[Exception] = []
        threads = [
            threading.Thread(target=task, args=(t * count, count, barrier, errors))
            for t in range(POOL_TASKS)
        ]
        for thread in threads:
            thread.start()
        with stopwatch(timing):
            barrier.wait()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]

    run(POOL_WARMUP, {})
    run(n // POOL_TASKS, result)


async def async_pool_task(pool: Any, start: int, count: int) -> None:
    for i in range(start, start + count):
        async with pool.connection() as conn:
            cur = await conn.execute("select %s", (i,))
            row = await cur.fetchone()
        check_row(row, i)


async def asyncio_pool_workload(pool: Any, n: int, result: Timing) -> None:
    """``POOL_TASKS`` asyncio tasks share ``n`` round trips, one borrowed connection each."""
    for count, timing in ((POOL_WARMUP, {}), (n // POOL_TASKS, result)):
        tasks = [async_pool_task(pool, t * count, count) for t in range(POOL_TASKS)]
        with stopwatch(timing):
            await asyncio.gather(*tasks)


async def run_our_asyncio_pool(dsn: str, n: int, result: Timing) -> None:
    ours = importlib.import_module("psycopg3_asyncio")
    async with ours.open_pool(dsn, min_size=POOL_SIZE, kwargs={"autocommit": True}) as pool:
        await pool.wait()
        await asyncio_pool_workload(pool, n, result)


async def run_our_trio_pool(dsn: str, n: int, result: Timing) -> None:
    ours = importlib.import_module("psycopg3_trio")
    trio = importlib.import_module("trio")
    async with ours.open_pool(dsn, min_size=POOL_SIZE, kwargs={"autocommit": True}) as pool:
        await pool.wait()
        for count, timing in ((POOL_WARMUP, {}), (n // POOL_TASKS, result)):
            with stopwatch(timing):
                async with trio.open_nursery() as nursery:
                    for t in range(POOL_TASKS):
                        nursery.start_soon(async_pool_task, pool, t * count, count)


async def run_psycopg_async_pool(dsn: str, n: int, result: Timing) -> None:
    psycopg_pool = importlib.import_module("psycopg_pool")
    pool = psycopg_pool.AsyncConnectionPool(
        dsn, min_size=POOL_SIZE, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    try:
        await asyncio_pool_workload(pool, n, result)
    finally:
        await pool.close()


async def run_asyncpg_pool(dsn: str, n: int, result: Timing) -> None:
    asyncpg = importlib.import_module("asyncpg")
    pool = await asyncpg.create_pool(min_size=POOL_SIZE, max_size=POOL_SIZE, **asyncpg_params(dsn))

    async def task(start: int, count: int) -> None:
        for i in range(start, start + count):
            async with pool.acquire() as conn:
                row = await conn.fetchrow("select $1::int8", i)
            check_row(row, i)

    try:
        for count, timing in ((POOL_WARMUP, {}), (n // POOL_TASKS, result)):
            tasks = [task(t * count, count) for t in range(POOL_TASKS)]
            with stopwatch(timing):
                await asyncio.gather(*tasks)
    finally:
        await pool.close()
    result["version"] = f"asyncpg {asyncpg.__version__}"


# The latency workloads: how long an interrupt or a timeout takes to hand control back.
# Each operation is timed on its own, from the interrupt (or the start of the connect) to
# its end; the worker reports each one ("ops") and their sums ("wall", "cpu"). A few
# operations of a run may be slowed by the machine: the table shows their median.
SLEEP_SQL = "select pg_sleep(10)"
QUERY_CANCELED = "57014"
# libpq rounds a connect_timeout below 2 s up to 2 s (and so does ours): 2 for everyone.
CONNECT_TIMEOUT_S = 2
Mark = tuple[float, float]


def mark() -> Mark:
    return time.perf_counter(), time.process_time()


def add_latency(result: Timing, since: Mark) -> None:
    """Record the wall seconds since ``since`` as one operation; sum wall and CPU."""
    wall, cpu = time.perf_counter() - since[0], time.process_time() - since[1]
    result.setdefault("ops", []).append(wall)
    result["wall"] = result.get("wall", 0.0) + wall
    result["cpu"] = result.get("cpu", 0.0) + cpu


def active_sql(pid: int) -> str:
    """Whether backend ``pid`` runs SLEEP_SQL (polled on an autocommit connection, so
    that every poll reads a fresh pg_stat_activity)."""
    return (
        f"select exists (select from pg_stat_activity where pid = {int(pid)}"
        f" and state = 'active' and query = '{SLEEP_SQL}')"
    )


def check_canceled(exc: Exception) -> None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if code != QUERY_CANCELED:
        raise AssertionError(f"pg_sleep ended with {exc!r}, not a cancellation") from exc


def sync_cancel(connect: Callable[[], Any], n: int, result: Timing) -> None:
    """Once untimed, then ``n`` times: a thread cancels SLEEP_SQL once the server shows
    it active; timed from just before ``cancel()`` until ``select 1`` has answered."""
    import threading

    conn, admin = connect(), connect()
    # psycopg >= 3.2 documents cancel_safe() (non-blocking libpq cancel) over cancel().
    cancel = getattr(conn, "cancel_safe", conn.cancel)
    cur, admin_cur = conn.cursor(), admin.cursor()
    cur.execute("select pg_backend_pid()")
    poll = active_sql(cur.fetchone()[0])
    interrupted: list[Mark] = []

    def interrupt() -> None:
        admin_cur.execute(poll)
        while not admin_cur.fetchone()[0]:
            admin_cur.execute(poll)
        interrupted.append(mark())
        cancel()

    runs: list[Timing] = [{}] + [result] * n  # the first one untimed
    for timing in runs:
        thread = threading.Thread(target=interrupt)
        thread.start()
        try:
            cur.execute(SLEEP_SQL)
        except Exception as exc:
            check_canceled(exc)
        else:
            raise AssertionError("pg_sleep was not interrupted")
        cur.execute("select 1")
        row = cur.fetchone()
        add_latency(timing, interrupted[-1])
        thread.join()
        check_row(row, 1)
    conn.close()
    admin.close()


class CursorClient:
    """The cancel workload's operations on a psycopg-style async connection."""

    def __init__(self, conn: Any):
        self.conn, self.cur = conn, conn.cursor()

    async def sleep(self) -> None:
        await self.cur.execute(SLEEP_SQL)

    async def row(self, sql: str) -> Any:
        await self.cur.execute(sql)
        return await self.cur.fetchone()

    async def close(self) -> None:
        await self.conn.close()


class AsyncpgClient(CursorClient):
    """The same operations on an asyncpg connection."""

    def __init__(self, conn: Any):
        self.conn = conn

    async def sleep(self) -> None:
        await self.conn.execute(SLEEP_SQL)

    async def row(self, sql: str) -> Any:
        return await self.conn.fetchrow(sql)


async def asyncio_cancel(
    connect: Callable[[], Awaitable[CursorClient]], n: int, result: Timing
) -> None:
    """Once untimed, then ``n`` times: ``task.cancel()`` on the task running SLEEP_SQL once
    the server shows it active; timed until ``select 1`` has answered on the connection."""
    client, admin = await connect(), await connect()
    poll = active_sql((await client.row("select pg_backend_pid()"))[0])
    runs: list[Timing] = [{}] + [result] * n  # the first one untimed
    for timing in runs:
        task = asyncio.create_task(client.sleep())
        while not (await admin.row(poll))[0]:
            pass
        since = mark()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("pg_sleep was not interrupted")
        row = await client.row("select 1")
        add_latency(timing, since)
        check_row(row, 1)
    await client.close()
    await admin.close()


async def trio_cancel(
    connect: Callable[[], Awaitable[CursorClient]], n: int, result: Timing
) -> None:
    """As ``asyncio_cancel``, the interrupt being the deadline of the query's cancel scope
    moved to now."""
    trio = importlib.import_module("trio")
    client, admin = await connect(), await connect()
    poll = active_sql((await client.row("select pg_backend_pid()"))[0])

    async def sleep_in(scope: Any) -> None:
        with scope:
            await client.sleep()

    runs: list[Timing] = [{}] + [result] * n  # the first one untimed
    for timing in runs:
        scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleep_in, scope)
            while not (await admin.row(poll))[0]:
                pass
            since = mark()
            scope.deadline = trio.current_time()
        if not scope.cancelled_caught:
            raise AssertionError("pg_sleep was not interrupted")
        row = await client.row("select 1")
        add_latency(timing, since)
        check_row(row, 1)
    await client.close()
    await admin.close()


@contextmanager
def silent_listener() -> Iterator[int]:
    """Yield the port of a loopback socket that listens (the kernel completes the TCP
    handshake) but never accepts, so a client's startup packet is never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nobody listens on: a connect there is refused at once (warm-up)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def silent_conninfo(port: int) -> str:
    # One address, no TLS or GSS attempt: a single startup packet waits for the timeout.
    return (
        f"host=127.0.0.1 port={port} user=bench dbname=bench sslmode=disable"
        f" gssencmode=disable connect_timeout={CONNECT_TIMEOUT_S}"
    )


def check_timed_out(started: Mark, exc: BaseException | None) -> None:
    elapsed = time.perf_counter() - started[0]
    if exc is None:
        raise AssertionError("connected to a listener that never answers")
    if elapsed < CONNECT_TIMEOUT_S / 2:
        raise AssertionError(f"connect failed after {elapsed:.3f} s, before its timeout: {exc!r}")


def sync_connect_timeout(connect: Callable[[int], Any], n: int, result: Timing) -> None:
    """``n`` connects to a silent listener, each timed until its error is raised."""
    try:
        connect(closed_port()).close()
    except Exception:
        pass
    with silent_listener() as port:
        for _ in range(n):
            started, error = mark(), None
            try:
                connect(port).close()
            except Exception as exc:
                add_latency(result, started)
                error = exc
            check_timed_out(started, error)


async def async_connect_timeout(
    connect: Callable[[int], Awaitable[Any]], n: int, result: Timing
) -> None:
    """As ``sync_connect_timeout``, awaiting the connects."""
    try:
        await (await connect(closed_port())).close()
    except Exception:
        pass
    with silent_listener() as port:
        for _ in range(n):
            started, error = mark(), None
            try:
                await (await connect(port)).close()
            except Exception as exc:
                add_latency(result, started)
                error = exc
            check_timed_out(started, error)


def run_latency_driver(name: str, workload: str, n: int, dsn: str, result: Timing) -> None:
    """The cancel or connect_timeout workload of one driver, in this process."""
    if name in ("psycopg3-sync", "psycopg (C)", "psycopg (python)", "psycopg2"):
        if name == "psycopg3-sync":
            sync_connect = importlib.import_module("psycopg3_sync").connect
            result["version"] = f"psycopg3_sync {version_of('psycopg3-sync')}"
        elif name == "psycopg2":
            psycopg2 = importlib.import_module("psycopg2")
            sync_connect = psycopg2.connect
            result["version"] = f"psycopg2 {psycopg2.__version__.split()[0]}"
        else:
            psycopg = importlib.import_module("psycopg")
            sync_connect = psycopg.connect
            result["version"] = f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__})"

        def connect(conninfo: str) -> Any:
            conn = sync_connect(conninfo)
            conn.autocommit = True
            return conn

        if workload == "cancel":
            sync_cancel(lambda: connect(dsn), n, result)
        else:
            sync_connect_timeout(lambda port: connect(silent_conninfo(port)), n, result)
        return

    if name == "asyncpg":
        asyncpg = importlib.import_module("asyncpg")
        result["version"] = f"asyncpg {asyncpg.__version__}"

        async def client() -> CursorClient:
            return AsyncpgClient(await asyncpg.connect(**asyncpg_params(dsn)))

        def connect_silent(port: int) -> Awaitable[Any]:
            return asyncpg.connect(  # type: ignore[no-any-return]
                host="127.0.0.1", port=port, user="bench", database="bench", ssl=False,
                timeout=CONNECT_TIMEOUT_S,
            )  # fmt: skip
    else:
        if name == "psycopg3-asyncio":
            async_connect = importlib.import_module("psycopg3_asyncio").asyncio_connect
            result["version"] = f"psycopg3_asyncio {version_of('psycopg3-asyncio')}"
        elif name == "psycopg3-trio":
            async_connect = importlib.import_module("psycopg3_trio").trio_connect
            trio_version = importlib.import_module("trio").__version__
            result["version"] = f"psycopg3_trio {version_of('psycopg3-trio')}, trio {trio_version}"
        elif name == "psycopg async (C)":
            psycopg = importlib.import_module("psycopg")
            async_connect = psycopg.AsyncConnection.connect
            result["version"] = f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__})"
        else:
            raise ValueError(f"unknown driver {name!r}")

        async def client() -> CursorClient:
            return CursorClient(await async_connect(dsn, autocommit=True))

        def connect_silent(port: int) -> Awaitable[Any]:
            return async_connect(silent_conninfo(port))  # type: ignore[no-any-return]

    if workload == "cancel":
        cancel = trio_cancel if name == "psycopg3-trio" else asyncio_cancel
        main = functools.partial(cancel, client, n, result)
    else:
        main = functools.partial(async_connect_timeout, connect_silent, n, result)
    if name == "psycopg3-trio":
        importlib.import_module("trio").run(main)
    else:
        asyncio.run(main())


def psycopg_versions() -> str:
    psycopg = importlib.import_module("psycopg")
    pool = importlib.import_module("psycopg_pool")
    return (
        f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__}),"
        f" psycopg_pool {pool.__version__}"
    )


def run_pool_driver(name: str, n: int, dsn: str, result: Timing) -> None:
    """The pool workload of one driver, in this process."""
    if name == "psycopg3-sync":
        ours = importlib.import_module("psycopg3_sync")
        pool = ours.ConnectionPool(dsn, min_size=POOL_SIZE, kwargs={"autocommit": True})
        pool.open(wait=True)
        try:
            sync_pool_workload(pool, n, result)
        finally:
            pool.close()
        result["version"] = f"psycopg3_sync {version_of('psycopg3-sync')}"
    elif name == "psycopg3-asyncio":
        asyncio.run(run_our_asyncio_pool(dsn, n, result))
        result["version"] = f"psycopg3_asyncio {version_of('psycopg3-asyncio')}"
    elif name == "psycopg3-trio":
        trio = importlib.import_module("trio")
        trio.run(run_our_trio_pool, dsn, n, result)
        result["version"] = f"psycopg3_trio {version_of('psycopg3-trio')}, trio {trio.__version__}"
    elif name.startswith("psycopg ("):
        psycopg_pool = importlib.import_module("psycopg_pool")
        pool = psycopg_pool.ConnectionPool(
            dsn, min_size=POOL_SIZE, kwargs={"autocommit": True}, open=True
        )
        try:
            pool.wait()
            sync_pool_workload(pool, n, result)
        finally:
            pool.close()
        result["version"] = psycopg_versions()
    elif name == "psycopg async (C)":
        asyncio.run(run_psycopg_async_pool(dsn, n, result))
        result["version"] = psycopg_versions()
    elif name == "asyncpg":
        asyncio.run(run_asyncpg_pool(dsn, n, result))
    else:
        raise ValueError(f"{name} has no pool workload")


def run_driver(name: str, workload: str, n: int, dsn: str) -> Timing:
    """Measure one driver on one workload in this process and return its timings."""
    result: Timing = {"n": n}
    name = name.removesuffix(BASELINE)  # (imported from elsewhere: see measure())
    if workload == "pool":
        run_pool_driver(name, n, dsn, result)
        return result
    if workload in LATENCY:
        run_latency_driver(name, workload, n, dsn, result)
        return result
    if name == "psycopg3-sync":
        ours_sync = importlib.import_module("psycopg3_sync")
        conn = ours_sync.connect(dsn)
        dbapi_workload(conn, workload, n, result)
        conn.close()
        result["version"] = f"psycopg3_sync {version_of('psycopg3-sync')}"
    elif name == "psycopg3-asyncio":
        connect = importlib.import_module("psycopg3_asyncio").asyncio_connect
        asyncio.run(run_async_cursor(connect, dsn, workload, n, result))
        result["version"] = f"psycopg3_asyncio {version_of('psycopg3-asyncio')}"
    elif name == "psycopg3-trio":
        connect = importlib.import_module("psycopg3_trio").trio_connect
        trio = importlib.import_module("trio")
        trio.run(run_async_cursor, connect, dsn, workload, n, result)
        result["version"] = f"psycopg3_trio {version_of('psycopg3-trio')}, trio {trio.__version__}"
    elif name.startswith("psycopg ("):
        psycopg = importlib.import_module("psycopg")
        with psycopg.connect(dsn) as conn:
            dbapi_workload(conn, workload, n, result)
        result["version"] = f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__})"
    elif name == "psycopg async (C)":
        psycopg = importlib.import_module("psycopg")
        connect = psycopg.AsyncConnection.connect
        asyncio.run(run_async_cursor(connect, dsn, workload, n, result))
        result["version"] = f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__})"
    elif name == "asyncpg":
        asyncio.run(asyncpg_workload(dsn, workload, n, result))
    elif name == "psycopg2":
        psycopg2 = importlib.import_module("psycopg2")
        conn = psycopg2.connect(dsn)
        dbapi_workload(conn, workload, n, result)
        conn.close()
        result["version"] = f"psycopg2 {psycopg2.__version__.split()[0]}"
    else:
        raise ValueError(f"unknown driver {name!r}")
    return result


async def run_async_cursor(
    connect: Callable[[str], Awaitable[Any]], dsn: str, workload: str, n: int, result: Timing
) -> None:
    await async_cursor_workload(await connect(dsn), workload, n, result)


def version_of(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def worker_main(name: str, workload: str, n: int) -> int:
    """Entry point of ``--worker``: print one JSON line with timings or the error."""
    dsn = os.environ["PSYCOPG3_BENCH_DSN"]
    try:
        output = run_driver(name, workload, n, dsn)
    except Exception as exc:  # any failure is reported in the table, not raised
        lines = str(exc).strip().splitlines()
        output = {"error": f"{type(exc).__name__}: {lines[0] if lines else ''}".strip(": ")}
    print(json.dumps(output))
    return 0


# --- orchestrator side: subprocesses, statistics, report ------------------------------


def measure(driver: Driver, workload: str, n: int, dsn: str) -> Timing:
    """Run one worker subprocess and return its JSON, or ``{"error": ...}``."""
    env = dict(os.environ, PSYCOPG3_BENCH_DSN=dsn)
    env.pop("PSYCOPG_IMPL", None)
    if driver.impl:
        env["PSYCOPG_IMPL"] = driver.impl
    if driver.source:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [source_path(driver.source), os.environ.get("PYTHONPATH")])
        )
    argv = [sys.executable, __file__, "--worker", driver.name, workload, str(n)]
    try:
        proc = subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {WORKER_TIMEOUT_S:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        timing: Timing = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        return {"error": f"worker crashed: {tail[-1]}"}
    return timing


def run_all(
    dsn: str, drivers: list[Driver], workloads: dict[str, int], repeat: int
) -> dict[str, dict[str, Timing]]:
    """Measure every driver ``repeat`` times per workload, interleaved, rotated."""
    results: dict[str, dict[str, Timing]] = {
        w: {d.name: {"wall": [], "cpu": [], "ops": []} for d in drivers} for w in workloads
    }
    for rep in range(repeat):
        order = drivers[rep % len(drivers) :] + drivers[: rep % len(drivers)]
        for workload, n in workloads.items():
            for driver in order:
                entry = results[workload][driver.name]
                if (driver.name, workload) in UNSUPPORTED:
                    entry["na"] = UNSUPPORTED[driver.name, workload]
                if "error" in entry or "na" in entry:
                    continue  # a driver that failed once is not retried
                timing = measure(driver, workload, n, dsn)
                if "error" in timing:
                    entry["error"] = timing["error"]
                    status = "FAILED: " + timing["error"]
                else:
                    entry["wall"].append(timing["wall"])
                    entry["cpu"].append(timing["cpu"])
                    entry["ops"].extend(timing.get("ops", []))
                    entry["version"] = timing.get("version", "")
                    status = f"{timing['wall']:.3f} s"
                    if workload in LATENCY:
                        status = f"{timing['wall'] / n * 1e3:.1f} ms/{WORKLOADS[workload][0]}"
                print(f"  rep {rep + 1}/{repeat} {workload:9} {driver.name:18} {status}",
                      file=sys.stderr, flush=True)  # fmt: skip
    for per_driver in results.values():
        for entry in per_driver.values():
            if entry["wall"] and "error" not in entry:
                entry["median"] = statistics.median(entry["wall"])
                entry["min"] = min(entry["wall"])
                entry["cpu_median"] = statistics.median(entry["cpu"])
            if entry["ops"] and "error" not in entry:
                entry["op_median"] = statistics.median(entry["ops"])
                ops = entry["ops"] * (2 if len(entry["ops"]) == 1 else 1)  # quantiles needs 2
                entry["op_p90"] = statistics.quantiles(ops, n=10, method="inclusive")[-1]
    return results


def ratio(entry: Timing, reference: Timing | None, key: str = "median") -> str:
    if key not in entry or reference is None or key not in reference:
        return "n/a"
    return f"{entry[key] / reference[key]:.2f}"


def report(
    results: dict[str, dict[str, Timing]], drivers: list[Driver], workloads: dict[str, int]
) -> str:
    """Render one markdown table per workload."""
    out: list[str] = []
    for workload, n in workloads.items():
        per_driver = results[workload]
        unit, units = WORKLOADS[workload]
        if workload in LATENCY:
            out.extend(latency_table(workload, n, per_driver, drivers))
            continue
        out.append(f"\n### {workload}: {n:,} {units}\n")
        out.append(
            "Times are medians over repetitions. `÷ sync` = median / psycopg3-sync median; "
            "`÷ flavour` = median / median of our adapter of the same flavour (sync peers "
            "vs psycopg3-sync, asyncio peers vs psycopg3-asyncio); `CPU ÷ sync` the same "
            "with CPU medians. Above 1 = slower than ours. CPU = client process CPU time.\n"
        )
        out.append(
            f"| driver | flavour | median s | µs/{unit} | min s | CPU µs/{unit} "
            f"| ÷ sync | ÷ flavour | CPU ÷ sync | runs |"
        )
        out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for driver in drivers:
            entry = per_driver[driver.name]
            if "na" in entry:
                out.append(f"| {driver.name} | {driver.flavour} | n/a: {entry['na']} ||||||||")
                continue
            if "error" in entry or "median" not in entry:
                error = str(entry.get("error", "no result")).replace("|", "/")
                out.append(f"| {driver.name} | {driver.flavour} | failed: {error} ||||||||")
                continue
            out.append(
                f"| {driver.name} | {driver.flavour} | {entry['median']:.3f} "
                f"| {entry['median'] / n * 1e6:.2f} | {entry['min']:.3f} "
                f"| {entry['cpu_median'] / n * 1e6:.2f} "
                f"| {ratio(entry, per_driver.get(OURS['sync']))} "
                f"| {ratio(entry, per_driver.get(OURS[driver.flavour]))} "
                f"| {ratio(entry, per_driver.get(OURS['sync']), 'cpu_median')} "
                f"| {len(entry['wall'])} |"
            )
    # The targets: psycopg's pure-Python mode vs ours, >= 1.5 fetching, >= 1 round trips.
    target = {"roundtrip": 1.0, "fetch": 1.5, "fetch_binary": 1.5}
    if any(w in target for w in workloads):
        out.append("\nTargets (psycopg (python) ÷ psycopg3-sync, wall / CPU):\n")
    for workload in (w for w in workloads if w in target):
        ours, peer = results[workload].get(OURS["sync"]), results[workload].get("psycopg (python)")
        if ours is not None and peer is not None:
            wall, cpu = ratio(peer, ours), ratio(peer, ours, "cpu_median")
            out.append(f"- {workload}: {wall} / {cpu} (target >= {target[workload]})")
    notes = [f"- {d.name}: {d.note}" for d in drivers if d.note]
    versions = {str(e.get("version", "")) for r in results.values() for e in r.values()} - {""}
    out.append("\nNotes:\n" + "\n".join(notes) + "\n- versions: " + "; ".join(sorted(versions)))
    return "\n".join(out)


LATENCY_METHOD = {
    "cancel": "Each run: one connection, an untimed cancel, then {n} timed ones. A running"
    " `select pg_sleep(10)` is interrupted once pg_stat_activity (polled on a second"
    " connection) shows it active: sync drivers, `cancel()` from another thread (psycopg:"
    " `cancel_safe()`, which its documentation recommends);"
    " asyncio, `task.cancel()`; trio, the deadline of the query's cancel scope set to now."
    " Timed from the interrupt until the connection has answered `select 1`.",
    "connect_timeout": "Each run times {n} × a connect to a loopback socket that listens but"
    f" never accepts nor answers, with `connect_timeout={CONNECT_TIMEOUT_S}` (libpq's minimum;"
    f" asyncpg: `timeout={CONNECT_TIMEOUT_S}`, `ssl=False`; all: no TLS nor GSS attempt),"
    " timed until the error is raised. Overshoot = median - the timeout.",
}


def latency_table(
    workload: str, n: int, per_driver: dict[str, Timing], drivers: list[Driver]
) -> list[str]:
    """Render a latency workload: milliseconds per operation."""
    unit, units = WORKLOADS[workload]
    overshoot = workload == "connect_timeout"
    out = [f"\n### {workload}: {n:,} {unit if n == 1 else units} per run, ms per {unit}\n"]
    out.append(
        LATENCY_METHOD[workload].format(n=n) + " `median`, `p90`, `worst`: over the single"
        " operations of all runs; CPU = client process CPU time, median over runs of a"
        " run's mean; `÷ sync` / `÷ flavour` = median / the median of psycopg3-sync / of our"
        " adapter of the same flavour.\n"
    )
    extra = " overshoot ms |" if overshoot else ""
    out.append(
        f"| driver | flavour | median ms |{extra} p90 ms | worst ms | CPU ms/{unit} "
        f"| ÷ sync | ÷ flavour | {units} |"
    )
    out.append("|---|---|--:|" + ("--:|" if overshoot else "") + "--:|--:|--:|--:|--:|--:|")
    empty = "|" * (7 if overshoot else 6)
    for driver in drivers:
        entry = per_driver[driver.name]
        if "error" in entry or "op_median" not in entry:
            error = str(entry.get("error", "no result")).replace("|", "/")
            out.append(f"| {driver.name} | {driver.flavour} | failed: {error} {empty}")
            continue
        median_ms = entry["op_median"] * 1e3
        extra = f" {median_ms - CONNECT_TIMEOUT_S * 1e3:+.1f} |" if overshoot else ""
        out.append(
            f"| {driver.name} | {driver.flavour} | {median_ms:.2f} |{extra}"
            f" {entry['op_p90'] * 1e3:.2f} | {max(entry['ops']) * 1e3:.2f}"
            f" | {entry['cpu_median'] / n * 1e3:.2f}"
            f" | {ratio(entry, per_driver.get(OURS['sync']), 'op_median')}"
            f" | {ratio(entry, per_driver.get(OURS[driver.flavour]), 'op_median')}"
            f" | {len(entry['ops'])} |"
        )
    return out


@contextmanager
def server_dsn(given: str | None) -> Iterator[str]:
    """Yield the DSN to use: the given one, or a throwaway cluster's."""
    if given:
        yield given
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from pgcluster import Cluster

    print("starting a throwaway PostgreSQL cluster...", file=sys.stderr)
    with Cluster() as cluster:
        yield cluster.dsn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--drivers", default=None, help="comma-separated driver names")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, 1/10 sizes")
    parser.add_argument("--roundtrips", type=int, default=None, help="default 5000")
    parser.add_argument("--rows", type=int, default=None, help="default 200000")
    parser.add_argument("--dsn", default=os.environ.get("PSYCOPG3_TEST_DSN"))
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also measure our flavours as imported from this checkout (e.g. a worktree of"
        " the commit before a change), interleaved with the rest",
    )
    args = parser.parse_args(argv)

    scale = 10 if args.quick else 1
    rows = args.rows or 200_000 // scale
    roundtrips = args.roundtrips or 5000 // scale
    sizes = {
        "roundtrip": roundtrips,
        "fetch": rows,
        "fetch_binary": rows,
        "copy_in": rows,
        "copy_out": rows,
        "copy_out_rows": rows,
        "executemany": 20_000 // scale,
        "pipeline": roundtrips,
        "pool": 10_000 // scale,
        "cancel": 5 if args.quick else 20,
        "connect_timeout": 1 if args.quick else 2,  # each one waits CONNECT_TIMEOUT_S
    }
    workloads = {w: sizes[w] for w in args.workloads.split(",") if w}
    unknown = set(workloads) - set(WORKLOADS)
    known = DRIVERS + (baseline_drivers(args.baseline) if args.baseline else [])
    drivers = known
    if args.drivers:
        wanted = [name.strip() for name in args.drivers.split(",")]
        if args.baseline:
            wanted += [name + BASELINE for name in wanted if name in OURS.values()]
        unknown |= set(wanted) - {d.name for d in known}
        drivers = [d for d in known if d.name in wanted]
    if unknown:
        parser.error(f"unknown workloads or drivers: {', '.join(sorted(unknown))}")
    repeat = args.repeat or (2 if args.quick else 5)

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    with server_dsn(args.dsn) as dsn:
        results = run_all(dsn, drivers, workloads, repeat)
    meta = {
        "started": started,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "repeat": repeat,
        "sizes": workloads,
        "server": re.sub(r"password=\S+", "password=***", dsn),
    }
    print(f"## psycopg3 benchmark ({started}, Python {meta['python']}, {meta['machine']}, "
          f"{repeat} repetitions)\n\nServer: `{meta['server']}`")  # fmt: skip
    print(report(results, drivers, workloads))
    if args.json:
        document = {"meta": meta, "results": results}
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    sys.exit(main())
