"""``psycopg3.sql`` queries through every flavour, and hostile names and values as data."""

from __future__ import annotations

from typing import Any

import pytest

import psycopg3_sync
from psycopg3 import sql

pytestmark = pytest.mark.anyio

HOSTILE_NAMES = [
    'a"; drop table sentinel; --',
    "it's",
    '"',
    '""',
    "a.b",
    "with space",
    "UPPER lower",
    "$$",
    "\\",
    "tab\tand\nnewline",
    "ünïcødé ☃ 😀",
    "; select pg_sleep(10)",
    "x') or ('1'='1",
]
HOSTILE_VALUES = [
    "'; drop table sentinel; --",
    "\\'; drop table sentinel; --",
    "\\",
    "''",
    "$$; drop table sentinel; $$",
    "$tag$ $tag$",
    "E'\\x41'",
    "ünïcødé ☃ 😀",
    "%s %(x)s %%",
    "{} {0} {{",
    "\n\r\t",
]


async def test_execute_composed(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute(sql.SQL("select {}").format(sql.Literal(1)))
    assert await cur.fetchone() == (1,)
    query = sql.SQL("select {}, {}, {name}").format(
        sql.Literal("it's"), sql.Placeholder(), name=sql.Placeholder(format="b")
    )
    assert query.as_string(aconn) == "select 'it''s', %s, %b"
    await cur.execute(
        sql.SQL("select {x}, {y}").format(x=sql.Placeholder("x"), y=sql.Placeholder("y")),
        {"x": 10, "y": "ten"},
    )
    assert await cur.fetchone() == (10, "ten")
    await cur.execute(sql.SQL("select {}, {}").format(sql.Placeholder(), sql.Literal(2)), (1,))
    assert await cur.fetchone() == (1, 2)


async def test_hostile_identifiers_and_literals_are_data(aconn: Any, admin: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("create temp table sentinel (id int)")
    for number, name in enumerate(HOSTILE_NAMES):
        table = sql.Identifier(name)
        column = sql.Identifier(name + " col")
        await cur.execute(sql.SQL("create temp table {} ({} text)").format(table, column))
        assert not cur.nextset()
        values = sql.SQL(", ").join(sql.SQL("({})").format(sql.Literal(v)) for v in HOSTILE_VALUES)
        await cur.execute(sql.SQL("insert into {} ({}) values {}").format(table, column, values))
        assert cur.rowcount == len(HOSTILE_VALUES)
        assert not cur.nextset()
        await cur.execute(
            sql.SQL("select {col} from {tbl} where {col} = {val}").format(
                col=column, tbl=table, val=sql.Literal(HOSTILE_VALUES[number % len(HOSTILE_VALUES)])
            )
        )
        assert await cur.fetchall() == [(HOSTILE_VALUES[number % len(HOSTILE_VALUES)],)]
        await cur.execute(sql.SQL("select {} from {}").format(column, table))
        assert [row[0] for row in await cur.fetchall()] == HOSTILE_VALUES
        assert cur.description[0].name == name + " col"

    # Exactly the tables created, with exactly those names, and the sentinel survived.
    await cur.execute(
        "select relname from pg_class where relnamespace = pg_my_temp_schema()"
        " and relkind = 'r' order by relname"
    )
    names = [row[0] for row in await cur.fetchall()]
    assert sorted(names) == sorted([*HOSTILE_NAMES, "sentinel"])
    await cur.execute("select count(*) from sentinel")
    assert await cur.fetchone() == (0,)
    # Nothing ran on the side: no session is sleeping on an injected pg_sleep.
    sleeping = admin.execute(
        "select count(*) from pg_stat_activity where query like %s", ("%pg_sleep(10)%",)
    ).fetchone()
    assert sleeping == (0,)


async def test_hostile_qualified_names(aconn: Any) -> None:
    cur = aconn.cursor()
    schema = 'evil"; drop schema public cascade; --'
    await cur.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    try:
        table = sql.Identifier(schema, "t.x")
        await cur.execute(sql.SQL("create table {} (v text)").format(table))
        await cur.execute(sql.SQL("insert into {} values ({})").format(table, sql.Literal(schema)))
        await cur.execute(
            "select n.nspname, c.relname from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s",
            (schema,),
        )
        assert await cur.fetchall() == [(schema, "t.x")]
        await cur.execute(sql.SQL("select v from {}").format(table))
        assert await cur.fetchall() == [(schema,)]
        await cur.execute("select count(*) from pg_namespace where nspname = 'public'")
        assert await cur.fetchone() == (1,)
    finally:
        await aconn.rollback()


def test_nul_rejected_before_anything_is_sent(dsn: str) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        with pytest.raises(psycopg3_sync.DataError):
            conn.execute(sql.SQL("select {}").format(sql.Literal("a\x00b")))
        with pytest.raises(psycopg3_sync.DataError):
            sql.Identifier("t\x00; drop table x")
        # The connection was not touched: no failed transaction to roll back.
        assert conn.execute("select 1").fetchone() == (1,)
