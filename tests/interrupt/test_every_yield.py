"""Interruption at every yield of every command, in every flavour (issue 14, STYLE 16).

For each command, a first run without interruption counts its yields; then
for k = 0, 1, ... the command runs again, interrupted at yield k (see
``yield_points``), until a run ends before reaching k. After each
interruption the connection must be either usable — a follow-up query gets
its own tagged result, the transaction status the driver reports is the
server's (``pg_stat_activity``) and the one the user expects — or closed,
with a DB-API error on use and no backend left behind. What the command
reported done must be durable; what it did not report done must be all
there or absent, never half.

Modes (``yield_points.MODES``): ``interrupt`` (the flavour's own
interruption), ``timeout`` (asyncio: ``asyncio.timeout()`` expiring),
``twice`` (the interruption again at the next yield: in the recovery or the
block's exit), ``close`` (from another thread or task). Connect and the
pools sweep ``interrupt`` only: there is no connection to close from
elsewhere yet, or the pool owns it.

All the cases of one (command, flavour, mode) run in one test, each case's
problems collected and reported together. The default run sweeps every k of
every command in every mode (about 340 cases, under a minute on 2 cores);
``--every-yield-modes=interrupt`` narrows it. Each sweep is marked with the
RELIABILITY.md scenario it provokes, so ``nox -s reliability`` runs it too,
and ``fix_report.count_cases`` puts the number of cases in the report.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import trio

import psycopg3
import psycopg3_asyncio
import psycopg3_asyncio.pool
import psycopg3_sync
import psycopg3_sync.pool
import psycopg3_trio
import psycopg3_trio.pool
from fix_flavours import SyncFacade, load_doc_adapter
from fix_report import count_cases
from interrupt.yield_points import MODES, Interrupter, run_sync_coroutine
from psycopg3.pq import TransactionStatus

FLAVOURS = ["sync", "asyncio", "trio", "anyio-asyncio", "anyio-trio"]
#: The flavours with a pool (``fix_pool.POOL_FLAVOURS``).
POOL_FLAVOURS = ["sync", "asyncio", "trio"]


def _anyio_connect(dsn: str, **kwargs: Any) -> Any:
    return load_doc_adapter().anyio_connect(dsn, **kwargs)


CONNECT = {
    "sync": psycopg3_sync.connect,
    "asyncio": psycopg3_asyncio.asyncio_connect,
    "trio": psycopg3_trio.trio_connect,
    "anyio-asyncio": _anyio_connect,
    "anyio-trio": _anyio_connect,
}
SERVER_STATE = {
    TransactionStatus.IDLE: "idle",
    TransactionStatus.INTRANS: "idle in transaction",
    TransactionStatus.INERROR: "idle in transaction (aborted)",
}
#: A command yielding more than this many times is a runaway, not a sweep.
MAX_YIELDS = 200
#: Seconds allowed for the server to drop the backend of a closed connection
#: (expected: a few ms after Terminate; a bound against a hang only).
GONE_TIMEOUT = 10.0


class Boom(Exception):
    """Raised by a transaction block's body to take the rollback path."""


# -- what one run of a command did ----------------------------------------------


@dataclass
class Run:
    outcome: str = "done"  # done | interrupted | error
    error: BaseException | None = None
    progress: list[str] = field(default_factory=list)
    result: Any = None


@dataclass
class Ctx:
    """One sweep: its flavour, mode, server, and the connection under test."""

    flavour: str
    mode: str
    dsn: str
    admin: Any
    table: str
    conn: Any = None
    pid: int = 0
    nursery: Any = None
    closers: list[Any] = field(default_factory=list)

    async def connect(self, **kwargs: Any) -> Any:
        conn = CONNECT[self.flavour](self.dsn, **kwargs)
        if self.flavour == "sync":
            return SyncFacade(conn)
        return await conn

    def rows(self) -> list[int]:
        cur = self.admin.execute(f"select id from {self.table} order by id")
        return [row[0] for row in cur.fetchall()]

    def backend_state(self, pid: int) -> str | None:
        row = self.admin.execute(
            "select state from pg_stat_activity where pid = %s", (pid,)
        ).fetchone()
        return None if row is None else str(row[0])

    async def wait_gone(self, where: str, params: tuple[Any, ...]) -> list[str]:
        """Wait until no backend matches ``where`` (it was closed); return its states if not."""
        deadline = time.monotonic() + GONE_TIMEOUT
        query = f"select pid, state from pg_stat_activity where {where}"
        while rows := self.admin.execute(query, params).fetchall():
            if time.monotonic() > deadline:
                return [f"backend left behind: {rows}"]
            # Polling (pg_stat_activity announces no change), the flavour's way:
            if self.flavour == "sync":
                time.sleep(0.01)  # run_sync_coroutine's trampoline has no loop to await
            else:
                await anyio.sleep(0.01)  # anyio runs on asyncio's and trio's own loops too
        return []


# -- running one command, interrupted or not ------------------------------------


def _action(ctx: Ctx, scope: Any) -> Callable[[], None]:
    """What happens at yield k, built in the task or thread running the command."""
    if ctx.mode == "close":
        conn = ctx.conn
        if ctx.flavour == "sync":

            def close_from_thread() -> None:
                closer = threading.Thread(target=conn.target.close)
                ctx.closers.append(closer)
                closer.start()

            return close_from_thread
        if ctx.flavour == "asyncio":
            loop = asyncio.get_running_loop()
            return lambda: ctx.closers.append(loop.create_task(conn.close()))

        def close_from_task() -> None:
            closed = anyio.Event() if ctx.flavour.startswith("anyio") else trio.Event()
            ctx.closers.append(closed)

            async def close() -> None:
                try:
                    await conn.close()
                finally:
                    closed.set()

            ctx.nursery.start_soon(close)

        return close_from_task
    if ctx.flavour == "sync":

        def ctrl_c() -> None:
            raise KeyboardInterrupt

        return ctrl_c
    if ctx.flavour == "asyncio":
        task = asyncio.current_task()
        assert task is not None
        return lambda: task.cancel() and None
    return scope.cancel  # type: ignore[no-any-return]


async def run_command(
    ctx: Ctx, interrupter: Interrupter, command: Callable[[Ctx, Run], Awaitable[Any]]
) -> Run:
    run = Run()
    scope: Any = None
    if ctx.flavour == "trio":
        scope = trio.CancelScope()
    elif ctx.flavour.startswith("anyio"):
        scope = anyio.CancelScope()

    async def body() -> None:
        if ctx.mode == "timeout":
            await body_with_timeout()
            return
        interrupter.arm(_action(ctx, scope) if interrupter.at is not None else None)
        try:
            run.result = await command(ctx, run)
        finally:
            interrupter.disarm()

    async def body_with_timeout() -> None:
        # asyncio.timeout() cancels the task, then turns the cancellation into
        # TimeoutError and uncancels the task: code that counts cancellations
        # sees none left. The deadline is moved to "now" at yield k.
        try:
            async with asyncio.timeout(None) as deadline:
                loop = asyncio.get_running_loop()
                action = lambda: deadline.reschedule(loop.time())  # noqa: E731
                interrupter.arm(action if interrupter.at is not None else None)
                try:
                    run.result = await command(ctx, run)
                finally:
                    interrupter.disarm()
        except TimeoutError:
            run.outcome = "interrupted"

    try:
        if ctx.flavour == "asyncio":
            task = asyncio.ensure_future(body())
            await asyncio.wait([task])
            if task.cancelled():
                run.outcome = "interrupted"
            else:
                task.result()
        elif scope is not None:
            with scope:
                await body()
            if scope.cancelled_caught:
                run.outcome = "interrupted"
        else:
            await body()
    except KeyboardInterrupt:
        run.outcome = "interrupted"
    except Exception as ex:
        run.outcome = "error"
        run.error = ex
    for closer in ctx.closers:
        if ctx.flavour == "sync":
            closer.join()
        elif ctx.flavour == "asyncio":
            await closer
        else:
            await closer.wait()
    ctx.closers.clear()
    return run


# -- the checks after each case -------------------------------------------------


def error_problems(run: Run, *expected: type[BaseException]) -> list[str]:
    """An error that is neither a DB-API error nor one of ``expected``, as a problem."""
    if run.outcome == "error" and not isinstance(run.error, (psycopg3.Error, *expected)):
        return [f"not a DB-API error: {type(run.error).__name__}: {run.error}"]
    return []


async def check_connection(ctx: Ctx, run: Run, expect: set[TransactionStatus]) -> list[str]:
    """The connection is usable and truthful, or closed cleanly; the problems if not."""
    conn = ctx.conn
    problems = error_problems(run, Boom)
    if conn.closed:
        try:
            await conn.execute("select 1")
        except psycopg3.Error:
            pass
        except BaseException as ex:
            problems.append(f"closed, and use raises {type(ex).__name__}: {ex}")
        else:
            problems.append("closed, yet a query ran")
        problems += await ctx.wait_gone("pid = %s", (ctx.pid,))
        return problems
    status = conn.info.transaction_status
    server = ctx.backend_state(ctx.pid)
    if SERVER_STATE.get(status) != server:
        problems.append(f"driver says {status.name}, server says {server!r}")
    if status not in expect:
        problems.append(f"{status.name} where the user expects {sorted(s.name for s in expect)}")
    try:
        if status != TransactionStatus.IDLE and not conn.autocommit:
            await conn.rollback()
        tag = uuid.uuid4().hex
        cur = await conn.execute("select %s::text, pg_backend_pid()", (tag,))
        row = await cur.fetchone()
        if row != (tag, ctx.pid):
            problems.append(f"follow-up query got {row!r}, not its own result")
        if conn.info.transaction_status not in expect | {TransactionStatus.IDLE}:
            problems.append(f"left {conn.info.transaction_status.name} after a query")
    except Exception as ex:
        problems.append(f"not closed, yet unusable: {type(ex).__name__}: {ex}")
    return problems


def check_rows(ctx: Ctx, run: Run, done: list[int], allowed: list[list[int]]) -> list[str]:
    """Reported done: exactly ``done`` is there; otherwise one of ``allowed``."""
    rows = ctx.rows()
    if run.outcome == "done":
        if rows != done:
            return [f"reported done, but the table holds {_short(rows)}"]
        return []
    if rows not in allowed:
        return [f"{run.outcome}: the table holds {_short(rows)}, a partial write"]
    return []


def _short(rows: list[int]) -> str:
    if len(rows) <= 6:
        return str(rows)
    return f"{len(rows)} rows {rows[:3]}...{rows[-3:]}"


# -- the commands -------------------------------------------------------------
#
# Each: (autocommit, command, verify). ``command(ctx, run)`` runs on
# ``ctx.conn`` and appends to ``run.progress`` what it reported done;
# ``verify(ctx, run)`` returns the problems with the table's rows.


async def cmd_execute(ctx: Ctx, run: Run) -> Any:
    cur = await ctx.conn.execute(
        f"insert into {ctx.table} (id) select g from generate_series(1, 3) g"
    )
    return cur.rowcount


def verify_execute(ctx: Ctx, run: Run) -> list[str]:
    problems = check_rows(ctx, run, [1, 2, 3], [[], [1, 2, 3]])
    if run.outcome == "done" and run.result != 3:
        problems.append(f"rowcount {run.result}")
    return problems


async def cmd_execute_commit(ctx: Ctx, run: Run) -> Any:
    await ctx.conn.execute(f"insert into {ctx.table} (id) values (1), (2), (3)")
    run.progress.append("inserted")
    await ctx.conn.commit()


def verify_execute_commit(ctx: Ctx, run: Run) -> list[str]:
    if "inserted" in run.progress:  # the commit was interrupted: either way
        return check_rows(ctx, run, [1, 2, 3], [[], [1, 2, 3]])
    return check_rows(ctx, run, [1, 2, 3], [[]])


MANY = 250  # three batches of executemany's pipeline


async def cmd_executemany(ctx: Ctx, run: Run) -> Any:
    cur = ctx.conn.cursor()
    await cur.executemany(
        f"insert into {ctx.table} (id) values (%s)", [(i,) for i in range(1, MANY + 1)]
    )
    return cur.rowcount


def verify_executemany(ctx: Ctx, run: Run) -> list[str]:
    everything = list(range(1, MANY + 1))
    prefixes = [list(range(1, m + 1)) for m in range(MANY + 1)]
    problems = check_rows(ctx, run, everything, prefixes)
    if run.outcome == "done" and run.result != MANY:
        problems.append(f"rowcount {run.result}")
    return problems


DUPLICATE_AT = 150


async def cmd_executemany_error(ctx: Ctx, run: Run) -> Any:
    ids = list(range(1, MANY + 1))
    ids[DUPLICATE_AT] = ids[DUPLICATE_AT - 1]
    cur = ctx.conn.cursor()
    await cur.executemany(f"insert into {ctx.table} (id) values (%s)", [(i,) for i in ids])
    return cur.rowcount


def verify_executemany_error(ctx: Ctx, run: Run) -> list[str]:
    if run.outcome == "done":
        return [f"a duplicate key reported done (rowcount {run.result}), rows {_short(ctx.rows())}"]
    prefixes = [list(range(1, m + 1)) for m in range(DUPLICATE_AT + 1)]
    return check_rows(ctx, run, [], prefixes)


COPY_ROWS = 20000  # enough to fill the socket's buffer: COPY waits to write


async def cmd_copy_in(ctx: Ctx, run: Run) -> Any:
    cur = ctx.conn.cursor()
    async with cur.copy(f"copy {ctx.table} (id) from stdin") as copy:
        for i in range(1, COPY_ROWS + 1):
            await copy.write_row((i,))
    return cur.rowcount


def verify_copy_in(ctx: Ctx, run: Run) -> list[str]:
    everything = list(range(1, COPY_ROWS + 1))
    problems = check_rows(ctx, run, everything, [[], everything])
    if run.outcome == "done" and run.result != COPY_ROWS:
        problems.append(f"rowcount {run.result}")
    return problems


async def cmd_copy_out(ctx: Ctx, run: Run) -> Any:
    cur = ctx.conn.cursor()
    got = []
    async with cur.copy("copy (select g from generate_series(1, 2000) g) to stdout") as copy:
        async for row in copy.rows():
            got.append(int(row[0]))
    return got


def verify_copy_out(ctx: Ctx, run: Run) -> list[str]:
    if run.outcome == "done" and run.result != list(range(1, 2001)):
        return [f"COPY TO read {_short(run.result)}"]
    return []


async def cmd_transaction_commit(ctx: Ctx, run: Run) -> Any:
    async with ctx.conn.transaction():
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (1)")
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (2)")
        run.progress.append("body")


def verify_transaction_commit(ctx: Ctx, run: Run) -> list[str]:
    if "body" in run.progress:  # interrupted while committing: either way
        return check_rows(ctx, run, [1, 2], [[], [1, 2]])
    return check_rows(ctx, run, [1, 2], [[]])


async def cmd_transaction_rollback(ctx: Ctx, run: Run) -> Any:
    async with ctx.conn.transaction():
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (1)")
        raise Boom


def verify_transaction_rollback(ctx: Ctx, run: Run) -> list[str]:
    problems = check_rows(ctx, run, [], [[]])
    if run.outcome == "done":
        problems.append("the block's exception was swallowed")
    return problems


async def cmd_transaction_nested(ctx: Ctx, run: Run) -> Any:
    async with ctx.conn.transaction():
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (1)")
        async with ctx.conn.transaction(savepoint_name="inner"):
            await ctx.conn.execute(f"insert into {ctx.table} (id) values (2)")
        run.progress.append("inner")
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (3)")
        run.progress.append("body")


def verify_transaction_nested(ctx: Ctx, run: Run) -> list[str]:
    # Interrupted anywhere inside the outer block, the whole block rolls back.
    if "body" in run.progress:  # interrupted while committing: either way
        return check_rows(ctx, run, [1, 2, 3], [[], [1, 2, 3]])
    return check_rows(ctx, run, [1, 2, 3], [[]])


async def cmd_pipeline(ctx: Ctx, run: Run) -> Any:
    async with ctx.conn.pipeline() as p:
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (1)")
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (2)")
        await p.sync()
        run.progress.append("synced")
        await ctx.conn.execute(f"insert into {ctx.table} (id) values (3)")


def verify_pipeline(ctx: Ctx, run: Run) -> list[str]:
    if "synced" in run.progress:
        return check_rows(ctx, run, [1, 2, 3], [[1, 2], [1, 2, 3]])
    return check_rows(ctx, run, [1, 2, 3], [[], [1, 2], [1, 2, 3]])


async def setup_notifies(ctx: Ctx) -> None:
    await ctx.conn.execute("listen yields")


async def cmd_notifies(ctx: Ctx, run: Run) -> Any:
    # Sent once the iteration waits (Interrupter.on_first_yield): it must wait.
    got = []
    notifies = ctx.conn.notifies(timeout=10, stop_after=1)
    async for notify in notifies:
        got.append(notify.payload)
    return got


def verify_notifies(ctx: Ctx, run: Run) -> list[str]:
    if run.outcome == "done" and run.result != ["hello"]:
        return [f"notifies() gave {run.result}"]
    return []


@dataclass
class Command:
    autocommit: bool
    command: Callable[[Ctx, Run], Awaitable[Any]]
    verify: Callable[[Ctx, Run], list[str]]
    setup: Callable[[Ctx], Awaitable[None]] | None = None
    #: How the command ends when not interrupted: done, or error (of that class).
    outcome: str = "done"
    error: type[BaseException] | None = None


COMMANDS = {
    "execute": Command(True, cmd_execute, verify_execute),
    "execute+commit": Command(False, cmd_execute_commit, verify_execute_commit),
    "executemany": Command(True, cmd_executemany, verify_executemany),
    "executemany-error": Command(
        True,
        cmd_executemany_error,
        verify_executemany_error,
        outcome="error",
        error=psycopg3.errors.UniqueViolation,
    ),
    "copy-in": Command(True, cmd_copy_in, verify_copy_in),
    "copy-out": Command(True, cmd_copy_out, verify_copy_out),
    "transaction-commit": Command(True, cmd_transaction_commit, verify_transaction_commit),
    "transaction-rollback": Command(
        True, cmd_transaction_rollback, verify_transaction_rollback, outcome="error", error=Boom
    ),
    "transaction-nested": Command(True, cmd_transaction_nested, verify_transaction_nested),
    "pipeline-sync": Command(True, cmd_pipeline, verify_pipeline),
    "notifies": Command(True, cmd_notifies, verify_notifies, setup_notifies),
}


# -- the sweep ----------------------------------------------------------------


def start(flavour: str, main: Callable[[Ctx], Awaitable[None]], ctx: Ctx) -> None:
    """Run ``main(ctx)`` in the flavour's world: a trampoline, asyncio, or trio."""
    if flavour == "sync":
        run_sync_coroutine(main(ctx))
    elif flavour == "asyncio":
        asyncio.run(main(ctx))  # type: ignore[arg-type]
    elif flavour == "trio":

        async def in_nursery() -> None:
            async with trio.open_nursery() as nursery:
                ctx.nursery = nursery
                await main(ctx)

        trio.run(in_nursery)
    else:

        async def in_task_group() -> None:
            async with anyio.create_task_group() as group:
                ctx.nursery = group
                await main(ctx)

        anyio.run(in_task_group, backend=flavour.removeprefix("anyio-"))


#: The RELIABILITY.md scenario each (flavour, mode) sweep provokes: ``nox -s
#: reliability`` runs the tests marked with one, and reports their count.
SCENARIO = {
    ("sync", "interrupt"): "C1",
    ("asyncio", "interrupt"): "C2",
    ("trio", "interrupt"): "C4",
    ("sync", "close"): "C5",
    ("asyncio", "close"): "C5",
    ("trio", "close"): "C5",
    ("sync", "twice"): "C6",
    ("asyncio", "twice"): "C6",
    ("asyncio", "timeout"): "C3",
    ("anyio-asyncio", "interrupt"): "C2",
    ("anyio-trio", "interrupt"): "C4",
    ("anyio-asyncio", "close"): "C5",
    ("anyio-trio", "close"): "C5",
}


def mode_params() -> list[Any]:
    return [
        pytest.param(f, m, marks=pytest.mark.scenario(SCENARIO[f, m]))
        for f in FLAVOURS
        for m in MODES[f]
    ]


@pytest.fixture
def table(admin: Any) -> str:
    name = f"yields_{uuid.uuid4().hex[:8]}"
    admin.execute(f"create table {name} (id int primary key)")
    yield name
    admin.execute(f"drop table {name}")


#: One case of a sweep: the yield interrupted (-1: none), how the run ended, its problems.
Case = tuple[int, str, list[str]]


@dataclass
class Sweeper:
    """What every sweep takes from pytest: the server, the table, patching, the report."""

    dsn: str
    admin: Any
    table: str
    monkeypatch: pytest.MonkeyPatch
    observe: Callable[[str], None]

    def ctx(self, flavour: str, mode: str = "interrupt") -> Ctx:
        return Ctx(flavour, mode, self.dsn, self.admin, self.table)

    def run(
        self, name: str, ctx: Ctx, main: Callable[[Ctx, Interrupter], Awaitable[list[Case]]]
    ) -> None:
        """Run ``main`` in the flavour's world, the counting waiter in place; fail on problems."""
        cases: list[Case] = []

        async def wrapper(ctx: Ctx) -> None:
            interrupter = Interrupter(ctx.flavour)
            with interrupter.install(self.monkeypatch):
                cases.extend(await main(ctx, interrupter))

        start(ctx.flavour, wrapper, ctx)
        failed = sum(1 for case in cases if case[2])
        count_cases(name, ctx.flavour, ctx.mode, len(cases) - 1, failed)
        self.observe(f"{name}: interrupted at each of {len(cases) - 1} yields")
        problems = [f"k={k} ({outcome}): {'; '.join(p)}" for k, outcome, p in cases if p]
        assert not problems, f"{name}, {ctx.flavour}, {ctx.mode}: " + "\n".join(problems)


@pytest.fixture
def sweeper(
    dsn: str,
    admin: Any,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
    observe: Callable[[str], None],
) -> Sweeper:
    return Sweeper(dsn, admin, table, monkeypatch, observe)


@pytest.mark.parametrize("flavour,mode", mode_params())
@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_every_yield(
    name: str, flavour: str, mode: str, sweeper: Sweeper, request: pytest.FixtureRequest
) -> None:
    if mode not in request.config.getoption("--every-yield-modes").split(","):
        pytest.skip(f"mode {mode} not selected")
    spec = COMMANDS[name]
    ctx = sweeper.ctx(flavour, mode)
    admin, table = sweeper.admin, sweeper.table
    expect = (
        {TransactionStatus.IDLE}
        if spec.autocommit
        else {TransactionStatus.IDLE, TransactionStatus.INTRANS, TransactionStatus.INERROR}
    )

    async def fresh_connection() -> None:
        if ctx.conn is not None and not ctx.conn.closed:
            return
        ctx.conn = await ctx.connect(autocommit=spec.autocommit)
        ctx.pid = ctx.conn.pgconn.backend_pid
        if spec.setup is not None:
            await spec.setup(ctx)

    def notify() -> None:
        admin.execute("notify yields, 'hello'")

    first_yield = notify if name == "notifies" else None

    async def main(ctx: Ctx, interrupter: Interrupter) -> list[Case]:
        cases: list[Case] = []
        interrupter.on_first_yield = first_yield
        try:
            await fresh_connection()
            run = await run_command(ctx, interrupter, spec.command)
            problems = spec.verify(ctx, run)
            if not interrupter.count:
                problems.append("it never waited: nothing to interrupt")
            if run.outcome != spec.outcome or (
                spec.error is not None and not isinstance(run.error, spec.error)
            ):
                problems.append(f"uninterrupted, it ended {run.outcome}: {run.error!r}")
            cases.append((-1, run.outcome, problems))
            for k in range(MAX_YIELDS):
                admin.execute(f"truncate {table}")
                await fresh_connection()
                interrupter.__init__(flavour, at=k)  # type: ignore[misc]
                interrupter.twice = mode == "twice"
                interrupter.on_first_yield = first_yield
                run = await run_command(ctx, interrupter, spec.command)
                if not interrupter.fired:
                    break  # the command ended before yield k: every k done
                problems = await check_connection(ctx, run, expect)
                problems += spec.verify(ctx, run)
                cases.append((k, run.outcome, problems))
                if problems and not ctx.conn.closed:
                    await ctx.conn.close()  # a fresh start for the next k
        finally:
            if ctx.conn is not None:
                await ctx.conn.close()
        return cases

    sweeper.run(name, ctx, main)


# -- connect and the pools: the flavour's own interruption ----------------------
#
# There is no connection to close from elsewhere while connecting, or while
# a pool hands one out: these sweep the ``interrupt`` mode only.


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


async def sweep(
    ctx: Ctx,
    interrupter: Interrupter,
    command: Callable[[Ctx, Run], Awaitable[Any]],
    check: Callable[[Ctx, Run], Awaitable[list[str]]],
    before: Callable[[Ctx], Awaitable[None]] | None = None,
    any_task: bool = False,
) -> list[Case]:
    """Run ``command`` once whole, then interrupted at each yield; check after each."""
    cases: list[Case] = []
    for k in [None, *range(MAX_YIELDS)]:
        ctx.admin.execute(f"truncate {ctx.table}")
        if before is not None:
            await before(ctx)
        interrupter.__init__(ctx.flavour, at=k)  # type: ignore[misc]
        interrupter.any_task = any_task
        run = await run_command(ctx, interrupter, command)
        if k is None:
            problems = [] if interrupter.count else ["it never waited: nothing to interrupt"]
            if run.outcome != "done":
                problems.append(f"uninterrupted, it ended {run.outcome}: {run.error!r}")
            cases.append((-1, run.outcome, problems + await check(ctx, run)))
            continue
        problems = await check(ctx, run)
        if not interrupter.fired:  # it ended before yield k: every yield was done
            cases[0][2].extend(problems)
            break
        cases.append((k, run.outcome, problems))
    return cases


@pytest.mark.scenario("C9")
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_connect_every_yield(flavour: str, sweeper: Sweeper) -> None:
    app = f"yields-connect-{uuid.uuid4().hex[:8]}"
    fds: set[int] = set()

    async def before(ctx: Ctx) -> None:
        fds.clear()
        fds.update(open_fds())

    async def command(ctx: Ctx, run: Run) -> Any:
        return await ctx.connect(autocommit=True, application_name=app)

    async def check(ctx: Ctx, run: Run) -> list[str]:
        problems = error_problems(run)
        if run.outcome == "done":
            conn = run.result
            tag = uuid.uuid4().hex
            cur = await conn.execute("select %s::text", (tag,))
            if (row := await cur.fetchone()) != (tag,):
                problems.append(f"the new connection's first query got {row!r}")
            await conn.close()
        problems += await ctx.wait_gone("application_name = %s", (app,))
        if leaked := open_fds() - fds:
            problems.append(f"file descriptors left open: {sorted(leaked)}")
        return problems

    async def main(ctx: Ctx, interrupter: Interrupter) -> list[Case]:
        return await sweep(ctx, interrupter, command, check, before)

    sweeper.run("connect", sweeper.ctx(flavour), main)


@asynccontextmanager
async def open_pool(ctx: Ctx, app: str) -> AsyncIterator[Any]:
    """A pool of one connection whose ``check`` runs a query: getconn waits on it."""
    kwargs = {"application_name": app}
    if ctx.flavour == "sync":

        def check_sync(conn: Any) -> None:
            conn.execute("select 1")

        pool = psycopg3_sync.pool.ConnectionPool(
            ctx.dsn, kwargs=kwargs, min_size=1, check=check_sync
        )
        pool.open(wait=True, timeout=10)
        try:
            yield pool
        finally:
            pool.close()
        return

    async def check_async(conn: Any) -> None:
        await conn.execute("select 1")

    if ctx.flavour == "asyncio":
        apool = psycopg3_asyncio.pool.ConnectionPool(
            ctx.dsn, kwargs=kwargs, min_size=1, check=check_async
        )
        async with apool:
            await apool.wait(10)
            yield apool
    else:
        async with psycopg3_trio.pool.open_pool(
            ctx.dsn, kwargs=kwargs, min_size=1, check=check_async
        ) as tpool:
            await tpool.wait(10)
            yield tpool


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def facade(ctx: Ctx, conn: Any) -> Any:
    return SyncFacade(conn) if ctx.flavour == "sync" else conn


async def check_pool(ctx: Ctx, pool: Any, app: str) -> list[str]:
    """The pool hands out a usable connection; none of its backends is left in a transaction."""
    problems = []
    conn = await maybe_await(pool.getconn(timeout=10))
    try:
        tag = uuid.uuid4().hex
        cur = await facade(ctx, conn).execute("select %s::text", (tag,))
        if (row := await cur.fetchone()) != (tag,):
            problems.append(f"the pool's next connection got {row!r}")
    finally:
        await maybe_await(pool.putconn(conn))
    problems += await ctx.wait_gone(
        "application_name = %s and state like 'idle in transaction%%'", (app,)
    )
    return problems


@pytest.mark.parametrize("flavour", POOL_FLAVOURS)
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("pool-getconn", marks=pytest.mark.scenario("L12")),
        pytest.param("pool-putconn", marks=pytest.mark.scenario("L11")),
    ],
)
def test_pool_every_yield(name: str, flavour: str, sweeper: Sweeper) -> None:
    app = f"yields-pool-{uuid.uuid4().hex[:8]}"
    state: dict[str, Any] = {}

    async def before(ctx: Ctx) -> None:
        if name == "pool-putconn":
            # Returned in a transaction: putconn rolls it back, and waits for that.
            conn = await maybe_await(state["pool"].getconn(timeout=10))
            await facade(ctx, conn).execute(f"insert into {ctx.table} (id) values (1)")
            state["conn"] = conn

    async def command(ctx: Ctx, run: Run) -> Any:
        pool = state["pool"]
        if name == "pool-getconn":
            return await maybe_await(pool.getconn(timeout=10))
        await maybe_await(pool.putconn(state["conn"]))

    async def check(ctx: Ctx, run: Run) -> list[str]:
        problems = error_problems(run)
        if name == "pool-getconn" and run.outcome == "done":
            await maybe_await(state["pool"].putconn(run.result))
        problems += await check_pool(ctx, state["pool"], app)
        if rows := ctx.rows():
            problems.append(f"a transaction never committed left rows {rows}")
        return problems

    async def main(ctx: Ctx, interrupter: Interrupter) -> list[Case]:
        async with open_pool(ctx, app) as pool:
            state["pool"] = pool
            # The asyncio pool returns a connection in a shielded task of its own.
            any_task = name == "pool-putconn" and flavour == "asyncio"
            return await sweep(ctx, interrupter, command, check, before, any_task)

    sweeper.run(name, sweeper.ctx(flavour), main)
