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


async def test_connect_disables_preparing(flavour: Any, dsn: str) -> None:
    # Behind PgBouncer in transaction mode a statement prepared on one server
    # connection is missing on the next: disabled from the connection's start.
    conn = await flavour.connect(dsn, prepare_threshold=None)
    try:
        assert conn.prepare_threshold is None
        await run(conn, "select %s::int", 10)
        await run(conn, "select %s::int * 1", 1, prepare=True)  # asked for: still honoured
        assert await prepared(conn) == ["select $1::int * 1"]
    finally:
        await conn.close()
    conn = await flavour.connect(dsn, prepare_threshold=1)
    try:
        await run(conn, "select %s::int", 1)
        assert await prepared(conn) == ["select $1::int"]
    finally:
        await conn.close()


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
        # No transaction was open: the stale statement is dropped and the
        # query run again (unnamed: its count starts again).
        cur = await conn.execute(query, (1,))
        assert await cur.fetchall() == [(1, None)]
        assert await prepared(conn) == []
        await conn.execute(query, (1,), prepare=True)
        await conn.execute("alter table rtc add column z int")
        with pytest.raises(psycopg3.errors.FeatureNotSupported, match="cached plan"):
            async with conn.transaction():
                # In a transaction the failure aborted it: raised, never rerun.
                await conn.execute(query, (1,))
        assert await prepared(conn) == []
        cur = await conn.execute(query, (1,))
        assert await cur.fetchall() == [(1, None, None)]
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


# -- in pipeline mode --------------------------------------------------------


async def run_pipelined(conn: Any, query: str, times: int, **kwargs: Any) -> None:
    """Execute ``query`` ``times`` times in one pipeline, then check every result."""
    async with conn.pipeline():
        curs = [await conn.execute(query, (i,), **kwargs) for i in range(times)]
    for i, cur in enumerate(curs):
        assert await cur.fetchone() == (i,)


async def test_pipeline_prepares_after_threshold(aconn: Any) -> None:
    aconn.autocommit = True
    await run_pipelined(aconn, "select %s::int", 4)
    assert await prepared(aconn) == []
    # The PREPARE and the executions by name travel in the same pipeline.
    await run_pipelined(aconn, "select %s::int", 4)
    assert await prepared(aconn) == ["select $1::int"]
    await run_pipelined(aconn, "select %s::int", 3)
    assert await prepared(aconn) == ["select $1::int"]
    assert aconn._prepare_manager._in_flight == {}


async def test_pipeline_prepare_flag_and_threshold_none(aconn: Any) -> None:
    aconn.autocommit = True
    await run_pipelined(aconn, "select %s::int + 0", 2, prepare=True)
    aconn.prepare_threshold = None
    await run_pipelined(aconn, "select %s::int + 1 - 1", 12)
    assert await prepared(aconn) == ["select $1::int + 0"]


async def test_pipeline_failed_prepare_leaves_nothing(aconn: Any) -> None:
    aconn.autocommit = True
    async with aconn.pipeline() as p:
        await aconn.execute("select 1/0")
        cur = await aconn.execute("select %s::int", (1,), prepare=True)
        with pytest.raises(psycopg3.errors.DivisionByZero):
            await p.sync()
        with pytest.raises(psycopg3.errors.PipelineAborted):
            await cur.fetchone()
    # The PREPARE was skipped: the manager does not believe in it.
    assert await prepared(aconn) == []
    assert aconn._prepare_manager._names == {}
    await run_pipelined(aconn, "select %s::int", 2, prepare=True)
    assert await prepared(aconn) == ["select $1::int"]


async def test_pipeline_failed_transaction(aconn: Any) -> None:
    with pytest.raises(psycopg3.errors.DivisionByZero):  # raised by the block's end
        async with aconn.pipeline():
            await aconn.execute("select 1/0")
            cur = await aconn.execute("select %s::int", (1,), prepare=True)
            with pytest.raises(psycopg3.errors.PipelineAborted):
                await cur.fetchone()
    # The sync ended nothing: the transaction is failed, and nothing was prepared.
    assert aconn._prepare_manager._names == {}
    with pytest.raises(psycopg3.errors.InFailedSqlTransaction):  # the PREPARE's error
        async with aconn.pipeline():
            cur = await aconn.execute("select %s::int", (1,), prepare=True)
            # The PREPARE failed first: the execution by name was skipped.
            with pytest.raises(psycopg3.errors.PipelineAborted):
                await cur.fetchone()
    assert aconn._prepare_manager._names == {}
    await aconn.rollback()
    await run_pipelined(aconn, "select %s::int", 1, prepare=True)
    assert await prepared(aconn) == ["select $1::int"]


async def test_pipeline_after_discard_all(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await run_pipelined(conn, "select %s::int", 1, prepare=True)
        await conn.execute("discard all")
        assert await prepared(conn) == []
        # No "prepared statement does not exist": prepared again.
        await run_pipelined(conn, "select %s::int", 3, prepare=True)
        assert await prepared(conn) == ["select $1::int"]
    finally:
        await conn.close()


async def test_pipeline_result_type_change(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await conn.execute("create temp table rtcp (x int)")
        await conn.execute("insert into rtcp values (1)")
        query = "select * from rtcp where x = %s"
        async with conn.pipeline():
            cur = await conn.execute(query, (1,), prepare=True)
            assert await cur.fetchall() == [(1,)]
        await conn.execute("alter table rtcp add column y int")
        with pytest.raises(psycopg3.errors.FeatureNotSupported, match="cached plan"):
            async with conn.pipeline():
                await conn.execute(query, (1,))
        # The stale statement was forgotten (and deallocated once out of the pipeline).
        assert await prepared(conn) == []
        async with conn.pipeline():
            cur = await conn.execute(query, (1,))
        assert await cur.fetchall() == [(1, None)]
    finally:
        await conn.close()


async def test_pipeline_lru_deallocates_after_the_block(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        conn.prepared_max = 2
        async with conn.pipeline():
            for n in range(4):
                cur = await conn.execute(f"select %s::int + {n} - {n}", (n,), prepare=True)
            assert await cur.fetchone() == (3,)
            # Evicted, not deallocated yet: DEALLOCATE waits for the block's end.
            assert len(conn._prepare_manager._evicted) == 2
        assert await prepared(conn) == ["select $1::int + 2 - 2", "select $1::int + 3 - 3"]
    finally:
        await conn.close()


async def test_executemany_prepares_a_large_batch(aconn: Any, admin: Any) -> None:
    # A batch of threshold or more parameter sets is prepared once and run by
    # name: the server parses and plans the INSERT once, not per row.
    admin.execute("drop table if exists prep_many")
    admin.execute("create table prep_many (id int, name text)")
    cur = aconn.cursor()
    insert = "insert into prep_many (id, name) values (%s, %s)"
    await cur.executemany(insert, [(i, "small") for i in range(4)])
    assert await prepared(aconn) == []
    # None values have no type: those rows run unnamed, the others by name.
    rows = [(i, None if i % 10 == 0 else f"n{i}") for i in range(100)]
    await cur.executemany(insert, rows)
    assert cur.rowcount == 100
    assert await prepared(aconn) == ["insert into prep_many (id, name) values ($1, $2)"]
    await aconn.commit()
    got = admin.execute("select id, name from prep_many where name <> 'small' or name is null")
    assert sorted(got.fetchall(), key=lambda r: r[0]) == rows
    # Run by name: the same statement again, and its plan was reused.
    await cur.executemany(insert, [(i, "again") for i in range(5)])
    assert await prepared(aconn) == ["insert into prep_many (id, name) values ($1, $2)"]
    stats = await aconn.execute(
        "select generic_plans + custom_plans from pg_prepared_statements"
        " where statement like 'insert into prep\\_many%%'",
        prepare=False,
    )
    assert (await stats.fetchone())[0] >= 90 + 5


async def test_executemany_not_prepared_when_disabled(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists prep_many_off")
    admin.execute("create table prep_many_off (id int)")
    conn = await flavour.connect(dsn, prepare_threshold=None)
    try:
        cur = conn.cursor()
        await cur.executemany("insert into prep_many_off values (%s)", [(i,) for i in range(50)])
        assert cur.rowcount == 50
        assert await prepared(conn) == []
    finally:
        await conn.close()


async def test_executemany_in_pipeline_prepares(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists prep_many_pipe")
    admin.execute("create table prep_many_pipe (id int primary key)")
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        async with conn.pipeline():
            await cur.executemany(
                "insert into prep_many_pipe values (%s)", [(i,) for i in range(50)]
            )
        assert cur.rowcount == 50
        assert await prepared(conn) == ["insert into prep_many_pipe values ($1)"]
        # A PREPARE the server refuses leaves nothing believed prepared.
        with pytest.raises(psycopg3.errors.UndefinedTable):
            async with conn.pipeline():
                await cur.executemany("insert into no_such_table values (%s)", [(1,)] * 10)
        assert await prepared(conn) == ["insert into prep_many_pipe values ($1)"]
        await cur.executemany(
            "insert into prep_many_pipe values (%s)", [(i,) for i in range(50, 60)]
        )
        count = await conn.execute("select count(*) from prep_many_pipe")
        assert await count.fetchone() == (60,)
    finally:
        await conn.close()
