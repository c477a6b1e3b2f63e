"""Interruptions at every point a command can be, in every flavour.

Each test interrupts a command its flavour's way (a cancel scope or timeout
for the async flavours, Ctrl-C or ``cancel()`` from a thread for blocking
code) and then checks the one thing that matters: the connection runs the
next command correctly — or, when it could not be recovered in time, is
closed and marked broken. Never a hang, never a stale result, never a late
cancel request hitting the next command.
"""

from __future__ import annotations

import gc
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import await_until, wait_until
from psycopg3 import errors, generators, pq
from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT
from psycopg3.pq import TransactionStatus

#: Seconds within which an interrupted command gives control back. Expected:
#: milliseconds (a live server takes the cancel at once); the bound is the
#: recovery's own deadlines (10 s) plus 5: only a hang goes past it.
BOUND = CANCEL_TIMEOUT + DRAIN_TIMEOUT + 5


def live_results() -> int:
    gc.collect()
    return pq.live_objects()["PGresult"]


async def check_usable(conn: Any, token: int) -> None:
    """The connection answers a fresh command with that command's own result."""
    if conn.pgconn.transaction_status == TransactionStatus.INERROR:
        await conn.rollback()
    cur = await conn.execute("select %s::int", (token,))
    assert await cur.fetchone() == (token,)


# -- a cancel request that reached the server too early is repeated ----------


@pytest.mark.scenario("C6")
def test_drain_repeats_a_lost_cancel(dsn: str, observe: Callable[[str], None]) -> None:
    # The first cancel request is "lost" (never sent, as when it reaches the
    # server before the command does): the drain's silence hook sends one.
    pgconn = pq.PGconn.connect(dsn.encode())
    try:
        pgconn.nonblocking = True
        pgconn.send_query(b"select pg_sleep(10)")
        sent: list[generators.CancelOutcome] = []

        def cancel_again() -> Any:
            outcome = yield from generators.cancel(pgconn, deadline=time.monotonic() + 5)
            sent.append(outcome)

        start = time.monotonic()
        psycopg3_sync.wait_select(
            generators.drain(pgconn, deadline=start + 8, on_silence=cancel_again, silence=0.3),
            timeout=0.05,
        )
        elapsed = time.monotonic() - start
        assert sent and sent[0] == generators.CancelOutcome.DELIVERED
        # Expected: the 0.3 s of silence, then a round trip; without the
        # repeated cancel the drain would run to its 8 s deadline.
        assert elapsed < 5, "the repeated cancel did not stop the command"
        assert pgconn.transaction_status == TransactionStatus.IDLE
        observe(f"command stopped {elapsed * 1000:.0f} ms after a lost cancel; {len(sent)} resent")
    finally:
        pgconn.finish()


@pytest.mark.scenario("C6")
def test_cancel_before_the_command_starts(dsn: str, observe: Callable[[str], None]) -> None:
    # A cancel request sent while the backend waits for a command is ignored
    # by the server; the connection must still recover quickly and in sync.
    pgconn = pq.PGconn.connect(dsn.encode())
    try:
        pgconn.nonblocking = True
        outcome = psycopg3_sync.wait_select(
            generators.cancel(pgconn, deadline=time.monotonic() + 5), timeout=0.1
        )
        assert outcome == generators.CancelOutcome.DELIVERED
        pgconn.send_query(b"select 7")
        results = psycopg3_sync.wait_select(generators.execute(pgconn))
        assert [r.status for r in results] == [pq.ExecStatus.TUPLES_OK]
        assert results[0].get_value(0, 0) == b"7"
        observe("a cancel sent to an idle backend is ignored: the next command runs")
    finally:
        pgconn.finish()


# -- the interruption storm ----------------------------------------------------


@contextmanager
def sigint_after(delay: float) -> Iterator[list[bool]]:
    """Deliver Ctrl-C to the main thread after ``delay``, only while armed."""
    armed = [True]

    def handler(signum: int, frame: Any) -> None:
        if armed[0]:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        yield armed
    finally:
        armed[0] = False
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


ITERATIONS = 150


@pytest.mark.scenario("C6", flavour="sync")
# A Ctrl-C landing inside a destructor is reported by Python as "ignored".
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "cancel"])
@pytest.mark.parametrize("in_transaction", [False, True])
def test_storm_sync(
    dsn: str, how: str, in_transaction: bool, observe: Callable[[str], None]
) -> None:
    rng = random.Random(f"sync-{how}-{in_transaction}")
    baseline = live_results()
    interrupted = stale = broken = 0
    start = time.monotonic()
    conn = psycopg3_sync.connect(dsn, autocommit=not in_transaction)
    try:
        for i in range(ITERATIONS):
            if conn.broken:
                broken += 1
                conn.close()
                conn = psycopg3_sync.connect(dsn, autocommit=not in_transaction)
            runtime = rng.uniform(0, 0.02)
            offset = rng.uniform(0, 0.025)
            try:
                if how == "sigint":
                    with sigint_after(offset):
                        row = conn.execute("select %s::int from pg_sleep(%s)", (i, runtime))
                        assert row.fetchone() == (i,)
                else:
                    timer = threading.Timer(offset, conn.cancel)
                    timer.start()
                    try:
                        row = conn.execute("select %s::int from pg_sleep(%s)", (i, runtime))
                        assert row.fetchone() == (i,)
                    finally:
                        timer.join()  # the request is answered before the next command
            except (KeyboardInterrupt, errors.QueryCanceled):
                interrupted += 1
            if conn.broken:
                continue
            if conn.pgconn.transaction_status == TransactionStatus.INERROR:
                conn.rollback()
            try:
                token = 1_000_000 + i
                assert conn.execute("select %s::int", (token,)).fetchone() == (token,)
                if in_transaction:
                    assert conn.execute("select txid_current()").fetchone() is not None
                    conn.commit()
            except errors.QueryCanceled:
                stale += 1
                conn.rollback()
    finally:
        conn.close()
    del row  # the last cursor holds its result
    elapsed = time.monotonic() - start
    assert stale == 0
    leaked = live_results() - baseline
    if how == "sigint":
        # KeyboardInterrupt is raised between any two bytecodes: between
        # PQgetResult returning and its wrapping, or inside PQclear's caller,
        # a C pointer is lost. Pure Python cannot close that window; it is
        # one instruction wide, and this measures how often it is hit.
        assert 0 <= leaked <= ITERATIONS // 25
    else:
        assert leaked == 0
    observe(
        f"{how}: {ITERATIONS} iterations, {interrupted} interrupted, {stale} stale cancels,"
        f" {broken} broken, 0 desync, {leaked} PGresult leaked ({elapsed:.1f} s)"
    )


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.scenario("C6")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
@pytest.mark.parametrize("in_transaction", [False, True])
async def test_storm_async(
    flavour: Any, dsn: str, in_transaction: bool, observe: Callable[[str], None]
) -> None:
    rng = random.Random(f"{flavour.name}-{in_transaction}")
    baseline = live_results()
    interrupted = stale = broken = 0
    start = time.monotonic()
    conn = await flavour.connect(dsn, autocommit=not in_transaction)
    try:
        for i in range(ITERATIONS):
            if conn.broken:
                broken += 1
                await conn.close()
                conn = await flavour.connect(dsn, autocommit=not in_transaction)
            runtime = rng.uniform(0, 0.02)
            with anyio.move_on_after(rng.uniform(0, 0.025)) as scope:
                cur = await conn.execute("select %s::int from pg_sleep(%s)", (i, runtime))
                assert await cur.fetchone() == (i,)
            interrupted += scope.cancelled_caught
            if conn.broken:
                continue
            try:
                token = 1_000_000 + i
                await check_usable(conn, token)
                if in_transaction:
                    await conn.execute("select txid_current()")
                    await conn.commit()
            except errors.QueryCanceled:
                stale += 1
                await conn.rollback()
    finally:
        await conn.close()
    del cur  # the last cursor holds its result
    elapsed = time.monotonic() - start
    assert stale == 0
    assert live_results() == baseline
    observe(
        f"{ITERATIONS} iterations, {interrupted} interrupted, {stale} stale cancels,"
        f" {broken} broken, 0 desync, PGresult count back to baseline ({elapsed:.1f} s)"
    )


# -- interrupting each phase of a command --------------------------------------


def backend_active(admin: Any, conn: Any) -> Callable[[], bool]:
    """A condition: the server runs a command of *conn* (pg_stat_activity says so)."""
    pid = conn.pgconn.backend_pid

    def check() -> bool:
        row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,))
        return row.fetchone() == ("active",)

    return check


async def interrupt_when(flavour: Any, conn: Any, when: Callable[[], bool], call: Any) -> float:
    """Run ``await call()``, interrupt it once ``when()`` holds; return the latency.

    Async flavours use a cancel scope; the blocking flavour a ``cancel()``
    from a thread (a QueryCanceled is then the interruption).
    """
    sent: list[float] = []
    if flavour.is_sync:

        def cancel_when() -> None:
            wait_until(when, "the moment to interrupt")
            sent.append(time.monotonic())
            conn.target.cancel()

        canceller = threading.Thread(target=cancel_when, daemon=True)
        canceller.start()
        try:
            with pytest.raises(errors.QueryCanceled):
                await call()
        finally:
            canceller.join(60)
    else:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def cancel_when() -> None:
                    await await_until(when, "the moment to interrupt")
                    sent.append(time.monotonic())
                    scope.cancel()

                group.start_soon(cancel_when)
                await call()
                group.cancel_scope.cancel()  # ended by itself: a failure, below
        assert scope.cancelled_caught
    return time.monotonic() - sent[0]


@pytest.mark.anyio
@pytest.mark.scenario("C2")
async def test_interrupt_inside_transaction_block(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    admin.execute("create table if not exists c_tx_block (id int)")
    admin.execute("truncate c_tx_block")
    conn = await flavour.connect(dsn)
    try:
        pid = conn.pgconn.backend_pid

        async def block() -> None:
            async with conn.transaction():
                await conn.execute("insert into c_tx_block values (1)")
                await conn.execute("select pg_sleep(3600)")

        def sleeping() -> bool:
            row = admin.execute(
                "select state = 'active' and query like '%%pg_sleep%%'"
                " from pg_stat_activity where pid = %s",
                (pid,),
            ).fetchone()
            return row == (True,)

        # Interrupted in the block's sleep, which nothing else ends.
        latency = await interrupt_when(flavour, conn, sleeping, block)
        assert latency < BOUND
        assert not conn.broken
        # The block rolled back: the insert is gone, the connection is idle.
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE
        assert admin.execute("select count(*) from c_tx_block").fetchone() == (0,)
        await check_usable(conn, 11)
        observe(f"block rolled back, connection idle; control back {latency * 1000:.0f} ms late")
    finally:
        await conn.close()


#: The advisory lock that holds test_interrupt_executemany's 1000th insert.
MANY_LOCK = 42_001


@pytest.mark.anyio
@pytest.mark.scenario("C2")
@pytest.mark.parametrize("autocommit", [True, False])
async def test_interrupt_executemany(
    flavour: Any, dsn: str, admin: Any, autocommit: bool, observe: Callable[[str], None]
) -> None:
    # executemany runs in one libpq pipeline: the drain must sync and leave it.
    admin.execute("create table if not exists c_many (id int)")
    admin.execute("truncate c_many")
    conn = await flavour.connect(dsn, autocommit=autocommit)
    # The 1000th insert waits for a lock the admin session holds until the
    # interruption is sent: the interruption always lands in the middle, with
    # a thousand rows inserted and a thousand still queued, however slow the
    # machine (a pipeline free to run could end before a late interruption).
    admin.execute("select pg_advisory_lock(%s)", (MANY_LOCK,))
    try:
        cur = conn.cursor()
        rows = [(i, i) for i in range(2000)]

        async def many() -> None:
            await cur.executemany(
                "insert into c_many select %s"
                " from (select case when %s = 1000 then pg_advisory_xact_lock_shared(%s) end)"
                " as held",
                [(*row, MANY_LOCK) for row in rows],
            )

        def waiting_at_row_1000() -> bool:
            row = admin.execute(
                "select wait_event from pg_stat_activity where pid = %s",
                (conn.pgconn.backend_pid,),
            ).fetchone()
            return row == ("advisory",)

        latency = await interrupt_when(flavour, conn, waiting_at_row_1000, many)
        admin.execute("select pg_advisory_unlock(%s)", (MANY_LOCK,))
        assert latency < BOUND
        assert not conn.broken
        assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
        if not autocommit:
            await conn.rollback()
        # One implicit transaction (or the user's, rolled back): nothing is left.
        assert admin.execute("select count(*) from c_many").fetchone() == (0,)
        await check_usable(conn, 12)
        observe(f"pipeline synced and left, nothing written; {latency * 1000:.0f} ms late")
    finally:
        admin.execute("select pg_advisory_unlock_all()")
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C2")
async def test_interrupt_while_sending_large_parameter(
    flavour: Any, dsn: str, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        big = b"x" * (64 * 1024 * 1024)
        start = time.monotonic()
        # Time is the subject: 20 ms into sending 64 MiB, or before the
        # command is on the server (both are correct outcomes, see below).
        if flavour.is_sync:
            timer = threading.Timer(0.02, conn.target.cancel)
            timer.start()
            try:
                # The cancel may reach the server before the command does:
                # then the command completes, which is correct too.
                try:
                    cur = await conn.execute("select length(%s::bytea)", (big,))
                    assert await cur.fetchone() == (len(big),)
                except errors.QueryCanceled:
                    pass
            finally:
                timer.join()
        else:
            with anyio.move_on_after(0.02):
                cur = await conn.execute("select length(%s::bytea)", (big,))
                assert await cur.fetchone() == (len(big),)
        elapsed = time.monotonic() - start
        # Expected: the upload's second or so; BOUND + 5 only catches a hang.
        assert elapsed < BOUND + 5
        state = "broken" if conn.broken else "usable"
        if not conn.broken:
            await check_usable(conn, 13)
        observe(f"interrupted while sending 64 MiB: {state} after {elapsed:.2f} s")
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C2")
async def test_interrupt_while_rows_stream(
    flavour: Any, dsn: str, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor("streaming")
        received = 0

        async def stream() -> None:
            nonlocal received
            async with conn.transaction():
                await cur.execute(
                    "select g, repeat('x', 200), pg_sleep(0.0005)"
                    " from generate_series(1, 1000000) g"
                )
                while rows := await cur.fetchmany(100):
                    received += len(rows)

        # Interrupted once rows are streaming (a million take minutes).
        latency = await interrupt_when(flavour, conn, lambda: received > 0, stream)
        assert latency < BOUND
        assert received > 0
        assert not conn.broken
        await check_usable(conn, 14)
        observe(f"{received} rows streamed, then interrupted; usable, {latency * 1000:.0f} ms late")
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C2")
async def test_interrupt_large_result(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    # Interrupted while a client-side cursor receives a large result.
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        baseline = live_results()

        async def fetch_all() -> None:
            cur = await conn.execute(
                "select g, repeat('y', 500) from generate_series(1, 3000000) g"
            )
            await cur.fetchall()

        # Interrupted while the server sends the 1.5 GB result.
        latency = await interrupt_when(flavour, conn, backend_active(admin, conn), fetch_all)
        assert latency < BOUND
        assert not conn.broken
        await check_usable(conn, 15)
        assert live_results() == baseline
        observe(f"usable, no result leaked; {latency * 1000:.0f} ms late")
    finally:
        await conn.close()


# -- cancel() never blocks the event loop --------------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("C5")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancel_does_not_block_the_loop(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    ticks: list[float] = []
    try:
        outcome: list[BaseException] = []

        async def query() -> None:
            try:
                await conn.execute("select pg_sleep(3600)")
            except errors.QueryCanceled as ex:
                outcome.append(ex)

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                # A turn of the loop, no more: every turn the loop gets is counted.
                await anyio.sleep(0)

        during: list[int] = []  # the ticker's turns during each cancel() call
        async with anyio.create_task_group() as group:
            group.start_soon(query)
            await await_until(backend_active(admin, conn), "the query to run")
            group.start_soon(ticker)
            for _ in range(20):  # many requests, each a new connection to the server
                before = len(ticks)
                await conn.cancel()
                during.append(len(ticks) - before)
            await await_until(lambda: outcome, "the query to end cancelled")
            group.cancel_scope.cancel()
        assert len(outcome) == 1
        # Each request waits on its own socket: the loop runs other tasks
        # meanwhile. A blocking cancel() would give the ticker no turn.
        assert all(during), f"the loop stood still during a cancel(): {during}"
        worst = max(b - a for a, b in zip(ticks, ticks[1:]))
        await check_usable(conn, 16)
        observe(f"20 cancel() calls in flight: longest loop stall {worst * 1000:.1f} ms")
    finally:
        await conn.close()


@pytest.mark.scenario("C5", flavour="sync")
def test_cancel_streaming_cursor_from_thread(
    dsn: str, admin: Any, observe: Callable[[str], None]
) -> None:
    with psycopg3_sync.connect(dsn) as conn:
        cur = conn.cursor("streamed")
        cur.execute("select g, pg_sleep(0.001) from generate_series(1, 100000) g")
        got = cur.fetchmany(50)
        assert len(got) == 50
        # The cancel goes while the server runs a FETCH (between two, an idle
        # backend ignores it).
        sent: list[float] = []

        def cancel_when_fetching() -> None:
            wait_until(backend_active(admin, conn), "a FETCH to run")
            sent.append(time.monotonic())
            conn.cancel()

        canceller = threading.Thread(target=cancel_when_fetching, daemon=True)
        canceller.start()
        try:
            with pytest.raises(errors.QueryCanceled):
                while cur.fetchmany(1000):
                    pass
        finally:
            canceller.join(60)
        latency = time.monotonic() - sent[0]
        conn.rollback()
        assert conn.execute("select 17").fetchone() == (17,)
        observe(f"QueryCanceled {latency * 1000:.0f} ms after cancel() mid-stream")


@pytest.mark.scenario("C5", flavour="sync")
def test_cancel_idle_and_closed_is_a_no_op(dsn: str) -> None:
    conn = psycopg3_sync.connect(dsn)
    conn.cancel()
    # Time is the subject: a late cancel signal would land during this pause,
    # on the idle backend, which must ignore it.
    time.sleep(0.1)
    assert conn.execute("select 18").fetchone() == (18,)
    conn.close()
    conn.cancel()
    with pytest.raises(psycopg3.InterfaceError):
        conn.execute("select 1")


@pytest.mark.anyio
@pytest.mark.scenario("C4")
@pytest.mark.parametrize("flavour", ["trio", "anyio-trio"], indirect=True)
async def test_no_cancel_worker_left_behind(
    flavour: Any, dsn: str, observe: Callable[[str], None]
) -> None:
    # With a libpq < 17 each cancel request runs in a worker thread of the
    # core: it ends once PQcancel returns, nothing lingers.
    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "psycopg3-cancel"]

    conn = await flavour.connect(dsn, autocommit=True)
    try:
        for _ in range(5):
            # The deadline is the interruption: it cancels the command wherever it is.
            with anyio.move_on_after(0.1) as scope:
                await conn.execute("select pg_sleep(5)")
            assert scope.cancelled_caught
        await await_until(lambda: not workers(), "the cancel workers to end")
        await check_usable(conn, 19)
        mode = "non-blocking (libpq 17+)" if generators_nonblocking() else "worker thread"
        observe(f"5 cancel scopes: cancel requests by {mode}; no worker left, usable")
    finally:
        await conn.close()


def generators_nonblocking() -> bool:
    from psycopg3._cancel import NONBLOCKING_CANCEL

    return NONBLOCKING_CANCEL
