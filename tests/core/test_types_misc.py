"""Tests of the uuid, json/jsonb and inet/cidr adapters, through the server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3
import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import PyFormat, Transformer
from psycopg3.pq import Format
from psycopg3.types import json as json_types
from psycopg3.types.json import Json, Jsonb, set_json_dumps, set_json_loads

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FORMATS = ["s", "t", "b"]


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


def one(conn: Any, query: str, params: Any = (), binary: bool = False) -> Any:
    row = conn.execute(query, params, binary=binary).fetchone()
    assert row is not None
    return row[0]


def dump(obj: Any, fmt: PyFormat = PyFormat.AUTO) -> tuple[bytes | None, int, Format]:
    tx = Transformer()
    tx.dump_sequence([obj], [fmt])
    return tx.values[0], tx.types[0], tx.formats[0]


# uuid

U = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")


def test_uuid_dump() -> None:
    assert dump(U) == (b"12345678-9abc-def0-1234-56789abcdef0", 2950, Format.TEXT)
    assert dump(U, PyFormat.BINARY) == (U.bytes, 2950, Format.BINARY)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_uuid_round_trip(conn: psycopg3_sync.Connection, fmt: str, binary: bool) -> None:
    assert one(conn, f"select %{fmt}", [U], binary) == U
    assert one(conn, f"select %{fmt} = '{U}'::uuid", [U]) is True
    assert one(conn, f"select pg_typeof(%{fmt})::text", [U]) == "uuid"
    assert one(conn, "select '{12345678-9ABC-DEF0-1234-56789ABCDEF0}'::uuid", (), binary) == U


@PROPERTY
@given(value=st.uuids(), fmt=st.sampled_from(FORMATS), binary=st.booleans())
def test_uuid_property(
    conn: psycopg3_sync.Connection, value: uuid.UUID, fmt: str, binary: bool
) -> None:
    assert one(conn, f"select %{fmt}", [value], binary) == value
    assert one(conn, f"select %{fmt}::text", [value]) == str(value)


# json

JSON_VALUES: list[Any] = [
    {"a": [1, 2.5, None, True], "b": {"c": "d"}},
    [],
    'a string with "quotes" and é€😀',
    12345678901234567890,
    None,
]


@pytest.mark.parametrize(
    "wrapper, fmt, oid, prefix",
    [
        (Json, PyFormat.AUTO, 114, b""),
        (Json, PyFormat.BINARY, 114, b""),
        (Jsonb, PyFormat.AUTO, 3802, b""),
        (Jsonb, PyFormat.BINARY, 3802, b"\x01"),
    ],
)
def test_json_dump(wrapper: type, fmt: PyFormat, oid: int, prefix: bytes) -> None:
    data, got_oid, got_format = dump(wrapper({"a": [1, None]}), fmt)
    assert data == prefix + b'{"a": [1, null]}'
    assert got_oid == oid
    assert got_format == (Format.BINARY if fmt is PyFormat.BINARY else Format.TEXT)


@pytest.mark.parametrize("value", JSON_VALUES)
@pytest.mark.parametrize("wrapper", [Json, Jsonb])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_json_round_trip(
    conn: psycopg3_sync.Connection, value: Any, wrapper: type, fmt: str, binary: bool
) -> None:
    assert one(conn, f"select %{fmt}", [wrapper(value)], binary) == value
    typname = "json" if wrapper is Json else "jsonb"
    assert one(conn, f"select pg_typeof(%{fmt})::text", [wrapper(value)]) == typname
    # The server parsed what we sent into the same value.
    literal = json.dumps(value)
    assert one(conn, f"select %{fmt}::jsonb = %s::jsonb", [wrapper(value), literal]) is True


@pytest.mark.parametrize("binary", [False, True])
def test_json_server_values(conn: psycopg3_sync.Connection, binary: bool) -> None:
    row = conn.execute(
        """select '{"a": 1.5}'::json, '[1, "x", null]'::jsonb, 'null'::jsonb,"""
        """ '{"k": "é"}'::jsonb -> 'k', %s::jsonb -> 'a' -> 1""",
        [Jsonb({"a": [0, {"b": 2}]})],
        binary=binary,
    ).fetchone()
    assert row == ({"a": 1.5}, [1, "x", None], None, "é", {"b": 2})


def test_json_dumps_per_object(conn: psycopg3_sync.Connection) -> None:
    def dumps(obj: Any) -> str:
        return json.dumps(obj, default=str)

    assert one(conn, "select %s", [Json({"d": Decimal("1.5")}, dumps=dumps)]) == {"d": "1.5"}
    with pytest.raises(errors.DataError, match="json"):
        conn.execute("select %s", [Json({"d": Decimal("1.5")})])
    assert one(conn, "select 1") == 1


def test_set_json_per_connection_and_cursor(dsn: str) -> None:
    def upper_loads(data: str) -> Any:
        return ("loaded", json.loads(data))

    def bytes_dumps(obj: Any) -> bytes:
        return json.dumps({"wrapped": obj}).encode()

    with psycopg3_sync.connect(dsn) as conn, psycopg3_sync.connect(dsn) as other:
        set_json_loads(upper_loads, context=conn)
        set_json_dumps(bytes_dumps, context=conn)
        for binary in (False, True):
            assert one(conn, "select '[1]'::json", (), binary) == ("loaded", [1])
            assert one(conn, "select '[1]'::jsonb", (), binary) == ("loaded", [1])
            assert one(conn, "select %s::text", [Jsonb(1)], binary) == '{"wrapped": 1}'
            assert one(other, "select '[1]'::jsonb", (), binary) == [1]
            assert one(other, "select %s::text", [Json(1)], binary) == "1"

        cur = other.cursor()
        set_json_loads(lambda data: "cursor", context=cur)
        cur.execute("select '[1]'::jsonb")
        assert cur.fetchone() == ("cursor",)
        assert one(other, "select '[1]'::jsonb") == [1]


def test_set_json_global(dsn: str) -> None:
    with psycopg3_sync.connect(dsn) as before:
        set_json_loads(lambda data: "global")
        try:
            with psycopg3_sync.connect(dsn) as after:
                assert one(after, "select '{}'::json") == "global"
                assert one(after, "select '[]'::jsonb", (), True) == "global"
            # Connections take a snapshot of the global adapters when made.
            assert one(before, "select '{}'::json") == {}
        finally:
            json_types.register_default_adapters(psycopg3.adapters)
    with psycopg3_sync.connect(dsn) as restored:
        assert one(restored, "select '{}'::json") == {}


def test_jsonb_binary_version_checked() -> None:
    loader = Transformer().get_loader(3802, Format.BINARY)
    assert loader is not None
    load = loader.load_function()
    assert load(b'\x01{"a": 1}') == {"a": 1}
    with pytest.raises(errors.DataError, match="version"):
        load(b'\x02{"a": 1}')


def test_json_repr() -> None:
    assert repr(Json([1])) == "Json([1])"
    assert repr(Jsonb({"a": 1})) == "Jsonb({'a': 1})"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    # Within this range numeric (jsonb) prints the digits that repr() wrote.
    | st.floats(-1e15, 1e15)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@PROPERTY
@given(
    value=json_values,
    wrapper=st.sampled_from([Json, Jsonb]),
    fmt=st.sampled_from(FORMATS),
    binary=st.booleans(),
)
def test_json_property(
    conn: psycopg3_sync.Connection, value: Any, wrapper: type, fmt: str, binary: bool
) -> None:
    assert one(conn, f"select %{fmt}", [wrapper(value)], binary) == value
    assert one(conn, f"select %{fmt}::jsonb = %s::jsonb", [wrapper(value), json.dumps(value)])


# inet / cidr

NET_VALUES: list[tuple[Any, str, str]] = [
    (ip_address("192.168.0.1"), "inet", "192.168.0.1"),
    (ip_address("::ffff:1.2.3.4"), "inet", "::ffff:1.2.3.4"),
    (ip_address("2001:db8::1"), "inet", "2001:db8::1"),
    (ip_interface("192.168.0.1/24"), "inet", "192.168.0.1/24"),
    (ip_interface("2001:db8::1/64"), "inet", "2001:db8::1/64"),
    (ip_interface("10.0.0.0/0"), "inet", "10.0.0.0/0"),
    (ip_network("192.168.0.0/24"), "cidr", "192.168.0.0/24"),
    (ip_network("10.1.2.3/32"), "cidr", "10.1.2.3/32"),
    (ip_network("2001:db8::/32"), "cidr", "2001:db8::/32"),
    (ip_network("::/0"), "cidr", "::/0"),
]


@pytest.mark.parametrize("value, typname, text", NET_VALUES, ids=[t for _, _, t in NET_VALUES])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("binary", [False, True])
def test_net_round_trip(
    conn: psycopg3_sync.Connection, value: Any, typname: str, text: str, fmt: str, binary: bool
) -> None:
    got = one(conn, f"select %{fmt}", [value], binary)
    assert got == value
    assert type(got) is type(value)
    assert one(conn, f"select pg_typeof(%{fmt})::text", [value]) == typname
    assert one(conn, f"select %{fmt} = '{text}'::{typname}", [value]) is True


@pytest.mark.parametrize("binary", [False, True])
def test_net_load_classes(conn: psycopg3_sync.Connection, binary: bool) -> None:
    row = conn.execute(
        "select '1.2.3.4'::inet, '1.2.3.4/32'::inet, '1.2.3.4/31'::inet, '::1/128'::inet,"
        " '::1/127'::inet, '1.2.3.0/24'::cidr, '::/0'::cidr",
        binary=binary,
    ).fetchone()
    assert row is not None
    assert [type(v) for v in row] == [
        IPv4Address,
        IPv4Address,
        IPv4Interface,
        IPv6Address,
        IPv6Interface,
        IPv4Network,
        IPv6Network,
    ]
    assert row[2] == ip_interface("1.2.3.4/31")


def test_net_binary_dump() -> None:
    assert dump(ip_address("1.2.3.4"), PyFormat.BINARY)[0] == b"\x02\x20\x00\x04\x01\x02\x03\x04"
    data = dump(ip_interface("::1/64"), PyFormat.BINARY)[0]
    assert data == b"\x03\x40\x00\x10" + bytes(15) + b"\x01"
    assert dump(ip_network("10.0.0.0/8"), PyFormat.BINARY)[0] == b"\x02\x08\x01\x04\x0a\x00\x00\x00"


def test_net_server_functions(conn: psycopg3_sync.Connection) -> None:
    row = conn.execute(
        "select family(%s), masklen(%s), host(%s), %s >> %s",
        [
            ip_address("::1"),
            ip_interface("10.0.0.1/12"),
            ip_interface("10.0.0.1/12"),
            ip_network("10.0.0.0/8"),
            ip_address("10.2.3.4"),
        ],
    ).fetchone()
    assert row == (6, 12, "10.0.0.1", True)


@PROPERTY
@given(
    value=st.ip_addresses()
    | st.builds(lambda a, bits: ip_interface((a, bits)), st.ip_addresses(v=4), st.integers(0, 32))
    | st.ip_addresses(v=6).flatmap(
        lambda a: st.integers(0, 128).map(lambda bits: ip_network((a, bits), strict=False))
    ),
    fmt=st.sampled_from(FORMATS),
    binary=st.booleans(),
)
def test_net_property(conn: psycopg3_sync.Connection, value: Any, fmt: str, binary: bool) -> None:
    got = one(conn, f"select %{fmt}", [value], binary)
    # An Interface with a full mask comes back as the Address (the server drops /32).
    if (
        isinstance(value, (IPv4Interface, IPv6Interface))
        and value.network.prefixlen == value.max_prefixlen
    ):
        assert got == value.ip
    else:
        assert got == value
    typname = "cidr" if isinstance(value, (IPv4Network, IPv6Network)) else "inet"
    assert one(conn, f"select %{fmt} = %s::{typname}", [value, str(value)]) is True
    assert one(conn, f"select masklen(%{fmt})", [value]) == (
        value.prefixlen
        if isinstance(value, (IPv4Network, IPv6Network))
        else value.network.prefixlen
        if isinstance(value, (IPv4Interface, IPv6Interface))
        else value.max_prefixlen
    )


def test_ipv6_interface_is_not_an_address_dumper() -> None:
    # IPv6Interface subclasses IPv6Address: it must keep its mask.
    assert dump(IPv6Interface("::1/64"))[0] == b"::1/64"
    assert dump(IPv6Address("::1"))[0] == b"::1"
