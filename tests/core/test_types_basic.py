"""Tests of the built-in adapters: int, float, Decimal, str, bytes, bool, None."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psycopg3 import errors
from psycopg3._queries import PostgresQuery
from psycopg3.adapt import AdaptersMap, PyFormat, Transformer, adapters
from psycopg3.pq import ExecStatus, Format, PGconn
from psycopg3.types._numeric_binary import decimal_to_numeric, numeric_to_decimal

INT4_MAX, INT8_MAX = 2**31 - 1, 2**63 - 1


class Context:
    def __init__(self, pgconn: PGconn | None = None):
        self.adapters = AdaptersMap(adapters)
        self.pgconn = pgconn


@pytest.fixture(scope="module")
def pgconn(dsn: str) -> Iterator[PGconn]:
    conn = PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


def run(pgconn: PGconn, query: str, params: Any = (), fmt: Format = Format.TEXT) -> tuple[Any, ...]:
    """Execute through the real machinery and return the only row."""
    tx = Transformer(Context(pgconn))
    pq = PostgresQuery(tx)
    pq.convert(query, params)
    res = pgconn.exec_params(pq.query, pq.params, pq.types, pq.formats, fmt)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    tx.set_pgresult(res)
    row = tx.load_row(0)
    assert row is not None
    return row


def dump(obj: Any, fmt: PyFormat = PyFormat.AUTO) -> tuple[bytes | None, int, Format]:
    tx = Transformer()
    tx.dump_sequence([obj], [fmt])
    return tx.values[0], tx.types[0], tx.formats[0]


# Dumpers' output


@pytest.mark.parametrize(
    "obj, fmt, expected",
    [
        (0, PyFormat.AUTO, (b"0", 23, Format.TEXT)),
        (-(2**31), PyFormat.AUTO, (b"-2147483648", 23, Format.TEXT)),
        (INT4_MAX + 1, PyFormat.AUTO, (b"2147483648", 20, Format.TEXT)),
        (-(2**63), PyFormat.AUTO, (b"-9223372036854775808", 20, Format.TEXT)),
        (INT8_MAX + 1, PyFormat.AUTO, (b"9223372036854775808", 1700, Format.TEXT)),
        (7, PyFormat.BINARY, (b"\x00\x00\x00\x07", 23, Format.BINARY)),
        (2**40, PyFormat.BINARY, (struct.pack("!q", 2**40), 20, Format.BINARY)),
        (1.5, PyFormat.AUTO, (b"1.5", 701, Format.TEXT)),
        (float("nan"), PyFormat.AUTO, (b"NaN", 701, Format.TEXT)),
        (float("inf"), PyFormat.AUTO, (b"Infinity", 701, Format.TEXT)),
        (float("-inf"), PyFormat.AUTO, (b"-Infinity", 701, Format.TEXT)),
        (-0.0, PyFormat.AUTO, (b"-0.0", 701, Format.TEXT)),
        (0.1, PyFormat.BINARY, (struct.pack("!d", 0.1), 701, Format.BINARY)),
        (Decimal("1.10"), PyFormat.AUTO, (b"1.10", 1700, Format.TEXT)),
        (Decimal("sNaN"), PyFormat.AUTO, (b"NaN", 1700, Format.TEXT)),
        (Decimal("-Infinity"), PyFormat.AUTO, (b"-Infinity", 1700, Format.TEXT)),
        ("héllo", PyFormat.AUTO, ("héllo".encode(), 0, Format.TEXT)),
        ("x", PyFormat.BINARY, (b"x", 25, Format.BINARY)),
        (b"a\x00b", PyFormat.AUTO, (b"a\x00b", 17, Format.BINARY)),
        (bytearray(b"ab"), PyFormat.AUTO, (b"ab", 17, Format.BINARY)),
        (memoryview(b"ab"), PyFormat.AUTO, (b"ab", 17, Format.BINARY)),
        (b"\x00\xff", PyFormat.TEXT, (b"\\x00ff", 17, Format.TEXT)),
        (True, PyFormat.AUTO, (b"t", 16, Format.TEXT)),
        (False, PyFormat.BINARY, (b"\x00", 16, Format.BINARY)),
        (None, PyFormat.BINARY, (None, 0, Format.TEXT)),
    ],
)
def test_dump(obj: Any, fmt: PyFormat, expected: tuple[Any, ...]) -> None:
    assert dump(obj, fmt) == expected


def test_dump_returns_bytes() -> None:
    value, _, _ = dump(bytearray(b"xy"))
    assert type(value) is bytes


@pytest.mark.parametrize("fmt", [PyFormat.AUTO, PyFormat.TEXT, PyFormat.BINARY])
def test_str_with_nul_is_data_error(fmt: PyFormat) -> None:
    tx = Transformer()
    with pytest.raises(errors.DataError) as excinfo:
        tx.dump_sequence(["ok", "a\x00b"], [fmt, fmt])
    assert "parameter $2" in str(excinfo.value)
    assert "index 1" in str(excinfo.value)


def test_str_not_encodable(pgconn: PGconn) -> None:
    pgconn.exec_(b"set client_encoding to 'LATIN1'")
    try:
        tx = Transformer(Context(pgconn))
        with pytest.raises(errors.DataError, match="parameter \\$1: cannot encode '☃'"):
            tx.dump_sequence(["a☃"], [PyFormat.AUTO])
    finally:
        pgconn.exec_(b"set client_encoding to 'UTF8'")


# Server round trips: what the server understood


@pytest.mark.parametrize(
    "value, pgtype",
    [
        (1, "integer"),
        (-(2**31), "integer"),
        (INT4_MAX, "integer"),
        (INT4_MAX + 1, "bigint"),
        (-(2**31) - 1, "bigint"),
        (INT8_MAX, "bigint"),
        (-(2**63), "bigint"),
        (INT8_MAX + 1, "numeric"),
        (-(2**63) - 1, "numeric"),
        (10**100, "numeric"),
        (1.0, "double precision"),
        (Decimal("1"), "numeric"),
        (True, "boolean"),
        (b"", "bytea"),
    ],
)
@pytest.mark.parametrize("fmt", [PyFormat.AUTO, PyFormat.TEXT, PyFormat.BINARY])
@pytest.mark.parametrize("result_format", [Format.TEXT, Format.BINARY])
def test_server_type_and_value(
    pgconn: PGconn, value: Any, pgtype: str, fmt: PyFormat, result_format: Format
) -> None:
    query = f"select pg_typeof(%{fmt.value})::text, %{fmt.value}"
    typ, back = run(pgconn, query, (value, value), result_format)
    assert typ == pgtype
    assert back == value
    assert type(back) is (Decimal if pgtype == "numeric" else type(value))


@pytest.mark.parametrize(
    "query, params",
    [
        ("select repeat('x', %s) = 'xxx'", (3,)),
        ("select current_date + %s = current_date + 2", (2,)),
        ("select round(1.2345, %s) = 1.23", (2,)),
        ("select substring('abcdef', %s) = 'cdef'", (3,)),
        ("select array_length(array(select generate_series(1, %s)), 1) = 5", (5,)),
        (
            "select count(*) = 2 from (select 1 union all select 2 union all select 3 limit %s) x",
            (2,),
        ),
        ("select %s + %s = 3", (1, 2)),
        ("select %s::int2 = 7", (7,)),
        ("select %s::text = 'héllo'", ("héllo",)),
        ("select %s = 'héllo'::varchar", ("héllo",)),
        ("select %s::date = '2020-01-02'::date", ("2020-01-02",)),
        ("select %s::jsonb = '{\"a\": 1}'::jsonb", ('{"a": 1}',)),
        ("select %s = 2.5::float8", (2.5,)),
        ("select %s = 12345678901234567890123::numeric", (12345678901234567890123,)),
        ("select coalesce(%s, 5) = 5", (None,)),
        ("select %s::int is null and %s::text is null", (None, None)),
        ("select octet_length(%s) = 5 and %s = '\\x610062ff00'::bytea", (b"a\x00b\xff\x00",) * 2),
        ("select %s and not %s", (True, False)),
        ("select %b::text = 'bin'", ("bin",)),
        ("select %b = 2147483648", (2147483648,)),
        ("select %b = 1e30::numeric", (10**30,)),
    ],
)
def test_server_interpretation(pgconn: PGconn, query: str, params: Any) -> None:
    assert run(pgconn, query, params) == (True,)


@pytest.mark.parametrize("result_format", [Format.TEXT, Format.BINARY])
@pytest.mark.parametrize(
    "expr, expected",
    [
        ("32767::int2", 32767),
        ("(-32768)::int2", -32768),
        ("(-2147483648)::int4", -(2**31)),
        ("9223372036854775807::int8", INT8_MAX),
        ("4294967295::oid", 4294967295),
        ("1.5::float4", 1.5),
        ("'NaN'::float8", "nan"),
        ("'Infinity'::float4", float("inf")),
        ("'-Infinity'::float8", float("-inf")),
        ("1e308::float8", 1e308),
        ("5e-324::float8", 5e-324),
        ("'-0'::float8", "-0"),
        ("123.4500::numeric", Decimal("123.4500")),
        ("-0.000001::numeric", Decimal("-0.000001")),
        ("0.00::numeric", Decimal("0.00")),
        ("1e50::numeric", Decimal("1" + "0" * 50)),
        ("'NaN'::numeric", "nan"),
        ("'Infinity'::numeric", Decimal("Infinity")),
        ("'-Infinity'::numeric", Decimal("-Infinity")),
        ("true", True),
        ("false", False),
        ("'héllo'::text", "héllo"),
        ("'ab '::char(4)", "ab  "),
        ("'v'::varchar", "v"),
        ("'n'::name", "n"),
        ("'c'::\"char\"", "c"),
        ("'\\x00ff'::bytea", b"\x00\xff"),
        ("''::bytea", b""),
        ("''::text", ""),
        ("pg_sleep(0)", None),
        ("null::int", None),
        ("null::text", None),
        ("'(1,2)'::point", {Format.TEXT: "(1,2)", Format.BINARY: struct.pack("!dd", 1, 2)}),
    ],
)
def test_loaders(pgconn: PGconn, expr: str, expected: Any, result_format: Format) -> None:
    (value,) = run(pgconn, f"select {expr}", (), result_format)
    if isinstance(expected, dict):
        expected = expected[result_format]
    if expected == "nan":
        assert math.isnan(value) if isinstance(value, float) else value.is_nan()
    elif expected == "-0":
        assert value == 0.0 and math.copysign(1, value) == -1
    else:
        assert value == expected and type(value) is type(expected)
        if isinstance(expected, Decimal):
            assert str(value) == str(expected)


def test_bytea_escape_output(pgconn: PGconn) -> None:
    pgconn.exec_(b"set bytea_output to 'escape'")
    try:
        (value,) = run(pgconn, "select %s::bytea", (b"a\\b\x00\xff\x7f'",))
    finally:
        pgconn.exec_(b"set bytea_output to 'hex'")
    assert value == b"a\\b\x00\xff\x7f'"


def test_many_rows_and_columns(pgconn: PGconn) -> None:
    tx = Transformer(Context(pgconn))
    res = pgconn.exec_(
        b"select g, g::float8 / 2, g::numeric, g::text, g % 2 = 0, null::int"
        b" from generate_series(1, 100) g"
    )
    tx.set_pgresult(res)
    rows = tx.load_rows(0, 100)
    assert rows[9] == (10, 5.0, Decimal(10), "10", True, None)
    assert len(rows) == 100


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "-0",
        "1",
        "-1.5",
        "0.0001",
        "0.00010",
        "12345.6789",
        "1E+8",
        "1E-8",
        "123456789.987654321",
        "9" * 60 + "." + "9" * 60,
        "1E+1000",
        "-1E-1000",
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_numeric_binary_codec(value: str) -> None:
    dec = Decimal(value)
    back = numeric_to_decimal(decimal_to_numeric(dec))
    if dec.is_nan():
        assert back.is_nan()
    elif dec.is_infinite():
        assert back == dec
    else:
        assert back == dec
        assert back.as_tuple().exponent == min(0, dec.as_tuple().exponent)  # type: ignore[operator]


# Property round trips through the server

_settings = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


def _round_trip(pgconn: PGconn, value: Any, fmt: PyFormat, result_format: Format) -> Any:
    (back,) = run(pgconn, f"select %{fmt.value}", (value,), result_format)
    return back


@_settings
@given(
    value=st.integers(min_value=-(10**40), max_value=10**40),
    fmt=st.sampled_from(PyFormat),
    rfmt=st.sampled_from(Format),
)
def test_hypothesis_int(pgconn: PGconn, value: int, fmt: PyFormat, rfmt: Format) -> None:
    back = _round_trip(pgconn, value, fmt, rfmt)
    assert back == value
    assert isinstance(back, int if -(2**63) <= value <= INT8_MAX else Decimal)


@_settings
@given(value=st.floats(), fmt=st.sampled_from(PyFormat), rfmt=st.sampled_from(Format))
def test_hypothesis_float(pgconn: PGconn, value: float, fmt: PyFormat, rfmt: Format) -> None:
    back = _round_trip(pgconn, value, fmt, rfmt)
    if math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and math.copysign(1, back) == math.copysign(1, value)


@_settings
@given(
    value=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    ),
    fmt=st.sampled_from(PyFormat),
    rfmt=st.sampled_from(Format),
)
def test_hypothesis_str(pgconn: PGconn, value: str, fmt: PyFormat, rfmt: Format) -> None:
    (back, equal) = run(
        pgconn, f"select %{fmt.value}::text, %{fmt.value}::text = %s", (value, value, value), rfmt
    )
    assert back == value and equal is True


@_settings
@given(value=st.binary(), fmt=st.sampled_from(PyFormat), rfmt=st.sampled_from(Format))
def test_hypothesis_bytes(pgconn: PGconn, value: bytes, fmt: PyFormat, rfmt: Format) -> None:
    assert _round_trip(pgconn, value, fmt, rfmt) == value


@_settings
@given(
    # numeric holds up to 131072 digits before the point and 16383 after.
    value=st.decimals(allow_nan=True, allow_infinity=True).filter(
        lambda d: not d.is_finite() or -16000 < d.adjusted() < 100000
    ),
    fmt=st.sampled_from(PyFormat),
    rfmt=st.sampled_from(Format),
)
def test_hypothesis_decimal(pgconn: PGconn, value: Decimal, fmt: PyFormat, rfmt: Format) -> None:
    back = _round_trip(pgconn, value, fmt, rfmt)
    if value.is_nan():
        assert back.is_nan()
    else:
        assert back == value


@_settings
@given(value=st.booleans(), fmt=st.sampled_from(PyFormat), rfmt=st.sampled_from(Format))
def test_hypothesis_bool(pgconn: PGconn, value: bool, fmt: PyFormat, rfmt: Format) -> None:
    assert _round_trip(pgconn, value, fmt, rfmt) is value
