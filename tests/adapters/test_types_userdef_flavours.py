"""Fetching type infos and using registered user types, in every adapter flavour."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import psycopg3_sync
from psycopg3.adapt import TypeInfo
from psycopg3.types.composite import CompositeInfo, register_composite
from psycopg3.types.enum import EnumInfo, register_enum
from psycopg3.types.hstore import register_hstore
from psycopg3.types.range import Multirange, Range, RangeInfo, register_range

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def user_types(dsn: str) -> Iterator[None]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "drop schema if exists ud_flavours cascade; create schema ud_flavours;"
            " create type ud_flavours.mood as enum ('sad', 'ok');"
            " create type ud_flavours.pair as (k text, v int);"
            " create type ud_flavours.floatrange as range (subtype = float8)"
        )
        yield
        conn.execute("drop schema ud_flavours cascade")


async def fetch(flavour: Any, aconn: Any, cls: type[TypeInfo], name: str) -> Any:
    """Call ``cls.fetch`` as each flavour's user would: plain, or awaited."""
    if flavour.is_sync:
        result = cls.fetch(aconn.target, name)
        assert not inspect.isawaitable(result)
        return result
    pending = cls.fetch(aconn, name)
    assert inspect.isawaitable(pending)
    return await pending


async def test_fetch_every_kind(flavour: Any, aconn: Any, user_types: None) -> None:
    info = await fetch(flavour, aconn, TypeInfo, "ud_flavours.mood")
    assert type(info) is TypeInfo and info.name == "mood" and info.array_oid
    enum_info = await fetch(flavour, aconn, EnumInfo, "ud_flavours.mood")
    assert enum_info.oid == info.oid and enum_info.labels == ["sad", "ok"]
    pair = await fetch(flavour, aconn, CompositeInfo, "ud_flavours.pair")
    assert pair.field_names == ["k", "v"] and pair.field_types == [25, 23]
    floatrange = await fetch(flavour, aconn, RangeInfo, "ud_flavours.floatrange")
    assert floatrange.subtype_oid == 701 and floatrange.multirange_oid
    assert await fetch(flavour, aconn, TypeInfo, "ud_flavours.nothing") is None


async def test_registered_types_load_and_dump(flavour: Any, aconn: Any, user_types: None) -> None:
    enum_info = await fetch(flavour, aconn, EnumInfo, "ud_flavours.mood")
    pair_info = await fetch(flavour, aconn, CompositeInfo, "ud_flavours.pair")
    range_info = await fetch(flavour, aconn, RangeInfo, "ud_flavours.floatrange")
    target = aconn.target if flavour.is_sync else aconn
    Mood = register_enum(enum_info, target)
    Pair = register_composite(pair_info, target)
    register_range(range_info, target)
    for binary in (False, True):
        cur = await aconn.execute(
            "select 'ok'::ud_flavours.mood, row('a b', 1)::ud_flavours.pair,"
            " '[1.5,2)'::ud_flavours.floatrange, '{[1,2)}'::ud_flavours.floatmultirange,"
            " array['sad']::ud_flavours.mood[]",
            binary=binary,
        )
        assert await cur.fetchone() == (
            Mood.ok,
            Pair("a b", 1),
            Range(1.5, 2.0),
            Multirange([Range(1.0, 2.0)]),
            [Mood.sad],
        )
    cur = await aconn.execute(
        "select pg_typeof(%s)::text, pg_typeof(%s)::text, pg_typeof(%b)::text",
        (Mood.sad, Pair("x", 2), Range(0.5, None)),
    )
    assert await cur.fetchone() == (
        "ud_flavours.mood",
        "ud_flavours.pair",
        "ud_flavours.floatrange",
    )


@pytest.mark.hstore
async def test_hstore_registered(flavour: Any, aconn: Any, hstore_extension: None) -> None:
    hstore_info = await fetch(flavour, aconn, TypeInfo, "hstore")
    register_hstore(hstore_info, aconn.target if flavour.is_sync else aconn)
    for binary in (False, True):
        cur = await aconn.execute("select 'k=>v'::hstore", binary=binary)
        assert await cur.fetchone() == ({"k": "v"},)
    cur = await aconn.execute("select %s::text", ({"a": None},))
    assert await cur.fetchone() == ('"a"=>NULL',)
