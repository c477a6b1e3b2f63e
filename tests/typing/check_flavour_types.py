"""What mypy must infer for users of each flavour (checked by ``nox -s typecheck``).

Never run: these functions exist to be type-checked. Each ``assert_type``
states the type a user's editor should see, so that a change which makes
an adapter's method return a core base class (or ``Any``) fails the check.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from psycopg3.rows import DictRow, dict_row

Tuple = tuple[Any, ...]


def sync_flavour(dsn: str) -> None:
    conn = psycopg3_sync.connect(dsn)
    assert_type(conn, psycopg3_sync.Connection[Tuple])
    assert_type(conn.execute("select %s", (1,)), psycopg3_sync.Cursor[Tuple])
    cur = conn.cursor()
    assert_type(cur.execute("select 1"), psycopg3_sync.Cursor[Tuple])
    assert_type(cur.execute("select 1", row_factory=dict_row), psycopg3_sync.Cursor[DictRow])
    assert_type(cur.fetchone(), Tuple | None)
    assert_type(conn.cursor("named"), psycopg3_sync.ServerCursor[Tuple])
    dconn = psycopg3_sync.connect(dsn, row_factory=dict_row)
    assert_type(dconn.execute("select 1").fetchall(), list[DictRow])


async def asyncio_flavour(dsn: str) -> None:
    conn = await psycopg3_asyncio.connect(dsn)
    assert_type(conn, psycopg3_asyncio.Connection[Tuple])
    assert_type(await conn.execute("select %s", (1,)), psycopg3_asyncio.Cursor[Tuple])
    cur = conn.cursor()
    assert_type(await cur.execute("select 1"), psycopg3_asyncio.Cursor[Tuple])
    assert_type(
        await cur.execute("select 1", row_factory=dict_row), psycopg3_asyncio.Cursor[DictRow]
    )
    assert_type(await cur.fetchone(), Tuple | None)
    assert_type(conn.cursor("named"), psycopg3_asyncio.ServerCursor[Tuple])
    dconn = await psycopg3_asyncio.connect(dsn, row_factory=dict_row)
    assert_type(await (await dconn.execute("select 1")).fetchall(), list[DictRow])


async def trio_flavour(dsn: str) -> None:
    conn = await psycopg3_trio.connect(dsn)
    assert_type(conn, psycopg3_trio.Connection[Tuple])
    assert_type(await conn.execute("select %s", (1,)), psycopg3_trio.Cursor[Tuple])
    cur = conn.cursor()
    assert_type(await cur.execute("select 1"), psycopg3_trio.Cursor[Tuple])
    assert_type(await cur.execute("select 1", row_factory=dict_row), psycopg3_trio.Cursor[DictRow])
    assert_type(await cur.fetchone(), Tuple | None)
    assert_type(conn.cursor("named"), psycopg3_trio.ServerCursor[Tuple])
    dconn = await psycopg3_trio.connect(dsn, row_factory=dict_row)
    assert_type(await (await dconn.execute("select 1")).fetchall(), list[DictRow])


def sync_pools(dsn: str) -> None:
    with psycopg3_sync.open_pool(dsn) as pool:
        assert_type(pool, psycopg3_sync.ConnectionPool[Tuple])
        with pool.connection() as conn:
            assert_type(conn, psycopg3_sync.Connection[Tuple])
            assert_type(conn.execute("select 1").fetchone(), Tuple | None)
    with psycopg3_sync.open_pool(dsn, row_factory=dict_row, min_size=1) as dpool:
        assert_type(dpool, psycopg3_sync.ConnectionPool[DictRow])
        with dpool.connection() as dconn:
            assert_type(dconn, psycopg3_sync.Connection[DictRow])
            assert_type(dconn.execute("select 1").fetchone(), DictRow | None)
        assert_type(dpool.getconn(), psycopg3_sync.Connection[DictRow])
    cpool = psycopg3_sync.ConnectionPool(dsn, row_factory=dict_row)
    assert_type(cpool, psycopg3_sync.ConnectionPool[DictRow])
    assert_type(psycopg3_sync.ConnectionPool(dsn), psycopg3_sync.ConnectionPool[Tuple])


async def asyncio_pools(dsn: str) -> None:
    async with psycopg3_asyncio.open_pool(dsn) as pool:
        assert_type(pool, psycopg3_asyncio.ConnectionPool[Tuple])
        async with pool.connection() as conn:
            assert_type(conn, psycopg3_asyncio.Connection[Tuple])
            assert_type(await (await conn.execute("select 1")).fetchone(), Tuple | None)
    async with psycopg3_asyncio.open_pool(dsn, row_factory=dict_row, min_size=1) as dpool:
        assert_type(dpool, psycopg3_asyncio.ConnectionPool[DictRow])
        async with dpool.connection() as dconn:
            assert_type(dconn, psycopg3_asyncio.Connection[DictRow])
            assert_type(await (await dconn.execute("select 1")).fetchone(), DictRow | None)
        assert_type(await dpool.getconn(), psycopg3_asyncio.Connection[DictRow])
    cpool = psycopg3_asyncio.ConnectionPool(dsn, row_factory=dict_row)
    assert_type(cpool, psycopg3_asyncio.ConnectionPool[DictRow])
    assert_type(psycopg3_asyncio.ConnectionPool(dsn), psycopg3_asyncio.ConnectionPool[Tuple])


async def trio_pools(dsn: str) -> None:
    async with psycopg3_trio.open_pool(dsn) as pool:
        assert_type(pool, psycopg3_trio.ConnectionPool[Tuple])
        async with pool.connection() as conn:
            assert_type(conn, psycopg3_trio.Connection[Tuple])
            assert_type(await (await conn.execute("select 1")).fetchone(), Tuple | None)
    async with psycopg3_trio.open_pool(dsn, row_factory=dict_row, min_size=1) as dpool:
        assert_type(dpool, psycopg3_trio.ConnectionPool[DictRow])
        async with dpool.connection() as dconn:
            assert_type(dconn, psycopg3_trio.Connection[DictRow])
            assert_type(await (await dconn.execute("select 1")).fetchone(), DictRow | None)
        assert_type(await dpool.getconn(), psycopg3_trio.Connection[DictRow])
    cpool = psycopg3_trio.ConnectionPool(dsn, row_factory=dict_row)
    assert_type(cpool, psycopg3_trio.ConnectionPool[DictRow])
    assert_type(psycopg3_trio.ConnectionPool(dsn), psycopg3_trio.ConnectionPool[Tuple])
