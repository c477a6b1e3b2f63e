"""Pipeline mode (``conn.pipeline()``), in every flavour."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import in_pg_sleep
from fix_wait import await_until, wait_until
from psycopg3 import errors, pq
from psycopg3.pq import PipelineStatus, TransactionStatus

pytestmark = pytest.mark.anyio


async def count_rows(admin: Any, table: str) -> int:
    row = admin.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def pgconn(conn: Any) -> Any:
    return conn.pgconn


async def test_results_in_order_to_several_cursors(aconn: Any) -> None:
    async with aconn.pipeline():
        curs = [aconn.cursor() for _ in range(5)]
        for i, cur in enumerate(curs):
            await cur.execute("select %s::int, %s::text", (i, f"row {i}"))
        # Sent, not answered: nothing is delivered before a fetch or a sync.
        assert pgconn(aconn).pipeline_status == PipelineStatus.ON
        assert curs[0].description is None
        for i, cur in reversed(list(enumerate(curs))):
            assert await cur.fetchall() == [(i, f"row {i}")]
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF
    assert await (await aconn.execute("select 42")).fetchone() == (42,)


async def test_fetch_mid_pipeline_then_more(aconn: Any) -> None:
    async with aconn.pipeline() as p:
        cur1 = await aconn.execute("select generate_series(1, 3)")
        assert await cur1.fetchone() == (1,)
        cur2 = await aconn.execute("select 'a'")
        assert [row async for row in cur1] == [(2,), (3,)]
        await p.sync()
        # After a sync the results are on the cursor: no I/O needed to read them.
        assert cur2.rowcount == 1
        assert cur2.description[0].name == "?column?"
        assert await cur2.fetchone() == ("a",)


async def test_one_cursor_reexecuted_keeps_its_latest(aconn: Any) -> None:
    cur = aconn.cursor()
    async with aconn.pipeline():
        for i in range(10):
            await cur.execute("select %s::int", (i,))
    assert await cur.fetchall() == [(9,)]


async def test_error_in_the_middle(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists pipe_err")
    admin.execute("create table pipe_err (id int primary key)")
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.pipeline() as p:
            ok = await conn.execute("insert into pipe_err values (1) returning id")
            bad = await conn.execute("insert into pipe_err values (1)")
            skipped = await conn.execute("select 1")
            with pytest.raises(errors.UniqueViolation):
                await bad.fetchone()
            with pytest.raises(errors.PipelineAborted):
                await skipped.fetchone()
            assert issubclass(errors.PipelineAborted, errors.OperationalError)
            # Both errors reached the user: the sync raises nothing again.
            await p.sync()
            after = await conn.execute("select 2")
            assert await after.fetchone() == (2,)
        # Autocommit: the batch was one implicit transaction, rolled back
        # whole, even the insert that succeeded (and reported its row).
        assert await ok.fetchone() == (1,)
        assert await count_rows(admin, "pipe_err") == 0
        assert pgconn(conn).transaction_status == TransactionStatus.IDLE
    finally:
        await conn.close()


async def test_sync_raises_first_error_once(aconn: Any) -> None:
    aconn.autocommit = True  # each sync ends the batch's implicit transaction
    async with aconn.pipeline() as p:
        await aconn.execute("select 1/0")
        await aconn.execute("select nosuchcolumn")
        with pytest.raises(errors.DivisionByZero):
            await p.sync()
        await p.sync()  # raised once: not again
        cur = await aconn.execute("select 3")
        assert await cur.fetchone() == (3,)
    assert await (await aconn.execute("select 4")).fetchone() == (4,)


async def test_block_end_raises_unreported_error(aconn: Any) -> None:
    with pytest.raises(errors.UndefinedTable):
        async with aconn.pipeline():
            await aconn.execute("select * from no_such_table_here")
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF
    assert pgconn(aconn).transaction_status == TransactionStatus.INERROR
    await aconn.rollback()
    assert await (await aconn.execute("select 5")).fetchone() == (5,)


async def test_implicit_transaction_in_pipeline(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists pipe_tx")
    admin.execute("create table pipe_tx (id int)")
    conn = await flavour.connect(dsn)
    try:
        async with conn.pipeline() as p:
            for i in range(3):
                await conn.execute("insert into pipe_tx values (%s)", (i,))
            await p.sync()
            # One BEGIN for the three statements; a sync does not commit it.
            assert pgconn(conn).transaction_status == TransactionStatus.INTRANS
            assert await count_rows(admin, "pipe_tx") == 0
            await conn.execute("insert into pipe_tx values (3)")
            await conn.rollback()
            await conn.execute("insert into pipe_tx values (10)")
            await conn.commit()
            assert pgconn(conn).transaction_status == TransactionStatus.IDLE
        rows = admin.execute("select id from pipe_tx").fetchall()
        assert rows == [(10,)]
    finally:
        await conn.close()


async def test_commit_raises_the_batch_error(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists pipe_commit")
    admin.execute("create table pipe_commit (id int primary key)")
    conn = await flavour.connect(dsn)
    try:
        async with conn.pipeline():
            await conn.execute("insert into pipe_commit values (1)")
            await conn.execute("insert into pipe_commit values (1)")
            with pytest.raises(errors.UniqueViolation):
                await conn.commit()
            assert pgconn(conn).transaction_status == TransactionStatus.INERROR
            await conn.rollback()
            await conn.execute("insert into pipe_commit values (2)")
            await conn.commit()
        assert admin.execute("select id from pipe_commit").fetchall() == [(2,)]
    finally:
        await conn.close()


async def test_autocommit_each_sync_commits(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists pipe_auto")
    admin.execute("create table pipe_auto (id int primary key)")
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.pipeline() as p:
            await conn.execute("insert into pipe_auto values (1)")
            await p.sync()
            assert await count_rows(admin, "pipe_auto") == 1
            await conn.execute("insert into pipe_auto values (2)")
            await conn.execute("insert into pipe_auto values (1)")  # fails the batch
            with pytest.raises(errors.UniqueViolation):
                await p.sync()
            assert await count_rows(admin, "pipe_auto") == 1
    finally:
        await conn.close()


async def test_transaction_block_inside(flavour: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists pipe_block")
    admin.execute("create table pipe_block (id int)")
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.pipeline():
            async with conn.transaction():
                await conn.execute("insert into pipe_block values (1)")
            with pytest.raises(ZeroDivisionError):
                async with conn.transaction():
                    await conn.execute("insert into pipe_block values (2)")
                    raise ZeroDivisionError
        assert admin.execute("select id from pipe_block").fetchall() == [(1,)]
    finally:
        await conn.close()


async def test_transaction_block_with_commands_pending(flavour: Any, dsn: str, admin: Any) -> None:
    # Entering and leaving a block must see what the queued commands did to
    # the transaction: here a pending BEGIN-less insert in autocommit, then a
    # queued failure that must roll the block back and surface on leaving it.
    admin.execute("drop table if exists pipe_pending")
    admin.execute("create table pipe_pending (id int primary key)")
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        async with conn.pipeline():
            await conn.execute("insert into pipe_pending values (1)")
            async with conn.transaction():  # BEGIN, not a SAVEPOINT
                await conn.execute("insert into pipe_pending values (2)")
            with pytest.raises(errors.UniqueViolation):
                async with conn.transaction():
                    await conn.execute("insert into pipe_pending values (3)")
                    await conn.execute("insert into pipe_pending values (1)")
            await conn.execute("insert into pipe_pending values (4)")
        assert pgconn(conn).transaction_status == TransactionStatus.IDLE
        rows = admin.execute("select id from pipe_pending order by id").fetchall()
        assert rows == [(1,), (2,), (4,)]
    finally:
        await conn.close()


async def test_executemany_inside(aconn: Any, admin: Any) -> None:
    admin.execute("drop table if exists pipe_many")
    admin.execute("create table pipe_many (id int primary key)")
    async with aconn.pipeline():
        first = await aconn.execute("select 'before'")
        cur = aconn.cursor()
        await cur.executemany(
            "insert into pipe_many values (%s) returning id",
            [(i,) for i in range(5)],
            returning=True,
        )
        after = await aconn.execute("select 'after'")
        assert await after.fetchone() == ("after",)
        assert await first.fetchone() == ("before",)
        assert await cur.fetchone() == (0,)
        assert cur.rowcount == 5
        assert cur.nextset()
        assert await cur.fetchone() == (1,)
        bad = aconn.cursor()
        await bad.executemany("insert into pipe_many values (%s)", [(10,), (1,), (11,)])
        with pytest.raises(errors.UniqueViolation):
            await bad.fetchall()
    await aconn.rollback()


async def test_executemany_outside_still_works(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.executemany("select %s::int", [(1,), (2,)], returning=True)
    assert await cur.fetchone() == (1,)
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF


async def test_nested_blocks(aconn: Any) -> None:
    async with aconn.pipeline():
        cur1 = await aconn.execute("select 1")
        async with aconn.pipeline():
            cur2 = await aconn.execute("select 2")
        # The inner block synced at its end: both results are here.
        assert cur1.rowcount == 1 and cur2.rowcount == 1
        assert pgconn(aconn).pipeline_status == PipelineStatus.ON
        cur3 = await aconn.execute("select 3")
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF
    assert [await c.fetchone() for c in (cur1, cur2, cur3)] == [(1,), (2,), (3,)]


async def test_many_commands_large_params_no_deadlock(aconn: Any) -> None:
    big = "x" * 20_000
    aconn.autocommit = True
    curs = []
    async with aconn.pipeline():
        cur = aconn.cursor()
        for i in range(10_000):
            await cur.execute("select %s::int, %s::text", (i, big))
            if i % 1000 == 0:
                curs.append(await aconn.execute("select %s::int, %s::text", (i, big)))
        # The queue was read as results came: it is not 10,000 entries long.
        assert len(aconn._pipeline._entries) < 300
    row = await cur.fetchone()
    assert row == (9999, big)
    for n, c in enumerate(curs):
        assert (await c.fetchone())[0] == n * 1000


async def test_multi_statement_refused_clearly(aconn: Any) -> None:
    async with aconn.pipeline() as p:
        cur = await aconn.execute("select 1; select 2")
        with pytest.raises(errors.ProgrammingError, match="multiple commands"):
            await cur.fetchone()
        await p.sync()
    await aconn.rollback()


async def test_user_exception_inside(aconn: Any) -> None:
    with pytest.raises(KeyError):
        async with aconn.pipeline():
            cur = await aconn.execute("select 1")
            raise KeyError("mine")
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF
    assert await cur.fetchone() == (1,)
    assert await (await aconn.execute("select 6")).fetchone() == (6,)


async def test_bad_parameter_keeps_the_pipeline(aconn: Any) -> None:
    async with aconn.pipeline():
        cur1 = await aconn.execute("select 1")
        with pytest.raises(errors.ProgrammingError):
            await aconn.execute("select %s, %s", (1,))
        cur2 = await aconn.execute("select 2")
    assert await cur1.fetchone() == (1,)
    assert await cur2.fetchone() == (2,)


async def test_unsupported_inside(aconn: Any) -> None:
    async with aconn.pipeline():
        cur = await aconn.execute("select 1")
        with pytest.raises(errors.NotSupportedError, match="pipeline"):
            await aconn.cursor("named").execute("select 1")
        with pytest.raises(errors.NotSupportedError, match="pipeline"):
            await aconn.tpc_begin("xid")
        with pytest.raises(errors.NotSupportedError, match="copy.*pipeline"):
            async with aconn.cursor().copy("copy (select 1) to stdout"):
                pass
        with pytest.raises(errors.NotSupportedError, match="notifies.*pipeline"):
            async for _ in aconn.notifies(timeout=0):
                pass
        assert await cur.fetchone() == (1,)
    # Refused before the pipeline started a command, too.
    async with aconn.pipeline():
        with pytest.raises(errors.NotSupportedError, match="copy.*pipeline"):
            async with aconn.cursor().copy("copy (select 1) to stdout"):
                pass
    assert await (await aconn.execute("select 2")).fetchone() == (2,)


async def test_libpq_version_gate(aconn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psycopg3.pq, "version", lambda: 130011)
    with pytest.raises(errors.NotSupportedError, match="libpq 14"):
        async with aconn.pipeline():
            pass
    assert pgconn(aconn).pipeline_status == PipelineStatus.OFF
    monkeypatch.undo()
    assert pq.version() >= 140000
    async with aconn.pipeline():
        cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


async def test_cancelled_inside_the_block(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    pid = pgconn(conn).backend_pid

    def sleeping() -> bool:
        return in_pg_sleep(admin, pid)

    try:
        if flavour.is_sync:
            # Ctrl-C during the wait: a SIGINT sent from a thread once the server sleeps.
            def interrupt() -> None:
                wait_until(sleeping, "the query to run")
                os.kill(os.getpid(), signal.SIGINT)

            timer = threading.Thread(target=interrupt)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                async with conn.pipeline():
                    before = await conn.execute("select 1")
                    slow = await conn.execute("select pg_sleep(5)")
                    await slow.fetchone()
            timer.join()
        else:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:

                    async def cancel_when_sleeping() -> None:
                        await await_until(sleeping, "the query to run")
                        scope.cancel()

                    group.start_soon(cancel_when_sleeping)
                    async with conn.pipeline():
                        before = await conn.execute("select 1")
                        slow = await conn.execute("select pg_sleep(5)")
                        await slow.fetchone()
            assert scope.cancelled_caught
        assert pgconn(conn).pipeline_status == PipelineStatus.OFF
        assert pgconn(conn).transaction_status == TransactionStatus.IDLE
        with pytest.raises(errors.OperationalError, match="interrupted"):
            await slow.fetchone()
        with pytest.raises(errors.OperationalError, match="interrupted"):
            await before.fetchone()
        assert await (await conn.execute("select 7")).fetchone() == (7,)
        async with conn.pipeline():
            cur = await conn.execute("select 8")
        assert await cur.fetchone() == (8,)
    finally:
        await conn.close()


def test_sync_pipeline_blocking_api(dsn: str) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        with conn.pipeline() as p:
            assert isinstance(p, psycopg3.Pipeline)
            cur = conn.execute("select %s::int", (1,))
            p.sync()
            assert cur.fetchone() == (1,)


@pytest.mark.parametrize(
    "copy",
    [
        "copy pipecopy from stdin",
        "COPY pipecopy (x) FROM STDIN WITH (FORMAT csv)",
        "-- load\n /* the rows */ copy pipecopy to stdout",
    ],
)
async def test_copy_sent_with_execute_is_refused(aconn: Any, copy: str) -> None:
    # Sent, the COPY would switch the server to COPY mode: the commands queued
    # after it would end the session ("protocol synchronization was lost").
    aconn.autocommit = True
    await aconn.execute("create temp table pipecopy (x int)")
    async with aconn.pipeline():
        await aconn.execute("insert into pipecopy values (1)")
        with pytest.raises(errors.NotSupportedError, match="COPY.*pipeline"):
            await aconn.execute(copy)
        await aconn.execute("insert into pipecopy values (2)")
    assert not aconn.broken
    cur = await aconn.execute("select x from pipecopy order by x")
    assert await cur.fetchall() == [(1,), (2,)]
