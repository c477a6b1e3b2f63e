"""Tests of ranges and multiranges: the Range objects, dump and load through the server."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import PyFormat, Transformer, adapters
from psycopg3.pq import Format
from psycopg3.types.range import (
    Multirange,
    MultirangeInfo,
    Range,
    RangeInfo,
    register_multirange,
    register_range,
)

INT4_MAX = 2**31 - 1


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "drop type if exists testtextrange cascade;"
            " create type testtextrange as range"
            " (subtype = text, multirange_type_name = testtextmultirange)"
        )
        yield conn
        conn.execute("drop type if exists testtextrange cascade")


def one(conn: Any, query: str, params: Any = (), binary: bool = False) -> Any:
    row = conn.execute(query, params, binary=binary).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


# The Range object


def test_range_defaults() -> None:
    r: Range[int] = Range(1, 5)
    assert (r.lower, r.upper, r.bounds) == (1, 5, "[)")
    assert r.lower_inc and not r.upper_inc
    assert not r.lower_inf and not r.upper_inf and not r.isempty
    assert bool(r)


def test_range_infinite_side_is_not_inclusive() -> None:
    r: Range[int] = Range(None, None, "[]")
    assert r.bounds == "()"
    assert r.lower_inf and r.upper_inf
    assert not r.lower_inc and not r.upper_inc
    assert bool(r)


def test_range_empty() -> None:
    r: Range[int] = Range(empty=True)
    assert r.isempty and not r
    assert not r.lower_inf and not r.upper_inf
    assert not r.lower_inc and not r.upper_inc
    assert 1 not in r
    assert str(r) == "empty" and repr(r) == "Range(empty=True)"


@pytest.mark.parametrize("kwargs", [{"bounds": "[["}, {"bounds": ""}, {"lower": 1, "empty": True}])
def test_range_bad_arguments(kwargs: Any) -> None:
    with pytest.raises(ValueError):
        Range(**kwargs)


@pytest.mark.parametrize(
    "rng, inside, outside",
    [
        (Range(1, 5), [1, 4, 4.9], [0, 5, 6]),
        (Range(1, 5, "(]"), [2, 5], [1, 6]),
        (Range(None, 5, "(]"), [-(10**9), 5], [6]),
        (Range(1, None), [1, 10**9], [0]),
        (Range(None, None), [0, -5], []),
    ],
)
def test_range_contains(rng: Range[int], inside: list[Any], outside: list[Any]) -> None:
    assert all(x in rng for x in inside)
    assert not any(x in rng for x in outside)


def test_range_equality_hash_pickle() -> None:
    assert Range(1, 2) == Range(1, 2, "[)")
    assert Range(1, 2) != Range(1, 2, "[]")
    assert Range(empty=True) == Range(empty=True) != Range(None, None)
    assert Range(1, 2) != (1, 2)
    assert len({Range(1, 2), Range(1, 2), Range(1, 3)}) == 2
    r = Range(Decimal("1.5"), None, "(]")
    assert pickle.loads(pickle.dumps(r)) == r
    assert repr(r) == "Range(Decimal('1.5'), None, '()')"
    assert str(Range(1, 2, "[]")) == "[1, 2]"


def test_range_immutable() -> None:
    r = Range(1, 2)
    with pytest.raises(AttributeError):
        r.lower = 3  # type: ignore[misc]


def test_multirange_is_a_list_of_ranges() -> None:
    m: Multirange[int] = Multirange([Range(1, 2)])
    m.append(Range(5, 6))
    m.insert(0, Range(empty=True))
    assert len(m) == 3 and m[1] == Range(1, 2)
    assert m == [Range(empty=True), Range(1, 2), Range(5, 6)]
    assert m[1:] == Multirange([Range(1, 2), Range(5, 6)])
    del m[0]
    assert str(m) == "{[1, 2), [5, 6)}"
    with pytest.raises(TypeError):
        m.append((1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Multirange([1])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        hash(m)


# Loading


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(
    "literal, expected",
    [
        ("'[1,5)'::int4range", Range(1, 5)),
        ("'[1,5]'::int4range", Range(1, 6)),
        ("'(,5]'::int8range", Range(None, 6, "()")),
        ("'[-9223372036854775808,)'::int8range", Range(-(2**63), None)),
        ("'empty'::int4range", Range(empty=True)),
        ("'(,)'::numrange", Range(None, None, "()")),
        ("'(1.5,2.50]'::numrange", Range(Decimal("1.5"), Decimal("2.50"), "(]")),
        ("'[NaN,NaN]'::numrange", None),  # NaN bounds: compared below
        ("null::int4range", None),
    ],
)
def test_load_builtin_range(conn: Any, literal: str, expected: Any, binary: bool) -> None:
    got = one(conn, f"select {literal}", binary=binary)
    if "NaN" in literal:
        assert got.lower.is_nan() and got.upper.is_nan() and got.bounds == "[]"
    else:
        assert got == expected


@pytest.mark.parametrize("binary", [False, True])
def test_load_multiranges(conn: Any, binary: bool) -> None:
    row = one(
        conn,
        "select '{[1,3), [2,5), [7,)}'::int4multirange, '{}'::int8multirange,"
        " '{(1.5,2), empty}'::nummultirange, null::int4multirange",
        binary=binary,
    )
    assert row[0] == Multirange([Range(1, 5), Range(7, None)])
    assert isinstance(row[0], Multirange)
    assert row[1] == Multirange()
    assert row[2] == Multirange([Range(Decimal("1.5"), Decimal(2), "()")])
    assert row[3] is None


@pytest.mark.parametrize("binary", [False, True])
def test_date_ranges_use_the_date_loader(conn: Any, binary: bool) -> None:
    got = one(conn, "select '[2020-01-01,2020-02-01)'::daterange", binary=binary)
    assert got == Range(date(2020, 1, 1), date(2020, 2, 1))
    multi = one(conn, "select '{[2020-01-01,2020-01-05]}'::datemultirange", binary=binary)
    assert multi == Multirange([Range(date(2020, 1, 1), date(2020, 1, 6))])


@pytest.mark.parametrize("fmt", ["%s", "%b"])
def test_date_and_datetime_ranges_dump_typed(conn: Any, fmt: str) -> None:
    from datetime import datetime, timezone

    naive = datetime(2020, 1, 1, 12, 30)
    aware = datetime(2020, 1, 1, 12, 30, tzinfo=timezone.utc)
    row = one(
        conn,
        f"select pg_typeof({fmt})::text, pg_typeof({fmt})::text, pg_typeof({fmt})::text,"
        f" {fmt} = '[2020-01-01,2020-01-03)'::daterange",
        (
            Range(date(2020, 1, 1), None),
            Range(naive, None),
            Range(None, aware),
            Range(date(2020, 1, 1), date(2020, 1, 2), "[]"),
        ),
    )
    assert row == ("daterange", "tsrange", "tstzrange", True)


# Quoting, through a range of text


TORTURE = ["", " ", "a b", 'q"uote', "back\\slash", "a,b", "(x)", "[y]", "{z}", "é€", "NULL"]


@pytest.fixture
def textrange(conn: Any) -> Iterator[RangeInfo]:
    info = RangeInfo.fetch(conn, "testtextrange")
    assert info is not None
    register_range(info, conn)
    yield info
    conn.adapters = type(conn.adapters)(adapters)


@pytest.mark.parametrize("lower", TORTURE)
@pytest.mark.parametrize("binary", [False, True])
def test_text_bounds_quoting(conn: Any, textrange: RangeInfo, lower: str, binary: bool) -> None:
    upper = lower + "~"  # sorts after lower
    # The server's own literal, built from the bounds by the range constructor.
    (text, back) = one(
        conn,
        "select testtextrange(%s, %s, '[]')::text, testtextrange(%s, %s, '[]')",
        (lower, upper, lower, upper),
        binary=binary,
    )
    assert back == Range(lower, upper, "[]")
    # What we dump is read by the server as the same range.
    fmt = "%b" if binary else "%t"
    same = one(
        conn,
        f"select {fmt}::testtextrange = %s::testtextrange",
        (Range(lower, upper, "[]"), text),
    )
    assert same is True


def test_user_range_info(conn: Any, textrange: RangeInfo) -> None:
    assert textrange.name == "testtextrange"
    assert textrange.subtype_oid == 25
    multi = MultirangeInfo.fetch(conn, "testtextmultirange")
    assert multi is not None
    assert textrange.multirange_oid == multi.oid and multi.range_oid == textrange.oid
    assert multi.subtype_oid == 25
    assert one(conn, "select '{[a,b)}'::testtextmultirange") == Multirange([Range("a", "b")])
    # In binary, a str is a text: its Range is dumped as the registered range of text.
    assert one(conn, "select pg_typeof(%b)::text", (Range("a", "b"),)) == "testtextrange"
    # In text a str is untyped, and so is its Range: the server infers it.
    assert one(conn, "select %s = '[a,b)'::testtextrange", (Range("a", "b"),)) is True


def test_register_multirange_alone(conn: Any) -> None:
    info = MultirangeInfo.fetch(conn, "testtextmultirange")
    assert info is not None
    cur = conn.cursor()
    register_multirange(info, cur)
    cur.execute("select '{[a,b)}'::testtextmultirange")
    assert cur.fetchone() == (Multirange([Range("a", "b")]),)
    # Only the cursor knows it: the connection returns the text.
    assert one(conn, "select '{[a,b)}'::testtextmultirange") == "{[a,b)}"


def test_fetch_errors(conn: Any) -> None:
    assert RangeInfo.fetch(conn, "no_such_range_type") is None
    with pytest.raises(errors.ProgrammingError, match="int4"):
        RangeInfo.fetch(conn, "int4")
    with pytest.raises(errors.ProgrammingError):
        MultirangeInfo.fetch(conn, "int4range")
    info = RangeInfo.fetch(conn, "pg_catalog.int8range")
    assert info is not None and (info.oid, info.subtype_oid) == (3926, 20)
    assert (info.multirange_oid, info.multirange_name) == (4536, "int8multirange")


def test_registration_stays_on_its_connection(dsn: str, conn: Any, textrange: RangeInfo) -> None:
    with psycopg3_sync.connect(dsn) as other:
        assert one(other, "select '[a,b)'::testtextrange") == "[a,b)"
    assert one(conn, "select '[a,b)'::testtextrange") == Range("a", "b")


def test_malformed_text_is_data_error() -> None:
    loader_cls = adapters.get_loader(3904, Format.TEXT)
    assert loader_cls is not None
    loader = loader_cls(3904, Transformer())
    for bad in (b"", b"[1,2", b"1,2)", b"[1,2,3)", b'["1,2)'):
        with pytest.raises(errors.DataError):
            loader.load(bad)


# Dumping: the type sent, what the server understood


def dump(obj: Any, fmt: PyFormat) -> tuple[bytes | None, int, Format]:
    tx = Transformer()
    tx.dump_sequence([obj], [fmt])
    return tx.values[0], tx.types[0], tx.formats[0]


@pytest.mark.parametrize(
    "obj, fmt, oid",
    [
        (Range(1, 5), PyFormat.AUTO, 0),  # untyped: see range.py, rule 2
        (Range(1, 5), PyFormat.BINARY, 3904),
        (Range(1, 2**40), PyFormat.BINARY, 3926),
        (Range(-(2**40), 1), PyFormat.BINARY, 3926),
        (Range(None, 2**70), PyFormat.BINARY, 3906),
        (Range(None, 2**70), PyFormat.TEXT, 3906),
        (Range(Decimal(1), None), PyFormat.AUTO, 3906),
        (Range(Decimal(1), None), PyFormat.BINARY, 3906),
        (Range(empty=True), PyFormat.AUTO, 0),
        (Range(None, None), PyFormat.TEXT, 0),
        (Multirange([Range(1, 2)]), PyFormat.BINARY, 4451),
        (Multirange([Range(empty=True), Range(1, 2**40)]), PyFormat.BINARY, 4536),
        (Multirange([Range(Decimal(1), None)]), PyFormat.AUTO, 4532),
        (Multirange(), PyFormat.AUTO, 0),
    ],
)
def test_dump_oid(obj: Any, fmt: PyFormat, oid: int) -> None:
    assert dump(obj, fmt)[1] == oid


def test_mixed_bound_types_text(conn: Any) -> None:
    rng = Range(1, Decimal("2.5"))
    assert dump(rng, PyFormat.AUTO) == (b"[1,2.5)", 3906, Format.TEXT)
    assert one(conn, "select %s = numrange(1, 2.5)", (rng,)) is True


def test_dump_text() -> None:
    assert dump(Range(1, 5, "(]"), PyFormat.TEXT)[0] == b"(1,5]"
    assert dump(Range(None, Decimal("2.5")), PyFormat.TEXT)[0] == b"(,2.5)"
    assert dump(Range(empty=True), PyFormat.TEXT)[0] == b"empty"
    assert dump(Multirange([Range(1, 2), Range(3, None)]), PyFormat.TEXT)[0] == b"{[1,2),[3,)}"


@pytest.mark.parametrize("column", ["int4range", "int8range", "numrange"])
def test_int_range_fills_any_int_column(conn: Any, column: str) -> None:
    conn.execute(f"create temp table rt (r {column}, m {column[:-5]}multirange)")
    try:
        rng, multi = Range(1, 10), Multirange([Range(1, 2), Range(5, 6)])
        conn.execute("insert into rt values (%s, %s)", (rng, multi))
        assert one(conn, "select r::text, m::text from rt") == ("[1,10)", "{[1,2),[5,6)}")
    finally:
        conn.execute("drop table rt")


@pytest.mark.parametrize("fmt", ["%s", "%t", "%b"])
@pytest.mark.parametrize(
    "obj, pgtype, text",
    [
        (Range(1, 5, "[]"), "int4range", "[1,6)"),
        (Range(None, 2**40), "int8range", "(,1099511627776)"),
        (Range(Decimal("-1.5"), Decimal("1e3"), "(]"), "numrange", "(-1.5,1E+3]"),
        (Range(empty=True), "int4range", "empty"),
        (Range(None, None), "numrange", "(,)"),
        (Multirange([Range(5, 6), Range(1, 3)]), "int4multirange", "{[1,3),[5,6)}"),
        (Multirange(), "nummultirange", "{}"),
    ],
)
def test_dump_server_reads(conn: Any, fmt: str, obj: Any, pgtype: str, text: str) -> None:
    if fmt == "%b" and (not obj or isinstance(obj, Range) and obj.lower_inf and obj.upper_inf):
        fmt = "%s"  # no bound to choose a binary type with: sent untyped, as text
    expected = one(conn, f"select %s::{pgtype}::text", (text,))
    assert one(conn, f"select ({fmt}::{pgtype})::text", (obj,)) == expected


# Properties, through the server


_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_int8s = st.integers(min_value=-(2**63), max_value=2**63 - 2)
_bounds = st.sampled_from(["[)", "(]", "()", "[]"])


def _canonical_int(rng: Range[int]) -> Range[int]:
    """PostgreSQL's canonical form of a discrete range: [lower, upper)."""
    lower = rng.lower if rng.lower is None or rng.lower_inc else rng.lower + 1
    upper = rng.upper if rng.upper is None or not rng.upper_inc else rng.upper + 1
    if lower is not None and upper is not None and lower >= upper:
        return Range(empty=True)
    return Range(lower, upper, "[)")


@_settings
@given(
    a=st.one_of(st.none(), _int8s),
    b=st.one_of(st.none(), _int8s),
    bounds=_bounds,
    fmt=st.sampled_from(["%s", "%b"]),
    binary=st.booleans(),
)
def test_hypothesis_int8range(
    conn: Any, a: int | None, b: int | None, bounds: str, fmt: str, binary: bool
) -> None:
    if a is not None and b is not None and a > b:
        a, b = b, a
    rng = Range(a, b, bounds)
    expected = _canonical_int(rng)
    lower = "" if expected.lower is None else expected.lower
    upper = "" if expected.upper is None else expected.upper
    brackets = expected.bounds
    literal = "empty" if expected.isempty else f"{brackets[:1]}{lower},{upper}{brackets[1:]}"
    params: tuple[Any, ...]
    if fmt == "%s" or (a is None and b is None):  # untyped: the cast decides
        pgtype = "int8range"
        query = "select %s::int8range, (%s::int8range)::text, %s::text"
        params = (rng, rng, pgtype)
    else:  # typed by the bounds' size: no cast between int4range and int8range
        fits_int4 = all(-(2**31) <= x <= INT4_MAX for x in (a, b) if x is not None)
        pgtype = "int4range" if fits_int4 else "int8range"
        query = "select %b, %b::text, pg_typeof(%b)::text"
        params = (rng, rng, rng)
    back, text, typname = one(conn, query, params, binary=binary)
    assert typname == pgtype
    assert back == expected
    assert text == literal


_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4)


@_settings
@given(
    a=st.one_of(st.none(), _decimals),
    b=st.one_of(st.none(), _decimals),
    bounds=_bounds,
    fmt=st.sampled_from(["%s", "%b"]),
    binary=st.booleans(),
)
def test_hypothesis_numrange(
    conn: Any, a: Decimal | None, b: Decimal | None, bounds: str, fmt: str, binary: bool
) -> None:
    if a is not None and b is not None and a > b:
        a, b = b, a
    rng = Range(a, b, bounds)
    is_empty = a is not None and a == b and bounds != "[]"
    # The server's own construction of the same range, compared by the server.
    same, back = one(
        conn,
        f"select {fmt}::numrange = numrange(%s, %s, %s), {fmt}::numrange",
        (rng, a, b, bounds, rng),
        binary=binary,
    )
    assert same is True
    assert back == (Range(empty=True) if is_empty else rng)
