"""The DB-API details of client-side cursors, in every flavour.

``description``, ``rowcount``, ``rownumber``, ``arraysize``, ``callproc``,
``scroll``, ``nextset``, closing, and ``executemany`` (pipelined).
"""

from __future__ import annotations

from typing import Any

import pytest

import psycopg3
from psycopg3 import _cursor_many, generators, pq
from psycopg3.waiting import PQGen

pytestmark = pytest.mark.anyio

needs_pipeline = pytest.mark.skipif(pq.version() < 140000, reason="libpq < 14: no pipeline")


async def test_description_sizes(aconn: Any) -> None:
    cur = await aconn.execute(
        "select 1.5::numeric(10, 2) as n, 'ab'::varchar(20) as v, 'a'::char(5) as c,"
        " 'x'::bpchar as b, 1::int4 as i, 'x'::text as t, 1.5::numeric as free"
    )
    n, v, c, b, i, t, free = cur.description
    assert len(n) == 7
    assert tuple(n) == ("n", 1700, 10, None, 10, 2, None)
    assert tuple(v) == ("v", 1043, 20, None, None, None, None)
    assert tuple(c) == ("c", 1042, 5, None, None, None, None)
    assert (b.name, b.type_code, b.display_size) == ("b", 1042, None)
    assert tuple(i) == ("i", 23, None, 4, None, None, None)
    assert (t.internal_size, t.display_size) == (None, None)
    assert (free.precision, free.scale) == (None, None)
    assert n.name == n[0] == "n"


async def test_description_none_without_rows(aconn: Any) -> None:
    cur = aconn.cursor()
    assert cur.description is None
    await cur.execute("set timezone to 'UTC'")
    assert cur.description is None


async def test_rowcount(aconn: Any) -> None:
    cur = aconn.cursor()
    assert cur.rowcount == -1
    await cur.execute("create temp table rc (x int)")
    assert cur.rowcount == -1
    await cur.execute("insert into rc select generate_series(1, 7)")
    assert cur.rowcount == 7
    await cur.execute("update rc set x = x where x > 4")
    assert cur.rowcount == 3
    await cur.execute("update rc set x = x + 1 where x > %s", (4,))
    assert cur.rowcount == 3
    await cur.execute("select * from rc")
    assert cur.rowcount == 7
    await cur.execute("delete from rc")
    assert cur.rowcount == 7


async def test_rownumber_and_arraysize(aconn: Any) -> None:
    cur = aconn.cursor()
    assert cur.rownumber is None
    await cur.execute("select generate_series(1, 10)")
    assert cur.rownumber == 0
    assert cur.arraysize == 1
    assert await cur.fetchmany() == [(1,)]
    cur.arraysize = 3
    assert await cur.fetchmany() == [(2,), (3,), (4,)]
    assert cur.rownumber == 4
    assert await cur.fetchmany(0) == []
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.fetchmany(-1)
    assert len(await cur.fetchall()) == 6
    assert cur.rownumber == 10


async def test_setinputsizes_setoutputsize(aconn: Any) -> None:
    cur = aconn.cursor()
    assert cur.setinputsizes([10, None]) is None
    assert cur.setoutputsize(100) is None
    assert cur.setoutputsize(100, 0) is None
    await cur.execute("select %s", ("x",))
    assert await cur.fetchone() == ("x",)


async def test_callproc_positional(aconn: Any) -> None:
    cur = aconn.cursor()
    params = (2, 5)
    assert await cur.callproc("generate_series", params) == params
    assert await cur.fetchall() == [(2,), (3,), (4,), (5,)]


async def test_callproc_no_params_and_dotted_name(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create function pg_temp.answer() returns int language sql as 'select 42'")
    assert await cur.callproc("pg_temp.answer") is None
    assert await cur.fetchone() == (42,)


async def test_callproc_named_params(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute(
        "create function pg_temp.sub(a int, b int) returns int language sql as 'select a - b'"
    )
    params = {"b": 1, "a": 10}
    assert await cur.callproc("pg_temp.sub", params) is params
    assert await cur.fetchone() == (9,)


async def test_callproc_name_is_quoted(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute(
        'create function pg_temp."we%ird""fn"() returns text language sql as $$select \'ok\'$$'
    )
    await cur.callproc('pg_temp.we%ird"fn')
    assert await cur.fetchone() == ("ok",)
    # A hostile name is an identifier, not SQL: the function is just not found.
    with pytest.raises(psycopg3.errors.UndefinedFunction):
        await cur.callproc("now(); select 1; --")


async def test_scroll(aconn: Any) -> None:
    cur = await aconn.execute("select generate_series(0, 9)")
    await cur.scroll(3)
    assert await cur.fetchone() == (3,)
    await cur.scroll(-2)
    assert await cur.fetchone() == (2,)
    await cur.scroll(8, mode="absolute")
    assert await cur.fetchone() == (8,)
    await cur.scroll(10, mode="absolute")
    assert await cur.fetchone() is None
    assert cur.rownumber == 10
    with pytest.raises(IndexError):
        await cur.scroll(1)
    with pytest.raises(IndexError):
        await cur.scroll(-1, mode="absolute")
    assert cur.rownumber == 10
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.scroll(0, mode="sideways")


async def test_nextset(aconn: Any) -> None:
    cur = await aconn.execute("select 1; select 'a' union all select 'b'; set timezone to 'UTC'")
    assert await cur.fetchall() == [(1,)]
    assert cur.nextset() is True
    assert cur.rowcount == 2
    assert await cur.fetchall() == [("a",), ("b",)]
    assert cur.nextset() is True
    assert cur.description is None
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.fetchone()
    assert cur.nextset() is None


async def test_closed_cursor(aconn: Any) -> None:
    cur = await aconn.execute("select 1")
    await cur.close()
    assert cur.closed
    for call in (cur.fetchone(), cur.fetchall(), cur.execute("select 1")):
        with pytest.raises(psycopg3.InterfaceError):
            await call
    with pytest.raises(psycopg3.InterfaceError):
        await cur.executemany("select %s", [(1,)])
    await cur.close()  # twice is fine


async def test_closed_connection(aconn: Any) -> None:
    cur = await aconn.execute("select 1")
    await aconn.close()
    assert cur.closed
    with pytest.raises(psycopg3.InterfaceError):
        await cur.fetchone()
    with pytest.raises(psycopg3.InterfaceError):
        await cur.execute("select 1")
    with pytest.raises(psycopg3.InterfaceError):
        aconn.cursor()


# -- executemany -------------------------------------------------------------


async def test_executemany_rowcount(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create temp table em (id serial primary key, x int)")
    await cur.executemany("insert into em (x) values (%s)", [(i,) for i in range(500)])
    assert cur.rowcount == 500
    await cur.executemany("update em set x = -1 where id %% %s = 0", [(2,), (5,)])
    assert cur.rowcount == 250 + 100
    await cur.execute("select count(*) from em where x = -1")
    assert await cur.fetchone() == (300,)  # the multiples of 10 were updated twice


async def test_executemany_no_rows_kept(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.executemany("select %s::int", [(1,), (2,)])
    assert cur.rowcount == 2
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.fetchone()
    assert cur.nextset() is None


async def test_executemany_returning(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create temp table emr (id serial primary key, x text)")
    await cur.executemany(
        "insert into emr (x) values (%(x)s) returning id, x",
        [{"x": "a"}, {"x": "b"}, {"x": "c"}],
        returning=True,
    )
    assert cur.rowcount == 3
    got = [await cur.fetchall()]
    while cur.nextset():
        assert cur.rowcount == 1
        got.append(await cur.fetchall())
    assert got == [[(1, "a")], [(2, "b")], [(3, "c")]]


async def test_executemany_empty(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.executemany("select %s", [])
    assert cur.rowcount == 0


async def test_executemany_error_in_transaction(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create temp table eme (x int primary key)")
    await aconn.commit()
    with pytest.raises(psycopg3.errors.UniqueViolation):
        await cur.executemany("insert into eme values (%s)", [(1,), (2,), (1,), (3,)])
    assert aconn.pgconn.transaction_status == pq.TransactionStatus.INERROR
    assert aconn.pgconn.pipeline_status == pq.PipelineStatus.OFF
    await aconn.rollback()
    await cur.execute("select count(*) from eme")
    assert await cur.fetchone() == (0,)


@needs_pipeline
async def test_executemany_autocommit_is_one_transaction(aconn: Any) -> None:
    # In a pipeline with no transaction open, the statements up to the sync
    # form one implicit transaction: an error rolls back those before it.
    cur = aconn.cursor()
    await cur.execute("create temp table ema (x int primary key)")
    await aconn.commit()
    aconn.autocommit = True
    with pytest.raises(psycopg3.errors.UniqueViolation):
        await cur.executemany("insert into ema values (%s)", [(1,), (2,), (1,), (3,)])
    assert aconn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    await cur.execute("select count(*) from ema")
    assert await cur.fetchone() == (0,)
    await cur.executemany("insert into ema values (%s)", [(1,), (2,)])
    await cur.execute("select count(*) from ema")
    assert await cur.fetchone() == (2,)


async def test_executemany_bad_value_sends_nothing(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create temp table emb (x int)")
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.executemany("insert into emb values (%s)", [(1,), (2, 3)])
    await cur.execute("select count(*) from emb")
    assert await cur.fetchone() == (0,)


async def test_executemany_without_pipeline(aconn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback for libpq < 14: one statement at a time.
    monkeypatch.setattr(_cursor_many, "_PIPELINE_LIBPQ", 10**9)
    cur = aconn.cursor()
    await cur.execute("create temp table emf (x int primary key)")
    await cur.executemany("insert into emf values (%s) returning x", [(1,), (2,)], returning=True)
    assert cur.rowcount == 2
    assert await cur.fetchall() == [(1,)]
    with pytest.raises(psycopg3.errors.UniqueViolation):
        await cur.executemany("insert into emf values (%s)", [(3,), (3,)])


@needs_pipeline
def test_pipeline_waits_less_than_once_per_statement(dsn: str) -> None:
    import psycopg3_sync
    from psycopg3_sync.waiting import wait_select

    waits = 0

    def counting(gen: PQGen[Any]) -> PQGen[Any]:
        nonlocal waits
        try:
            request = next(gen)
            while True:
                waits += 1
                ready = yield request
                request = gen.send(ready)
        except StopIteration as ex:
            return ex.value

    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        command = (b"select $1::int", [b"1"], [0], [0], 0)
        results = wait_select(
            counting(generators.pipeline_execute_many(conn.pgconn, [command] * 300))
        )
        assert len(results) == 300
        assert all(r[0].get_value(0, 0) == b"1" for r in results)
        assert waits < 100, waits
        assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
        assert conn.execute("select 2").fetchone() == (2,)


@needs_pipeline
@pytest.mark.parametrize("flavour", ["asyncio", "trio"], indirect=True)
async def test_executemany_interrupted_leaves_connection_usable(aconn: Any) -> None:
    import anyio

    cur = aconn.cursor()
    with anyio.move_on_after(0.3) as scope:
        await cur.executemany("select pg_sleep(%s)", [(0.2,)] * 10)
    assert scope.cancelled_caught
    # The recovery synced the pipeline and left pipeline mode: the connection
    # is in sync, its transaction aborted by the cancel.
    assert not aconn.broken
    assert aconn.pgconn.pipeline_status == psycopg3.pq.PipelineStatus.OFF
    await aconn.rollback()
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)
