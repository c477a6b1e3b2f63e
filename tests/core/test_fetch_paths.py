"""Tests of the fast paths of row loading: column-wise unpacking, NUL-free binary columns."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

import psycopg3_sync
from psycopg3.adapt import AdaptersMap, LoadFunction, Transformer, adapters
from psycopg3.pq import ExecStatus, Format, PGconn, PGresult
from psycopg3.types.numeric import Int4BinaryLoader


@pytest.fixture
def pgconn(dsn: str) -> Iterator[PGconn]:
    conn = PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


class Context:
    def __init__(self, pgconn: PGconn):
        self.adapters: AdaptersMap = adapters
        self.pgconn = pgconn


def execute(pgconn: PGconn, query: str, fmt: Format) -> PGresult:
    res = pgconn.exec_params(query.encode(), [], [], [], fmt)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    return res


def both_ways(pgconn: PGconn, query: str, fmt: Format) -> list[tuple[Any, ...]]:
    """Load a result with load_rows() and row by row with load_row(): they must agree."""
    tx = Transformer(Context(pgconn))
    res = execute(pgconn, query, fmt)
    tx.set_pgresult(res)
    rows = tx.load_rows(0, res.ntuples)
    assert repr(rows) == repr([tx.load_row(i) for i in range(res.ntuples)])  # NaN != NaN
    return rows


FIXED = "x::int2, x::int4, x::int8, abs(x)::oid, x * 0.5::float4, x * 1.25::float8"


@pytest.mark.parametrize("nulls", [False, True])
def test_fixed_size_columns_binary_as_text(pgconn: PGconn, nulls: bool) -> None:
    # Without NULLs a column is unpacked in one call; with one, value by value.
    value = "case when g = 3 then null else g end" if nulls else "g"
    query = f"select {FIXED} from (select {value} as x from generate_series(-2, 5) g) as t"
    binary = both_ways(pgconn, query, Format.BINARY)
    assert binary == both_ways(pgconn, query, Format.TEXT)
    assert len(binary) == 8
    assert (binary[5][0] is None) is nulls
    assert binary[0] == (-2, -2, -2, 2, -1.0, -2.5)


def test_fixed_size_extremes_binary(pgconn: PGconn) -> None:
    query = (
        "select (-32768)::int2, (-2147483648)::int4, (-9223372036854775808)::int8,"
        " 4294967295::oid, 'NaN'::float8, '-Infinity'::float4"
        " union all select 32767::int2, 2147483647, 9223372036854775807, 0, 1e308, 1.5"
    )
    rows = both_ways(pgconn, query, Format.BINARY)
    assert rows[0][:4] == (-32768, -(2**31), -(2**63), 2**32 - 1)
    assert rows[0][4] != rows[0][4]  # NaN
    assert rows[0][5] == float("-inf")
    assert rows[1] == (32767, 2**31 - 1, 2**63 - 1, 0, 1e308, 1.5)


def test_text_columns_binary_nul_free(pgconn: PGconn) -> None:
    query = (
        "select v::text, v::varchar, v::name, v::char(3)"
        " from unnest(array['', null, 'àb', 'x y']) with ordinality as t(v, n) order by n"
    )
    binary = both_ways(pgconn, query, Format.BINARY)
    assert binary == both_ways(pgconn, query, Format.TEXT)
    assert binary == [("", "", "", "   "), (None,) * 4, ("àb",) * 3 + ("àb ",), ("x y",) * 4]


def test_char_type_binary_keeps_its_byte(pgconn: PGconn) -> None:
    # "char" is not read as a C string: its empty value is one NUL byte in binary.
    rows = both_ways(pgconn, 'select \'\'::"char", \'a\'::"char", null::"char"', Format.BINARY)
    assert rows == [("\x00", "a", None)]


def test_struct_loader_checks_sizes(pgconn: PGconn) -> None:
    res = execute(pgconn, "select g::int4 from generate_series(1, 3) g", Format.BINARY)
    assert res.load_rows(0, 3, [struct.Struct("!i")]) == [(1,), (2,), (3,)]
    with pytest.raises(struct.error):
        res.load_rows(0, 3, [struct.Struct("!h")])
    # Values of 1 and 3 bytes make 2 x 2 bytes in all: still refused, not misread.
    res = execute(
        pgconn, "select v from unnest(array['\\x01', '\\x020304']::bytea[]) v", Format.BINARY
    )
    assert res.load_rows(0, 2, [None]) == [(b"\x01",), (b"\x02\x03\x04",)]
    with pytest.raises(struct.error):
        res.load_rows(0, 2, [struct.Struct("!h")])
    res = execute(pgconn, "select 1", Format.TEXT)
    with pytest.raises(ValueError, match="text format"):
        res.load_rows(0, 1, [struct.Struct("!i")])


def test_nul_free_and_raw_binary(pgconn: PGconn) -> None:
    res = execute(
        pgconn, "select 'ab'::text, null::text, ''::text, '\\x0001'::bytea", Format.BINARY
    )
    assert res.load_rows(0, 1, [None] * 4, nul_free={0, 1, 2}) == [(b"ab", None, b"", b"\x00\x01")]
    assert res.load_row(0, [None] * 4) == (b"ab", None, b"", b"\x00\x01")


@pytest.mark.parametrize("binary", [False, True])
def test_fetch_in_chunks_matches_fetchall(dsn: str, binary: bool) -> None:
    query = (
        "select g, 'r' || g, g * 1.5::float8, (g / 7.0)::numeric(10, 3)"
        " from generate_series(1, 2500) g"
    )
    with psycopg3_sync.connect(dsn) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute(query)
        everything = cur.fetchall()
        cur.execute(query)
        chunks = [cur.fetchone()] + cur.fetchmany(999) + cur.fetchmany(1000) + cur.fetchall()
    assert chunks == everything
    assert len(everything) == 2500
    assert everything[-1][:3] == (2500, "r2500", 3750.0)
    assert str(everything[-1][3]) == "357.143"


def test_subclassed_fixed_loader_is_called(pgconn: PGconn) -> None:
    # A subclass with its own load function must not be bypassed by the column unpack.
    class TenfoldLoader(Int4BinaryLoader):
        def load_function(self) -> LoadFunction:
            return lambda data: 10 * int.from_bytes(data, "big", signed=True)

    amap = AdaptersMap(adapters)
    amap.register_loader("int4", TenfoldLoader)
    context = Context(pgconn)
    context.adapters = amap
    tx = Transformer(context)
    assert TenfoldLoader(23).fixed_struct is None
    assert getattr(Int4BinaryLoader(23).fixed_struct, "format", None) == "!i"
    res = execute(pgconn, "select g::int4 from generate_series(-1, 2) g", Format.BINARY)
    tx.set_pgresult(res)
    assert tx.load_rows(0, 4) == [(-10,), (0,), (10,), (20,)]
