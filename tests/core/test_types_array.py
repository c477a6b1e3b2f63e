"""Tests of arrays: Python lists <-> PostgreSQL arrays, text and binary, through the server."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import Dumper, PyFormat, Transformer, TypeInfo
from psycopg3.pq import Format
from psycopg3.types._array_binary import pack_array, unpack_array
from psycopg3.types._array_text import parse_array, quote_element
from psycopg3.types.array import register_array
from psycopg3.types.json import Json, Jsonb

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FORMATS = ["s", "t", "b"]


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


def one(conn: psycopg3_sync.Connection, query: str, params: Any = (), binary: bool = False) -> Any:
    row = conn.execute(query, params, binary=binary).fetchone()
    assert row is not None
    return row[0]


def dump(obj: Any, fmt: PyFormat = PyFormat.AUTO) -> tuple[bytes | None, int, Format]:
    tx = Transformer()
    tx.dump_sequence([obj], [fmt])
    return tx.values[0], tx.types[0], tx.formats[0]


# What lists are sent as


@pytest.mark.parametrize(
    "obj, fmt, oid, pqformat",
    [
        ([1, 2], PyFormat.AUTO, 1007, Format.TEXT),
        ([1, 2**40], PyFormat.AUTO, 1016, Format.TEXT),
        ([-(2**31) - 1, 2], PyFormat.AUTO, 1016, Format.TEXT),
        ([-(2**31), 2**31 - 1], PyFormat.AUTO, 1007, Format.TEXT),
        ([1, 2**70], PyFormat.AUTO, 1231, Format.TEXT),
        ([None, 1], PyFormat.AUTO, 1007, Format.TEXT),
        ([[1, 2], [3, 4]], PyFormat.BINARY, 1007, Format.BINARY),
        ([2**40], PyFormat.BINARY, 1016, Format.BINARY),
        (["a"], PyFormat.AUTO, 1009, Format.TEXT),
        (["a"], PyFormat.BINARY, 1009, Format.BINARY),
        ([1.5], PyFormat.AUTO, 1022, Format.TEXT),
        ([2, 1.5], PyFormat.AUTO, 1022, Format.TEXT),
        ([1.5, 2], PyFormat.BINARY, 1022, Format.BINARY),
        ([[2], [Decimal("1.5")]], PyFormat.BINARY, 1231, Format.BINARY),
        ([Decimal("1.5")], PyFormat.AUTO, 1231, Format.TEXT),
        ([True], PyFormat.AUTO, 1000, Format.TEXT),
        ([b"x"], PyFormat.AUTO, 1001, Format.BINARY),
        ([b"x"], PyFormat.TEXT, 1001, Format.TEXT),
        ([uuid.UUID(int=1)], PyFormat.BINARY, 2951, Format.BINARY),
        ([ip_address("1.2.3.4")], PyFormat.AUTO, 1041, Format.TEXT),
        ([ip_network("10.0.0.0/8")], PyFormat.AUTO, 651, Format.TEXT),
        ([Json(1)], PyFormat.AUTO, 199, Format.TEXT),
        ([Jsonb(1)], PyFormat.BINARY, 3807, Format.BINARY),
    ],
)
def test_dump_oid_and_format(obj: Any, fmt: PyFormat, oid: int, pqformat: Format) -> None:
    _, got_oid, got_format = dump(obj, fmt)
    assert (got_oid, got_format) == (oid, pqformat)


@pytest.mark.parametrize(
    "obj, expected, oid",
    [
        ([1, None, -3], b"{1,NULL,-3}", 1007),
        ([[1, 2], [3, 4]], b"{{1,2},{3,4}}", 1007),
        ([[[1], [2]]], b"{{{1},{2}}}", 1007),
        (
            ["a b", "", "NULL", "null", 'q"', "b\\s", "{x}", "a,b", "ok"],
            rb'{"a b","","NULL","null","q\"","b\\s","{x}","a,b",ok}',
            1009,
        ),
        ([b"\x01"], rb'{"\\x01"}', 1001),
        # Lists without an element type are left for the server to type.
        ([], b"{}", 0),
        ([[], []], b"{}", 0),
        ([None, None], b"{NULL,NULL}", 0),
        ([[None], [None]], b"{{NULL},{NULL}}", 0),
    ],
)
def test_dump_text(obj: Any, expected: bytes, oid: int) -> None:
    assert dump(obj, PyFormat.TEXT) == (expected, oid, Format.TEXT)


def test_dump_empty_binary_is_untyped_text() -> None:
    assert dump([], PyFormat.BINARY) == (b"{}", 0, Format.TEXT)
    assert dump([None], PyFormat.BINARY) == (b"{NULL}", 0, Format.TEXT)


@pytest.mark.parametrize(
    "obj, message",
    [
        ([[1, 2], [3]], "different lengths"),
        ([[1], 2], "different depths"),
        ([1, [2]], "different depths"),
        ([[1], None], "NULL sub-arrays"),
        ([1, "a"], "one type"),
        ([1.5, Decimal(1)], "one type"),
        ([True, 2], "one type"),
        ([1.5, 10**400], "too large"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_lists(conn: psycopg3_sync.Connection, obj: Any, message: str, fmt: str) -> None:
    with pytest.raises(errors.DataError, match=message):
        conn.execute(f"select %{fmt}", [obj])
    assert one(conn, "select 1") == 1


def test_dict_is_not_json(conn: psycopg3_sync.Connection) -> None:
    with pytest.raises(errors.ProgrammingError, match="dict"):
        conn.execute("select %s", [{"a": 1}])
    with pytest.raises(errors.ProgrammingError, match="dict"):
        conn.execute("select %s", [[{"a": 1}]])
    assert one(conn, "select 1") == 1


# Round trips


ROUND_TRIPS: list[Any] = [
    [1, 2, 3],
    [1, None, 3],
    [[1, 2], [3, None]],
    [[[1, 2]], [[3, 4]], [[5, None]]],
    [10**10, -1],
    [10**30, None],
    [1.5, -0.0, float("inf"), None],
    [[2.0, 1.5], [None, -3.0]],
    [Decimal("1.10"), Decimal("-Infinity"), None],
    [True, False, None],
    ["a", None, "", "NULL", "x y", 'q"', "\\", "{}", ",", ";", "é€😀", "\t\n"],
    [["a", "b"], ["c", None]],
    [b"", b"\x00\xff", None, b"\\"],
    [uuid.UUID(int=1), None, uuid.UUID("12345678-1234-5678-1234-567812345678")],
    [ip_address("1.2.3.4"), ip_address("::1"), ip_interface("10.1.0.1/16"), None],
    [ip_network("10.0.0.0/8"), ip_network("2001:db8::/32")],
]


@pytest.mark.parametrize("obj", ROUND_TRIPS, ids=range(len(ROUND_TRIPS)))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_round_trip(conn: psycopg3_sync.Connection, obj: Any, fmt: str, binary: bool) -> None:
    assert one(conn, f"select %{fmt}", [obj], binary=binary) == obj


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_json(conn: psycopg3_sync.Connection, fmt: str, binary: bool) -> None:
    got = one(conn, f"select %{fmt}, %{fmt}", [[Json({"a": [1]}), None], [Jsonb("x")]], binary)
    assert got == [{"a": [1]}, None]
    row = conn.execute(f"select %{fmt}", [[Jsonb([1, None]), Jsonb({})]], binary=binary).fetchone()
    assert row == ([[1, None], {}],)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_empty_list_is_typed_by_the_server(
    conn: psycopg3_sync.Connection, fmt: str, binary: bool
) -> None:
    assert one(conn, f"select %{fmt}::int[]", [[]], binary) == []
    assert one(conn, f"select %{fmt}::int8[]", [[None, None]], binary) == [None, None]
    assert one(conn, f"select 1 = any(%{fmt})", [[]], binary) is False
    assert one(conn, f"select array_length(%{fmt}::text[], 1)", [[]], binary) is None


# The server's interpretation


@pytest.mark.parametrize("fmt", FORMATS)
def test_any(conn: psycopg3_sync.Connection, fmt: str) -> None:
    assert one(conn, f"select 3 = any(%{fmt})", [[1, 2, 3]]) is True
    assert one(conn, f"select 4 = any(%{fmt})", [[1, 2, 3]]) is False
    assert one(conn, f"select 'b' = any(%{fmt})", [["a", "b"]]) is True
    conn.execute("create temp table if not exists arr_any (id int8 primary key, n text)")
    conn.execute("truncate arr_any")
    conn.execute("insert into arr_any select i, i::text from generate_series(1, 10) i")
    cur = conn.execute(f"select id from arr_any where id = any(%{fmt}) order by id", [[2, 5, 99]])
    assert cur.fetchall() == [(2,), (5,)]
    cur = conn.execute(f"select n from arr_any where n = any(%{fmt}) order by id", [["3", "7"]])
    assert cur.fetchall() == [("3",), ("7",)]
    cur = conn.execute(f"select id from arr_any where id <> all(%{fmt})", [list(range(2, 11))])
    assert cur.fetchall() == [(1,)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_server_interpretation(conn: psycopg3_sync.Connection, fmt: str) -> None:
    assert one(conn, f"select array_length(%{fmt}, 1)", [[1, 2, 3]]) == 3
    assert one(conn, f"select (%{fmt}::text[])[2]", [["a", "b c"]]) == "b c"
    assert one(conn, f"select %{fmt}::int[] = '{{1,2,3}}'", [[1, 2, 3]]) is True
    assert one(conn, f"select %{fmt} = '{{{{1,2}},{{3,4}}}}'::int[]", [[[1, 2], [3, 4]]]) is True
    assert one(conn, f"select array_ndims(%{fmt})", [[[[1]], [[2]]]]) == 3
    assert one(conn, f"select pg_typeof(%{fmt})::text", [[10**10]]) == "bigint[]"
    assert one(conn, f"select pg_typeof(%{fmt})::text", [["a"]]) == "text[]"
    got = one(conn, f"select %{fmt}::text", [["a b", None, "", "NULL"]])
    assert got == '{"a b",NULL,"","NULL"}'
    assert one(conn, f"select array_position(%{fmt}, NULL)", [[1, None, 3]]) == 2
    assert one(conn, f"select cardinality(%{fmt})", [[[1, 2], [3, 4]]]) == 4


TORTURE = ["", " ", " x ", "NULL", "null", "NuLl", "a,b", "a;b", "{", "}", "{a}", '"', '""', "\\"]
TORTURE += ["\\\\", '\\"', "'", "a\tb", "\n", "é", "日本", "😀", "x" * 1000, "[0:1]={1}"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_quoting_torture(conn: psycopg3_sync.Connection, fmt: str, binary: bool) -> None:
    # The server sees the same strings, element by element (json is built by the server).
    assert json.loads(one(conn, f"select array_to_json(%{fmt})::text", [TORTURE])) == TORTURE
    assert one(conn, f"select %{fmt}", [TORTURE], binary) == TORTURE
    nested = [TORTURE[:12], TORTURE[12:]]
    assert one(conn, f"select %{fmt}", [nested], binary) == nested


# Loading what the server builds

SERVER_ARRAYS: list[tuple[str, Any]] = [
    ("array[1, null, 3]::int2[]", [1, None, 3]),
    ("array[1, null]::int4[]", [1, None]),
    ("array[9223372036854775807]::int8[]", [2**63 - 1]),
    ("array[4294967295]::oid[]", [4294967295]),
    ("array[1.5, 'NaN']::float4[]", None),
    ("array[1.25, '-Infinity']::float8[]", [1.25, float("-inf")]),
    ("array[1.10, null]::numeric[]", [Decimal("1.10"), None]),
    ("array[true, false, null]", [True, False, None]),
    ("array['a', null, 'NULL', '']::text[]", ["a", None, "NULL", ""]),
    ("array['a b']::varchar[]", ["a b"]),
    ("array['ab']::char(3)[]", ["ab "]),
    ("array['pg_class']::name[]", ["pg_class"]),
    ("array['\\x00ff'::bytea, null]", [b"\x00\xff", None]),
    ("array['00000000-0000-0000-0000-000000000001'::uuid]", [uuid.UUID(int=1)]),
    ("array['1.2.3.4'::inet, '::1/64']", [ip_address("1.2.3.4"), ip_interface("::1/64")]),
    ("array['10.0.0.0/8'::cidr]", [ip_network("10.0.0.0/8")]),
    ("""array['{"a": [1, "x"]}'::json, null]""", [{"a": [1, "x"]}, None]),
    ("""array['{"b": null}'::jsonb, '"s"']""", [{"b": None}, "s"]),
    ("'{{{1,2}},{{3,4}}}'::int[]", [[[1, 2]], [[3, 4]]]),
    ("'[0:2]={1,2,3}'::int[]", [1, 2, 3]),
    ("'[0:1][2:3]={{1,2},{3,4}}'::int[]", [[1, 2], [3, 4]]),
    ("'{}'::int[]", []),
    ("""'{{"a,b","c}"},{"\\\\",NULL}}'::text[]""", [["a,b", "c}"], ["\\", None]]),
    ("array[box '((1,1),(0,0))', box '((3,3),(2,2))']", None),
]


@pytest.mark.parametrize("query, expected", SERVER_ARRAYS, ids=[q for q, _ in SERVER_ARRAYS])
@pytest.mark.parametrize("binary", [False, True])
def test_load_server_arrays(
    conn: psycopg3_sync.Connection, query: str, expected: Any, binary: bool
) -> None:
    got = one(conn, f"select {query}", binary=binary)
    if query.startswith("array[1.5"):
        assert got[0] == 1.5 and got[1] != got[1]  # NaN
    elif query.startswith("array[box"):
        # Without a box loader the elements are their text (or binary) form.
        assert len(got) == 2
        if not binary:
            assert got == ["(1,1),(0,0)", "(3,3),(2,2)"]
    else:
        assert got == expected


def test_load_array_of_arrays_column_types(conn: psycopg3_sync.Connection) -> None:
    cur = conn.execute("select array[1], array['a'], array[array[1.5]], '{}'::uuid[]")
    assert cur.fetchone() == ([1], ["a"], [[Decimal("1.5")]], [])


@pytest.fixture(scope="module")
def mood(conn: psycopg3_sync.Connection) -> TypeInfo:
    conn.execute("drop type if exists arr_test_mood cascade")
    conn.execute("create type arr_test_mood as enum ('sad', 'ok', 'happy')")
    row = conn.execute(
        "select oid, typarray from pg_type where oid = 'arr_test_mood'::regtype"
    ).fetchone()
    assert row is not None
    return TypeInfo("arr_test_mood", row[0], row[1])


class Mood(str):
    pass


def test_register_array_for_user_type(dsn: str, mood: TypeInfo) -> None:
    class MoodDumper(Dumper):
        oid = mood.oid

        def dump(self, obj: Any) -> bytes:
            return str(obj).encode()

    with psycopg3_sync.connect(dsn) as conn:
        # Unknown array type: its text comes back as it is.
        assert one(conn, "select array['ok'::arr_test_mood]") == "{ok}"
        register_array(mood, conn.adapters)
        conn.adapters.register_dumper(Mood, MoodDumper)
        assert one(conn, "select array['ok'::arr_test_mood, null]") == ["ok", None]
        assert one(conn, "select array['sad'::arr_test_mood]", binary=True) == [b"sad"]
        assert one(conn, "select pg_typeof(%s)::text", [[Mood("ok")]]) == "arr_test_mood[]"
        assert one(conn, "select %s", [[Mood("happy"), None]]) == ["happy", None]
    with psycopg3_sync.connect(dsn) as other:
        # Registered on one connection only.
        assert one(other, "select array['ok'::arr_test_mood]") == "{ok}"


def test_register_array_needs_an_array_type() -> None:
    with pytest.raises(errors.ProgrammingError, match="no array type"):
        register_array(TypeInfo("nothing", 9999, 0), Transformer().adapters)


# The codecs without a server


@pytest.mark.parametrize("data", [b"", b"1,2", b"{1,2", b"{{1,2}", b"[0:1]=1,2"], ids=repr)
def test_parse_malformed(data: bytes) -> None:
    with pytest.raises(errors.DataError, match="malformed"):
        parse_array(data, int)


def test_unpack_malformed() -> None:
    with pytest.raises(errors.DataError):
        unpack_array(b"\x00\x00", lambda oid: bytes)
    truncated = pack_array(23, [2], [b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"])[:-6]
    with pytest.raises(errors.DataError, match="truncated"):
        unpack_array(truncated, lambda oid: bytes)


def test_quote_element() -> None:
    assert quote_element(b"abc") == b"abc"
    assert quote_element(b"") == b'""'
    assert quote_element(b"NULL") == b'"NULL"'
    assert quote_element(b'a"b\\') == b'"a\\"b\\\\"'
    assert quote_element(b"a b") == b'"a b"'


def test_binary_codec_shape() -> None:
    data = pack_array(25, [2, 2], [b"a", None, b"", b"d"])
    assert data[:12] == b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x19"
    assert unpack_array(data, lambda oid: bytes.decode) == [["a", None], ["", "d"]]


# Properties

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@PROPERTY
@given(
    obj=st.lists(st.none() | ints, max_size=20), fmt=st.sampled_from(FORMATS), binary=st.booleans()
)
def test_property_ints(
    conn: psycopg3_sync.Connection, obj: list[Any], fmt: str, binary: bool
) -> None:
    # Cast: a list of NULLs alone has no type (it would come back as a string).
    assert one(conn, f"select %{fmt}::int8[]", [obj], binary) == obj
    assert json.loads(one(conn, f"select array_to_json(%{fmt}::int8[])::text", [obj])) == obj


@PROPERTY
@given(
    obj=st.lists(st.none() | texts, max_size=10), fmt=st.sampled_from(FORMATS), binary=st.booleans()
)
def test_property_texts(
    conn: psycopg3_sync.Connection, obj: list[Any], fmt: str, binary: bool
) -> None:
    assert one(conn, f"select %{fmt}::text[]", [obj], binary) == obj
    assert json.loads(one(conn, f"select array_to_json(%{fmt}::text[])::text", [obj])) == obj


@st.composite
def rectangular(draw: st.DrawFn, elements: st.SearchStrategy[Any]) -> list[Any]:
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))

    def build(dims: list[int]) -> list[Any]:
        if len(dims) == 1:
            return [draw(elements) for _ in range(dims[0])]
        return [build(dims[1:]) for _ in range(dims[0])]

    return build(shape)


@PROPERTY
@given(
    obj=rectangular(st.none() | st.integers(-(2**31), 2**31 - 1) | st.just(2**40))
    | rectangular(st.none() | texts),
    fmt=st.sampled_from(FORMATS),
    binary=st.booleans(),
)
def test_property_nested(
    conn: psycopg3_sync.Connection, obj: list[Any], fmt: str, binary: bool
) -> None:
    leaves: list[Any] = []
    stack = [obj]
    while stack:
        level = stack.pop(0)
        for item in level:
            (stack if isinstance(item, list) else leaves).append(item)
    cast = "text[]" if any(isinstance(x, str) for x in leaves) else "int8[]"
    assert one(conn, f"select %{fmt}::{cast}", [obj], binary) == obj
    if any(x is not None for x in leaves):
        assert one(conn, f"select %{fmt}", [obj], binary) == obj
    # The server agrees on the shape and on the NULLs among the elements.
    query = f"select count(*) filter (where x is null) from unnest(%{fmt}::{cast}) x"
    assert one(conn, query, [obj]) == leaves.count(None)
    assert one(conn, f"select array_ndims(%{fmt}::{cast})", [obj]) == _depth(obj)


def _depth(obj: Any) -> int:
    return 1 + _depth(obj[0]) if isinstance(obj, list) else 0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_dates(conn: psycopg3_sync.Connection, fmt: str, binary: bool) -> None:
    utc = dt.timezone.utc
    values: list[Any] = [
        [dt.date(2020, 1, 2), None, dt.date(1, 1, 1)],
        [dt.datetime(2020, 1, 2, 3, 4, 5, 6), None],
        [[dt.datetime(2020, 1, 2, tzinfo=utc)], [dt.datetime(1999, 12, 31, 23, tzinfo=utc)]],
        [dt.time(1, 2, 3), None],
        [dt.timedelta(days=-1, seconds=5), dt.timedelta(0)],
    ]
    for obj in values:
        assert one(conn, f"select %{fmt}", [obj], binary) == obj
    assert one(conn, f"select %{fmt} @> array['2020-01-02'::date]", [values[0]]) is True


@pytest.mark.parametrize("fmt", FORMATS)
def test_naive_and_aware_datetimes_dont_mix(conn: psycopg3_sync.Connection, fmt: str) -> None:
    naive, aware = dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    for obj in ([naive, aware], [aware, naive]):
        with pytest.raises(errors.DataError, match="one type"):
            conn.execute(f"select %{fmt}", [obj])
    assert one(conn, "select 1") == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_ints_among_floats(conn: psycopg3_sync.Connection, fmt: str) -> None:
    got = one(conn, f"select %{fmt}, pg_typeof(%{fmt})::text", [[2, 1.5, None], [2, 1.5]])
    assert got == [2.0, 1.5, None]
    assert type(got[0]) is float
    row = conn.execute(f"select pg_typeof(%{fmt})::text", [[3, Decimal("0.5")]]).fetchone()
    assert row == ("numeric[]",)
