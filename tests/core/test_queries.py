"""Tests of query conversion: placeholders to $n, parameter checks, encoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from psycopg3 import errors
from psycopg3._queries import PostgresQuery
from psycopg3.adapt import AdaptersMap, PyFormat, Transformer, adapters
from psycopg3.pq import ExecStatus, Format, PGconn


class Context:
    def __init__(self, pgconn: PGconn | None = None, adapters_map: AdaptersMap | None = None):
        self.pgconn = pgconn
        self.adapters = adapters_map or AdaptersMap(adapters)


def convert(query: str | bytes, params: Any) -> PostgresQuery:
    pq = PostgresQuery(Transformer())
    pq.convert(query, params)
    return pq


@pytest.fixture
def pgconn(dsn: str) -> Iterator[PGconn]:
    conn = PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


@pytest.mark.parametrize(
    "query, params, expected, nparams",
    [
        ("select 1", (), b"select 1", 0),
        ("select %s", (1,), b"select $1", 1),
        ("select %s, %t, %b", (1, 2, 3), b"select $1, $2, $3", 3),
        ("select %s%s", ("a", "b"), b"select $1$2", 2),
        ("select '%%', %s", (1,), b"select '%', $1", 1),
        ("select '%%%%'", (), b"select '%%'", 0),
        ("select %%s", (), b"select %s", 0),
        ("select %(a)s", {"a": 1}, b"select $1", 1),
        ("select %(a)s, %(b)t, %(a)s", {"a": 1, "b": 2}, b"select $1, $2, $1", 2),
        ("select %(a)s, %(b)s", {"a": 1, "b": 2, "unused": 3}, b"select $1, $2", 2),
        ("select %(long name é)s", {"long name é": 1}, b"select $1", 1),
        ("select 1", {}, b"select 1", 0),
        (b"select %s", [1], b"select $1", 1),
        ("select 'é', %s", ("é",), "select 'é', $1".encode(), 1),
        ("select\n%s\n", (1,), b"select\n$1\n", 1),
    ],
)
def test_convert(query: str | bytes, params: Any, expected: bytes, nparams: int) -> None:
    pq = convert(query, params)
    assert pq.query == expected
    assert pq.params is not None and len(pq.params) == nparams


def test_formats_and_types() -> None:
    pq = convert("select %s, %t, %b, %s, %s", (1, "x", b"y", None, b"z"))
    assert pq.formats == [Format.TEXT, Format.TEXT, Format.BINARY, Format.TEXT, Format.BINARY]
    assert pq.types == [23, 0, 17, 0, 17]
    assert pq.params == [b"1", b"x", b"y", None, b"z"]


def test_named_order_follows_first_use() -> None:
    pq = convert("select %(b)s, %(a)s, %(b)s", {"a": "A", "b": "B"})
    assert pq.query == b"select $1, $2, $1"
    assert pq.params == [b"B", b"A"]


def test_no_params_sends_query_verbatim() -> None:
    pq = convert("select '%%', '%s', '%(x)s', '%'", None)
    assert pq.query == b"select '%%', '%s', '%(x)s', '%'"
    assert pq.params is None
    assert pq.types == [] and pq.formats == []


def test_query_encoded_with_connection_encoding(pgconn: PGconn) -> None:
    pgconn.exec_(b"set client_encoding to latin1")
    pq = PostgresQuery(Transformer(Context(pgconn)))
    pq.convert("select 'é', %s", ("è",))
    assert pq.query == "select 'é', $1".encode("latin1")
    assert pq.params == ["è".encode("latin1")]
    pq.convert("select 'é'", None)
    assert pq.query == "select 'é'".encode("latin1")


@pytest.mark.parametrize(
    "query, params, message",
    [
        ("select %s, %s", (1,), "the query has 2 placeholders but 1 parameter was passed"),
        ("select %s", (1, 2, 3), "the query has 1 placeholder but 3 parameters were passed"),
        ("select 1", (1,), "the query has 0 placeholders but 1 parameter was passed"),
        ("select %s, %(a)s", {"a": 1}, "mixes %s and %(name)s"),
        ("select %(a)s, %s", (1,), "mixes %s and %(name)s"),
        ("select %(a)s, %(b)s", {"a": 1}, "query parameter missing: 'b'"),
        ("select %(a)s", (1,), "named placeholders (%(name)s) but the parameters are a sequence"),
        ("select %s", {"a": 1}, "positional placeholders (%s) but the parameters are a mapping"),
        ("select %s", "abc", "not str: to pass a single value, use a one-item tuple"),
        ("select %s", b"abc", "not bytes"),
        ("select %s", 42, "must be a sequence or a mapping, not int"),
        ("select %s", iter([1]), "must be a sequence or a mapping, not list_iterator"),
        ("select '50%'", (), 'unsupported placeholder "%\'" at byte 10'),
        ("select %x", (1,), "unsupported placeholder '%x' at byte 7"),
        ("select %d", (1,), "unsupported placeholder '%d'"),
        ("select %", (), "incomplete placeholder '%' at byte 7"),
        ("select %(a)", {"a": 1}, "incomplete placeholder '%(a)'"),
        ("select %(a", {"a": 1}, "unterminated placeholder '%(a'"),
        ("select %(a)x", {"a": 1}, "unsupported placeholder '%(a)x'"),
        ("select %()s", {"": 1}, "placeholder without a name"),
        ("select %(a)s, %(a)b", {"a": 1}, "the placeholder %(a)s is used again as '%(a)b'"),
    ],
)
def test_errors(query: str, params: Any, message: str) -> None:
    with pytest.raises(errors.ProgrammingError) as excinfo:
        convert(query, params)
    assert message in str(excinfo.value)


def test_error_shows_context() -> None:
    with pytest.raises(errors.ProgrammingError) as excinfo:
        convert("select 1 where x like 'a%' and y = %s", (1,))
    assert ">>>%'<<<" in str(excinfo.value)
    assert "%% for a literal %" in str(excinfo.value)


def test_missing_named_param_uses_programming_error_not_key_error() -> None:
    with pytest.raises(errors.ProgrammingError) as excinfo:
        convert("select %(x)s", {"y": 1})
    assert not isinstance(excinfo.value, KeyError)
    assert excinfo.value.__cause__ is None


def test_unadaptable_named_param_is_named() -> None:
    class Foo:
        pass

    with pytest.raises(errors.ProgrammingError) as excinfo:
        convert("select %(a)s, %(thing)b", {"a": 1, "thing": Foo()})
    assert "cannot adapt type 'Foo' (parameter %(thing)b)" in str(excinfo.value)


def test_nul_in_named_param_is_named() -> None:
    with pytest.raises(errors.DataError) as excinfo:
        convert("select %(a)s, %(b)s", {"a": 1, "b": "x\x00y"})
    assert "parameter %(b)s" in str(excinfo.value)
    assert "NUL" in str(excinfo.value)


def test_parse_is_cached() -> None:
    from psycopg3._queries import _parse_query

    query = "select %s, %s -- cache test"
    convert(query, (1, 2))
    hits = _parse_query.cache_info().hits
    convert(query, ("a", "b"))
    assert _parse_query.cache_info().hits == hits + 1


def test_composable_query() -> None:
    class Composed:
        def as_bytes(self, context: Any) -> bytes:
            assert isinstance(context, Transformer)
            return b"select %s"

    pq = PostgresQuery(Transformer())
    pq.convert(Composed(), (5,))
    assert pq.query == b"select $1"
    assert pq.params == [b"5"]


@pytest.mark.parametrize(
    "query, params, expected",
    [
        ("select %s + %s", (1, 2), 3),
        ("select %(a)s * %(a)s", {"a": 7}, 49),
        ("select '100%%' || %s", ("!",), "100%!"),
        ("select %t::int + %b", (1, 2), 3),
        ("select '%s'", None, "%s"),
        ("select %s::text || %(x)s", None, "%s%(x)s") if False else ("select 1", None, 1),
    ],
)
def test_server_round_trip(pgconn: PGconn, query: str, params: Any, expected: Any) -> None:
    tx = Transformer(Context(pgconn))
    pq = PostgresQuery(tx)
    pq.convert(query, params)
    if pq.params is None:
        res = pgconn.exec_(pq.query)
    else:
        res = pgconn.exec_params(pq.query, pq.params, pq.types, pq.formats)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    tx.set_pgresult(res)
    assert tx.load_rows(0, 1) == [(expected,)]


def test_pyformat_values() -> None:
    assert [f.value for f in PyFormat] == ["s", "t", "b"]
    assert PyFormat.from_pq(Format.BINARY) is PyFormat.BINARY
    assert PyFormat.as_pq(PyFormat.TEXT) == Format.TEXT
    with pytest.raises(ValueError):
        PyFormat.as_pq(PyFormat.AUTO)
