"""Executing queries and reading their results, in every flavour."""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest

import psycopg3
from psycopg3 import pq

pytestmark = pytest.mark.anyio


async def test_positional_params(aconn: Any) -> None:
    cur = await aconn.execute("select %s + %s, %s::text", (1, 2, "x"))
    assert await cur.fetchone() == (3, "x")
    assert await cur.fetchone() is None


async def test_named_params(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select %(a)s::int * %(b)s::int, %(a)s::int", {"a": 6, "b": 7})
    assert await cur.fetchone() == (42, 6)


async def test_percent_escape(aconn: Any) -> None:
    cur = await aconn.execute("select %s::text || '%%'", ("100",))
    assert await cur.fetchone() == ("100%",)


async def test_values_never_spliced(aconn: Any, admin: Any) -> None:
    evil = "'; select 'pwned"
    cur = await aconn.execute("select %s::text", (evil,))
    assert await cur.fetchone() == (evil,)
    # The server saw placeholders, not the values.
    pid = aconn.pgconn.backend_pid
    row = admin.execute("select query from pg_stat_activity where pid = %s", (pid,)).fetchone()
    assert row == ("select $1::text",)


async def test_named_placeholder_reused(aconn: Any, admin: Any) -> None:
    cur = await aconn.execute("select %(x)s::int + %(x)s::int", {"x": 21})
    assert await cur.fetchone() == (42,)
    pid = aconn.pgconn.backend_pid
    row = admin.execute("select query from pg_stat_activity where pid = %s", (pid,)).fetchone()
    assert row == ("select $1::int + $1::int",)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**31,
        2**63 - 1,
        -(2**63),
        10**30,
        1.5,
        -0.25,
        "",
        "héllo ☃",
        b"\x00\x01\xff",
    ],
)
async def test_param_round_trip(aconn: Any, value: Any) -> None:
    cur = await aconn.execute("select %s", (value,))
    assert await cur.fetchone() == (value,)


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("select 1::int2", 1),
        ("select 2147483647::int4", 2147483647),
        ("select 9223372036854775807::int8", 9223372036854775807),
        ("select 1.5::float4", 1.5),
        ("select 'infinity'::float8", float("inf")),
        ("select true", True),
        ("select 'abc'::text", "abc"),
        ("select 'abc'::varchar(10)", "abc"),
        ("select '\\x00ff'::bytea", b"\x00\xff"),
        ("select 26::oid", 26),
        ("select 3.14159::numeric", Decimal("3.14159")),
        ("select 'NaN'::numeric", None),  # checked below: NaN != NaN
        ("select null::int", None),
    ],
)
@pytest.mark.parametrize("binary", [False, True])
async def test_load_types(aconn: Any, sql: str, expected: Any, binary: bool) -> None:
    cur = aconn.cursor(binary=binary)
    await cur.execute(sql)
    (value,) = await cur.fetchone()
    if "NaN" in sql:
        assert isinstance(value, Decimal) and value.is_nan()
    else:
        assert value == expected
        assert type(value) is type(expected)


async def test_fetch_methods(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select generate_series(1, 10)")
    assert cur.rowcount == 10
    assert cur.rownumber == 0
    assert await cur.fetchone() == (1,)
    assert await cur.fetchmany() == [(2,)]  # arraysize is 1
    cur.arraysize = 3
    assert await cur.fetchmany() == [(3,), (4,), (5,)]
    assert await cur.fetchmany(2) == [(6,), (7,)]
    assert cur.rownumber == 7
    assert await cur.fetchall() == [(8,), (9,), (10,)]
    assert await cur.fetchall() == []
    assert await cur.fetchmany(5) == []
    assert await cur.fetchone() is None


async def test_iteration(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select generate_series(1, 5)")
    rows = [row async for row in cur]
    assert rows == [(i,) for i in range(1, 6)]


async def test_description(aconn: Any) -> None:
    cur = aconn.cursor()
    assert cur.description is None
    await cur.execute("select 1::int4 as num, 'a'::varchar(12) as txt, 1.5::numeric(10, 3) as dec")
    desc = cur.description
    assert [col.name for col in desc] == ["num", "txt", "dec"]
    assert [col.type_code for col in desc] == [23, 1043, 1700]
    assert desc[0].internal_size == 4
    assert desc[1].display_size == 12
    assert (desc[2].precision, desc[2].scale) == (10, 3)
    assert len(desc[0]) == 7
    name, type_code, *_ = desc[0]
    assert (name, type_code) == ("num", 23)
    await cur.execute("create temp table desc_test (x int)")
    assert cur.description is None


async def test_nextset(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select 10; select 20, 30; create temp table ns (x int)")
    assert await cur.fetchone() == (10,)
    assert cur.nextset()
    assert await cur.fetchone() == (20, 30)
    assert cur.nextset()
    assert cur.description is None
    assert cur.nextset() is None


async def test_fetch_without_rows_raises(aconn: Any) -> None:
    cur = aconn.cursor()
    with pytest.raises(psycopg3.ProgrammingError, match="execute"):
        await cur.fetchone()
    await cur.execute("create temp table nofetch (x int)")
    with pytest.raises(psycopg3.ProgrammingError, match="no rows"):
        await cur.fetchall()


async def test_closed_cursor(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select 1")
    await cur.close()
    assert cur.closed
    with pytest.raises(psycopg3.InterfaceError, match="cursor is closed"):
        await cur.execute("select 1")
    with pytest.raises(psycopg3.InterfaceError, match="cursor is closed"):
        await cur.fetchone()


async def test_cursor_context_manager(aconn: Any) -> None:
    async with aconn.cursor() as cur:
        await cur.execute("select 1")
        assert await cur.fetchone() == (1,)
    assert cur.closed


async def test_binary_per_execute(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select %s::int4, %s::text", (7, "t"), binary=True)
    assert cur.pgresult.fformat(0) == 1
    assert await cur.fetchone() == (7, "t")


async def test_many_rows(aconn: Any) -> None:
    cur = await aconn.execute("select i, i::text from generate_series(1, 20000) i")
    rows = await cur.fetchall()
    assert len(rows) == 20000
    assert rows[-1] == (20000, "20000")


@pytest.mark.parametrize("encoding", ["LATIN1", "UTF8", "SQL_ASCII"])
async def test_client_encoding_change(aconn: Any, encoding: str) -> None:
    cur = aconn.cursor()
    await cur.execute("select %s::text", ("é",))  # the transformer exists already
    await cur.execute(f"set client_encoding to {encoding}")
    await cur.execute("select %s::text, chr(233), length(%s::text)", ("é", "é"))
    row = await cur.fetchone()
    if encoding == "SQL_ASCII":
        # No conversion by the server: the UTF-8 bytes of the database come as
        # they are, and ours go as UTF-8: both round-trip.
        assert row[0] == "é" and row[1] == "é"
    else:
        assert row == ("é", "é", 1)


@pytest.mark.parametrize("direction", ["from stdin", "to stdout"])
async def test_copy_through_execute_is_refused(aconn: Any, direction: str) -> None:
    await aconn.execute("create temp table cp (x int)")
    await aconn.commit()
    query = "copy cp from stdin" if direction == "from stdin" else "copy (select 1) to stdout"
    with pytest.raises(psycopg3.NotSupportedError, match="COPY"):
        await aconn.execute(query)
    # The COPY was ended: the connection works after a rollback.
    await aconn.rollback()
    cur = await aconn.execute("select count(*) from cp")
    assert await cur.fetchone() == (0,)


async def test_empty_query(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("")
    assert cur.description is None
    assert cur.rowcount == -1
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.fetchone()


@pytest.mark.scenario("R2")
async def test_dropped_cursor_frees_its_result_at_once(aconn: Any) -> None:
    # Without waiting for the garbage collector: a large result must not
    # outlive the cursor that fetched it.
    gc.collect()
    before = pq.live_objects()["PGresult"]
    gc.disable()
    try:
        cur = await aconn.execute("select generate_series(1, 1000)")
        assert len(await cur.fetchall()) == 1000
        assert pq.live_objects()["PGresult"] == before + 1
        del cur
        assert pq.live_objects()["PGresult"] == before
        cur = await aconn.execute("select 1")
        await cur.close()
        assert pq.live_objects()["PGresult"] == before
    finally:
        gc.enable()


async def test_unknown_execute_option_names_execute(aconn: Any) -> None:
    # The error names the method the user called and the unknown option, and
    # leaves the cursor usable.
    cur = aconn.cursor()
    with pytest.raises(TypeError, match=r"execute\(\) got an unexpected keyword argument 'binery'"):
        await cur.execute("select 1", binery=True)
    await cur.execute("select 2")
    assert await cur.fetchone() == (2,)


async def test_cursors_name_their_connection(aconn: Any) -> None:
    # Every flavour's cursors, the adapters written from docs/adapters.md
    # included, get ``connection`` from the core.
    conn = getattr(aconn, "target", aconn)  # (the blocking flavours' facade)
    assert aconn.cursor().connection is conn
    assert aconn.cursor("named").connection is conn
    cur = await aconn.execute("select 1")
    assert cur.connection is conn
