"""PEP 249 (DB-API 2.0), item by item, against ``psycopg3_sync``.

The tests follow the PEP's order: module interface (constructor, globals,
exceptions), connection objects, cursor objects, type objects and
constructors, then the optional extensions the issue asks for. Each test
names the PEP item it checks; the blocking module is the reference, so these
run on it alone (the async flavours mirror it and have their own tests).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import psycopg3_sync as dbapi
from pep249 import EXCEPTIONS
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.scenario("D1", flavour="sync")

DATABASE_ERRORS = EXCEPTIONS[4:]


@pytest.fixture
def conn(dsn: str) -> Iterator[dbapi.Connection]:
    conn = dbapi.connect(dsn)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def table(admin: dbapi.Connection) -> Iterator[str]:
    """A committed table ``(id int primary key, name text)`` visible to every session.

    Ask for it before ``conn``: it is dropped after ``conn`` closes its transaction.
    """
    name = f"dbapi_{uuid.uuid4().hex[:12]}"
    admin.execute(f"create table {name} (id int primary key, name text)")
    try:
        yield name
    finally:
        admin.execute(f"drop table if exists {name}")


def tx_status(conn: dbapi.Connection) -> TransactionStatus:
    return conn.pgconn.transaction_status


# -- Module interface: constructor -------------------------------------------


def test_connect_returns_a_connection(dsn: str) -> None:
    conn = dbapi.connect(dsn)
    try:
        assert isinstance(conn, dbapi.Connection)
        assert not conn.closed
    finally:
        conn.close()


def test_connect_failure_is_operational_error(dsn: str) -> None:
    with pytest.raises(dbapi.OperationalError):
        dbapi.connect(dsn, dbname="no_such_database_dbapi249")


# -- Module interface: globals ----------------------------------------------


def test_apilevel() -> None:
    assert dbapi.apilevel == "2.0"


def test_threadsafety_level_is_kept(dsn: str) -> None:
    # Level 2: threads may share the module and connections (not cursors).
    assert dbapi.threadsafety == 2
    conn = dbapi.connect(dsn, autocommit=True)
    results: dict[int, list[Any]] = {}

    def work(n: int) -> None:
        cur = conn.cursor()
        results[n] = [cur.execute("select %s * 10", (i + n,)).fetchone() for i in range(20)]

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert results == {n * 100: [((i + n * 100) * 10,) for i in range(20)] for n in range(4)}
    finally:
        conn.close()


def test_paramstyle_pyformat(conn: dbapi.Connection) -> None:
    assert dbapi.paramstyle == "pyformat"
    cur = conn.cursor()
    cur.execute("select %(a)s, %(b)s, %(a)s", {"a": 1, "b": "x"})
    assert cur.fetchone() == (1, "x", 1)
    # The "format" style, which pyformat extends, works too.
    cur.execute("select %s, %s", (2, "y"))
    assert cur.fetchone() == (2, "y")


# -- Module interface: exceptions -------------------------------------------


def test_exception_hierarchy() -> None:
    assert issubclass(dbapi.Warning, Exception)
    assert issubclass(dbapi.Error, Exception)
    assert not issubclass(dbapi.Warning, dbapi.Error)
    assert issubclass(dbapi.InterfaceError, dbapi.Error)
    assert issubclass(dbapi.DatabaseError, dbapi.Error)
    assert not issubclass(dbapi.InterfaceError, dbapi.DatabaseError)
    for name in DATABASE_ERRORS:
        assert issubclass(getattr(dbapi, name), dbapi.DatabaseError), name


@pytest.mark.parametrize(
    "sqlstate, name",
    [
        ("22012", "DataError"),  # division_by_zero
        ("08006", "OperationalError"),  # connection_failure
        ("57014", "OperationalError"),  # query_canceled
        ("23505", "IntegrityError"),  # unique_violation
        ("XX000", "InternalError"),  # internal_error
        ("42601", "ProgrammingError"),  # syntax_error
        ("42P01", "ProgrammingError"),  # undefined_table
        ("0A000", "NotSupportedError"),  # feature_not_supported
    ],
)
def test_database_errors_by_sqlstate(conn: dbapi.Connection, sqlstate: str, name: str) -> None:
    query = f"do $$ begin raise exception 'boom' using errcode = '{sqlstate}'; end $$"
    with pytest.raises(getattr(dbapi, name)) as info:
        conn.execute(query)
    assert isinstance(info.value, dbapi.DatabaseError)
    conn.rollback()
    assert conn.execute("select 1").fetchone() == (1,)


def test_real_errors_have_the_right_class(conn: dbapi.Connection) -> None:
    with pytest.raises(dbapi.DataError):
        conn.execute("select 1 / 0")
    conn.rollback()
    with pytest.raises(dbapi.ProgrammingError):
        conn.execute("selec 1")
    conn.rollback()
    with pytest.raises(dbapi.ProgrammingError):
        conn.execute("select * from no_such_table_dbapi249")
    conn.rollback()
    conn.execute("create temp table t (id int primary key)")
    conn.execute("insert into t values (1)")
    with pytest.raises(dbapi.IntegrityError):
        conn.execute("insert into t values (1)")
    conn.rollback()


# -- Connection objects ------------------------------------------------------


def test_connection_has_the_methods(conn: dbapi.Connection) -> None:
    for name in ["close", "commit", "rollback", "cursor"]:
        assert callable(getattr(conn, name)), name


def test_close_makes_the_connection_unusable(dsn: str) -> None:
    conn = dbapi.connect(dsn)
    cur = conn.cursor()
    conn.close()
    assert conn.closed
    conn.close()  # a second close does nothing
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()
    with pytest.raises(dbapi.InterfaceError):
        conn.commit()
    with pytest.raises(dbapi.InterfaceError):
        conn.rollback()
    with pytest.raises(dbapi.InterfaceError):
        conn.execute("select 1")
    # A cursor of a closed connection is unusable too.
    with pytest.raises(dbapi.InterfaceError):
        cur.execute("select 1")


def test_close_without_commit_rolls_back(dsn: str, table: str, admin: dbapi.Connection) -> None:
    conn = dbapi.connect(dsn)
    conn.execute(f"insert into {table} values (1, 'lost')")
    conn.close()
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)


def test_autocommit_is_initially_off(conn: dbapi.Connection) -> None:
    assert conn.autocommit is False
    assert tx_status(conn) == TransactionStatus.IDLE
    conn.execute("select 1")
    assert tx_status(conn) == TransactionStatus.INTRANS


def test_commit(dsn: str, table: str, admin: dbapi.Connection) -> None:
    conn = dbapi.connect(dsn)
    try:
        conn.execute(f"insert into {table} values (1, 'kept')")
        assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)
        conn.commit()
        assert admin.execute(f"select name from {table}").fetchall() == [("kept",)]
        assert tx_status(conn) == TransactionStatus.IDLE
    finally:
        conn.close()


def test_rollback(table: str, conn: dbapi.Connection, admin: dbapi.Connection) -> None:
    conn.execute(f"insert into {table} values (1, 'undone')")
    conn.rollback()
    assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
    assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)


def test_rollback_recovers_from_an_error(conn: dbapi.Connection) -> None:
    with pytest.raises(dbapi.ProgrammingError):
        conn.execute("select * from no_such_table_dbapi249")
    assert tx_status(conn) == TransactionStatus.INERROR
    with pytest.raises(dbapi.InternalError):
        conn.execute("select 1")  # in_failed_sql_transaction (25P02)
    conn.rollback()
    assert conn.execute("select 1").fetchone() == (1,)


def test_cursor_returns_new_cursors(conn: dbapi.Connection) -> None:
    cur1, cur2 = conn.cursor(), conn.cursor()
    assert isinstance(cur1, dbapi.Cursor)
    assert cur1 is not cur2
    cur1.execute("select 1")
    cur2.execute("select 2")
    assert (cur1.fetchone(), cur2.fetchone()) == ((1,), (2,))


# -- Cursor objects: attributes -----------------------------------------------


def test_description_before_and_without_rows(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    assert cur.description is None
    cur.execute("create temp table t (id int)")
    assert cur.description is None
    cur.execute("insert into t values (1)")
    assert cur.description is None
    cur.execute("select id from t where false")
    assert cur.description is not None  # a query that returns no row still has columns


def test_description_items(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute(
        "select 1::int4 as i, 'x'::text as t, 1.5::numeric(10,3) as n,"
        " 'ab'::varchar(20) as v, 'c'::char(5) as c, now() as ts, '\\x00'::bytea as b"
    )
    desc = cur.description
    assert desc is not None
    assert len(desc) == 7
    assert all(len(column) == 7 for column in desc)
    assert [column[0] for column in desc] == ["i", "t", "n", "v", "c", "ts", "b"]
    assert [column[1] for column in desc] == [23, 25, 1700, 1043, 1042, 1184, 17]
    i, t, n, v, c, _, _ = desc
    # (name, type_code, display_size, internal_size, precision, scale, null_ok)
    assert tuple(i) == ("i", 23, None, 4, None, None, None)
    assert tuple(t) == ("t", 25, None, None, None, None, None)
    assert tuple(n) == ("n", 1700, 10, None, 10, 3, None)
    assert tuple(v) == ("v", 1043, 20, None, None, None, None)
    assert tuple(c)[:3] == ("c", 1042, 5)
    assert i.name == "i" and i.type_code == 23


def test_description_type_codes_compare_to_type_objects(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select 1, 'x'::text, now(), '\\x00'::bytea, 'pg_class'::regclass::oid")
    desc = cur.description
    assert desc is not None
    codes = [column[1] for column in desc]
    assert codes[0] == dbapi.NUMBER
    assert codes[1] == dbapi.STRING
    assert codes[2] == dbapi.DATETIME
    assert codes[3] == dbapi.BINARY
    assert codes[4] == dbapi.ROWID
    assert dbapi.NUMBER == codes[0]  # from either side
    assert codes[0] != dbapi.STRING and codes[1] != dbapi.NUMBER


def test_rowcount(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    assert cur.rowcount == -1
    cur.execute("create temp table t (id int)")
    assert cur.rowcount == -1  # DDL: not determinable
    cur.execute("insert into t select generate_series(1, 5)")
    assert cur.rowcount == 5
    cur.execute("update t set id = id + 1 where id > 2")
    assert cur.rowcount == 3
    cur.execute("select * from t")
    assert cur.rowcount == 5
    cur.execute("delete from t")
    assert cur.rowcount == 5


def test_arraysize_default_and_use(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    assert cur.arraysize == 1
    cur.execute("select generate_series(1, 10)")
    assert cur.fetchmany() == [(1,)]
    cur.arraysize = 3
    assert cur.fetchmany() == [(2,), (3,), (4,)]


# -- Cursor objects: methods ----------------------------------------------------


def test_cursor_has_the_methods(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    for name in [
        "close",
        "execute",
        "executemany",
        "fetchone",
        "fetchmany",
        "fetchall",
        "nextset",
        "setinputsizes",
        "setoutputsize",
        "callproc",
    ]:
        assert callable(getattr(cur, name)), name


def test_callproc(conn: dbapi.Connection) -> None:
    conn.execute(
        "create function pg_temp.add_one(a int, b text) returns table (x int, y text)"
        " language sql as $$ select a + 1, b || '!' $$"
    )
    cur = conn.cursor()
    params = [41, "hi"]
    result = cur.callproc("pg_temp.add_one", params)
    assert result is not None
    assert list(result) == params  # a copy of the input (no OUT values change)
    assert params == [41, "hi"]
    assert cur.fetchall() == [(42, "hi!")]
    assert cur.callproc("pg_temp.add_one", (1, "a")) == (1, "a")
    assert cur.fetchone() == (2, "a!")


def test_cursor_close(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select 1")
    cur.close()
    assert cur.closed
    cur.close()  # a second close does nothing
    for call in [
        lambda: cur.execute("select 1"),
        lambda: cur.executemany("select %s", [(1,)]),
        cur.fetchone,
        cur.fetchmany,
        cur.fetchall,
    ]:
        with pytest.raises(dbapi.InterfaceError):
            call()
    # The connection is not affected.
    assert conn.execute("select 2").fetchone() == (2,)


def test_execute_with_sequence_and_mapping(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select %s, %s", [1, None])
    assert cur.fetchone() == (1, None)
    cur.execute("select %(x)s::int + 1", {"x": 1})
    assert cur.fetchone() == (2,)
    cur.execute("select 'no params: % stays'")
    assert cur.fetchone() == ("no params: % stays",)


def test_executemany(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("create temp table t (id int, name text)")
    cur.executemany("insert into t values (%s, %s)", [(i, f"n{i}") for i in range(10)])
    assert cur.rowcount == 10  # the total of all the statements
    cur.executemany("insert into t values (%(id)s, %(name)s)", iter([{"id": 10, "name": "x"}]))
    assert cur.rowcount == 1
    cur.executemany("insert into t values (%s, %s)", [])
    cur.execute("select count(*), sum(id) from t")
    assert cur.fetchone() == (11, sum(range(11)))


def test_executemany_error_is_raised(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("create temp table t (id int primary key)")
    with pytest.raises(dbapi.IntegrityError):
        cur.executemany("insert into t values (%s)", [(1,), (2,), (1,)])


def test_fetchone(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(dbapi.Error):
        cur.fetchone()  # no execute() yet
    cur.execute("select generate_series(1, 2)")
    assert cur.fetchone() == (1,)
    assert cur.fetchone() == (2,)
    assert cur.fetchone() is None
    assert cur.fetchone() is None
    cur.execute("create temp table t (id int)")
    with pytest.raises(dbapi.Error):
        cur.fetchone()  # the operation produced no result set


def test_fetchmany(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(dbapi.Error):
        cur.fetchmany()
    cur.execute("select generate_series(1, 5)")
    assert cur.fetchmany(2) == [(1,), (2,)]
    assert cur.fetchmany(size=10) == [(3,), (4,), (5,)]  # fewer when fewer remain
    assert cur.fetchmany(2) == []
    cur.execute("set timezone to 'UTC'")
    with pytest.raises(dbapi.Error):
        cur.fetchmany()


def test_fetchall(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(dbapi.Error):
        cur.fetchall()
    cur.execute("select x, x::text from generate_series(1, 3) x")
    assert cur.fetchone() == (1, "1")
    assert cur.fetchall() == [(2, "2"), (3, "3")]
    assert cur.fetchall() == []
    cur.execute("select 1 where false")
    assert cur.fetchall() == []
    cur.execute("create temp table t (id int)")
    with pytest.raises(dbapi.Error):
        cur.fetchall()


def test_nextset(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select 1; select 'a', 'b'; create temp table t (id int)")
    assert cur.fetchall() == [(1,)]
    assert cur.nextset() is True
    assert cur.fetchall() == [("a", "b")]
    assert cur.nextset()
    assert cur.description is None
    assert cur.nextset() is None
    cur.execute("select 1")
    assert cur.nextset() is None


def test_setinputsizes_and_setoutputsize_are_accepted(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.setinputsizes([dbapi.NUMBER, 20, None])
    cur.setoutputsize(1000)
    cur.setoutputsize(1000, 0)
    cur.execute("select %s, %s, %s", (1, "abc", None))
    assert cur.fetchone() == (1, "abc", None)


# -- Type objects and constructors -----------------------------------------


@pytest.mark.parametrize(
    "expr, family",
    [
        ("1::int2", "NUMBER"),
        ("1::int4", "NUMBER"),
        ("1::int8", "NUMBER"),
        ("1::float4", "NUMBER"),
        ("1::float8", "NUMBER"),
        ("1::numeric", "NUMBER"),
        ("'x'::text", "STRING"),
        ("'x'::varchar", "STRING"),
        ("'x'::char(3)", "STRING"),
        ("'x'::name", "STRING"),
        ("'x'::\"char\"", "STRING"),
        ("'\\x00'::bytea", "BINARY"),
        ("'2024-01-01'::date", "DATETIME"),
        ("'12:00'::time", "DATETIME"),
        ("'12:00+02'::timetz", "DATETIME"),
        ("'2024-01-01'::timestamp", "DATETIME"),
        ("'2024-01-01'::timestamptz", "DATETIME"),
        ("'1 day'::interval", "DATETIME"),
        ("'pg_class'::regclass::oid", "ROWID"),
        ("'(0,1)'::tid", "ROWID"),
    ],
)
def test_type_objects(conn: dbapi.Connection, expr: str, family: str) -> None:
    cur = conn.execute(f"select {expr}")
    assert cur.description is not None
    type_code = cur.description[0][1]
    for name in ["STRING", "BINARY", "NUMBER", "DATETIME", "ROWID"]:
        type_object = getattr(dbapi, name)
        expected = name == family or (expr.endswith("::oid") and name == "NUMBER")
        assert (type_code == type_object) is expected, (expr, name)
        assert (type_object == type_code) is expected, (expr, name)
        assert (type_code != type_object) is not expected, (expr, name)


def test_type_objects_are_distinct() -> None:
    objects = [dbapi.STRING, dbapi.BINARY, dbapi.NUMBER, dbapi.DATETIME, dbapi.ROWID]
    for a in objects:
        for b in objects:
            assert (a == b) is (a is b)
    assert dbapi.STRING != "text"


def test_constructors(conn: dbapi.Connection) -> None:
    values = (
        dbapi.Date(2024, 2, 29),
        dbapi.Time(23, 59, 58),
        dbapi.Timestamp(2024, 2, 29, 23, 59, 58),
        dbapi.Binary(b"\x00\x01\xff"),
    )
    assert values == (
        dt.date(2024, 2, 29),
        dt.time(23, 59, 58),
        dt.datetime(2024, 2, 29, 23, 59, 58),
        b"\x00\x01\xff",
    )
    cur = conn.execute(
        "select %s, %s, %s, %s, pg_typeof(%s)::text, pg_typeof(%s)::text,"
        " pg_typeof(%s)::text, pg_typeof(%s)::text",
        values * 2,
    )
    assert cur.fetchone() == (
        *values,
        "date",
        "time without time zone",
        *(
            "timestamp without time zone",
            "bytea",
        ),
    )


def test_constructors_from_ticks(conn: dbapi.Connection) -> None:
    ticks = time.mktime((2024, 7, 14, 13, 45, 30, 0, 0, -1))  # a local time
    assert dbapi.DateFromTicks(ticks) == dt.date(2024, 7, 14)
    assert dbapi.TimeFromTicks(ticks) == dt.time(13, 45, 30)
    assert dbapi.TimestampFromTicks(ticks) == dt.datetime(2024, 7, 14, 13, 45, 30)
    assert dbapi.TimestampFromTicks(ticks + 0.25).microsecond == 250000
    cur = conn.execute("select %s, %s", (dbapi.DateFromTicks(ticks), dbapi.TimeFromTicks(ticks)))
    assert cur.fetchone() == (dt.date(2024, 7, 14), dt.time(13, 45, 30))


def test_binary(conn: dbapi.Connection) -> None:
    data = bytes(range(256))
    sources: list[bytes | bytearray | memoryview] = [data, bytearray(data), memoryview(data)]
    for source in sources:
        value = dbapi.Binary(source)
        assert type(value) is bytes and value == data
    with pytest.raises(TypeError):
        dbapi.Binary("text")  # type: ignore[arg-type]
    cur = conn.execute("select %s, length(%s)", (dbapi.Binary(data), dbapi.Binary(data)))
    assert cur.fetchone() == (data, 256)


def test_null_is_none(conn: dbapi.Connection) -> None:
    cur = conn.execute("select null::int, %s::text, %s::int is null", (None, None))
    assert cur.fetchone() == (None, None, True)


def test_numbers_round_trip(conn: dbapi.Connection) -> None:
    values = (2**40, -1.5, Decimal("12.340"))
    assert conn.execute("select %s, %s, %s", values).fetchone() == values


# -- Optional extensions ------------------------------------------------------


def test_rownumber(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    assert cur.rownumber is None
    cur.execute("select generate_series(1, 5)")
    assert cur.rownumber == 0
    cur.fetchone()
    assert cur.rownumber == 1
    cur.fetchmany(2)
    assert cur.rownumber == 3
    cur.fetchall()
    assert cur.rownumber == 5


def test_connection_exception_attributes(conn: dbapi.Connection) -> None:
    for name in EXCEPTIONS:
        assert getattr(conn, name) is getattr(dbapi, name), name
    with pytest.raises(conn.ProgrammingError):
        conn.execute("selec 1")


def test_cursor_connection(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    assert cur.connection is conn


def test_scroll(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select generate_series(0, 9)")
    cur.scroll(3)
    assert cur.fetchone() == (3,)
    cur.scroll(-2)
    assert cur.fetchone() == (2,)
    cur.scroll(7, mode="absolute")
    assert cur.fetchone() == (7,)
    assert cur.rownumber == 8
    cur.scroll(0, mode="absolute")
    assert cur.fetchone() == (0,)
    with pytest.raises(IndexError):
        cur.scroll(100)
    with pytest.raises(IndexError):
        cur.scroll(-1, mode="absolute")
    with pytest.raises((ValueError, dbapi.ProgrammingError)):
        cur.scroll(1, mode="sideways")


def test_iteration(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("select generate_series(1, 4)")
    assert cur.fetchone() == (1,)
    assert list(cur) == [(2,), (3,), (4,)]
    assert list(cur) == []


def test_two_phase_commit(dsn: str, table: str, admin: dbapi.Connection) -> None:
    if admin.execute("show max_prepared_transactions").fetchone() == ("0",):
        pytest.fail("the test server needs max_prepared_transactions > 0")
    conn = dbapi.connect(dsn)
    try:
        xid = conn.xid(42, f"gtrid-{table}", "bqual")
        format_id, gtrid, bqual = xid  # a 3-item sequence, as the PEP says
        assert (format_id, gtrid, bqual) == (42, f"gtrid-{table}", "bqual")
        assert len(xid) == 3
        conn.tpc_begin(xid)
        conn.execute(f"insert into {table} values (1, 'two-phase')")
        conn.tpc_prepare()
        # A transaction id behaves as the 3-item (format_id, gtrid, bqual) tuple.
        prepared = [(x[0], x[1], x[2]) for x in conn.tpc_recover()]
        assert (42, f"gtrid-{table}", "bqual") in prepared
        conn.tpc_commit()
        prepared = [(x[0], x[1], x[2]) for x in conn.tpc_recover()]
        assert (42, f"gtrid-{table}", "bqual") not in prepared
    finally:
        conn.close()
    assert admin.execute(f"select name from {table}").fetchall() == [("two-phase",)]
