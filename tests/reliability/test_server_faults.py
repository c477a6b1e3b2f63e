"""The server ends a session: terminated, timed out, restarted or crashed (L1-L4).

Whatever the server does, the client must learn it from the call in progress
(or from the next call on an idle connection), promptly, with the server's
error class when libpq reports one, and the connection must then say so:
``closed`` and ``broken`` true, every later call refused at once with
``OperationalError`` instead of a hang or a libpq crash. A result cut short
by the end of the session is never handed out as if it were complete.

Restart and crash tests (L3, L4) run on a private cluster: they would take the
session's server, and every other test's connection, down with them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3_sync
from fix_wait import wait_until
from psycopg3 import errors

# Server restarts, crashes and terminated sessions: run by `nox -s reliability`.
pytestmark = pytest.mark.slow

#: The server's message when it terminates a backend (SQLSTATE 57P01).
ADMIN_SHUTDOWN_MESSAGE = "terminating connection due to administrator command"

#: The "never a hang" bound of a call that must fail at once: it waits on
#: nothing (expected: milliseconds); far more only tells "at once" from a hang.
IMMEDIATE = 10.0


class Later:
    """Run ``action`` in a thread once ``when()`` holds and remember when it ran.

    A thread, not a task: in the sync flavour the test's own thread is blocked
    in the query, and in the async ones the action is a blocking call.
    """

    def __init__(self, when: Callable[[], object], action: Callable[[], object]):
        self.when = when
        self.action = action
        self.fired_at: float | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            wait_until(self.when, "the moment to act")
            self.fired_at = time.monotonic()
            self.action()
        except BaseException as ex:  # noqa: BLE001 - reported by join()
            self.error = ex

    def __enter__(self) -> Later:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(60)

    async def join(self) -> None:
        await anyio.to_thread.run_sync(self.thread.join, 60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error

    def latency(self, when: float) -> float:
        """Seconds from the action to ``when``."""
        assert self.fired_at is not None, "the action had not run yet"
        return when - self.fired_at


def terminate(admin: Any, pid: int) -> Callable[[], object]:
    def run() -> object:
        row = admin.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row == (True,), f"backend {pid} was not there to terminate"
        return row

    return run


def wait_backend_gone(admin: Any, pid: int) -> None:
    query = "select count(*) from pg_stat_activity where pid = %s"
    wait_until(
        lambda: admin.execute(query, (pid,)).fetchone() == (0,),
        f"backend {pid} to leave pg_stat_activity",
    )


def backend_in(admin: Any, pid: int, *states: str) -> Callable[[], bool]:
    """A condition: backend *pid* is in one of *states* (pg_stat_activity's)."""

    def check() -> bool:
        row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,))
        return (row.fetchone() or (None,))[0] in states

    return check


async def assert_unusable(conn: Any) -> None:
    """Check a connection lost to the server: flagged, and refusing work at once."""
    assert conn.closed
    assert conn.broken
    await conn.close()
    assert conn.closed
    assert conn.broken, "close() on a broken connection must not clear the flag"
    start = time.monotonic()
    with pytest.raises(psycopg3.OperationalError):
        await conn.execute("select 1")
    with pytest.raises(psycopg3.OperationalError):
        conn.cursor()
    with pytest.raises(psycopg3.OperationalError):
        await conn.commit()
    with pytest.raises(psycopg3.OperationalError):
        await conn.rollback()
    assert time.monotonic() - start < IMMEDIATE
    # Like on a closed connection (C5): a cancel has nothing to reach, and is a no-op.
    await conn.cancel()
    assert conn.broken


def class_name(ex: BaseException) -> str:
    return type(ex).__name__


# -- L1: pg_terminate_backend during a query ----------------------------------

#: What the terminated query is doing when the terminate lands.
L1_VARIANTS = ["pg_sleep", "server_cursor_fetchmany", "big_result", "executemany"]


@pytest.mark.scenario("L1")
@pytest.mark.anyio
@pytest.mark.parametrize("variant", L1_VARIANTS)
async def test_terminate_during_query(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None], variant: str
) -> None:
    table = f"faults_l1_{uuid.uuid4().hex[:12]}"
    if variant == "executemany":
        admin.execute(f"create table {table} (id int)")
    conn = await flavour.connect(dsn, autocommit=variant in ("pg_sleep", "big_result"))
    try:
        pid = conn.pgconn.backend_pid
        batches: list[list[Any]] = []
        # The terminate lands once the server is at work on the command.
        if variant == "server_cursor_fetchmany":
            at_work = lambda: bool(batches)  # noqa: E731 - some rows fetched
        elif variant == "executemany":
            at_work = backend_in(admin, pid, "active", "idle in transaction")
        else:
            at_work = backend_in(admin, pid, "active")
        with Later(at_work, terminate(admin, pid)) as later:
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                if variant == "pg_sleep":
                    # An hour: nothing but the terminate ends it.
                    await conn.execute("select pg_sleep(3600)")
                elif variant == "server_cursor_fetchmany":
                    # Each FETCH of 50 rows takes the server about 50 ms.
                    cur = conn.cursor("faults_l1_cursor")
                    await cur.execute(
                        "select g, pg_sleep(0.001)::text from generate_series(1, 100000) g"
                    )
                    while batch := await cur.fetchmany(50):
                        batches.append(batch)
                elif variant == "big_result":
                    # 2 MB of rows over about 1 s: the client is receiving them
                    # (the server flushes every 8 kB) when the terminate lands.
                    cur = conn.cursor()
                    await cur.execute(
                        "select g, repeat('x', 1000) || pg_sleep(0.0005)::text"
                        " from generate_series(1, 2000) g"
                    )
                    batches.append(await cur.fetchall())
                else:
                    cur = conn.cursor()
                    await cur.executemany(
                        f"insert into {table} (id) select %s from pg_sleep(0.001)",
                        [(i,) for i in range(2000)],
                    )
            raised_at = time.monotonic()
            await later.join()
        ms = later.latency(raised_at) * 1000
        observe(f"{variant}: {class_name(excinfo.value)} {ms:.0f} ms after the terminate")
        assert ms < IMMEDIATE * 1000, "the terminated query was not reported promptly"
        # Rows handed out before the terminate were whole batches, in order:
        # nothing cut short was returned as if the result had ended there.
        assert batches == [
            [(n, "") for n in range(i * 50 + 1, i * 50 + 51)] for i in range(len(batches))
        ]
        await assert_unusable(conn)
        if variant != "pg_sleep":
            with pytest.raises(psycopg3.Error):
                await cur.fetchall()
        if variant == "executemany":
            row = admin.execute(f"select count(*) from {table}").fetchone()
            assert row == (0,), "rows of the terminated transaction are visible"
        # Last: the server's class. Its FATAL message reaches libpq before the
        # closed socket does, except when executemany is still writing (the
        # write fails first); when libpq read it, the class must be raised.
        server_said = ADMIN_SHUTDOWN_MESSAGE in str(excinfo.value)
        assert server_said or variant == "executemany", str(excinfo.value)
        if server_said:
            assert isinstance(excinfo.value, errors.AdminShutdown), (
                f"libpq read the server's 57P01 but {class_name(excinfo.value)} was raised:"
                f" {excinfo.value}"
            )
    finally:
        await conn.close()
        if variant == "executemany":
            admin.execute(f"drop table {table}")


# -- L2: the server kills an idle connection -----------------------------------

#: How the idle session ends, with the class the server reports for it.
L2_VARIANTS: dict[str, type[psycopg3.Error]] = {
    "terminated": errors.AdminShutdown,
    "idle_in_transaction_session_timeout": errors.IdleInTransactionSessionTimeout,
    "idle_session_timeout": errors.IdleSessionTimeout,
}


@pytest.mark.scenario("L2")
@pytest.mark.anyio
@pytest.mark.parametrize("variant", list(L2_VARIANTS))
async def test_server_ends_idle_session(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None], variant: str
) -> None:
    conn = await flavour.connect(dsn, autocommit=variant != "idle_in_transaction_session_timeout")
    try:
        pid = conn.pgconn.backend_pid
        if variant == "terminated":
            terminate(admin, pid)()
        elif variant == "idle_in_transaction_session_timeout":
            # Not in autocommit: the SET opens the transaction left idle.
            await conn.execute("set idle_in_transaction_session_timeout = '100ms'")
        else:
            await conn.execute("set idle_session_timeout = '200ms'")
        # The server's own timeout (or the terminate) ends the backend.
        wait_backend_gone(admin, pid)
        start = time.monotonic()
        with pytest.raises((psycopg3.OperationalError, L2_VARIANTS[variant])) as excinfo:
            await conn.execute("select 1")
        assert time.monotonic() - start < IMMEDIATE
        observe(f"{variant}: first use raised {class_name(excinfo.value)}")
        assert conn.broken, f"{class_name(excinfo.value)} raised but the connection is not broken"
        await assert_unusable(conn)
    finally:
        await conn.close()


@pytest.mark.scenario("L2")
@pytest.mark.anyio
@pytest.mark.parametrize("variant", list(L2_VARIANTS))
async def test_server_fatal_class_reported(
    flavour: Any, dsn: str, admin: Any, observe: Callable[[str], None], variant: str
) -> None:
    """The FATAL message the server sent before closing is read: its class is raised.

    libpq hands that message over as a result (with its SQLSTATE) before it
    notices the closed socket; the driver must not let the later read error
    replace it.
    """
    conn = await flavour.connect(dsn, autocommit=variant != "idle_in_transaction_session_timeout")
    try:
        pid = conn.pgconn.backend_pid
        if variant == "terminated":
            terminate(admin, pid)()
        elif variant == "idle_in_transaction_session_timeout":
            await conn.execute("set idle_in_transaction_session_timeout = '100ms'")
        else:
            await conn.execute("set idle_session_timeout = '200ms'")
        wait_backend_gone(admin, pid)
        with pytest.raises(psycopg3.Error) as excinfo:
            await conn.execute("select 1")
        observe(f"{variant}: {class_name(excinfo.value)}")
        assert isinstance(excinfo.value, L2_VARIANTS[variant]), (
            f"expected {L2_VARIANTS[variant].__name__}, got"
            f" {class_name(excinfo.value)}: {excinfo.value}"
        )
        assert conn.broken
    finally:
        await conn.close()


# -- L3 and L4: restart and crash, on a private cluster ---------------------------


#: The server's refusals while it starts or recovers (SQLSTATE 57P03).
NOT_YET_MESSAGES = (
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
)


def not_yet_up(ex: psycopg3.OperationalError) -> bool:
    """Tell a 57P03 refusal: ``CannotConnectNow``, or its message.

    libpq gives no SQLSTATE for a failed connection attempt (only its message),
    so a driver may raise the refusal as a plain ``OperationalError``.
    """
    return isinstance(ex, errors.CannotConnectNow) or any(m in str(ex) for m in NOT_YET_MESSAGES)


def connect_until_up(
    dsn: str, timeout: float = 20.0
) -> tuple[psycopg3_sync.Connection[Any], list[str], float]:
    """Connect, retrying while the server says it cannot accept connections yet.

    :return: the connection, the class names of the refusals met and the
        time of the successful connect.
    """
    refusals: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = psycopg3_sync.connect(dsn, autocommit=True)
        except psycopg3.OperationalError as ex:
            if not not_yet_up(ex) or time.monotonic() > deadline:
                raise
            refusals.append(class_name(ex))
            # Polling: the server does not announce that it accepts connections again.
            time.sleep(0.05)
            continue
        return conn, refusals, time.monotonic()


def describe_refusals(refusals: list[str]) -> str:
    if not refusals:
        return "no refusal"
    return ", ".join(f"{refusals.count(name)} {name}" for name in sorted(set(refusals)))


@pytest.mark.scenario("L3")
@pytest.mark.anyio
async def test_fast_restart_mid_query(
    flavour: Any, private_cluster: Any, observe: Callable[[str], None]
) -> None:
    dsn = private_cluster.dsn
    active = await flavour.connect(dsn, autocommit=True)
    idle = await flavour.connect(dsn, autocommit=True)
    watcher = psycopg3_sync.connect(dsn, autocommit=True)
    try:
        # The restart comes once the query runs: an hour's sleep, that
        # nothing but the restart ends.
        running = backend_in(watcher, active.pgconn.backend_pid, "active")
        with Later(running, lambda: private_cluster.restart("fast")) as later:
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                await active.execute("select pg_sleep(3600)")
            raised_at = time.monotonic()
            await later.join()
        restarted_at = time.monotonic()
        observe(
            f"active: {class_name(excinfo.value)} {later.latency(raised_at) * 1000:.0f} ms"
            " after pg_ctl restart began"
        )
        assert active.broken

        with pytest.raises(psycopg3.OperationalError) as idle_excinfo:
            await idle.execute("select 1")
        observe(f"idle: {class_name(idle_excinfo.value)} on next use")
        assert idle.broken
        await assert_unusable(active)
        await assert_unusable(idle)

        fresh, refusals, up_at = connect_until_up(dsn)
        with fresh:
            assert fresh.execute("select 1").fetchone() == (1,)
        observe(
            f"new connection {(up_at - restarted_at) * 1000:.0f} ms after pg_ctl returned"
            f" ({describe_refusals(refusals)})"
        )
        new = await flavour.connect(dsn)
        try:
            cur = await new.execute("select 2")
            assert await cur.fetchone() == (2,)
        finally:
            await new.close()
    finally:
        watcher.close()
        await active.close()
        await idle.close()


@pytest.mark.scenario("L4")
@pytest.mark.anyio
async def test_crash_of_another_backend(
    flavour: Any, private_cluster: Any, observe: Callable[[str], None]
) -> None:
    dsn = private_cluster.dsn
    sacrificial = psycopg3_sync.connect(dsn, autocommit=True)
    victim = sacrificial.execute("select pg_backend_pid()").fetchone()
    assert victim is not None
    active = await flavour.connect(dsn, autocommit=True)
    idle = await flavour.connect(dsn, autocommit=True)
    try:
        # The postmaster runs as postgres; as root the test may signal its children.
        # The kill comes once the query runs (the victim watches, until it dies):
        # an hour's sleep, that nothing but the crash ends.
        running = backend_in(sacrificial, active.pgconn.backend_pid, "active")
        with Later(running, lambda: os.kill(victim[0], signal.SIGKILL)) as later:
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                await active.execute("select pg_sleep(3600)")
            raised_at = time.monotonic()
            await later.join()
        observe(
            f"survivor: {class_name(excinfo.value)}"
            f" {later.latency(raised_at) * 1000:.0f} ms after kill -9 of another backend"
        )
        assert isinstance(excinfo.value, (errors.CrashShutdown, psycopg3.OperationalError))
        assert active.broken

        with pytest.raises(psycopg3.OperationalError) as idle_excinfo:
            await idle.execute("select 1")
        observe(f"idle survivor: {class_name(idle_excinfo.value)} on next use")
        assert idle.broken
        with pytest.raises(psycopg3.OperationalError):
            sacrificial.execute("select 1")
        assert sacrificial.broken
        sacrificial.close()
        await assert_unusable(active)
        await assert_unusable(idle)

        fresh, refusals, up_at = connect_until_up(dsn, timeout=30)
        with fresh:
            assert fresh.execute("select 1").fetchone() == (1,)
        observe(
            f"connect works {(up_at - raised_at) * 1000:.0f} ms after the survivor's error"
            f" (refused during recovery: {describe_refusals(refusals)})"
        )
        new = await flavour.connect(dsn)
        try:
            cur = await new.execute("select 3")
            assert await cur.fetchone() == (3,)
        finally:
            await new.close()
    finally:
        sacrificial.close()
        await active.close()
        await idle.close()
