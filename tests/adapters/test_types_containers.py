"""Arrays, uuid, json and network values through every flavour."""

from __future__ import annotations

import uuid
from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import pytest

from psycopg3 import errors
from psycopg3.types.json import Json, Jsonb, set_json_loads

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("binary", [False, True])
async def test_arrays(aconn: Any, binary: bool) -> None:
    cur = aconn.cursor(binary=binary)
    await cur.execute(
        "select %s, %b, %s::int8[], 3 = any(%s), array_length(%s, 1)",
        (
            [[1, None], [3, 4]],
            ["a b", "", None, 'q"'],
            [],
            [1, 2, 3],
            [10**10, 1, 2],
        ),
    )
    assert await cur.fetchone() == ([[1, None], [3, 4]], ["a b", "", None, 'q"'], [], True, 3)


async def test_array_column_any(aconn: Any) -> None:
    await aconn.execute("create temp table ids (id int8)")
    await aconn.execute("insert into ids select generate_series(1, 5)")
    cur = await aconn.execute("select id from ids where id = any(%s) order by id", ([4, 2, 9],))
    assert await cur.fetchall() == [(2,), (4,)]


async def test_ragged_array_then_next_query(aconn: Any) -> None:
    with pytest.raises(errors.DataError, match="different lengths"):
        await aconn.execute("select %s", ([[1, 2], [3]],))
    cur = await aconn.execute("select %s", ([[1, 2], [3, 4]],))
    assert await cur.fetchone() == ([[1, 2], [3, 4]],)


@pytest.mark.parametrize("binary", [False, True])
async def test_uuid_json_net(aconn: Any, binary: bool) -> None:
    values = (
        uuid.UUID(int=42),
        Json({"a": [1, None]}),
        Jsonb(["x", 1.5]),
        ip_address("10.0.0.1"),
        ip_interface("2001:db8::1/64"),
        ip_network("10.0.0.0/8"),
        [uuid.UUID(int=1), None],
        [Jsonb({"k": "v"})],
        [ip_address("::1"), ip_network("1.2.3.0/24").network_address],
    )
    cur = await aconn.execute("select " + ", ".join(["%s"] * len(values)), values, binary=binary)
    assert await cur.fetchone() == (
        uuid.UUID(int=42),
        {"a": [1, None]},
        ["x", 1.5],
        ip_address("10.0.0.1"),
        ip_interface("2001:db8::1/64"),
        ip_network("10.0.0.0/8"),
        [uuid.UUID(int=1), None],
        [{"k": "v"}],
        [ip_address("::1"), ip_address("1.2.3.0")],
    )


async def test_json_loads_per_connection(aconn: Any) -> None:
    set_json_loads(lambda data: ("custom", data), context=aconn)
    cur = await aconn.execute("select '[1]'::jsonb, array['{}'::json]")
    assert await cur.fetchone() == (("custom", "[1]"), [("custom", "{}")])
