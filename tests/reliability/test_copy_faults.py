"""C7: interruptions and exceptions during COPY, in every flavour.

Whatever stops a COPY half-way (an exception in the block, a cancel scope, a
task cancellation, Ctrl-C, a block left before the end of the data, a
server-side failure), the caller sees its own exception (or the server's
matching class), nothing of the aborted COPY is kept, and the connection runs
the next command.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import await_until, wait_until
from psycopg3 import errors
from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT
from psycopg3.pq import TransactionStatus

#: Seconds within which an interrupted COPY gives control back. Expected: well
#: under a second (a live server takes the cancel at once); the bound is the
#: recovery's own deadlines (10 s) plus 5: only a hang goes past it.
BOUND = CANCEL_TIMEOUT + DRAIN_TIMEOUT + 5
#: Rows of BIG written before the in-wait cancellation: 5 MB, more than the
#: sockets hold while the slow server takes 1 ms a row, so the COPY waits to write.
IN_WAIT_ROWS = 500
BIG = "x" * 10_000


class UserError(Exception):
    pass


async def make_table(conn: Any, slow: bool = False) -> None:
    """A table for the test; ``slow`` makes the server take ~1 ms per row."""
    await conn.execute("create temp table c7 (a int primary key, b text)")
    if slow:
        await conn.execute(
            "create function pg_temp.slow() returns trigger language plpgsql as"
            " $$ begin perform pg_sleep(0.001); return new; end $$"
        )
        await conn.execute(
            "create trigger slow before insert on c7 for each row execute function pg_temp.slow()"
        )
    if not conn.autocommit:
        await conn.commit()


async def count_rows(conn: Any) -> int:
    if conn.pgconn.transaction_status == TransactionStatus.INERROR:
        await conn.rollback()
    cur = await conn.execute("select count(*) from c7")
    (count,) = await cur.fetchone()
    if not conn.autocommit:
        await conn.rollback()
    return int(count)


def expected_status(conn: Any) -> TransactionStatus:
    return TransactionStatus.IDLE if conn.autocommit else TransactionStatus.INERROR


@pytest.mark.anyio
@pytest.mark.scenario("C7")
@pytest.mark.parametrize("autocommit", [False, True])
async def test_exception_after_10k_rows(
    flavour: Any, dsn: str, autocommit: bool, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:
        await make_table(conn)
        error = UserError("row 10000 is wrong")
        with pytest.raises(UserError) as info:
            async with conn.cursor().copy("copy c7 from stdin") as copy:
                for i in range(100_000):
                    if i == 10_000:
                        start = time.monotonic()
                        raise error
                    await copy.write_row((i, "data"))
        left = time.monotonic()
        assert info.value is error and info.value.__cause__ is None
        assert conn.pgconn.transaction_status == expected_status(conn)
        assert await count_rows(conn) == 0
        usable = time.monotonic()
        observe(
            f"user exception unchanged; abort→usable {(usable - start) * 1000:.0f} ms"
            f" (block left in {(left - start) * 1000:.0f} ms), 0 rows kept,"
            f" {'autocommit' if autocommit else 'INERROR in transaction'}"
        )
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C7")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.parametrize("where", ["in-wait", "in-block"])
async def test_cancel_mid_copy(
    flavour: Any, dsn: str, where: str, observe: Callable[[str], None]
) -> None:
    # in-wait: the server is slow, the socket fills up, the cancellation
    # lands while the COPY waits to write; in-block: it lands in user code.
    conn = await flavour.connect(dsn)
    try:
        await make_table(conn, slow=where == "in-wait")
        written = 0
        # Cancelled at a known point, not after a delay: in user code once the
        # block waits there, or once the COPY has written more than fits.
        enough = 11 if where == "in-block" else IN_WAIT_ROWS
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def cancel_when_ready() -> None:
                    await await_until(lambda: written >= enough, f"{enough} rows written")
                    scope.cancel()

                group.start_soon(cancel_when_ready)
                async with conn.cursor().copy("copy c7 from stdin") as copy:
                    for i in range(100_000):
                        await copy.write_row((i, BIG))
                        written += 1
                        if where == "in-block" and i == 10:
                            await anyio.sleep_forever()  # until cancelled, in user code
                group.cancel_scope.cancel()  # the COPY ended uncancelled: a failure, below
        start = time.monotonic()
        assert scope.cancelled_caught
        assert written < 100_000
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        assert await count_rows(conn) == 0
        elapsed = time.monotonic() - start
        assert elapsed < BOUND
        observe(
            f"cancelled {where} after {written} rows: 0 kept, INERROR;"
            f" cancel→usable {elapsed * 1000:.0f} ms"
        )
    finally:
        await conn.close()


@contextmanager
def sigint_when(condition: Callable[[], bool]) -> Iterator[None]:
    """Deliver Ctrl-C to the main thread once ``condition()`` holds, only while armed."""
    armed = [True]

    def handler(signum: int, frame: Any) -> None:
        if armed[0]:
            raise KeyboardInterrupt

    def interrupt() -> None:
        wait_until(lambda: condition() or not armed[0], "the moment for Ctrl-C")
        if armed[0]:
            signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, handler)
    main = threading.main_thread().ident
    assert main is not None
    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        yield
    finally:
        armed[0] = False
        thread.join(60)
        signal.signal(signal.SIGINT, previous)


@pytest.mark.scenario("C7", flavour="sync")
@pytest.mark.parametrize("rows", [10, IN_WAIT_ROWS])
def test_ctrl_c_mid_copy(dsn: str, rows: int, observe: Callable[[str], None]) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        conn.execute("create temp table c7 (a int primary key, b text)")
        conn.execute(
            "create function pg_temp.slow() returns trigger language plpgsql as"
            " $$ begin perform pg_sleep(0.001); return new; end $$"
        )
        conn.execute(
            "create trigger slow before insert on c7 for each row execute function pg_temp.slow()"
        )
        conn.commit()
        written = 0
        # Ctrl-C after a known number of rows, early or once the sockets are full.
        with pytest.raises(KeyboardInterrupt):
            with sigint_when(lambda: written >= rows):
                with conn.cursor().copy("copy c7 from stdin") as copy:
                    for i in range(100_000):
                        copy.write_row((i, BIG))
                        written += 1
        start = time.monotonic()
        assert not conn.broken
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("select count(*) from c7").fetchone() == (0,)
        elapsed = time.monotonic() - start
        observe(
            f"Ctrl-C after {written} rows: 0 kept, INERROR; usable after {elapsed * 1000:.0f} ms"
        )


@pytest.mark.anyio
@pytest.mark.scenario("C7")
@pytest.mark.parametrize("how", ["break", "exception"])
async def test_copy_out_abandoned_after_one_row(
    flavour: Any, dsn: str, how: str, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn)
    try:
        error = UserError("enough")
        start = time.monotonic()
        try:
            async with conn.cursor().copy(
                "copy (select i, 'row ' || i from generate_series(1, 1000000) i) to stdout"
            ) as copy:
                async for row in copy.rows():
                    assert row == ("1", "row 1")
                    start = time.monotonic()
                    if how == "exception":
                        raise error
                    break
        except UserError as ex:
            assert ex is error
        else:
            assert how == "break"
        left = time.monotonic() - start
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        await conn.rollback()
        cur = await conn.execute("select 7")
        assert await cur.fetchone() == (7,)
        usable = time.monotonic() - start
        assert usable < BOUND  # expected: a cancel and a drain, milliseconds
        observe(
            f"left by {how} after 1 of 1M rows: block left in {left * 1000:.0f} ms,"
            f" usable after {usable * 1000:.0f} ms (cancel + drain)"
        )
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C7")
async def test_server_side_failures(flavour: Any, dsn: str, observe: Callable[[str], None]) -> None:
    conn = await flavour.connect(dsn)
    try:
        await make_table(conn)
        # A finished COPY leaves its transaction open and fine.
        async with conn.cursor().copy("copy c7 from stdin") as copy:
            await copy.write_row((1, "kept"))
        assert conn.pgconn.transaction_status == TransactionStatus.INTRANS
        await conn.commit()

        with pytest.raises(errors.UniqueViolation):
            async with conn.cursor().copy("copy c7 from stdin") as copy:
                for i in range(2, 20_000):
                    await copy.write_row((i, "new"))
                await copy.write_row((1, "duplicate"))
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        await conn.rollback()

        rows: list[Any] = []
        with pytest.raises(errors.DivisionByZero):
            async with conn.cursor().copy(
                "copy (select 1 / (50000 - i) from generate_series(1, 100000) i) to stdout"
            ) as copy:
                async for row in copy.rows():
                    rows.append(row)
        assert conn.pgconn.transaction_status == TransactionStatus.INERROR
        await conn.rollback()
        cur = await conn.execute("select a, b from c7")
        assert await cur.fetchall() == [(1, "kept")]
        observe(
            f"UniqueViolation and DivisionByZero raised (after {len(rows)} rows read);"
            " INTRANS after a finished COPY, INERROR after a failed one"
        )
    finally:
        await conn.close()
