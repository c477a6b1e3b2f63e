"""Row factories, per connection, cursor and execute, in every flavour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from psycopg3 import rows
from psycopg3.abc import BaseCursor

pytestmark = pytest.mark.anyio


def new_cursor(aconn: Any, row_factory: Any, **kwargs: Any) -> Any:
    # Set as an attribute: the documentation's anyio example has a cursor()
    # without the row_factory parameter (test_cursor_parameter covers it).
    cur = aconn.cursor(**kwargs)
    cur.row_factory = row_factory
    return cur


@dataclass
class Person:
    name: str
    age: int


async def test_default_is_tuple(aconn: Any) -> None:
    cur = await aconn.execute("select 1 as a, 'x' as b")
    row = await cur.fetchone()
    assert type(row) is tuple
    assert row == (1, "x")


async def test_dict_row_per_cursor(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row)
    await cur.execute("select 1 as a, 'x' as b union all select 2, 'y'")
    assert await cur.fetchone() == {"a": 1, "b": "x"}
    assert await cur.fetchall() == [{"a": 2, "b": "y"}]
    # Another cursor of the same connection is not affected.
    other = await aconn.execute("select 1 as a")
    assert await other.fetchone() == (1,)


async def test_cursor_parameter(aconn: Any, flavour: Any) -> None:
    cur = aconn.cursor(row_factory=rows.dict_row)
    assert cur.row_factory is rows.dict_row
    await cur.execute("select 1 as a")
    assert await cur.fetchone() == {"a": 1}


async def test_dict_row_duplicate_names_last_wins(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row)
    await cur.execute("select 1 as a, 2 as a")
    assert await cur.fetchone() == {"a": 2}


async def test_namedtuple_row(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.namedtuple_row)
    await cur.execute('select 1 as id, 2, 3 as "3d", 4 as "with space", 5 as _x')
    row = await cur.fetchone()
    assert row == (1, 2, 3, 4, 5)
    assert row.id == 1
    assert row._fields == ("id", "f_column_", "f3d", "with_space", "f_x")


async def test_namedtuple_class_built_once(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.namedtuple_row)
    await cur.execute("select 1 as a, 2 as b")
    first = await cur.fetchone()
    await cur.execute("select 3 as a, 4 as b")
    second = await cur.fetchone()
    assert type(first) is type(second)
    await cur.execute("select 5 as c")
    assert type(await cur.fetchone()) is not type(first)


async def test_class_row(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.class_row(Person))
    await cur.execute("select 'Ann' as name, 33 as age union all select 'Bob', 44 order by 1")
    assert await cur.fetchall() == [Person("Ann", 33), Person("Bob", 44)]


async def test_class_row_wrong_names(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.class_row(Person))
    await cur.execute("select 'Ann' as nom, 33 as age")
    with pytest.raises(TypeError):
        await cur.fetchone()


async def test_args_and_kwargs_row(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.args_row(lambda a, b: a - b))
    await cur.execute("select 10, 3")
    assert await cur.fetchone() == 7
    cur = new_cursor(aconn, rows.kwargs_row(lambda **kw: sorted(kw.items())))
    await cur.execute("select 10 as b, 3 as a")
    assert await cur.fetchone() == [("a", 3), ("b", 10)]


async def test_per_connection(aconn: Any) -> None:
    aconn.row_factory = rows.dict_row
    cur = await aconn.execute("select 1 as a")
    assert await cur.fetchone() == {"a": 1}
    # A cursor's own factory wins over the connection's.
    cur = aconn.cursor()
    cur.row_factory = rows.tuple_row
    await cur.execute("select 1 as a")
    assert await cur.fetchone() == (1,)


async def test_connect_with_row_factory(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, row_factory=rows.namedtuple_row)
    try:
        assert conn.row_factory is rows.namedtuple_row
        cur = await conn.execute("select 1 as a")
        assert (await cur.fetchone()).a == 1
    finally:
        await conn.close()


async def test_per_execute(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row)
    await cur.execute("select 1 as a", row_factory=rows.namedtuple_row)
    assert (await cur.fetchone()).a == 1
    # The next execute is back to the cursor's factory.
    await cur.execute("select 2 as a")
    assert await cur.fetchone() == {"a": 2}


async def test_setting_cursor_factory_changes_current_result(aconn: Any) -> None:
    cur = await aconn.execute("select 1 as a union all select 2")
    assert await cur.fetchone() == (1,)
    cur.row_factory = rows.dict_row
    assert await cur.fetchone() == {"a": 2}


async def test_fetchmany_and_iteration(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row)
    await cur.execute("select generate_series(1, 5) as n")
    assert await cur.fetchmany(2) == [{"n": 1}, {"n": 2}]
    assert [row async for row in cur] == [{"n": 3}, {"n": 4}, {"n": 5}]


async def test_each_result_gets_its_own_maker(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row)
    await cur.execute("select 1 as a; select 2 as b")
    assert await cur.fetchone() == {"a": 1}
    assert cur.nextset()
    assert await cur.fetchone() == {"b": 2}


async def test_user_factory_called_once_per_result(aconn: Any) -> None:
    calls: list[list[str]] = []

    def upper_dict(cursor: BaseCursor[Any]) -> rows.RowMaker[dict[str, Any]]:
        names = [column.name.upper() for column in cursor.description or ()]
        calls.append(names)

        def make(values: Sequence[Any]) -> dict[str, Any]:
            return dict(zip(names, values))

        return make

    cur = new_cursor(aconn, upper_dict)
    await cur.execute("select generate_series(1, 50) as n, 'x' as s")
    assert len(await cur.fetchall()) == 50
    assert calls == [["N", "S"]]
    await cur.execute("select 1 as z")
    assert await cur.fetchone() == {"Z": 1}
    assert calls == [["N", "S"], ["Z"]]


async def test_factory_not_called_without_rows(aconn: Any) -> None:
    def failing(cursor: BaseCursor[Any]) -> rows.RowMaker[Any]:
        raise AssertionError("called for a result without rows")

    cur = new_cursor(aconn, failing)
    await cur.execute("set timezone to 'UTC'")
    assert cur.description is None


async def test_binary_results_with_dict_row(aconn: Any) -> None:
    cur = new_cursor(aconn, rows.dict_row, binary=True)
    await cur.execute("select 1::int4 as i, 'x'::text as t, %s::numeric as n", (1,))
    assert await cur.fetchone() == {"i": 1, "t": "x", "n": 1}


async def test_server_cursor_row_factory(aconn: Any, flavour: Any) -> None:
    cur = aconn.cursor("rows_c", row_factory=rows.class_row(Person))
    await cur.execute("select 'Ann' as name, 33 as age")
    assert await cur.fetchall() == [Person("Ann", 33)]
    await cur.close()
