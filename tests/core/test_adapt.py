"""Tests of the adaptation machinery: the maps and their levels, the transformer, encodings."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest

from psycopg3 import errors
from psycopg3._encodings import pgconn_encoding, pgconn_py_encoding, py_encoding
from psycopg3._queries import PostgresQuery
from psycopg3.adapt import (
    AdaptersMap,
    Buffer,
    Dumper,
    Loader,
    LoadFunction,
    PyFormat,
    Transformer,
    TypeInfo,
    TypesRegistry,
    adapters,
)
from psycopg3.pq import ExecStatus, Format, PGconn
from psycopg3.types import builtin_types


class Context:
    def __init__(self, adapters_map: AdaptersMap, pgconn: PGconn | None = None):
        self.adapters = adapters_map
        self.pgconn = pgconn


@pytest.fixture
def pgconn(dsn: str) -> Iterator[PGconn]:
    conn = PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


class Point:
    def __init__(self, x: float, y: float):
        self.x, self.y = x, y


class PointDumper(Dumper):
    oid = 600

    def dump(self, obj: Any) -> Buffer:
        return f"({obj.x},{obj.y})".encode()


class PointLoader(Loader):
    def load(self, data: Buffer) -> Any:
        x, y = bytes(data).decode().strip("()").split(",")
        return Point(float(x), float(y))


class UpperLoader(Loader):
    def load(self, data: Buffer) -> Any:
        return bytes(data).decode().upper()


class TaggedStrDumper(Dumper):
    def dump(self, obj: Any) -> Buffer:
        return b"tag:" + obj.encode()


# Levels


def test_child_registration_does_not_leak_up_or_sideways() -> None:
    parent = AdaptersMap(adapters)
    child1 = AdaptersMap(parent)
    child2 = AdaptersMap(parent)
    child1.register_dumper(Point, PointDumper)
    assert child1.find_dumper(Point, PyFormat.AUTO) is PointDumper
    assert parent.find_dumper(Point, PyFormat.AUTO) is None
    assert child2.find_dumper(Point, PyFormat.AUTO) is None
    assert adapters.find_dumper(Point, PyFormat.AUTO) is None


def test_child_loader_does_not_leak() -> None:
    parent = AdaptersMap(adapters)
    child = AdaptersMap(parent)
    child.register_loader("text", UpperLoader)
    assert child.get_loader(25, Format.TEXT) is UpperLoader
    assert parent.get_loader(25, Format.TEXT) is not UpperLoader
    assert adapters.get_loader(25, Format.TEXT) is not UpperLoader


def test_child_is_a_snapshot_of_parent() -> None:
    parent = AdaptersMap(adapters)
    child_before = AdaptersMap(parent)
    parent.register_dumper(Point, PointDumper)
    child_after = AdaptersMap(parent)
    assert parent.find_dumper(Point, PyFormat.AUTO) is PointDumper
    assert child_after.find_dumper(Point, PyFormat.AUTO) is PointDumper
    assert child_before.find_dumper(Point, PyFormat.AUTO) is None


def test_child_inherits_parent_registrations() -> None:
    parent = AdaptersMap(adapters)
    parent.register_loader(600, PointLoader)
    grandchild = AdaptersMap(AdaptersMap(parent))
    assert grandchild.get_loader(600, Format.TEXT) is PointLoader
    assert grandchild.find_dumper(int, PyFormat.AUTO) is adapters.find_dumper(int, PyFormat.AUTO)


def test_types_registry_levels() -> None:
    parent = AdaptersMap(adapters)
    child = AdaptersMap(parent)
    child.types.add(TypeInfo("mytype", 99999, 99998))
    assert child.types.get("mytype") is not None
    assert parent.types.get("mytype") is None
    assert adapters.types.get(99999) is None
    child.register_loader("mytype", UpperLoader)
    assert child.get_loader(99999, Format.TEXT) is UpperLoader


def test_empty_map_has_nothing() -> None:
    empty = AdaptersMap()
    assert empty.find_dumper(int, PyFormat.AUTO) is None
    assert empty.get_loader(23, Format.TEXT) is None
    with pytest.raises(errors.ProgrammingError, match="cannot adapt type 'int'"):
        empty.get_dumper(int, PyFormat.AUTO)


# Lookup


def test_mro_lookup() -> None:
    class MyInt(int):
        pass

    class Color(enum.IntEnum):
        RED = 1

    tx = Transformer()
    tx.dump_sequence([MyInt(42), Color.RED], [PyFormat.AUTO] * 2)
    assert tx.values == [b"42", b"1"]
    assert tx.types == [23, 23]


def test_bool_is_not_dumped_as_int() -> None:
    tx = Transformer()
    tx.dump_sequence([True, False, 1], [PyFormat.AUTO] * 3)
    assert tx.values == [b"t", b"f", b"1"]
    assert tx.types == [16, 16, 23]


def test_register_by_name_without_importing() -> None:
    amap = AdaptersMap(adapters)
    amap.register_dumper(f"{__name__}.Point", PointDumper)
    assert amap.find_dumper(Point, PyFormat.AUTO) is PointDumper
    assert amap.find_dumper(Point, PyFormat.TEXT) is PointDumper
    assert amap.find_dumper(Point, PyFormat.BINARY) is None
    assert adapters.find_dumper(Point, PyFormat.AUTO) is None


def test_register_loader_unknown_name() -> None:
    with pytest.raises(errors.ProgrammingError, match="unknown PostgreSQL type name: 'nope'"):
        AdaptersMap(adapters).register_loader("nope", UpperLoader)


def test_register_wrong_key_types() -> None:
    amap = AdaptersMap(adapters)
    with pytest.raises(TypeError):
        amap.register_dumper(42, PointDumper)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        amap.register_loader(2.5, UpperLoader)  # type: ignore[arg-type]


def test_last_registered_is_auto() -> None:
    amap = AdaptersMap(adapters)
    tx = Transformer(Context(amap))
    tx.dump_sequence([b"x"], [PyFormat.AUTO])
    assert tx.formats == [Format.BINARY]
    amap.register_dumper(str, TaggedStrDumper)
    tx = Transformer(Context(amap))
    tx.dump_sequence(["x", "y"], [PyFormat.AUTO, PyFormat.BINARY])
    assert tx.values == [b"tag:x", b"y"]
    assert tx.types == [0, 25]


def test_cannot_adapt_names_parameter() -> None:
    tx = Transformer()
    with pytest.raises(errors.ProgrammingError) as excinfo:
        tx.dump_sequence([1, Point(1, 2)], [PyFormat.AUTO] * 2)
    msg = str(excinfo.value)
    assert "cannot adapt type 'Point' (parameter $2)" in msg
    assert "no dumper registered" in msg


def test_cannot_adapt_suggests_other_format() -> None:
    amap = AdaptersMap(adapters)
    amap.register_dumper(Point, PointDumper)
    with pytest.raises(errors.ProgrammingError) as excinfo:
        Transformer(Context(amap)).dump_sequence([Point(1, 2)], [PyFormat.BINARY])
    assert "(placeholder %b); one exists for %t" in str(excinfo.value)


# Transformer


def test_dumper_cached_per_type() -> None:
    tx = Transformer()
    d1 = tx.get_dumper("a", PyFormat.AUTO)
    d2 = tx.get_dumper("b", PyFormat.AUTO)
    assert d1 is d2
    assert tx.get_dumper(1, PyFormat.AUTO) is tx.get_dumper(2, PyFormat.AUTO)
    assert tx.get_dumper(2**40, PyFormat.AUTO) is tx.get_dumper(2**41, PyFormat.AUTO)
    assert tx.get_dumper(2**40, PyFormat.AUTO) is not tx.get_dumper(1, PyFormat.AUTO)
    assert tx.get_dumper(1, PyFormat.AUTO) is not Transformer().get_dumper(1, PyFormat.AUTO)


def test_loader_cached_per_oid_and_format() -> None:
    tx = Transformer()
    loader = tx.get_loader(23, Format.TEXT)
    assert loader is not None
    assert loader is tx.get_loader(23, Format.TEXT)
    assert loader is not tx.get_loader(23, Format.BINARY)


def test_unknown_oid_fallbacks() -> None:
    tx = Transformer()
    text = tx.get_loader(123456, Format.TEXT)
    binary = tx.get_loader(123456, Format.BINARY)
    assert text is not None and text.load(b"caf\xc3\xa9") == "café"
    assert binary is not None and binary.load(b"\x00\x01") == b"\x00\x01"
    assert Transformer(Context(AdaptersMap())).get_loader(23, Format.TEXT) is None


def test_none_is_null_without_dumper() -> None:
    tx = Transformer(Context(AdaptersMap()))  # no dumper at all
    tx.dump_sequence([None, None], [PyFormat.AUTO, PyFormat.BINARY])
    assert tx.values == [None, None]
    assert tx.types == [0, 0]
    assert tx.formats == [Format.TEXT, Format.TEXT]


def test_load_sequence() -> None:
    tx = Transformer()
    tx.set_loader_types([23, 25, 16], Format.TEXT)
    assert tx.load_sequence([b"12", None, b"t"]) == (12, None, True)
    with pytest.raises(errors.ProgrammingError):
        tx.load_sequence([b"1"])


def test_load_without_result() -> None:
    tx = Transformer()
    assert tx.load_row(0) is None
    with pytest.raises(errors.InterfaceError):
        tx.load_rows(0, 1)


def test_dumper_and_loader_repr() -> None:
    tx = Transformer()
    assert "oid=23" in repr(tx.get_dumper(1, PyFormat.AUTO))
    assert "oid=16" in repr(tx.get_loader(16, Format.BINARY))
    assert "UTF8" in repr(tx)
    assert "dumpers" in repr(adapters)


# Real server


def run(pgconn: PGconn, amap: AdaptersMap, query: str, params: Any, fmt: Format) -> list[Any]:
    tx = Transformer(Context(amap, pgconn))
    pq = PostgresQuery(tx)
    pq.convert(query, params)
    res = pgconn.exec_params(pq.query, pq.params, pq.types, pq.formats, fmt)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    tx.set_pgresult(res)
    assert tx.load_row(res.ntuples) is None
    return tx.load_rows(0, res.ntuples)


def test_custom_type_round_trip(pgconn: PGconn) -> None:
    amap = AdaptersMap(adapters)
    amap.register_dumper(Point, PointDumper)
    amap.register_loader("point", PointLoader)
    [(point, typ)] = run(
        pgconn, amap, "select %s, pg_typeof(%s)::text", (Point(1.5, -2), Point(0, 0)), Format.TEXT
    )
    assert (point.x, point.y) == (1.5, -2.0)
    assert typ == "point"


def test_loaders_chosen_per_result(pgconn: PGconn) -> None:
    amap = AdaptersMap(adapters)
    amap.register_loader("text", UpperLoader)
    assert run(pgconn, amap, "select 'abc'::text, 'abc'::varchar", (), Format.TEXT) == [
        ("ABC", "abc")
    ]
    assert run(pgconn, adapters, "select 'abc'::text", (), Format.TEXT) == [("abc",)]


def test_load_rows_ranges(pgconn: PGconn) -> None:
    tx = Transformer(Context(adapters, pgconn))
    res = pgconn.exec_(b"select g, g::text from generate_series(1, 5) g")
    tx.set_pgresult(res)
    assert tx.load_rows(1, 3) == [(2, "2"), (3, "3")]
    assert tx.load_rows(2, 2) == []
    assert tx.load_row(4) == (5, "5")
    with pytest.raises(IndexError):
        tx.load_rows(3, 6)
    res2 = pgconn.exec_(b"select 42, 'x'")
    tx.set_pgresult(res2, set_loaders=False)
    assert tx.load_row(0) == (42, "x")
    tx.set_pgresult(None)
    assert tx.load_row(0) is None


def test_forced_format(pgconn: PGconn) -> None:
    tx = Transformer(Context(adapters, pgconn))
    res = pgconn.exec_(b"select 'x'::text")
    tx.set_pgresult(res, format=Format.BINARY)
    assert tx.load_row(0) == ("x",)


class FastIntLoader(Loader):
    def load(self, data: Buffer) -> Any:
        return int(bytes(data)) * 10

    def load_function(self) -> LoadFunction:
        return lambda data: int(data) * 100


def test_load_function_is_used_by_row_loop(pgconn: PGconn) -> None:
    amap = AdaptersMap(adapters)
    amap.register_loader("int4", FastIntLoader)
    assert run(pgconn, amap, "select 2", (), Format.TEXT) == [(200,)]


# Encodings


@pytest.mark.parametrize(
    "pgname, codec",
    [
        ("UTF8", "utf-8"),
        ("unicode", "utf-8"),
        ("LATIN1", "iso8859-1"),
        ("latin9", "iso8859-15"),
        ("ISO_8859_5", "iso8859-5"),
        ("WIN1252", "cp1252"),
        ("EUC_JP", "euc_jp"),
        ("SJIS", "shift_jis"),
        ("UHC", "cp949"),
        (b"KOI8R", "koi8-r"),
    ],
)
def test_py_encoding(pgname: str | bytes, codec: str) -> None:
    assert py_encoding(pgname).python_codec == codec
    assert py_encoding(pgname).errors == "strict"


def test_sql_ascii_and_unsupported() -> None:
    enc = py_encoding("SQL_ASCII")
    assert (enc.codec, enc.errors) == ("utf-8", "surrogateescape")
    # No Python codec: ASCII only (see _encodings rule 3).
    codec = py_encoding("EUC_TW").python_codec
    assert "abc".encode(codec) == b"abc"
    with pytest.raises(errors.NotSupportedError, match="EUC_TW"):
        "é".encode(codec)
    with pytest.raises(errors.NotSupportedError, match="unknown PostgreSQL encoding"):
        py_encoding("KLINGON")


def test_pgconn_encoding(pgconn: PGconn) -> None:
    assert pgconn_encoding(None) == "utf-8"
    pgconn.exec_(b"set client_encoding to 'WIN1251'")
    assert pgconn_encoding(pgconn) == "cp1251"
    assert pgconn_py_encoding(pgconn).pgname == "WIN1251"


@pytest.mark.parametrize("pgenc", ["LATIN1", "WIN1252", "UTF8", "EUC_JP"])
def test_text_round_trip_in_client_encoding(pgconn: PGconn, pgenc: str) -> None:
    pgconn.exec_(f"set client_encoding to '{pgenc}'".encode())
    text = {"EUC_JP": "日本語", "UTF8": "héllo ☃"}.get(pgenc, "héllo")
    rows = run(pgconn, adapters, "select %s::text, %s::text = %s", (text, text, text), Format.TEXT)
    assert rows == [(text, True)]


def test_sql_ascii_bytes_survive(pgconn: PGconn) -> None:
    pgconn.exec_(b"set client_encoding to 'SQL_ASCII'")
    tx = Transformer(Context(adapters, pgconn))
    assert tx.encoding.pgname == "SQL_ASCII"
    text = "h\udce9llo"  # a LATIN1 byte that is not UTF-8
    pq = PostgresQuery(tx)
    pq.convert("select %s::bytea", (text,))
    assert pq.params == [b"h\xe9llo"]


def test_types_registry() -> None:
    reg = builtin_types()
    assert reg["int4"].oid == 23
    assert reg["integer"] is reg["int4"]
    assert reg.get_oid("int4[]") == 1007
    assert reg.get_oid("timestamp with time zone") == 1184
    assert reg[3802].name == "jsonb"
    assert "uuid" in reg and 2950 in reg
    assert reg.get("nope") is None
    with pytest.raises(KeyError):
        reg["nope"]
    names = {info.name for info in reg}
    for name in ("json", "jsonb", "uuid", "date", "time", "timestamp", "timestamptz"):
        assert name in names
    child = TypesRegistry(reg)
    child.add(TypeInfo("thing", 70000, 0))
    assert "thing" in child and "thing" not in reg
