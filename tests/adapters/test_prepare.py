"""Automatic prepared statements, in every flavour."""

from __future__ import annotations

from typing import Any

import pytest

import psycopg3

pytestmark = pytest.mark.anyio


async def prepared(aconn: Any) -> list[str]:
    cur = await aconn.execute(
        "select statement from pg_prepared_statements where name like '\\_pg3\\_%%' order by 1",
        prepare=False,
    )
    return [row[0] for row in await cur.fetchall()]


async def run(aconn: Any, query: str, times: int, **kwargs: Any) -> None:
    for i in range(times):
        cur = await aconn.execute(query, (i,), **kwargs)
        assert await cur.fetchone() == (i,)


async def test_prepared_after_threshold(aconn: Any) -> None:
    assert aconn.prepare_threshold == 5
    await run(aconn, "select %s::int", 4)
    assert await prepared(aconn) == []
    await run(aconn, "select %s::int", 3)
    assert await prepared(aconn) == ["select $1::int"]


async def test_prepare_flag(aconn: Any) -> None:
    await run(aconn, "select %s::int + 0", 1, prepare=True)
    await run(aconn, "select %s::int + 1 - 1", 8, prepare=False)
    assert await prepared(aconn) == ["select $1::int + 0"]


async def test_threshold_none_disables(aconn: Any) -> None:
    aconn.prepare_threshold = None
    await run(aconn, "select %s::int", 10)
    assert await prepared(aconn) == []
    aconn.prepare_threshold = 0
    await run(aconn, "select %s::int", 1)
    assert await prepared(aconn) == ["select $1::int"]


async def test_discard_all_forgets(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await run(conn, "select %s::int", 1, prepare=True)
        await conn.execute("discard all")
        assert await prepared(conn) == []
        await run(conn, "select %s::int", 3)  # no "prepared statement does not exist"
        await run(conn, "select %s::int", 1, prepare=True)
        assert await prepared(conn) == ["select $1::int"]
    finally:
        await conn.close()


async def test_result_type_change(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await conn.execute("create temp table rtc (x int)")
        await conn.execute("insert into rtc values (1)")
        query = "select * from rtc where x = %s"
        cur = await conn.execute(query, (1,), prepare=True)
        assert await cur.fetchall() == [(1,)]
        await conn.execute("alter table rtc add column y int")
        with pytest.raises(psycopg3.errors.FeatureNotSupported, match="cached plan"):
            await conn.execute(query, (1,))
        # The stale statement was dropped: the query works again.
        cur = await conn.execute(query, (1,))
        assert await cur.fetchall() == [(1, None)]
    finally:
        await conn.close()


async def test_lru_deallocates(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        conn.prepared_max = 2
        for n in range(4):
            await run(conn, f"select %s::int + {n} - {n}", 1, prepare=True)
        assert await prepared(conn) == ["select $1::int + 2 - 2", "select $1::int + 3 - 3"]
    finally:
        await conn.close()


async def test_failed_transaction(aconn: Any) -> None:
    with pytest.raises(psycopg3.DataError):
        await aconn.execute("select 1 / 0")
    with pytest.raises(psycopg3.errors.InFailedSqlTransaction):
        await aconn.execute("select %s::int", (1,), prepare=True)
    await aconn.rollback()
    await run(aconn, "select %s::int", 1, prepare=True)
    assert await prepared(aconn) == ["select $1::int"]
