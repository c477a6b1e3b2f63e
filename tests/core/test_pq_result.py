"""Tests of pq.PGresult: metadata, values, the row loader, clearing."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from psycopg3 import errors, pq
from psycopg3.pq import ExecStatus, Format


@pytest.fixture
def pgconn(dsn: str) -> Any:
    conn = pq.PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


SAMPLE = (
    b"select * from (values"
    b" (1::int4, 'a'::text, '\\x00ff'::bytea, 1.5::float8),"
    b" (null, '', '\\x'::bytea, null),"
    b" (3, null, null, -0.25)) as t(i, s, b, f)"
)


def sample(pgconn: pq.PGconn, fmt: Format) -> pq.PGresult:
    res = pgconn.exec_params(SAMPLE, None, result_format=fmt)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    return res


def by_get_value(res: pq.PGresult, loaders: list[Callable[[bytes], Any] | None]) -> list[Any]:
    rows = []
    for row in range(res.ntuples):
        values = []
        for col, load in enumerate(loaders):
            value = res.get_value(row, col)
            values.append(value if value is None or load is None else load(value))
        rows.append(tuple(values))
    return rows


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.BINARY])
def test_load_rows_matches_get_value(pgconn: pq.PGconn, fmt: Format) -> None:
    res = sample(pgconn, fmt)
    raw: list[Callable[[bytes], Any] | None] = [None] * 4
    rows = res.load_rows(0, res.ntuples, raw)
    assert rows == by_get_value(res, raw)
    assert [r[1] for r in rows] == [b"a", b"", None]
    assert rows[1][0] is None and rows[1][3] is None
    if fmt == Format.BINARY:
        assert [r[2] for r in rows] == [b"\x00\xff", b"", None]
    else:
        assert [r[2] for r in rows] == [b"\\x00ff", b"\\x", None]

    loaders: list[Callable[[bytes], Any] | None] = [len, bytes.upper, len, len]
    loaded = res.load_rows(0, res.ntuples, loaders)
    assert loaded == by_get_value(res, loaders)
    assert loaded[1][1] == b""  # empty, not NULL: loaded
    assert loaded[2][1] is None  # NULL: never loaded


def test_load_rows_text_loaders(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(
        b"select i::int4, i::int8, 'row ' || i, i / 4.0::float8, (i / 8.0)::numeric, i % 2 = 0"
        b" from generate_series(1, 100) i"
    )
    loaders: list[Callable[[bytes], Any] | None] = [
        int, int, None, float, lambda b: Decimal(b.decode()), lambda b: b == b"t",
    ]  # fmt: skip
    rows = res.load_rows(0, 100, loaders)
    assert len(rows) == 100
    assert rows[0] == (1, 1, b"row 1", 0.25, Decimal("0.12500000000000000000"), False)
    assert rows[99][0] == 100 and rows[99][5] is True
    assert res.load_rows(10, 12, loaders) == rows[10:12]
    assert res.load_row(42, loaders) == rows[42]
    assert res.load_rows(5, 5, loaders) == []


def test_load_rows_no_columns(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"select from generate_series(1, 3)")
    assert res.nfields == 0
    assert res.load_rows(0, 3, []) == [(), (), ()]


def test_load_rows_bad_arguments(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"select 1, 2")
    with pytest.raises(ValueError, match="got 1 loaders for 2 columns"):
        res.load_rows(0, 1, [None])
    for row0, row1 in [(0, 2), (-1, 1), (1, 0), (0, 2**32 + 1)]:
        with pytest.raises(IndexError):
            res.load_rows(row0, row1, [None, None])
    with pytest.raises(IndexError):
        res.load_row(1, [None, None])


def test_metadata(pgconn: pq.PGconn) -> None:
    pgconn.exec_(b"create temp table meta (id serial, name varchar(10), price numeric(8, 2))")
    res = pgconn.exec_(b"insert into meta (name) values ('a'), ('b')")
    assert res.status == ExecStatus.COMMAND_OK
    assert res.command_status == b"INSERT 0 2"
    assert res.command_tuples == 2
    assert res.oid_value == 0
    assert res.ntuples == 0 and res.nfields == 0

    res = pgconn.exec_(b"select id, name, price, 1 as one from meta order by id")
    assert res.command_status == b"SELECT 2"
    assert res.command_tuples == 2
    assert res.ntuples == 2 and res.nfields == 4
    assert [res.fname(i) for i in range(4)] == [b"id", b"name", b"price", b"one"]
    assert res.fname(4) is None
    assert [res.ftype(i) for i in range(4)] == [23, 1043, 1700, 23]
    assert res.fmod(1) == 14  # varchar(10): 10 + 4
    assert res.fmod(2) == ((8 << 16) | 2) + 4
    assert res.fmod(0) == -1
    assert res.fsize(0) == 4 and res.fsize(1) == -1
    table_oid = pgconn.exec_(b"select 'meta'::regclass::oid").get_value(0, 0)
    assert str(res.ftable(0)).encode() == table_oid
    assert [res.ftablecol(i) for i in range(4)] == [1, 2, 3, 0]
    assert res.ftable(3) == 0
    assert res.fformat(0) == Format.TEXT
    assert not res.binary_tuples
    assert res.get_isnull(0, 2) and not res.get_isnull(0, 1)
    assert res.get_length(0, 1) == 1 and res.get_length(0, 2) == 0
    assert "TUPLES_OK" in repr(res)


def test_command_tuples_none(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"set timezone to 'UTC'")
    assert res.command_status == b"SET"
    assert res.command_tuples is None


def test_empty_query(pgconn: pq.PGconn) -> None:
    assert pgconn.exec_(b"").status == ExecStatus.EMPTY_QUERY


def test_binary_value_with_nul(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_params(
        b"select $1::bytea", [b"a\x00b\x00"], param_formats=[1], result_format=Format.BINARY
    )
    assert res.get_value(0, 0) == b"a\x00b\x00"
    assert res.get_length(0, 0) == 4
    assert res.load_row(0, [None]) == (b"a\x00b\x00",)


def test_index_out_of_c_range(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"select 'first'")
    # 2**32 would wrap to 0 in a C int and read the first row: refused.
    with pytest.raises(errors.DataError, match="out of the range"):
        res.get_value(2**32, 0)
    with pytest.raises(errors.DataError):
        res.get_value(0, -1)
    with pytest.raises(errors.DataError):
        res.fname(2**32)
    assert res.get_value(1, 0) is None  # in C range but no such row: NULL from libpq


# Every accessor of PGresult, called after clear(): each must raise.
CALLS_ON_CLEARED: list[tuple[str, tuple[Any, ...]]] = [
    ("status", ()),
    ("error_message", ()),
    ("error_field", (ord("C"),)),
    ("ntuples", ()),
    ("nfields", ()),
    ("binary_tuples", ()),
    ("fname", (0,)),
    ("ftable", (0,)),
    ("ftablecol", (0,)),
    ("fformat", (0,)),
    ("ftype", (0,)),
    ("fmod", (0,)),
    ("fsize", (0,)),
    ("nparams", ()),
    ("param_type", (0,)),
    ("command_status", ()),
    ("command_tuples", ()),
    ("oid_value", ()),
    ("get_value", (0, 0)),
    ("get_isnull", (0, 0)),
    ("get_length", (0, 0)),
    ("load_row", (0, [None])),
    ("columns", ()),
    ("load_rows", (0, 1, [None])),
]


@pytest.mark.parametrize("name, args", CALLS_ON_CLEARED, ids=[c[0] for c in CALLS_ON_CLEARED])
def test_cleared_raises(pgconn: pq.PGconn, name: str, args: tuple[Any, ...]) -> None:
    res = pgconn.exec_(b"select 1")
    res.clear()
    with pytest.raises(errors.OperationalError, match="the result was cleared"):
        attr = getattr(res, name)
        if callable(attr):
            attr(*args)


def test_all_accessors_covered() -> None:
    public = {n for n in dir(pq.PGresult) if not n.startswith("_")}
    exempt = {"borrow", "clear", "cleared", "pgresult_ptr"}
    assert public - exempt == {name for name, _ in CALLS_ON_CLEARED}


def test_clear_then_del(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"select 1")
    ref = weakref.ref(res)
    res.clear()
    res.clear()
    assert res.cleared and res.pgresult_ptr is None
    assert "cleared" in repr(res)
    del res
    gc.collect()
    assert ref() is None


def test_many_results_freed(pgconn: pq.PGconn) -> None:
    refs = []
    for i in range(200):
        res = pgconn.exec_(b"select repeat('x', 10000)")
        if i % 2:
            res.clear()
        refs.append(weakref.ref(res))
    del res
    gc.collect()
    assert all(ref() is None for ref in refs)
