"""The network fails under the connection: FIN, RST, blackhole, deaf listener (L5-L10, C8, C9).

Every test runs the client through ``faultproxy.FaultProxy`` (fixture
``proxy``) and switches the fault on at the moment the scenario names. The
proxy is driven from threads (``later``): in the sync flavour the test's own
thread is blocked in the call under test.

What every test holds the driver to: the call in progress fails with
``OperationalError`` (or the caller's own interruption) within a stated
bound — never a hang —, the connection then says ``broken``, and nothing is
left open. Outcomes that are facts of the network rather than promises of the
driver (was a lost COMMIT applied? did keepalives see a frozen peer?) are
recorded with ``observe``, not asserted.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
import trio

import psycopg3
import psycopg3_sync
from faultproxy import FaultProxy
from fix_flavours import ASYNC_FLAVOURS, Flavour
from fix_wait import await_until, wait_until
from psycopg3.abc import CANCEL_TIMEOUT, DRAIN_TIMEOUT
from psycopg3.conninfo import conninfo_to_dict, make_conninfo

# Frozen, trickling and deaf networks: run by `nox -s reliability`.
pytestmark = pytest.mark.slow

#: The longest an interrupted call may take once interrupted, with a silent
#: server. Expected: the driver's own deadlines, CANCEL_TIMEOUT + DRAIN_TIMEOUT
#: (10 s) at most; twice that tells a recovery that keeps to its deadlines from
#: one that hangs, on any load, within the per-test timeout.
RECOVERY_BOUND = 2 * (CANCEL_TIMEOUT + DRAIN_TIMEOUT)
#: The longest a cancel request to a frozen server may take. Expected:
#: CANCEL_TIMEOUT (5 s), the driver's own deadline; twice that on any load.
CANCEL_BOUND = 2 * CANCEL_TIMEOUT
#: The longest a call that must end at once may take: it waits on nothing
#: (expected: milliseconds); far more only tells "prompt" from "a hang".
PROMPT = 10.0
#: When the client's own deadline fires in the deadline and Ctrl-C tests.
INTERRUPT_AFTER = 1.0


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


class Later:
    """Run ``action`` in a thread after ``delay`` seconds; remember when it ran."""

    def __init__(self, delay: float, action: Callable[[], object]):
        self.fired_at: float | None = None
        self._delay = delay
        self._action = action
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The delay is the scenario's: how long a watch lasts (keepalives).
        time.sleep(self._delay)
        self.fired_at = time.monotonic()
        self._action()

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the scheduled action did not return"


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], object]], Later]]:
    scheduled: list[Later] = []

    def schedule(delay: float, action: Callable[[], object]) -> Later:
        scheduled.append(Later(delay, action))
        return scheduled[-1]

    yield schedule
    for item in scheduled:
        item.join()


async def interrupt_after(
    flavour: Flavour, delay: float, call: Callable[[], Awaitable[Any]]
) -> tuple[bool, Any]:
    """Run ``call()`` under the flavour's own deadline; return (interrupted, result)."""
    if flavour.name == "asyncio":
        # wait_for rather than asyncio.timeout(): the project supports Python 3.10.
        try:
            return False, await asyncio.wait_for(call(), delay)
        except asyncio.TimeoutError:
            return True, None
    if flavour.name == "trio":
        with trio.move_on_after(delay) as trio_scope:
            return False, await call()
        return trio_scope.cancelled_caught, None
    with anyio.move_on_after(delay) as anyio_scope:
        return False, await call()
    return anyio_scope.cancelled_caught, None


async def interrupt_when(
    flavour: Flavour, ready: threading.Event, call: Callable[[], Awaitable[Any]]
) -> tuple[bool, Any, float]:
    """Run ``call()``; cancel it the flavour's way once ``ready`` is set.

    Return (interrupted, result, when the cancellation was sent).
    """
    sent: list[float] = []
    if flavour.name == "asyncio":
        task = asyncio.ensure_future(call())
        await await_until(lambda: ready.is_set() or task.done(), "the moment to interrupt")
        if not task.done():
            sent.append(time.monotonic())
            task.cancel()
        try:
            return False, await task, sent[0] if sent else 0.0
        except asyncio.CancelledError:
            return True, None, sent[0]
    # trio's own scope on trio, anyio's elsewhere (anyio runs on trio too).
    new_scope = trio.CancelScope if flavour.name == "trio" else anyio.CancelScope
    with new_scope() as scope:
        async with anyio.create_task_group() as group:

            async def cancel_when_ready() -> None:
                await await_until(ready.is_set, "the moment to interrupt")
                sent.append(time.monotonic())
                scope.cancel()

            group.start_soon(cancel_when_ready)
            result = await call()
            group.cancel_scope.cancel()
        return False, result, 0.0
    return scope.cancelled_caught, None, sent[0]


def interrupt_main() -> float:
    """Send SIGINT to the main thread (a Ctrl-C); return when."""
    main = threading.main_thread().ident
    assert main is not None
    sent = time.monotonic()
    signal.pthread_kill(main, signal.SIGINT)
    return sent


def sigint_later(delay: float) -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def cause_of(error: BaseException) -> str:
    """Describe the chained cause; an OS-level cause must be an OSError."""
    cause = error.__cause__
    if cause is None:
        return "no chained cause (libpq's message only)"
    assert isinstance(cause, (OSError, psycopg3.OperationalError)), repr(cause)
    return f"cause {type(cause).__name__}: {cause}"


def driver_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("psycopg3") and record.levelno >= logging.WARNING
    ]


def terminate(admin: psycopg3_sync.Connection, pid: int) -> None:
    """End a backend left behind a frozen proxy, so it cannot outlive the test."""
    admin.execute("select pg_terminate_backend(%s)", (pid,))


def multi_host(dsn: str, *ports: int, **extra: Any) -> str:
    params = conninfo_to_dict(dsn)
    params.pop("hostaddr", None)
    params["host"] = ",".join("127.0.0.1" for _ in ports)
    params["port"] = ",".join(str(port) for port in ports)
    return make_conninfo("", **params, **extra)


def server_port(dsn: str) -> int:
    return int(conninfo_to_dict(dsn)["port"])


def reset_once_sent(proxy: FaultProxy, nbytes: int, fired: list[int]) -> None:
    """Reset the proxy once *nbytes* more went client→server (run in a thread)."""
    target = proxy.bytes_to_server + nbytes
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sent = proxy.bytes_to_server
        if sent >= target:
            fired.append(sent)  # first: the client may see the reset before reset() returns
            proxy.reset()
            return
        # Polling the proxy's counter: it announces nothing.
        time.sleep(0.001)


def md5_rows(first: int, last: int) -> list[tuple[int, str]]:
    """The rows ``select g, md5(g::text) from generate_series(first, last) g`` gives."""
    return [(i, hashlib.md5(str(i).encode()).hexdigest()) for i in range(first, last + 1)]


def copy_text(rows: list[tuple[int, str]]) -> bytes:
    """*rows* in COPY's text format."""
    return b"".join(f"{a}\t{b}\n".encode() for a, b in rows)


# -- L5: the peer closes (FIN) mid-operation -----------------------------


class When:
    """Run ``action`` in a thread once ``condition()`` holds; remember whether it ran."""

    def __init__(self, condition: Callable[[], bool], action: Callable[[], object]):
        self.ran = False
        self._stopped = False
        self._condition = condition
        self._action = action
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 30  # a guard for a test gone wrong, not a bound
        while not self._condition():
            if self._stopped or time.monotonic() > deadline:
                return
            # Polling: neither the proxy nor the server announces the condition.
            time.sleep(0.005)
        self._action()
        self.ran = True

    def join(self) -> None:
        self._thread.join(35)
        assert self.ran, "the condition never held: the action did not run"

    def stop(self) -> None:
        """Stop waiting for the condition (the test ends) and wait for the thread."""
        self._stopped = True
        self._thread.join(35)


#: In the 50 MB parameter of the ``sending`` case, 2 MB in: the proxy cuts there.
FIN_MARK = "<fin-mid-upload>"


@pytest.mark.anyio
@pytest.mark.scenario("L5")
@pytest.mark.parametrize("moment", ["waiting", "sending", "between"])
async def test_fin_mid_operation(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    observe: Any,
    caplog: pytest.LogCaptureFixture,
    moment: str,
) -> None:
    # The FIN comes at a moment the proxy or the server shows, never after a
    # delay: the outcome does not depend on how fast anything runs.
    caplog.set_level(logging.WARNING, logger="psycopg3")
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    closer: When | None = None
    try:
        params: tuple[Any, ...] | None = None
        if moment == "between":
            await conn.execute("select 1")
            proxy.close()
            query = "select 2"
        elif moment == "waiting":
            # Closed once the server runs the query: a sleep it would end in an hour.
            query = "select pg_sleep(3600)"

            def sleeping() -> bool:
                row = admin.execute(
                    "select state = 'active' and query like '%%pg_sleep(3600)%%'"
                    " from pg_stat_activity where pid = %s",
                    (pid,),
                ).fetchone()
                return row == (True,)

            closer = When(sleeping, proxy.close)
        else:
            # 50 MB: the proxy relays 2 MB and the chunk holding the mark, then
            # closes the connection (FIN, as close() does) while the client
            # still has some 48 MB to write, more than every buffer on the
            # way holds.
            value = "x" * 2_000_000 + FIN_MARK
            value += "x" * (50_000_000 - len(value))
            proxy.cut_after(FIN_MARK.encode())
            query, params = "select length(%s)", (value,)
        start = time.monotonic()
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            await conn.execute(query, params)
        elapsed = time.monotonic() - start
        if closer is not None:
            closer.join()
        if moment == "waiting":
            # Never waited for the server: the query still runs there.
            assert sleeping()
        if moment == "sending":
            # Never completed the upload: the FIN came mid-parameter.
            assert 1_000_000 < proxy.bytes_to_server < 50_000_000
        assert conn.broken
        assert driver_warnings(caplog) == []
        sent = f", {proxy.bytes_to_server / 1e6:.1f} MB sent" if moment == "sending" else ""
        observe(
            f"FIN {moment}: {type(excinfo.value).__name__} after"
            f" {elapsed * 1000:.0f} ms{sent}; {cause_of(excinfo.value)}; broken"
        )
    finally:
        if closer is not None:
            closer.stop()
        await conn.close()
        if moment == "waiting":
            terminate(admin, pid)  # the sleep would outlive the test


# -- L6: RST in the middle of a result stream ----------------------------


@pytest.mark.anyio
@pytest.mark.scenario("L6")
async def test_rst_mid_result_fetchall(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    try:
        proxy.reset_after(1_000_000)
        rows: list[Any] | None = None
        start = time.monotonic()
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            cur = await conn.execute("select generate_series(1, 5000000)")
            rows = await cur.fetchall()
        elapsed = time.monotonic() - start
        assert rows is None  # never a truncated list
        assert conn.broken
        await assert_refused_promptly(conn)
        observe(
            f"RST after 1 MB of fetchall: {type(excinfo.value).__name__} after"
            f" {elapsed * 1000:.0f} ms, no rows returned; broken; next call refused at once"
        )
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("L6")
async def test_rst_mid_server_cursor(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    conn = await flavour.connect(proxy_dsn)
    try:
        cur = conn.cursor("l6_stream")
        await cur.execute("select g, repeat('x', 100) from generate_series(1, 1000000) g")
        proxy.reset_after(1_000_000)
        received: list[int] = []
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            async for row in cur:
                received.append(row[0])
        # The rows of the fetches that completed, in order, then the error.
        assert 1000 < len(received) < 1_000_000
        assert received == list(range(1, len(received) + 1))
        assert conn.broken
        observe(
            f"server cursor: {len(received)} rows received, then"
            f" {type(excinfo.value).__name__}; broken"
        )
    finally:
        await conn.close()


#: About 110 MB of COPY data, one CopyData message (one row) of 108 bytes or so each.
FILLER = "x" * 100
COPY_OUT_ROWS = 1_000_000
COPY_OUT_QUERY = f"select g, repeat('x', 100) from generate_series(1, {COPY_OUT_ROWS}) g"
COPY_OUT = f"copy ({COPY_OUT_QUERY}) to stdout"


async def assert_refused_promptly(conn: Any) -> None:
    """The next call on a broken connection fails at once: refused before any I/O."""
    with pytest.raises(psycopg3.OperationalError, match="it is broken"):
        await conn.execute("select 1")


@pytest.mark.anyio
@pytest.mark.scenario("L6")
@pytest.mark.parametrize("read_as", ["blocks", "rows"])
async def test_rst_mid_copy_out(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any, read_as: str
) -> None:
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    try:
        cur = conn.cursor()
        proxy.reset_after(1_000_000)
        received = 0
        start = time.monotonic()
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            async with cur.copy(COPY_OUT) as copy:
                if read_as == "blocks":
                    tail = b""
                    async for block in copy:
                        # The rows, in order: nothing torn, nothing skipped.
                        *lines, tail = (tail + block).split(b"\n")
                        for line in lines:
                            assert line == f"{received + 1}\t{FILLER}".encode()
                            received += 1
                else:
                    copy.set_types(["int4", "text"])
                    async for row in copy.rows():
                        assert row == (received + 1, FILLER)
                        received += 1
        elapsed = time.monotonic() - start
        # Rows in order, then the error, never the end. How many arrive is the
        # network's business: the RST makes the kernel drop what the client
        # had not read yet (a slower reader, such as rows(), sees fewer).
        assert received < COPY_OUT_ROWS
        assert conn.broken
        await assert_refused_promptly(conn)
        observe(
            f"RST after 1 MB of COPY TO read as {read_as}: {received} rows, then"
            f" {type(excinfo.value).__name__} after {elapsed * 1000:.0f} ms; broken;"
            " next call refused at once"
        )
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("L6")
@pytest.mark.parametrize("write_as", ["rows", "buffers"])
async def test_rst_mid_copy_in(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
    write_as: str,
) -> None:
    table = f"l6_copy_in_{flavour.name}_{write_as}".replace("-", "_")
    admin.execute(f"drop table if exists {table}")
    admin.execute(f"create table {table} (a int, b text)")
    # 110 MB either way: 1,000 rows per buffer.
    rows = 1_000_000
    buffer_rows = 1000
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    try:
        cur = conn.cursor()
        # About 6 MB/s: the client fills the sockets and waits to write, and
        # the reset lands with most of the stream still to send.
        proxy.trickle(64 * 1024, 0.01)
        fired: list[int] = []
        written = 0
        ended = False
        start = time.monotonic()
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            async with cur.copy(f"copy {table} (a, b) from stdin") as copy:
                later(0.0, lambda: reset_once_sent(proxy, 1_000_000, fired))
                if write_as == "rows":
                    for i in range(1, rows + 1):
                        await copy.write_row((i, FILLER))
                        written += 1
                else:
                    for first in range(1, rows + 1, buffer_rows):
                        block = "".join(
                            f"{i}\t{FILLER}\n" for i in range(first, first + buffer_rows)
                        )
                        await copy.write(block.encode())
                        written += buffer_rows
                ended = True
        elapsed = time.monotonic() - start
        assert fired, "the proxy never saw 1 MB of COPY data"
        # A write raised: the stream was not written to its end into a dead socket.
        assert not ended
        assert written < rows
        assert conn.broken
        await assert_refused_promptly(conn)
        row = admin.execute(f"select count(*) from {table}").fetchone()
        assert row == (0,)  # nothing of the broken COPY committed
        observe(
            f"RST after 1 MB of COPY FROM written as {write_as}: {type(excinfo.value).__name__}"
            f" from a write after {written} of {rows} rows, {elapsed * 1000:.0f} ms;"
            " broken; next call refused at once; nothing committed"
        )
    finally:
        await conn.close()
        terminate(admin, pid)  # its lock on the table must not stall the drop
        admin.execute(f"drop table {table}")


# -- L7: blackhole mid-query -----------------------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("L7")
async def test_keepalives_against_an_acking_freeze(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
) -> None:
    conn = await flavour.connect(
        proxy_dsn,
        autocommit=True,
        keepalives=1,
        keepalives_idle=1,
        keepalives_interval=1,
        keepalives_count=2,
        tcp_user_timeout=2000,
    )
    pid = conn.pgconn.backend_pid
    watch = 6.0  # twice what keepalives (1 + 2 x 1 s) or tcp_user_timeout (2 s) need
    frozen: list[float] = []

    def freeze() -> None:
        proxy.freeze()
        frozen.append(time.monotonic())

    freezer = When(lambda: backend_active(admin, pid), freeze)
    try:
        closer = later(watch, proxy.close)
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            await conn.execute("select pg_sleep(2)")
        end = time.monotonic()
        freezer.join()
        closer.join()
        assert closer.fired_at is not None
        assert end - closer.fired_at < PROMPT  # once the proxy really closes
        assert conn.broken
        if end < closer.fired_at:
            seen = f"detected by keepalives after {end - frozen[0]:.1f} s of freeze"
        else:
            seen = (
                f"not detected in {closer.fired_at - frozen[0]:.1f} s of freeze"
                " (the proxy's kernel ACKs);"
                f" {type(excinfo.value).__name__} {(end - closer.fired_at) * 1000:.0f} ms"
                " after the proxy closed"
            )
        observe(f"keepalives 1/1/2, tcp_user_timeout 2 s: {seen}; broken")
    finally:
        freezer.stop()
        await conn.close()
        terminate(admin, pid)


@pytest.mark.anyio
@pytest.mark.scenario("L7")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_client_deadline_on_a_blackhole(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    observe: Any,
) -> None:
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    try:
        proxy.freeze()  # the query goes into the blackhole
        start = time.monotonic()
        interrupted, _ = await interrupt_after(
            flavour, INTERRUPT_AFTER, lambda: conn.execute("select 1")
        )
        back = time.monotonic() - start - INTERRUPT_AFTER
        assert interrupted
        assert back < RECOVERY_BOUND
        observe(
            f"deadline {INTERRUPT_AFTER:g} s on a frozen link: control back {back:.1f} s after"
            f" it; {'broken' if conn.broken else 'usable'}"
        )
    finally:
        await conn.close()
        terminate(admin, pid)


@pytest.mark.scenario("L7", flavour="sync")
def test_sync_close_from_thread_on_a_blackhole(
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
) -> None:
    conn = psycopg3_sync.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    try:
        proxy.freeze()
        # Closed once the query sits, unread, in the frozen proxy's socket.
        closed_at: list[float] = []
        closer = When(
            lambda: proxy.unread_from_clients > 0,
            lambda: (closed_at.append(time.monotonic()), conn.close()),
        )
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            conn.execute("select 1")
        closer.join()
        back = time.monotonic() - closed_at[0]
        assert back < RECOVERY_BOUND
        assert conn.closed
        observe(
            f"close() from a thread on a frozen link: {type(excinfo.value).__name__}"
            f" {back * 1000:.0f} ms after it; {'broken' if conn.broken else 'closed by user'}"
        )
    finally:
        conn.close()
        terminate(admin, pid)


# -- L8: a listener that never accepts -----------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("L8")
async def test_deaf_listener_connect_timeout(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    proxy.deaf()
    baseline = open_fds()
    ticks: list[float] = []
    pending = False

    async def ticker() -> None:
        while True:
            if pending:
                ticks.append(time.monotonic())
            # Any short pause: the ticks count the loop's turns during the connect.
            await anyio.sleep(0.01)

    async def attempt() -> BaseException:
        with pytest.raises(psycopg3.OperationalError) as excinfo:
            await flavour.connect(proxy_dsn, connect_timeout=2)
        return excinfo.value

    start = time.monotonic()
    if flavour.is_sync:
        error = await attempt()
    else:
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            pending = True
            error = await attempt()
            pending = False
            group.cancel_scope.cancel()
    elapsed = time.monotonic() - start
    assert re.search(r"time[ds]? ?out", str(error), re.IGNORECASE), str(error)
    # Expected: the 2 s of connect_timeout; not before it, and 10x that at most.
    assert 1.5 <= elapsed <= 20.0
    assert open_fds() == baseline
    stall = ""
    if not flavour.is_sync:
        # The loop ran during the connect: a blocking connect gives it no turn
        # (some 200 at 10 ms a turn over the 2 s).
        assert len(ticks) >= 10, f"the loop ran {len(ticks)} times during the connect"
        worst = max(b - a for a, b in zip(ticks, ticks[1:]))
        stall = f"; max loop stall {worst * 1000:.0f} ms over {len(ticks)} ticks"
    observe(f"connect_timeout=2: {type(error).__name__} after {elapsed:.2f} s{stall}; fds back")


# -- L9: the commit acknowledgement is lost ------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("L9")
@pytest.mark.parametrize("variant", ["commit", "autocommit-insert"])
async def test_commit_ack_lost(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    observe: Any,
    variant: str,
) -> None:
    table = f"l9_{flavour.name}_{variant}".replace("-", "_")
    admin.execute(f"drop table if exists {table}")
    admin.execute(f"create table {table} (id text primary key)")
    key = uuid.uuid4().hex
    insert = f"insert into {table} values (%s)"
    conn = await flavour.connect(
        proxy_dsn, sslmode="disable", autocommit=variant == "autocommit-insert"
    )
    pid = conn.pgconn.backend_pid
    try:
        if variant == "commit":
            await conn.execute(insert, (key,))
            proxy.cut_after(b"COMMIT")
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                await conn.commit()
        else:
            # Parse/Bind/Execute/Sync go in one chunk: cut right after it.
            proxy.cut_after(table.encode())
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                await conn.execute(insert, (key,))
        assert conn.broken
        # Once the backend is gone, the outcome is final.
        wait_until(
            lambda: (
                admin.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone()
                is None
            ),
            "the backend to end with its client",
        )
        row = admin.execute(f"select count(*) from {table} where id = %s", (key,)).fetchone()
        present = row == (1,)
        observe(
            f"{variant} cut after sending: {type(excinfo.value).__name__}, broken;"
            f" row {'present' if present else 'absent'} afterwards (in doubt)"
        )
    finally:
        await conn.close()
        admin.execute(f"drop table {table}")


# -- L10: trickle and corruption -------------------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("L10")
async def test_trickle_gives_identical_results(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, dsn: str, observe: Any
) -> None:
    query = "select g, md5(g::text) from generate_series(1, 2500) g"  # about 120 kB
    with psycopg3_sync.connect(dsn) as direct:
        expected = direct.execute(query).fetchall()
    proxy.trickle(1, 0.001)
    start = time.monotonic()
    conn = await flavour.connect(proxy_dsn, sslmode="disable")
    try:
        connected = time.monotonic() - start
        cur = await conn.execute("select current_user, 'é'")
        assert await cur.fetchone() == (conninfo_to_dict(dsn)["user"], "é")
        # One byte per write for the large result, without the pause (1 ms per
        # byte would take minutes): as many partial reads as there are bytes.
        proxy.trickle(1, 0)
        start = time.monotonic()
        cur = await conn.execute(query)
        rows = await cur.fetchall()
        fetched = time.monotonic() - start
        assert rows == expected
        observe(
            f"trickle 1 B/1 ms: connect + SCRAM in {connected:.1f} s; 1 B writes:"
            f" {proxy.bytes_to_client // 1000} kB result identical in {fetched:.1f} s"
        )
    finally:
        await conn.close()


async def trickled_copies(cur: Any, table: str, rows: list[tuple[int, str]]) -> bytes:
    """COPY *rows* into *table* with ``write_row``, then out again with ``read()``."""
    async with cur.copy(f"copy {table} (a, b) from stdin") as copy:
        for row in rows:
            await copy.write_row(row)
    received = bytearray()
    first, last = rows[0][0], rows[-1][0]
    query = f"copy (select a, b from {table} where a between {first} and {last} order by a)"
    async with cur.copy(f"{query} to stdout") as copy:
        while block := await copy.read():
            received += block
    return bytes(received)


@pytest.mark.anyio
@pytest.mark.scenario("L10")
async def test_trickle_copy_both_ways(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    observe: Any,
) -> None:
    table = f"l10_copy_{flavour.name}".replace("-", "_")
    admin.execute(f"drop table if exists {table}")
    admin.execute(f"create table {table} (a int primary key, b text)")
    # 1.6 kB at 1 byte per ms, then 300 kB at 128 bytes per ms (1 byte per ms
    # would take 5 minutes): CopyData messages of 38 to 43 bytes split at
    # every offset, in both directions.
    small, large = md5_rows(1, 40), md5_rows(41, 7540)
    conn = await flavour.connect(proxy_dsn, sslmode="disable", autocommit=True)
    try:
        cur = conn.cursor()
        cpu, wall = time.thread_time(), time.monotonic()
        proxy.trickle(1, 0.001)
        small_out = await trickled_copies(cur, table, small)
        proxy.trickle(128, 0.001)
        large_out = await trickled_copies(cur, table, large)
        cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
        proxy.forward()
        assert small_out == copy_text(small)
        assert large_out == copy_text(large)
        assert admin.execute(f"select a, b from {table} order by a").fetchall() == small + large
        observe(
            f"COPY both ways trickled (1.6 kB at 1 B/1 ms, {len(large_out) // 1000} kB at"
            f" 128 B/1 ms): identical; client thread CPU {cpu * 1000:.0f} ms in {wall:.1f} s"
        )
        # The client thread only: the proxy's relay thread lives in this process.
        # A client polling instead of waiting would spend the whole wall time.
        assert cpu < 0.5 * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s: a busy loop"
    finally:
        await conn.close()
        admin.execute(f"drop table {table}")


@pytest.mark.anyio
@pytest.mark.scenario("L10")
@pytest.mark.parametrize(
    "offset, what", [(0, "message type"), (1, "message length")], ids=["type", "length"]
)
async def test_corrupt_byte(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any, offset: int, what: str
) -> None:
    conn = await flavour.connect(proxy_dsn, sslmode="disable", autocommit=True)
    try:
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)
        proxy.corrupt(offset)  # counted from the next byte the server sends
        start = time.monotonic()
        with pytest.raises(psycopg3.DatabaseError) as excinfo:
            await conn.execute("select 2")
        elapsed = time.monotonic() - start
        # Expected: milliseconds (the bad byte is read at once); 5 s is the
        # drain's own deadline, which a recovery waiting on the bad stream reaches.
        assert elapsed < 5.0
        broken = conn.broken
        if broken:
            after = "next call refused"
        else:
            # libpq skipped the unknown message and went on: what does the
            # connection answer now? (recorded: the stream was not trustworthy)
            try:
                cur = await conn.execute("select 3")
                after = f"next call returned {await cur.fetchone()}"
            except psycopg3.Error as ex:
                after = f"next call raised {type(ex).__name__}"
        observe(
            f"{what} byte flipped: {type(excinfo.value).__name__} after {elapsed * 1000:.0f} ms"
            f" ({str(excinfo.value).splitlines()[0]}); broken={broken}; {after}"
        )
        assert isinstance(excinfo.value, psycopg3.OperationalError)
        assert broken
    finally:
        await conn.close()


# -- C8: interrupting a query whose server went silent -------------------


def backend_active(admin: psycopg3_sync.Connection, pid: int) -> bool:
    row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()
    return row == ("active",)


def freeze_once_active(
    admin: psycopg3_sync.Connection,
    pid: int,
    proxy: FaultProxy,
    frozen: threading.Event | None = None,
) -> None:
    """Freeze the proxy once the backend runs the query (called from a thread)."""
    wait_until(lambda: backend_active(admin, pid), f"backend {pid} to run the query")
    proxy.freeze()
    if frozen is not None:
        frozen.set()


@pytest.mark.anyio
@pytest.mark.scenario("C8")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_interrupt_against_frozen_server(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
) -> None:
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    try:
        # Interrupted once the proxy froze mid-query, not after a delay.
        frozen = threading.Event()
        later(0.0, lambda: freeze_once_active(admin, pid, proxy, frozen))
        interrupted, _, sent = await interrupt_when(
            flavour, frozen, lambda: conn.execute("select pg_sleep(30)")
        )
        back = time.monotonic() - sent
        assert interrupted
        assert back < RECOVERY_BOUND
        assert conn.broken
        observe(
            f"pg_sleep(30) frozen, then interrupted: control back"
            f" {back:.1f} s later (bound {CANCEL_TIMEOUT:g}+{DRAIN_TIMEOUT:g} s); broken"
        )
    finally:
        await conn.close()
        terminate(admin, pid)


@pytest.mark.scenario("C8", flavour="sync")
def test_sync_ctrl_c_against_frozen_server(
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
) -> None:
    assert threading.current_thread() is threading.main_thread()
    conn = psycopg3_sync.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    try:
        # Ctrl-C once the proxy froze mid-query, not after a delay.
        sent: list[float] = []
        interrupter = later(
            0.0,
            lambda: (freeze_once_active(admin, pid, proxy), sent.append(interrupt_main())),
        )
        with pytest.raises(KeyboardInterrupt):
            conn.execute("select pg_sleep(30)")
        interrupter.join()
        back = time.monotonic() - sent[0]
        assert back < RECOVERY_BOUND
        assert conn.broken
        observe(f"Ctrl-C on a frozen server: KeyboardInterrupt {back:.1f} s after it; broken")
    finally:
        conn.close()
        terminate(admin, pid)


@pytest.mark.scenario("C8", flavour="sync")
def test_sync_cancel_from_thread_against_frozen_server(
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    later: Any,
    observe: Any,
) -> None:
    conn = psycopg3_sync.connect(proxy_dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    took: list[float] = []

    def cancel_then_close_proxy() -> None:
        # The cancel request meets the frozen proxy too: it must give up by
        # itself. The hang guard is the join; the proxy closes either way.
        worker = threading.Thread(target=conn.cancel, daemon=True)
        start = time.monotonic()
        worker.start()
        worker.join(CANCEL_BOUND)
        took.append(time.monotonic() - start)
        proxy.close()
        worker.join(10)

    try:
        # The cancel goes once the proxy froze mid-query, not after a delay.
        later(0.0, lambda: (freeze_once_active(admin, pid, proxy), cancel_then_close_proxy()))
        with pytest.raises(psycopg3.OperationalError):
            conn.execute("select pg_sleep(30)")
        assert conn.broken
        assert took and took[0] < CANCEL_BOUND
        observe(
            f"cancel() from a thread on a frozen server returned in {took[0]:.1f} s"
            f" (bound {CANCEL_TIMEOUT:g} s); the query then ended by the proxy closing"
        )
    finally:
        conn.close()
        terminate(admin, pid)


# -- C9: several hosts, the first one deaf --------------------------------


@pytest.mark.anyio
@pytest.mark.scenario("C9")
async def test_multi_host_passes_a_deaf_host(
    flavour: Flavour, proxy: FaultProxy, dsn: str, observe: Any
) -> None:
    proxy.deaf()
    with FaultProxy("127.0.0.1", server_port(dsn)) as second:
        conninfo = multi_host(dsn, proxy.port, second.port, connect_timeout=3)
        start = time.monotonic()
        conn = await flavour.connect(conninfo)
        elapsed = time.monotonic() - start
        try:
            cur = await conn.execute("select 1")
            assert await cur.fetchone() == (1,)
            assert second.connections == 1
            # Expected: the first host's 3 s timeout; not before it, 10x that at most.
            assert 2.5 <= elapsed < 30.0
            observe(
                f"deaf first host, connect_timeout=3: second host reached after {elapsed:.1f} s"
            )
        finally:
            await conn.close()


@pytest.mark.anyio
@pytest.mark.scenario("C9")
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_interrupted_connect_tries_no_further_host(
    flavour: Flavour, proxy: FaultProxy, dsn: str, observe: Any
) -> None:
    proxy.deaf()
    with FaultProxy("127.0.0.1", server_port(dsn)) as second:
        conninfo = multi_host(dsn, proxy.port, second.port, connect_timeout=3)
        baseline = open_fds()
        start = time.monotonic()
        # The deadline (1 s) is the scenario: it fires within the first
        # host's connect_timeout (3 s), during the hanging connect.
        interrupted, conn = await interrupt_after(
            flavour, INTERRUPT_AFTER, lambda: flavour.connect(conninfo)
        )
        back = time.monotonic() - start - INTERRUPT_AFTER
        if conn is not None:
            await conn.close()
        assert interrupted
        assert back < PROMPT
        # Time is the subject: a background attempt would go on to the second
        # host once the first one's 3 s timeout ran out; 0.5 s past it, none did.
        await anyio.sleep(max(0.0, start + 3.5 - time.monotonic()))
        assert second.connections == 0
        assert open_fds() == baseline
        observe(
            f"interrupted at {INTERRUPT_AFTER:g} s: control back {back * 1000:.0f} ms later;"
            " second host never contacted; fds back to baseline"
        )


@pytest.mark.scenario("C9", flavour="sync")
def test_sync_ctrl_c_connect_tries_no_further_host(
    proxy: FaultProxy, dsn: str, observe: Any
) -> None:
    assert threading.current_thread() is threading.main_thread()
    proxy.deaf()
    with FaultProxy("127.0.0.1", server_port(dsn)) as second:
        conninfo = multi_host(dsn, proxy.port, second.port, connect_timeout=3)
        baseline = open_fds()
        # The Ctrl-C time (1 s) is the scenario: within the first host's 3 s.
        timer = sigint_later(INTERRUPT_AFTER)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            psycopg3_sync.connect(conninfo)
        timer.join()
        back = time.monotonic() - start - INTERRUPT_AFTER
        assert back < PROMPT
        # Time is the subject: a background attempt would go on to the second
        # host once the first one's 3 s timeout ran out; 0.5 s past it, none did.
        time.sleep(max(0.0, start + 3.5 - time.monotonic()))
        assert second.connections == 0
        assert open_fds() == baseline
        observe(
            f"Ctrl-C at {INTERRUPT_AFTER:g} s: KeyboardInterrupt {back * 1000:.0f} ms later;"
            " second host never contacted; fds back to baseline"
        )
