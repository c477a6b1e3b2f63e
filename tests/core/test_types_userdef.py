"""Tests of types registered from the catalog: TypeInfo.fetch, enums, composites, hstore."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import AdaptersMap, PyFormat, TypeInfo, adapters
from psycopg3.types.composite import CompositeInfo, parse_record, register_composite
from psycopg3.types.enum import EnumInfo, register_enum
from psycopg3.types.hstore import register_hstore

MOOD_LABELS = ["sad", "ok", "happy", "a b", 'q"uote', "back\\slash", "", "mro", "_x_", "é"]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture(scope="module")
def schema(dsn: str) -> Iterator[None]:
    labels = ", ".join(_literal(label) for label in MOOD_LABELS)
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "drop schema if exists ud_test cascade; create schema ud_test;"
            f" create type ud_test.mood as enum ({labels});"
            " create type ud_test.\"Odd Name\" as enum ('x');"
            " create type ud_test.inner_t as (a int, b text);"
            " create type ud_test.card as (n int8, s text, m ud_test.mood,"
            '  nums int[], sub ud_test.inner_t, amount numeric, "class" text);'
            " create table ud_test.dropped (a int, gone int, c text);"
            " alter table ud_test.dropped drop column gone"
        )
        yield
        conn.execute("drop schema ud_test cascade")


@pytest.fixture
def conn(dsn: str, schema: None) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("set search_path to ud_test, public")
        yield conn


def one(conn: Any, query: str, params: Any = (), binary: bool = False) -> Any:
    row = conn.execute(query, params, binary=binary).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


# TypeInfo.fetch


def test_fetch_builtin_and_missing(conn: Any) -> None:
    info = TypeInfo.fetch(conn, "int4")
    assert info is not None and type(info) is TypeInfo
    assert (info.name, info.oid, info.array_oid, info.regtype) == ("int4", 23, 1007, "integer")
    assert TypeInfo.fetch(conn, "no_such_type") is None
    assert TypeInfo.fetch(conn, "ud_test.no_such_type") is None


def test_fetch_schema_quoting_search_path(conn: Any) -> None:
    qualified = TypeInfo.fetch(conn, "ud_test.mood")
    plain = TypeInfo.fetch(conn, "mood")
    assert qualified is not None and plain is not None and qualified.oid == plain.oid
    odd = TypeInfo.fetch(conn, '"Odd Name"')
    assert odd is not None and odd.name == "Odd Name"
    with pytest.raises(errors.ProgrammingError, match="invalid type name"):
        TypeInfo.fetch(conn, "odd name")  # what SQL would say of it unquoted
    conn.execute("set search_path to public")
    assert TypeInfo.fetch(conn, "mood") is None
    info = TypeInfo.fetch(conn, "ud_test.mood")
    assert info is not None and info.regtype == "ud_test.mood"


def test_fetch_wrong_kind_is_programming_error(conn: Any) -> None:
    with pytest.raises(errors.ProgrammingError, match="EnumInfo"):
        EnumInfo.fetch(conn, "card")
    with pytest.raises(errors.ProgrammingError, match="CompositeInfo"):
        CompositeInfo.fetch(conn, "mood")


def test_fetch_in_transaction(dsn: str, schema: None) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        info = EnumInfo.fetch(conn, "ud_test.mood")
        assert info is not None and info.labels == MOOD_LABELS
        assert conn.pgconn.transaction_status.name == "INTRANS"


def test_register_levels(dsn: str, conn: Any) -> None:
    info = TypeInfo.fetch(conn, "mood")
    assert info is not None
    cur = conn.cursor()
    info.register(cur)
    assert cur.adapters.types["mood"] is info
    assert "mood" not in conn.adapters.types
    info.register(conn)
    assert conn.adapters.types.get(info.oid) is info
    assert conn.adapters.types.get_oid("mood[]") == info.array_oid
    with psycopg3_sync.connect(dsn) as other:
        assert "mood" not in other.adapters.types
    assert "mood" not in adapters.types


# Enums


@pytest.fixture
def mood(conn: Any) -> EnumInfo:
    info = EnumInfo.fetch(conn, "mood")
    assert info is not None
    return info


def test_enum_info(mood: EnumInfo) -> None:
    assert mood.labels == MOOD_LABELS
    assert mood.regtype == "mood"


@pytest.mark.parametrize("binary", [False, True])
def test_enum_generated(conn: Any, mood: EnumInfo, binary: bool) -> None:
    Mood = register_enum(mood, conn)
    assert [m.value for m in Mood] == MOOD_LABELS
    assert Mood["a b"].value == "a b" and Mood["label7"].value == "mro"
    for label in MOOD_LABELS:
        got = one(conn, "select %s::mood", (label,), binary=binary)
        assert got is Mood(label)
        # Dumped with the type's OID: no cast needed; the server reads the same label.
        assert one(conn, "select pg_typeof(%s)::text, %s::text", (got, got)) == ("mood", label)
    assert one(conn, "select %b = %s::mood", (Mood('q"uote'), 'q"uote')) is True
    assert one(conn, "select null::mood", binary=binary) is None


@pytest.mark.parametrize("binary", [False, True])
def test_enum_arrays(conn: Any, mood: EnumInfo, binary: bool) -> None:
    Mood = register_enum(mood, conn)
    got = one(conn, "select array['sad', null, 'a b']::mood[]", binary=binary)
    assert got == [Mood.sad, None, Mood("a b")]
    assert one(conn, "select %s::mood[]::text", ([Mood.ok, Mood("é")],)) == "{ok,é}"


class UserMood(enum.Enum):
    sad = 1
    ok = 2
    happy = 3


def test_enum_user_class(conn: Any, mood: EnumInfo) -> None:
    assert register_enum(mood, conn, UserMood) is UserMood
    assert one(conn, "select 'happy'::mood") is UserMood.happy
    assert one(conn, "select %s = 'ok'::mood", (UserMood.ok,)) is True
    with pytest.raises(errors.DataError, match="no member in UserMood"):
        conn.execute("select 'a b'::mood").fetchone()
    conn.execute("select 1")  # still usable


def test_enum_unregistered_dumped_by_name(conn: Any) -> None:
    assert one(conn, "select %s::mood::text", (UserMood.happy,)) == "happy"
    assert one(conn, "select 'sad'::mood") == "sad"
    with pytest.raises(errors.ProgrammingError, match="UserMood"):
        conn.execute("select %b", (UserMood.happy,))


def test_enum_registration_stays_on_cursor(conn: Any, mood: EnumInfo) -> None:
    cur = conn.cursor()
    Mood = register_enum(mood, cur)
    cur.execute("select 'ok'::mood")
    assert cur.fetchone() == (Mood.ok,)
    assert one(conn, "select 'ok'::mood") == "ok"


def test_enum_without_labels_is_refused() -> None:
    with pytest.raises(errors.ProgrammingError, match="labels"):
        register_enum(EnumInfo("e", 1, 0), None)


# Composites


@pytest.fixture
def card(conn: Any) -> CompositeInfo:
    inner = CompositeInfo.fetch(conn, "inner_t")
    assert inner is not None
    register_composite(inner, conn)
    register_enum(EnumInfo.fetch(conn, "mood"), conn)  # type: ignore[arg-type]
    info = CompositeInfo.fetch(conn, "card")
    assert info is not None
    return info


def test_composite_info(card: CompositeInfo, conn: Any) -> None:
    assert card.field_names == ["n", "s", "m", "nums", "sub", "amount", "class"]
    assert card.field_types[:2] == [20, 25] and card.field_types[3] == 1007
    dropped = CompositeInfo.fetch(conn, "dropped")
    assert dropped is not None and dropped.field_names == ["a", "c"]


@pytest.mark.parametrize("binary", [False, True])
def test_composite_load(conn: Any, card: CompositeInfo, binary: bool) -> None:
    Card = register_composite(card, conn)
    got = one(
        conn,
        "select row(2^40, 'a \"b\", (c)', 'a b', array[1,null], row(1, ''), 1.50, null)::card",
        binary=binary,
    )
    assert type(got) is Card
    assert got.n == 2**40 and got.s == 'a "b", (c)' and got.m.value == "a b"
    assert got.nums == [1, None] and got.sub == (1, "") and type(got.sub).__name__ == "inner_t"
    assert got.amount == Decimal("1.50") and got._6 is None  # "class" is a keyword: renamed
    nulls = one(conn, "select row(null,null,null,null,null,null,null)::card", binary=binary)
    assert nulls == (None,) * 7


@pytest.mark.parametrize("binary", [False, True])
def test_composite_dump_round_trip(conn: Any, card: CompositeInfo, binary: bool) -> None:
    Card = register_composite(card, conn)
    Inner = type(one(conn, "select row(1, 'x')::inner_t"))
    value = Card(-1, 'q"uote\\ (x), y', None, [3, None], Inner(None, " "), Decimal("-0.5"), "")
    back, text = one(conn, "select %s, %s::text", (value, value), binary=binary)
    assert back == value
    server = one(
        conn,
        "select row(-1, 'q\"uote\\ (x), y', null, array[3, null],"
        " row(null, ' ')::inner_t, -0.5, '')::card::text",
    )
    assert text == server
    assert one(conn, "select pg_typeof(%s)::text", (value,)) == "card"


def test_composite_array(conn: Any, card: CompositeInfo) -> None:
    Card = register_composite(card, conn)
    got = one(conn, "select array[row(1,'a',null,null,null,null,null)::card, null]")
    assert got == [Card(1, "a", None, None, None, None, None), None]


class Point(NamedTuple):
    a: int
    b: str


def test_composite_user_factory(conn: Any) -> None:
    info = CompositeInfo.fetch(conn, "inner_t")
    assert info is not None
    register_composite(info, conn, Point)
    assert one(conn, "select row(1, 'x')::inner_t") == Point(1, "x")
    assert type(one(conn, "select row(1, 'x')::inner_t")) is Point
    assert one(conn, "select %s = row(2, 'y')::inner_t", (Point(2, "y"),)) is True
    calls: list[tuple[Any, ...]] = []
    register_composite(info, conn, lambda *args: calls.append(args) or "made")
    assert one(conn, "select row(3, 'z')::inner_t") == "made" and calls == [(3, "z")]


def test_plain_tuple_is_not_adaptable(conn: Any) -> None:
    with pytest.raises(errors.ProgrammingError, match="tuple"):
        conn.execute("select %s", ((1, 2),))
    conn.execute("select 1")


def test_composite_registration_stays_on_connection(dsn: str, conn: Any) -> None:
    info = CompositeInfo.fetch(conn, "inner_t")
    assert info is not None
    register_composite(info, conn)
    with psycopg3_sync.connect(dsn) as other:
        assert one(other, "select row(1, 'x')::ud_test.inner_t") == "(1,x)"


@pytest.mark.parametrize(
    "text, fields",
    [
        (b"()", [None]),
        (b"(,)", [None, None]),
        (b'("")', [b""]),
        (b'(1,"a ""b""",\\,,)', [b"1", b'a "b"', b",", None]),
        (b'("a\\\\b\\"c")', [b'a\\b"c']),
    ],
)
def test_parse_record(text: bytes, fields: list[bytes | None]) -> None:
    assert parse_record(text) == fields


@pytest.mark.parametrize("bad", [b"", b"(1", b"1)", b'("a)'])
def test_parse_record_malformed(bad: bytes) -> None:
    with pytest.raises(errors.DataError):
        parse_record(bad)


# hstore


@pytest.fixture
def hstore(conn: Any, hstore_extension: None) -> TypeInfo:
    info = TypeInfo.fetch(conn, "hstore")
    assert info is not None
    register_hstore(info, conn)
    return info


HSTORES = [
    {},
    {"a": "1"},
    {"a": None, "": ""},
    {'q"uote': "back\\slash", "a=>b": "c, d", " sp ": "\n\t"},
    {"é€": "☃", "NULL": "null"},
]


@pytest.mark.parametrize("value", HSTORES)
@pytest.mark.parametrize("fmt", ["%s", "%t", "%b"])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.hstore
def test_hstore_round_trip(
    conn: Any, hstore: TypeInfo, value: dict[str, str | None], fmt: str, binary: bool
) -> None:
    back, typname = one(conn, f"select {fmt}, pg_typeof({fmt})::text", (value, value), binary)
    assert back == value and typname == "hstore"
    # The server sees the same pairs: compare with the pairs it builds itself.
    same = one(
        conn,
        f"select {fmt} = hstore(%s::text[], %s::text[])",
        (value, list(value), [*value.values()]),
    )
    assert same is True


@pytest.mark.hstore
def test_hstore_load_server_literal(conn: Any, hstore: TypeInfo) -> None:
    got = one(conn, """select 'a=>1, "b c"=>NULL, "d\\"e"=>"f\\\\g", h=>"NULL"'::hstore""")
    assert got == {"a": "1", "b c": None, 'd"e': "f\\g", "h": "NULL"}
    assert one(conn, "select array['a=>1'::hstore, null]") == [{"a": "1"}, None]


@pytest.mark.hstore
def test_hstore_bad_values(conn: Any, hstore: TypeInfo) -> None:
    for bad in ({1: "a"}, {"a": 1}, {"a\x00": "b"}):
        with pytest.raises(errors.DataError):
            conn.execute("select %s", (bad,))
    conn.execute("select 1")


def test_hstore_missing_extension_message() -> None:
    with pytest.raises(errors.ProgrammingError, match="create extension hstore"):
        register_hstore(None, AdaptersMapContext())


class AdaptersMapContext:
    def __init__(self) -> None:
        self.adapters = AdaptersMap(adapters)


@pytest.mark.hstore
def test_hstore_registered_on_a_map_only(hstore: TypeInfo) -> None:
    context = AdaptersMapContext()
    register_hstore(hstore, context)
    dumper = context.adapters.find_dumper(dict, PyFormat.AUTO)
    assert dumper is not None and dumper.oid == hstore.oid
    global_dumper = adapters.find_dumper(dict, PyFormat.AUTO)
    assert global_dumper is None or global_dumper.oid != hstore.oid


# Properties, through the server

_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@_settings
@given(
    value=st.dictionaries(_text, st.one_of(st.none(), _text), max_size=6),
    fmt=st.sampled_from(["%s", "%b"]),
    binary=st.booleans(),
)
@pytest.mark.hstore
def test_hypothesis_hstore(
    conn: Any, hstore: TypeInfo, value: dict[str, str | None], fmt: str, binary: bool
) -> None:
    back, keys = one(conn, f"select {fmt}, akeys({fmt})", (value, value), binary=binary)
    assert back == value
    assert sorted(keys) == sorted(value)


@_settings
@given(
    a=st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    b=st.one_of(st.none(), _text),
    binary=st.booleans(),
)
def test_hypothesis_composite(conn: Any, a: int | None, b: str | None, binary: bool) -> None:
    info = CompositeInfo.fetch(conn, "inner_t")
    assert info is not None
    Inner = register_composite(info, conn)
    value = Inner(a, b)
    back, a_back, b_back = one(
        conn, "select %s, (%s::inner_t).a, (%s::inner_t).b", (value, value, value), binary=binary
    )
    assert back == value
    assert (a_back, b_back) == (a, b)
