"""COPY FROM STDIN and COPY TO STDOUT, in every flavour."""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
from decimal import Decimal
from typing import Any

import anyio
import pytest

import psycopg3
from fix_flavours import ASYNC_FLAVOURS
from psycopg3 import errors, sql
from psycopg3.pq import TransactionStatus
from psycopg3.types.json import Jsonb

pytestmark = pytest.mark.anyio


async def make_table(conn: Any, columns: str = "a int, b text") -> None:
    await conn.execute(f"create temp table copied ({columns})")


async def table_rows(conn: Any, query: str = "select * from copied order by 1") -> list[Any]:
    cur = await conn.execute(query)
    return await cur.fetchall()


async def check_usable(conn: Any) -> None:
    cur = await conn.execute("select 42")
    assert await cur.fetchone() == (42,)


# -- COPY FROM STDIN -----------------------------------------------------------


async def test_write_rows_text(aconn: Any) -> None:
    await make_table(aconn)
    cur = aconn.cursor()
    async with cur.copy("copy copied (a, b) from stdin") as copy:
        assert not copy.binary
        await copy.write_row((1, "one"))
        await copy.write_row([2, None])
        await copy.write_row((3, "tab\there\nnewline\\backslash\rcr ünï €"))
    assert cur.rowcount == 3
    assert await table_rows(aconn) == [
        (1, "one"),
        (2, None),
        (3, "tab\there\nnewline\\backslash\rcr ünï €"),
    ]


async def test_write_raw(aconn: Any) -> None:
    await make_table(aconn)
    cur = aconn.cursor()
    async with cur.copy("copy copied from stdin") as copy:
        await copy.write(b"1\tbytes\n")
        await copy.write(bytearray(b"2\tbytearray\n"))
        await copy.write(memoryview(b"3\tmemoryview\n"))
        await copy.write("4\tstr ü\n")
        await copy.write(b"5\t" + b"x" * 200_000 + b"\n")  # larger than a block
    assert cur.rowcount == 5
    rows = await table_rows(aconn)
    assert rows[:4] == [(1, "bytes"), (2, "bytearray"), (3, "memoryview"), (4, "str ü")]
    assert rows[4] == (5, "x" * 200_000)


async def test_write_csv_raw(aconn: Any) -> None:
    await make_table(aconn)
    async with aconn.cursor().copy("copy copied from stdin (format csv)") as copy:
        await copy.write('1,"quoted, with comma"\n2,\n')
    assert await table_rows(aconn) == [(1, "quoted, with comma"), (2, None)]


async def test_statement_params_and_composed(aconn: Any) -> None:
    await make_table(aconn)
    cur = aconn.cursor()
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier("copied"), sql.Identifier("b")
    )
    async with cur.copy(statement) as copy:
        await copy.write_row(["composed"])
    query = "copy (select %s::int, %(x)s::text) to stdout"
    with pytest.raises(psycopg3.ProgrammingError, match="mixes"):
        async with cur.copy(query, (1,)):
            pass
    async with cur.copy("copy (select %s::int, %s, '100%%') to stdout", (7, "it's")) as copy:
        assert await copy.read_row() == ("7", "it's", "100%")
    async with cur.copy("copy (select %(x)s::int, %(x)s + 1) to stdout", {"x": 5}) as copy:
        assert await copy.read_row() == ("5", "6")
    assert await table_rows(aconn, "select b from copied") == [("composed",)]


async def test_empty_copy(aconn: Any) -> None:
    await make_table(aconn)
    cur = aconn.cursor()
    async with cur.copy("copy copied from stdin"):
        pass
    assert cur.rowcount == 0
    async with cur.copy("copy copied from stdin (format binary)"):
        pass
    assert cur.rowcount == 0
    await check_usable(aconn)


# -- COPY TO STDOUT --------------------------------------------------------------


async def test_read_blocks(aconn: Any) -> None:
    cur = aconn.cursor()
    async with cur.copy("copy (select i, 'x' || i from generate_series(1, 3) i) to stdout") as c:
        blocks = [block async for block in c]
        assert await c.read() == b""  # at the end, and again
    assert b"".join(blocks) == b"1\tx1\n2\tx2\n3\tx3\n"
    assert cur.rowcount == 3


async def test_read_csv_raw(aconn: Any) -> None:
    async with aconn.cursor().copy("copy (select 1, 'a,b') to stdout (format csv)") as copy:
        assert await copy.read() == b'1,"a,b"\n'
        assert await copy.read() == b""


async def test_rows_as_str_without_types(aconn: Any) -> None:
    query = "copy (select 1, null::text, E'a\\tb\\\\c\\nd', 'ü'::text) to stdout"
    async with aconn.cursor().copy(query) as copy:
        rows = [row async for row in copy.rows()]
    assert rows == [("1", None, "a\tb\\c\nd", "ü")]


async def test_rows_with_types_text_and_binary(aconn: Any) -> None:
    query = "copy (select i, i * 1.5, 'n' || i from generate_series(1, 2000) i) to stdout"
    for fmt in ("", " (format binary)"):
        cur = aconn.cursor()
        async with cur.copy(query + fmt) as copy:
            copy.set_types(["int4", "numeric", "text"])
            rows = [row async for row in copy.rows()]
            assert await copy.read_row() is None
        assert rows[0] == (1, Decimal("1.5"), "n1")
        assert rows[-1] == (2000, Decimal("3000.0"), "n2000")
        assert len(rows) == cur.rowcount == 2000


async def test_binary_rows_need_types(aconn: Any) -> None:
    async with aconn.cursor().copy("copy (select 1) to stdout (format binary)") as copy:
        assert copy.binary
        with pytest.raises(psycopg3.ProgrammingError, match="set_types"):
            await copy.read_row()
        # Refused before anything waited: the COPY goes on.
        copy.set_types([23])
        assert await copy.read_row() == (1,)
    await check_usable(aconn)


# -- round trips -------------------------------------------------------------------

COLUMNS = [
    ("int4", 42),
    ("int8", 2**40),
    ("int2", -7),
    ("float8", 1.25),
    ("float4", 0.5),
    ("numeric", Decimal("12345.678901234567890")),
    ("numeric", 12),
    ("text", "tab\tline\nback\\slash\rcr 'q' \"dq\" ünï 🐘"),
    ("varchar", "var"),
    ("bytea", b"\x00\x01\\\t\n\xff"),
    ("date", dt.date(2024, 2, 29)),
    ("timestamptz", dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)),
    ("bool", True),
    ("int4[]", [1, None, 3]),
    ("int8[]", [[1, 2], [3, 4]]),
    ("text[]", ["a", "b c", 'q"', None]),
    ("jsonb", Jsonb({"k": [1, "two", None]})),
    ("text", None),
]


@pytest.mark.parametrize("fmt", ["text", "binary"])
async def test_round_trip(aconn: Any, fmt: str) -> None:
    types = [name for name, _ in COLUMNS]
    values = tuple(value for _, value in COLUMNS)
    columns = ", ".join(f"c{n} {name}" for n, name in enumerate(types))
    await make_table(aconn, columns)
    option = " (format binary)" if fmt == "binary" else ""
    cur = aconn.cursor()
    async with cur.copy(f"copy copied from stdin{option}") as copy:
        copy.set_types(types)
        for _ in range(3):
            await copy.write_row(values)
    assert cur.rowcount == 3
    async with cur.copy(f"copy copied to stdout{option}") as copy:
        copy.set_types(types)
        rows = [row async for row in copy.rows()]
    expected = list(values)
    expected[6] = Decimal(12)
    expected[16] = {"k": [1, "two", None]}
    assert rows == [tuple(expected)] * 3


async def test_binary_write_without_types(aconn: Any) -> None:
    aconn.autocommit = True  # the aborted COPY leaves no failed transaction
    await make_table(aconn)
    with pytest.raises(psycopg3.ProgrammingError, match="set_types"):
        async with aconn.cursor().copy("copy copied from stdin (format binary)") as copy:
            await copy.write_row((1, "a"))
    assert await table_rows(aconn) == []
    await check_usable(aconn)


async def test_binary_value_of_wrong_type(aconn: Any) -> None:
    aconn.autocommit = True  # the aborted COPY leaves no failed transaction
    await make_table(aconn)
    with pytest.raises(psycopg3.DataError, match="COPY column 1: cannot write str as int4"):
        async with aconn.cursor().copy("copy copied from stdin (format binary)") as copy:
            copy.set_types(["int4", "text"])
            await copy.write_row((1, "fine"))
            await copy.write_row(("2", "not an int"))
    with pytest.raises(psycopg3.DataError, match="out of range for int2"):
        async with aconn.cursor().copy("copy copied from stdin (format binary)") as copy:
            copy.set_types(["int2", "text"])
            await copy.write_row((2**20, "too big"))
    assert await table_rows(aconn) == []


async def test_wrong_number_of_values(aconn: Any) -> None:
    aconn.autocommit = True  # the aborted COPY leaves no failed transaction
    await make_table(aconn)
    with pytest.raises(psycopg3.ProgrammingError, match="the row has 3 values but"):
        async with aconn.cursor().copy("copy copied from stdin (format binary)") as copy:
            copy.set_types(["int4", "text"])
            await copy.write_row((1, "a", "extra"))
    # Text without declared types: the server counts the columns.
    with pytest.raises(errors.BadCopyFileFormat):
        async with aconn.cursor().copy("copy copied from stdin") as copy:
            await copy.write_row((1,))
    assert await table_rows(aconn) == []
    await check_usable(aconn)


async def test_value_that_cannot_be_dumped(aconn: Any) -> None:
    aconn.autocommit = True  # the aborted COPY leaves no failed transaction
    await make_table(aconn)
    with pytest.raises(psycopg3.ProgrammingError, match="COPY column 2: cannot adapt type 'obj"):
        async with aconn.cursor().copy("copy copied from stdin") as copy:
            await copy.write_row((1, "kept?"))
            await copy.write_row((2, object()))
    assert await table_rows(aconn) == []
    await check_usable(aconn)


async def test_unknown_type_name(aconn: Any) -> None:
    aconn.autocommit = True  # the aborted COPY leaves no failed transaction
    with pytest.raises(psycopg3.ProgrammingError, match="unknown type name 'nosuchtype'"):
        async with aconn.cursor().copy("copy (select 1) to stdout") as copy:
            copy.set_types(["nosuchtype"])
    await check_usable(aconn)


# -- misuse ---------------------------------------------------------------------


async def test_use_after_the_block(aconn: Any) -> None:
    await make_table(aconn)
    async with aconn.cursor().copy("copy copied from stdin") as copy:
        await copy.write_row((1, "a"))
    with pytest.raises(psycopg3.ProgrammingError, match="block has ended"):
        await copy.write_row((2, "b"))
    with pytest.raises(psycopg3.ProgrammingError, match="block has ended"):
        await copy.write(b"2\tb\n")
    with pytest.raises(psycopg3.ProgrammingError, match="only once"):
        async with copy:
            pass
    assert await table_rows(aconn) == [(1, "a")]


async def test_wrong_direction(aconn: Any) -> None:
    await make_table(aconn)
    async with aconn.cursor().copy("copy copied from stdin") as copy:
        with pytest.raises(psycopg3.ProgrammingError, match="read\\(\\) works only in a COPY"):
            await copy.read()
        await copy.write_row((1, "still copying"))
    async with aconn.cursor().copy("copy copied to stdout") as copy:
        with pytest.raises(psycopg3.ProgrammingError, match="write_row\\(\\) works only"):
            await copy.write_row((1, "x"))
        assert await copy.read_row() == ("1", "still copying")
    await check_usable(aconn)


async def test_not_a_copy(aconn: Any) -> None:
    aconn.autocommit = True
    with pytest.raises(psycopg3.ProgrammingError, match="needs a COPY"):
        async with aconn.cursor().copy("select 1"):
            pass
    assert aconn.pgconn.transaction_status == TransactionStatus.IDLE
    with pytest.raises(errors.UndefinedTable):
        async with aconn.cursor().copy("copy nosuchtable from stdin"):
            pass
    await check_usable(aconn)


async def test_refused_in_pipeline_mode(aconn: Any) -> None:
    if psycopg3.pq.version() < 140000:
        pytest.fail("the libpq under test has no pipeline mode")
    aconn.autocommit = True
    aconn.pgconn.enter_pipeline_mode()
    try:
        with pytest.raises(psycopg3.NotSupportedError, match="pipeline mode"):
            async with aconn.cursor().copy("copy (select 1) to stdout"):
                pass
    finally:
        aconn.pgconn.exit_pipeline_mode()
    await check_usable(aconn)


# -- errors and aborts ---------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("autocommit", [False, True])
async def test_exception_in_block_aborts(flavour: Any, dsn: str, autocommit: bool) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:
        await conn.execute("create table if not exists copy_abort (a int)")
        await conn.execute("truncate copy_abort")
        if not autocommit:
            await conn.commit()
        boom = Boom("stop")
        with pytest.raises(Boom) as info:
            async with conn.cursor().copy("copy copy_abort from stdin") as copy:
                for i in range(100_000):
                    await copy.write_row((i,))
                raise boom
        assert info.value is boom
        status = conn.pgconn.transaction_status
        assert status == (TransactionStatus.IDLE if autocommit else TransactionStatus.INERROR)
        if not autocommit:
            await conn.rollback()
        assert await table_rows(conn, "select count(*) from copy_abort") == [(0,)]
        await conn.execute("drop table copy_abort")
        if not autocommit:
            await conn.commit()
    finally:
        await conn.close()


async def test_server_error_classes(aconn: Any) -> None:
    aconn.autocommit = True
    await aconn.execute("create temp table uniq (a int primary key)")
    with pytest.raises(errors.UniqueViolation):
        async with aconn.cursor().copy("copy uniq from stdin") as copy:
            for i in (1, 2, 1):
                await copy.write_row((i,))
    with pytest.raises(errors.InvalidTextRepresentation):
        async with aconn.cursor().copy("copy uniq from stdin") as copy:
            await copy.write(b"not a number\n")
    assert await table_rows(aconn, "select * from uniq") == []
    with pytest.raises(errors.DivisionByZero):
        async with aconn.cursor().copy(
            "copy (select 1 / (3 - i) from generate_series(1, 5) i) to stdout"
        ) as copy:
            async for _ in copy.rows():
                pass
    await check_usable(aconn)


async def test_copy_out_left_early(aconn: Any) -> None:
    cur = aconn.cursor()
    async with cur.copy("copy (select generate_series(1, 1000000)) to stdout") as copy:
        async for row in copy.rows():
            assert row == ("1",)
            break
    # In a transaction the cancelled COPY failed it (module rule 5).
    assert aconn.pgconn.transaction_status == TransactionStatus.INERROR
    await aconn.rollback()
    await check_usable(aconn)


async def test_copy_out_read_to_the_end_keeps_transaction(aconn: Any) -> None:
    cur = aconn.cursor()
    async with cur.copy("copy (select generate_series(1, 10)) to stdout") as copy:
        assert len([row async for row in copy.rows()]) == 10
    assert aconn.pgconn.transaction_status == TransactionStatus.INTRANS
    await check_usable(aconn)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_connection_busy_for_other_tasks(flavour: Any, dsn: str) -> None:
    # The block holds the connection: another task's query waits for its end.
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await conn.execute("create temp table busy (a int)")
        order: list[str] = []

        async def other() -> None:
            cur = await conn.execute("select count(*) from busy")
            order.append(f"other saw {(await cur.fetchone())[0]}")

        async with anyio.create_task_group() as tg:
            async with conn.cursor().copy("copy busy from stdin") as copy:
                tg.start_soon(other)
                await anyio.wait_all_tasks_blocked()  # `other` waits for the connection
                assert order == []
                await copy.write_row((1,))
                order.append("copied")
        assert order == ["copied", "other saw 1"]
    finally:
        await conn.close()


# -- memory --------------------------------------------------------------------

DATA_SIZE = 50 * 1024 * 1024
ROW_TEXT = "x" * 1000


@pytest.mark.slow
async def test_memory_bounded(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await conn.execute("create temp table big (a int, b text)")
        nrows = DATA_SIZE // (len(ROW_TEXT) + 8)
        gc.collect()
        tracemalloc.start()
        try:
            async with conn.cursor().copy("copy big from stdin") as copy:
                for i in range(nrows):
                    await copy.write_row((i, ROW_TEXT))
            _, write_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            seen = 0
            async with conn.cursor().copy("copy big to stdout") as copy:
                async for row in copy.rows():
                    seen += len(row[1])
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert seen == nrows * len(ROW_TEXT) >= DATA_SIZE * 0.95
        assert write_peak < DATA_SIZE / 20, f"writing peaked at {write_peak} bytes"
        assert read_peak < DATA_SIZE / 20, f"reading peaked at {read_peak} bytes"
    finally:
        await conn.close()
