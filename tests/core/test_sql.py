"""Tests of ``psycopg3.sql``: rendering of each piece, and the server's reading of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors, sql
from psycopg3.adapt import PyFormat

PROPERTY = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Text PostgreSQL can hold: any code point but NUL and lone surrogates.
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


def one(conn: Any, query: Any, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# SQL and format()


def test_sql_renders_text_as_written() -> None:
    assert sql.SQL("select 1").as_string(None) == "select 1"
    assert sql.SQL("select 'é'").as_bytes(None) == "select 'é'".encode()
    with pytest.raises(TypeError, match="str"):
        sql.SQL(b"select 1")  # type: ignore[arg-type]


def test_format_positional_numbered_named() -> None:
    query = sql.SQL("select {} from {}").format(sql.Identifier("a"), sql.Identifier("t"))
    assert query.as_string(None) == 'select "a" from "t"'
    query = sql.SQL("{1} {0} {1}").format(sql.SQL("x"), sql.SQL("y"))
    assert query.as_string(None) == "y x y"
    query = sql.SQL("select {col} from {tbl} where {col} = {val}").format(
        col=sql.Identifier("c"), tbl=sql.Identifier("s", "t"), val=sql.Literal(3)
    )
    assert query.as_string(None) == 'select "c" from "s"."t" where "c" = 3'
    query = sql.SQL("{} {x}").format(sql.SQL("a"), x=sql.SQL("b"))
    assert query.as_string(None) == "a b"


def test_format_braces_and_result_type() -> None:
    query = sql.SQL("select '{{}}', {}, '{{x}}'").format(sql.Literal(1))
    assert isinstance(query, sql.Composed)
    assert query.as_string(None) == "select '{}', 1, '{x}'"
    assert sql.SQL("no fields").format().as_string(None) == "no fields"


@pytest.mark.parametrize(
    "text, args, kwargs, error, match",
    [
        ("{} {0}", (1, 2), {}, ValueError, "mix"),
        ("{0} {}", (1, 2), {}, ValueError, "mix"),
        ("{} {}", (1,), {}, ValueError, "field number 1"),
        ("{2}", (1,), {}, ValueError, "field number 2"),
        ("{name}", (), {}, ValueError, "name"),
        ("{!r}", (1,), {}, ValueError, "conversion"),
        ("{:>10}", (1,), {}, ValueError, "format spec"),
        ("{a.b}", (), {"a": 1}, ValueError, "unsupported field"),
        ("{a[0]}", (), {"a": 1}, ValueError, "unsupported field"),
        ("{", (), {}, ValueError, "Single"),
    ],
)
def test_format_errors(
    text: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    pieces = [sql.Literal(a) for a in args]
    named = {k: sql.Literal(v) for k, v in kwargs.items()}
    with pytest.raises(error, match=match):
        sql.SQL(text).format(*pieces, **named)


@pytest.mark.parametrize("arg", ["users", 42, None, b"x"])
def test_format_refuses_plain_values(arg: Any) -> None:
    with pytest.raises(TypeError, match="Identifier.*Literal"):
        sql.SQL("select {}").format(arg)
    with pytest.raises(TypeError, match="Composable"):
        sql.SQL("select {x}").format(x=arg)


# join, Composed, +


def test_join() -> None:
    names = [sql.Identifier("a"), sql.Identifier("b"), sql.Identifier("c")]
    assert sql.SQL(", ").join(names).as_string(None) == '"a", "b", "c"'
    assert sql.SQL(", ").join(iter(names[:1])).as_string(None) == '"a"'
    assert sql.SQL(", ").join([]).as_string(None) == ""
    assert sql.Composed(names).join(" + ").as_string(None) == '"a" + "b" + "c"'
    assert sql.Composed(names).join(sql.SQL("-")).as_string(None) == '"a"-"b"-"c"'
    with pytest.raises(TypeError):
        sql.Composed(names).join(sql.Literal(","))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Composable"):
        sql.SQL(", ").join(["a", "b"])  # type: ignore[list-item]


def test_composed_concatenation_and_equality() -> None:
    query = sql.SQL("select ") + sql.Literal(1) + sql.SQL(", ") + sql.Identifier("x")
    assert isinstance(query, sql.Composed)
    assert query.as_string(None) == 'select 1, "x"'
    assert list(query) == [sql.SQL("select "), sql.Literal(1), sql.SQL(", "), sql.Identifier("x")]
    both = query + query
    assert both.as_string(None) == 'select 1, "x"' * 2
    assert len(list(both)) == 8
    assert (sql.SQL("a") + query).as_string(None) == 'aselect 1, "x"'
    assert (sql.SQL("?, ") * 3).as_string(None) == "?, ?, ?, "
    assert sql.Literal(1) == sql.Literal(1)
    assert sql.Literal(1) != sql.Literal(2)
    assert sql.SQL("x") != sql.Identifier("x")
    assert sql.Composed([sql.SQL("a")]) == sql.Composed([sql.SQL("a")])
    with pytest.raises(TypeError):
        sql.SQL("a") + "b"  # type: ignore[operator]
    with pytest.raises(TypeError, match="Composable"):
        sql.Composed([sql.SQL("a"), "b"])  # type: ignore[list-item]


def test_repr() -> None:
    assert repr(sql.SQL("x")) == "SQL('x')"
    assert repr(sql.Identifier("s", "t")) == "Identifier('s', 't')"
    assert repr(sql.Literal(1)) == "Literal(1)"
    assert repr(sql.Placeholder("a", "b")) == "Placeholder('a', format='b')"
    assert repr(sql.Composed([sql.SQL("x")])) == "Composed([SQL('x')])"


# Identifier


def test_identifier_quoting() -> None:
    assert sql.Identifier("table").as_string(None) == '"table"'
    assert sql.Identifier("Mixed Case").as_string(None) == '"Mixed Case"'
    assert sql.Identifier('a"b').as_string(None) == '"a""b"'
    assert sql.Identifier("s", "t", "c").as_string(None) == '"s"."t"."c"'
    assert sql.Identifier("a.b").as_string(None) == '"a.b"'
    assert sql.Identifier("s", "t").names == ("s", "t")


def test_identifier_errors() -> None:
    with pytest.raises(errors.DataError, match="NUL"):
        sql.Identifier("a\x00b")
    with pytest.raises(errors.DataError, match="NUL"):
        sql.Identifier("ok", "\x00")
    with pytest.raises(TypeError, match="at least one"):
        sql.Identifier()
    with pytest.raises(TypeError, match="str"):
        sql.Identifier("a", 1)  # type: ignore[arg-type]


@PROPERTY
@given(name=TEXT.filter(lambda name: 0 < len(name.encode()) < 64))
def test_identifier_property(conn: psycopg3_sync.Connection, name: str) -> None:
    # The server names the column exactly as the Python string (names longer
    # than NAMEDATALEN - 1 = 63 bytes are truncated by the server: left out).
    query = sql.SQL("select 1 as {}").format(sql.Identifier(name))
    cur = conn.execute(query)
    assert cur.description is not None
    assert cur.description[0].name == name
    assert cur.fetchall() == [(1,)]


# Literal


@pytest.mark.parametrize(
    "value, rendered",
    [
        (None, "NULL"),
        (42, "42"),
        (-42, "(-42)"),
        (0, "0"),
        ("it's", "'it''s'"),
        ("", "''"),
        ("a\\b", " E'a\\\\b'"),
        (1.5, "'1.5'::double precision"),
        (Decimal("-1.50"), "'-1.50'::numeric"),
        (dt.date(2024, 1, 1), "'2024-01-01'::date"),
        (True, "'t'::boolean"),
        (b"\x00'", " E'\\\\x0027'::bytea"),
        ([1, None], "'{1,NULL}'::integer[]"),
    ],
)
def test_literal_rendering_without_connection(value: Any, rendered: str) -> None:
    assert sql.Literal(value).as_string(None) == rendered


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        -42,
        2**70,
        "it's",
        "a\\b'c",
        "$$ $x$ 'é' 😀",
        1.5,
        float("nan"),
        float("-inf"),
        Decimal("-1.50"),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 1, 1, 12, 30, tzinfo=dt.timezone.utc),
        dt.timedelta(days=-1, seconds=5),
        True,
        b"\x00\\'\xff",
        [1, 2, None],
        ["a'b", "c\\d"],
    ],
)
@pytest.mark.parametrize("with_conn", [True, False])
def test_literal_round_trip(conn: psycopg3_sync.Connection, value: Any, with_conn: bool) -> None:
    query = sql.SQL("select {}").format(sql.Literal(value))
    context = conn if with_conn else None
    got = one(conn, query.as_string(context))
    if isinstance(value, float) and value != value:
        assert got != got
    else:
        assert got == value
    if value is None:
        return
    # The server agrees with a parameter of the same value.
    check = sql.SQL("select {} is not distinct from %s").format(sql.Literal(value))
    assert one(conn, check, (value,)) is True


def test_literal_keeps_its_meaning_in_expressions(conn: psycopg3_sync.Connection) -> None:
    assert one(conn, sql.SQL("select 1-{}").format(sql.Literal(-1))) == 2
    assert one(conn, sql.SQL("select {}::text").format(sql.Literal(-5))) == "-5"
    assert one(conn, sql.SQL("select pg_typeof({})::text").format(sql.Literal(1.5))) == (
        "double precision"
    )
    date_col = sql.SQL("select '2024-01-01'::date = {}").format(sql.Literal("2024-01-01"))
    assert one(conn, date_col) is True  # a str literal adapts to its context


def test_literal_with_connection_uses_libpq_escaping(conn: psycopg3_sync.Connection) -> None:
    # With standard_conforming_strings on (the default) libpq keeps backslashes.
    assert sql.Literal("it's").as_string(conn) == "'it''s'"
    assert sql.Literal("a\\b").as_string(conn) == " E'a\\\\b'"
    assert sql.Literal(dt.date(2024, 1, 1)).as_string(conn) == "'2024-01-01'::date"


def test_literal_without_standard_conforming_strings(dsn: str) -> None:
    # E'' strings mean the same whatever the setting: the rendering without a
    # connection is valid for a session that turned the setting off.
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("set standard_conforming_strings to off")
        conn.execute("set escape_string_warning to off")
        for value in ["a\\b", "\\'; select 1; --", "x'\\"]:
            for context in (None, conn):
                query = sql.SQL("select {}").format(sql.Literal(value)).as_string(context)
                cur = conn.execute(query)
                assert cur.fetchall() == [(value,)]
                assert not cur.nextset()


def test_literal_errors(conn: psycopg3_sync.Connection) -> None:
    with pytest.raises(errors.DataError, match="NUL"):
        sql.Literal("a\x00b").as_string(None)
    with pytest.raises(errors.DataError, match="NUL"):
        sql.Literal("a\x00b").as_string(conn)
    with pytest.raises(errors.ProgrammingError):
        sql.Literal(object()).as_string(None)


def test_literal_in_client_encoding(dsn: str) -> None:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("set client_encoding to 'LATIN1'")
        query = sql.SQL("select {} as {}").format(sql.Literal("café"), sql.Identifier("é"))
        assert query.as_bytes(conn) == b"select 'caf\xe9' as \"\xe9\""
        assert query.as_string(conn) == "select 'café' as \"é\""
        cur = conn.execute(query)
        assert cur.fetchone() == ("café",)
        assert cur.description is not None and cur.description[0].name == "é"
        with pytest.raises(errors.DataError, match="LATIN1"):
            sql.Identifier("😀").as_bytes(conn)
        with pytest.raises(errors.DataError):
            sql.Literal("😀").as_bytes(conn)


@PROPERTY
@given(value=TEXT, with_conn=st.booleans())
def test_literal_text_property(conn: psycopg3_sync.Connection, value: str, with_conn: bool) -> None:
    literal = sql.Literal(value).as_string(conn if with_conn else None)
    cur = conn.execute(f"select {literal}, length({literal})")
    assert cur.fetchall() == [(value, len(value))]
    assert not cur.nextset()


# Placeholder


def test_placeholder() -> None:
    assert sql.Placeholder().as_string(None) == "%s"
    assert sql.Placeholder("name").as_string(None) == "%(name)s"
    assert sql.Placeholder(format=PyFormat.BINARY).as_string(None) == "%b"
    assert sql.Placeholder("n", "t").as_string(None) == "%(n)t"
    assert sql.Placeholder("n").name == "n"
    assert sql.Placeholder().name is None
    assert sql.Placeholder(format="b").format is PyFormat.BINARY
    assert sql.Placeholder("a") == sql.Placeholder("a")
    assert sql.Placeholder("a") != sql.Placeholder("a", "b")
    for bad in ["a)b", ""]:
        with pytest.raises(ValueError, match="placeholder name"):
            sql.Placeholder(bad)
    with pytest.raises(ValueError):
        sql.Placeholder(format="x")


def test_placeholders_with_params(conn: psycopg3_sync.Connection) -> None:
    cols = ["a", "b"]
    query = sql.SQL("select {}").format(sql.SQL(", ").join(sql.Placeholder(c) for c in cols))
    assert query.as_string(None) == "select %(a)s, %(b)s"
    assert conn.execute(query, {"a": 1, "b": "x"}).fetchone() == (1, "x")
    query = sql.SQL("select {}, {}").format(sql.Placeholder(), sql.Placeholder(format="b"))
    cur = conn.execute(query, (b"\x00", 2))
    assert cur.fetchone() == (b"\x00", 2)


def test_context_may_be_cursor_or_connection(conn: psycopg3_sync.Connection) -> None:
    # (Any: the cursor's Query annotation does not name Composable yet.)
    query: Any = sql.SQL("select {}").format(sql.Literal("x"))
    with conn.cursor() as cur:
        assert query.as_string(cur) == query.as_string(conn) == "select 'x'"
        cur.execute(query)
        assert cur.fetchone() == ("x",)
