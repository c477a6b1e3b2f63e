"""Issue 14, case 11: every error a user can provoke is a DB-API error that says what to do.

One table of bad calls on the public entry points, run in every flavour:
each must raise a ``psycopg3.Error`` subclass (never a bare ``TypeError``,
``ValueError``, ``AttributeError``, ``RecursionError``, ``struct.error``...)
whose message names what was wrong, before anything is sent, and leave the
connection usable and its transaction state unchanged.

The decision on Python's conventions (``psycopg3._arguments``, rule 1): a
call with a wrong *signature* (an unknown keyword) stays Python's own
``TypeError``; an argument of the wrong type or value for a documented
parameter is a ``ProgrammingError`` that is also a ``TypeError`` or
``ValueError``, so code catching either keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import psycopg3
from fix_wait import await_until
from psycopg3 import errors, sql
from psycopg3.pq import TransactionStatus
from psycopg3.types.json import Json

pytestmark = pytest.mark.anyio

PE, DE = errors.ProgrammingError, errors.DataError

_selfref_list: list[Any] = [1]
_selfref_list.append(_selfref_list)
_selfref_nested: list[Any] = []
_selfref_nested.append(_selfref_nested)
_selfref_dict: dict[str, Any] = {}
_selfref_dict["a"] = _selfref_dict


async def _execute(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> None:
    cur = await conn.execute(query, params, **kwargs)
    await cur.fetchall()


async def _executemany(conn: Any, query: Any, params_seq: Any) -> None:
    await conn.cursor().executemany(query, params_seq)


async def _fetched(conn: Any) -> Any:
    cur = await conn.execute("select generate_series(1, 3)")
    await conn.rollback()  # the rows stay: the table checks the state is IDLE
    return cur


async def _fetchmany(conn: Any, size: Any) -> None:
    await (await _fetched(conn)).fetchmany(size)


async def _scroll(conn: Any, value: Any) -> None:
    await (await _fetched(conn)).scroll(value)


async def _cursor_execute(conn: Any, **kwargs: Any) -> None:
    await conn.cursor().execute("select 1", **kwargs)


async def _set(obj: Any, name: str, value: Any) -> None:
    setattr(obj, name, value)


async def _notifies(conn: Any, **kwargs: Any) -> None:
    async for _ in conn.notifies(**kwargs):
        pass


async def _enter(block: Any) -> None:
    async with block:
        pass


async def _copy(conn: Any, statement: Any) -> None:
    async with conn.cursor().copy(statement):
        pass


#: (id, the bad call, the error class, a regex its message must match).
CASES: list[tuple[str, Callable[[Any], Awaitable[Any]], type[Exception], str]] = [
    # The query.
    (
        "query-None",
        lambda c: _execute(c, None),
        PE,
        r"the query must be a str, bytes or .*Composable, got None",
    ),
    ("query-int", lambda c: _execute(c, 42, (1,)), PE, r"the query must be .* got 42 \(int\)"),
    (
        "query-bytearray",
        lambda c: _execute(c, bytearray(b"select 1")),
        PE,
        r"the query must be .*bytearray",
    ),
    ("query-NUL", lambda c: _execute(c, "select 1\x00"), DE, r"NUL"),
    (
        "query-lone-surrogate",
        lambda c: _execute(c, "select '\ud800'"),
        DE,
        r"cannot encode '\\ud800' \(character 8 of the query\) in the client encoding",
    ),
    (
        "query-lone-surrogate-with-params",
        lambda c: _execute(c, "select '\udfff', %s", (1,)),
        DE,
        r"cannot encode '\\udfff' \(character 8 of the query\)",
    ),
    (
        "savepoint-name-int",
        lambda c: _enter(c.transaction(savepoint_name=3)),
        PE,
        r"transaction\(\) savepoint_name must be a str, got 3",
    ),
    ("copy-statement-int", lambda c: _copy(c, 3), PE, r"copy\(\) statement must be a str"),
    # The parameters' container and shape.
    ("params-int", lambda c: _execute(c, "select %s", 1), PE, r"sequence or a mapping, not int"),
    ("params-str", lambda c: _execute(c, "select %s", "ab"), PE, r"one-item tuple"),
    ("params-set", lambda c: _execute(c, "select %s", {1}), PE, r"sequence or a mapping, not set"),
    (
        "params-too-many",
        lambda c: _execute(c, "select %s", (1, 2)),
        PE,
        r"1 placeholder but 2 parameters",
    ),
    (
        "params-too-few",
        lambda c: _execute(c, "select %s, %s", (1,)),
        PE,
        r"2 placeholders but 1 parameter",
    ),
    (
        "params-mapping-for-%s",
        lambda c: _execute(c, "select %s", {"a": 1}),
        PE,
        r"positional placeholders",
    ),
    ("params-missing-name", lambda c: _execute(c, "select %(a)s", {"b": 1}), PE, r"missing: 'a'"),
    (
        "placeholder-bad",
        lambda c: _execute(c, "select %x", (1,)),
        PE,
        r"unsupported placeholder '%x'",
    ),
    # The parameters' values.
    (
        "value-unadaptable",
        lambda c: _execute(c, "select %s", (object(),)),
        PE,
        r"cannot adapt type 'object' \(parameter \$1\)",
    ),
    (
        "value-dict",
        lambda c: _execute(c, "select %s", ({"a": 1},)),
        PE,
        r"cannot adapt type 'dict'",
    ),
    ("value-str-NUL", lambda c: _execute(c, "select %s", ("a\x00b",)), DE, r"parameter \$1: .*NUL"),
    (
        "value-surrogate",
        lambda c: _execute(c, "select %s", ("\udc80",)),
        DE,
        r"parameter \$1: cannot encode",
    ),
    (
        "value-selfref-list",
        lambda c: _execute(c, "select %s", (_selfref_list,)),
        DE,
        r"parameter \$1: .*can't be an array",
    ),
    (
        "value-selfref-nested",
        lambda c: _execute(c, "select %s", (_selfref_nested,)),
        DE,
        r"parameter \$1: .*containing themselves",
    ),
    (
        "value-7-dimensions",
        lambda c: _execute(c, "select %b", ([[[[[[[1]]]]]]],)),
        DE,
        r"parameter \$1: .*at most 6 dimensions",
    ),
    (
        "value-selfref-json",
        lambda c: _execute(c, "select %s", (Json(_selfref_dict),)),
        DE,
        r"parameter \$1: .*json",
    ),
    (
        "value-json-unserialisable",
        lambda c: _execute(c, "select %s", (Json(object()),)),
        DE,
        r"not JSON serializable",
    ),
    (
        "value-ragged-array",
        lambda c: _execute(c, "select %s", ([[1, 2], [3]],)),
        DE,
        r"different lengths",
    ),
    (
        "value-mixed-array",
        lambda c: _execute(c, "select %s", ([1, "a"],)),
        DE,
        r"elements have one type",
    ),
    # executemany.
    (
        "executemany-int",
        lambda c: _executemany(c, "select %s", 5),
        PE,
        r"executemany\(\) params_seq must be an iterable",
    ),
    (
        "executemany-None",
        lambda c: _executemany(c, "select %s", None),
        PE,
        r"params_seq must be .* got None",
    ),
    (
        "executemany-str",
        lambda c: _executemany(c, "select %s", "ab"),
        PE,
        r"params_seq must be an iterable",
    ),
    (
        "executemany-rows-not-sequences",
        lambda c: _executemany(c, "select %s", [1, 2]),
        PE,
        r"sequence or a mapping, not int",
    ),
    (
        "executemany-uneven-rows",
        lambda c: _executemany(c, "select %s", [(1,), (1, 2)]),
        PE,
        r"1 placeholder but 2",
    ),
    # Fetching.
    (
        "fetchmany-str",
        lambda c: _fetchmany(c, "2"),
        PE,
        r"fetchmany\(\) size must be an int, got '2'",
    ),
    ("fetchmany-negative", lambda c: _fetchmany(c, -1), PE, r"negative"),
    ("scroll-str", lambda c: _scroll(c, "1"), PE, r"scroll\(\) value must be an int"),
    # Row factories.
    (
        "cursor-row_factory-int",
        lambda c: _cursor_execute(c.cursor(row_factory=1)),
        PE,
        r"cursor\(\) row_factory must be a callable",
    ),
    (
        "execute-row_factory-int",
        lambda c: _cursor_execute(c, row_factory=3),
        PE,
        r"execute\(\) row_factory must be a callable",
    ),
    (
        "set-row_factory-str",
        lambda c: _set(c.cursor(), "row_factory", "dict"),
        PE,
        r"row_factory must be a callable .*got 'dict'",
    ),
    # Connection settings.
    (
        "prepare_threshold-str",
        lambda c: _set(c, "prepare_threshold", "5"),
        PE,
        r"prepare_threshold must be an int or None, got '5'",
    ),
    (
        "prepare_threshold-negative",
        lambda c: _set(c, "prepare_threshold", -1),
        PE,
        r"prepare_threshold must be an int >= 0",
    ),
    (
        "isolation_level-str",
        lambda c: _set(c, "isolation_level", "serializable"),
        PE,
        r"isolation_level must be an IsolationLevel or None",
    ),
    (
        "isolation_level-int",
        lambda c: _set(c, "isolation_level", 99),
        PE,
        r"isolation_level must be an IsolationLevel",
    ),
    # Other entry points.
    (
        "notifies-timeout-str",
        lambda c: _notifies(c, timeout="1"),
        PE,
        r"notifies\(\) timeout must be >= 0 or None",
    ),
    (
        "server-cursor-name-int",
        lambda c: _cursor_execute(c.cursor(3)),
        PE,
        r"cursor\(\) name must be a str, got 3",
    ),
    ("callproc-name-int", lambda c: c.cursor().callproc(3), PE, r"callproc\(\) name must be a str"),
    ("tpc_begin-int", lambda c: c.tpc_begin(3), PE, r"tpc_begin\(\) xid must be an Xid"),
]


async def _usable(conn: Any) -> None:
    cur = await conn.execute("select 1")
    assert await cur.fetchone() == (1,)


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_is_a_dbapi_error(aconn: Any, call: Any, error: type, message: str) -> None:
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    with pytest.raises(psycopg3.Error) as info:
        await call(aconn)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    assert info.value.__class__.__module__.startswith("psycopg3")
    assert re.search(message, str(info.value)), str(info.value)
    # Refused before anything was sent: no transaction was started.
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    await _usable(aconn)


async def test_wrong_argument_is_also_type_or_value_error(aconn: Any) -> None:
    # Code written against Python's conventions keeps working.
    with pytest.raises(TypeError):
        aconn.prepare_threshold = "5"
    with pytest.raises(ValueError):
        aconn.prepare_threshold = -1
    with pytest.raises(TypeError):
        await (await _fetched(aconn)).fetchmany("2")
    await _usable(aconn)


async def test_wrong_signature_stays_a_type_error(aconn: Any) -> None:
    # Decided (psycopg3._arguments, rule 1): Python's own check, naming the keyword.
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        await aconn.cursor().execute("select 1", foo=1)
    await _usable(aconn)


async def test_connect_with_a_non_str_conninfo(flavour: Any) -> None:
    with pytest.raises(errors.ProgrammingError, match="connection string must be a str, got int"):
        await flavour.connect(123)


@pytest.mark.parametrize(
    "make, base, message",
    [
        (lambda: sql.SQL(1), TypeError, "SQL takes a str"),
        (lambda: sql.Identifier(1), TypeError, "Identifier parts must be str"),
        (lambda: sql.SQL("{}").format(), ValueError, "no positional argument"),
        (lambda: sql.SQL("{").format(), ValueError, "malformed SQL.format"),
        (lambda: sql.SQL("{}").format(1), TypeError, "wrap names in sql.Identifier"),
        (lambda: sql.Placeholder(1), TypeError, "placeholder name must be a str"),
    ],
)
def test_sql_composition_errors(make: Any, base: type, message: str) -> None:
    with pytest.raises(errors.ProgrammingError, match=message) as info:
        make()
    assert isinstance(info.value, base)


@pytest.mark.parametrize("factory", [lambda: None, dict], ids=["no-argument", "dict"])
async def test_row_factory_that_cannot_take_the_cursor(
    aconn: Any, admin: Any, factory: Any
) -> None:
    # A row factory of the wrong shape used to raise a bare TypeError out of
    # execute(), after the command had run: an insert reported failed yet
    # committed. Now execute() reports what the server did, and fetching a
    # row says what is wrong with the factory.
    admin.execute("drop table if exists trust_row_factory")
    admin.execute("create table trust_row_factory (x int)")
    aconn.autocommit = True
    cur = aconn.cursor(row_factory=factory)
    await cur.execute("insert into trust_row_factory values (1) returning x")
    assert cur.rowcount == 1
    assert admin.execute("select x from trust_row_factory").fetchall() == [(1,)]
    with pytest.raises(errors.ProgrammingError, match=r"the row factory .* failed when given"):
        await cur.fetchone()
    admin.execute("drop table trust_row_factory")
    await _usable(aconn)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("autocommit", "x", r"connect\(\) autocommit must be True or False, got 'x'"),
        ("autocommit", 1, r"connect\(\) autocommit must be True or False, got 1"),
        ("prepare_threshold", "5", r"connect\(\) prepare_threshold must be"),
        ("row_factory", 3, r"connect\(\) row_factory must be a callable"),
    ],
)
async def test_connect_with_a_bad_option(
    flavour: Any, dsn: str, admin: Any, option: str, value: Any, message: str
) -> None:
    # connect(autocommit="x") was taken as autocommit on: the connection
    # then committed what the user believed was in a transaction.
    name = f"trust_bad_option_{option}"
    with pytest.raises(errors.ProgrammingError, match=message):
        await flavour.connect(dsn, application_name=name, **{option: value})
    # The connection made for nothing is closed, not left to the collector:
    # its backend goes (it leaves pg_stat_activity a moment after Terminate).
    await await_until(lambda: sessions(admin, name) == 0, f"the {name} session to go")


def sessions(admin: Any, name: str) -> int:
    row = admin.execute(
        "select count(*) from pg_stat_activity where application_name = %s", (name,)
    ).fetchone()
    return int(row[0])


@pytest.mark.parametrize("server", [False, True], ids=["client", "server"])
@pytest.mark.parametrize("fetch", ["fetchone", "fetchmany", "fetchall", "iterate"])
async def test_a_row_that_fails_to_load_is_not_skipped(
    aconn: Any, fetch: str, server: bool
) -> None:
    # The row maker raises once, on row 2: the error reaches the user, and the
    # next fetch starts at that row again rather than after it (for a server
    # cursor: the rows of the batch fetched are kept for the next fetch).
    failures = [2]

    def maker(cur: Any) -> Callable[[tuple[Any, ...]], int]:
        def make(values: tuple[Any, ...]) -> int:
            if values[0] in failures:
                failures.remove(values[0])
                raise errors.DataError(f"cannot make row {values[0]}")
            return int(values[0])

        return make

    cur = aconn.cursor("c", row_factory=maker) if server else aconn.cursor(row_factory=maker)
    cur.itersize = 3
    await cur.execute("select generate_series(1, 4)")
    seen: list[int] = []

    async def take() -> None:
        if fetch == "fetchone":
            while (row := await cur.fetchone()) is not None:
                seen.append(row)
        elif fetch == "fetchmany":
            while rows := await cur.fetchmany(3):
                seen.extend(rows)
        elif fetch == "fetchall":
            seen.extend(await cur.fetchall())
        else:
            async for row in cur:
                seen.append(row)

    with pytest.raises(errors.DataError, match="cannot make row 2"):
        await take()
    await take()
    assert seen == [1, 2, 3, 4]
    assert cur.rownumber == 4
