"""Model-based tests: random programs on a real connection, checked after every step.

A hypothesis ``RuleBasedStateMachine`` drives the real driver, in every
flavour, against the real server: inserts of unique values, tagged selects,
autocommit changes, nested and named transaction blocks left normally, by an
exception or by ``Rollback(block)``, commit and rollback, pipelines with a
failing command, COPY with an error mid-way, executemany with a duplicate key
at a random row, interruptions (a cancel scope, or ``cancel()`` from another
thread), close from another task in the middle of a COPY, vanished prepared
statements, and several tasks (threads, in ``sync``) sharing the connection.

The model keeps what the user was told: the values whose writes were
reported done and committed (must be visible from a second session), those
reported failed or rolled back (must never be), those pending in the open
transaction, per open block, and those whose fate an interruption left
unknown. After every step it compares the driver's beliefs (transaction
status, open blocks, autocommit) with the server's truth read by a second
session (rows, ``pg_stat_activity``).

Each flavour's connection lives in one long-lived task of a blocking portal
(``anyio.from_thread.start_blocking_portal``): the steps of the program run
in that task, as in a user's code, and "other tasks" are spawned from it.
The blocking flavour runs through the same async facade as the behaviour
tests (``fix_flavours.SyncFacade``); its other tasks are threads.

Budgets (``PSYCOPG3_MODEL_PROFILE``): ``default`` runs a few derandomised
programs (the same ones every run); ``fuzz`` (``nox -s fuzz``) runs rounds of
fresh random programs for ``PSYCOPG3_MODEL_MINUTES``, printing each round's
seed (replay one with ``PSYCOPG3_MODEL_SEED``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    precondition,
    rule,
)

import psycopg3
import psycopg3_sync
from fix_flavours import FLAVOURS
from psycopg3 import errors
from psycopg3.pq import TransactionStatus

PROFILE_ENV = "PSYCOPG3_MODEL_PROFILE"
MINUTES_ENV = "PSYCOPG3_MODEL_MINUTES"
SEED_ENV = "PSYCOPG3_MODEL_SEED"
MODEL_FLAVOURS = ["sync", "asyncio", "trio"]

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # never write .hypothesis/: a failure prints its program
    "suppress_health_check": list(HealthCheck),
}
# The default suite stays inside its budget even when it fails: no shrinking
# there (a failing program is printed whole; nox -s fuzz shrinks).
DEFAULT_SETTINGS = settings(
    max_examples=20,
    stateful_step_count=20,
    derandomize=True,
    print_blob=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    **_COMMON,
)
FUZZ_SETTINGS = settings(
    max_examples=20,
    stateful_step_count=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    **_COMMON,
)

#: A guard against a hung driver (a step never returning), not a timing target.
HANG_GUARD = 60.0
IDLE, INTRANS, INERROR = (
    TransactionStatus.IDLE,
    TransactionStatus.INTRANS,
    TransactionStatus.INERROR,
)
SERVER_STATES = {
    "idle": IDLE,
    "idle in transaction": INTRANS,
    "idle in transaction (aborted)": INERROR,
}
#: Few names, so that nested blocks reuse them.
SAVEPOINT_NAMES = st.sampled_from([None, "sp", "sp"])


class Interrupted(Exception):
    """Raised in a block by the program to leave it with an error."""


#: What ``run_prepared()`` returns when a vanished statement failed the job.
Missing = object()


class Signal:
    """A one-shot event usable across threads and event loops alike."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        if not self._event.is_set():
            await anyio.to_thread.run_sync(self._event.wait, HANG_GUARD)
        assert self._event.is_set(), "a task never signalled"


class Level:
    """A transaction level: the implicit transaction or one open block."""

    def __init__(self, block: Any = None, begins: bool = False, manager: Any = None):
        self.block = block  # what Rollback(block) names
        self.manager = manager  # what is left with __aexit__ (the sync facade's wrapper)
        self.begins = begins
        self.pending: set[int] = set()


class Runner:
    """Runs a flavour's connection in one long-lived task of a blocking portal."""

    def __init__(self, flavour_name: str, dsn: str):
        self.flavour = FLAVOURS[flavour_name]
        self.dsn = dsn
        self._stack = ExitStack()
        self.portal = self._stack.enter_context(
            anyio.from_thread.start_blocking_portal(backend=self.flavour.backend)
        )
        self._send: Any = None
        self._actor_future, _ = self.portal.start_task(self._actor)

    async def _actor(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        send, receive = anyio.create_memory_object_stream[Any](math.inf)
        self._send = send
        task_status.started()
        async with receive:
            async for job, future in receive:
                try:
                    future.set_result(await job())
                except Exception as ex:
                    future.set_exception(ex)

    def run(self, job: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``job`` in the connection's task; return its result or raise its error."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.portal.call(self._send.send, (job, future))
        try:
            return future.result(timeout=HANG_GUARD)
        except concurrent.futures.TimeoutError:
            raise AssertionError(
                f"a step did not finish in {HANG_GUARD} s: the driver hangs"
            ) from None

    async def together(
        self,
        *jobs: Callable[[], Awaitable[None]],
        here: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run ``jobs`` concurrently: other tasks, or threads for the blocking flavour.

        ``here`` runs meanwhile in the calling task: the program's own task,
        owner of the blocks it holds open.
        """
        async with anyio.create_task_group() as group:
            for job in jobs:
                if self.flavour.is_sync:
                    group.start_soon(anyio.to_thread.run_sync, anyio.run, job)
                else:
                    group.start_soon(job)
            if here is not None:
                await here()

    def close(self) -> None:
        self.portal.call(self._send.aclose)
        self._actor_future.result(timeout=HANG_GUARD)
        self._stack.close()


def server_state(admin: psycopg3_sync.Connection, pid: int) -> str | None:
    row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()
    return None if row is None else row[0]


def settled_state(admin: psycopg3_sync.Connection, pid: int) -> str | None:
    """The backend's state once it is done with the command it is running."""
    # A cancel request is acknowledged before the backend leaves the
    # cancelled command: wait for the condition, with a guard against a hang.
    deadline = time.monotonic() + HANG_GUARD
    while (state := server_state(admin, pid)) == "active" and time.monotonic() < deadline:
        # Polling: pg_stat_activity announces no change.
        time.sleep(0.005)
    return state


class ConnectionMachine(RuleBasedStateMachine):
    """One program: the driver's connection, the model, and the server's truth."""

    flavour_name = "sync"
    dsn = ""
    admin: psycopg3_sync.Connection

    def __init__(self) -> None:
        super().__init__()
        self.counter = itertools.count(1)
        self.table = f"model_{self.flavour_name}"
        admin = self.admin
        admin.execute(f"drop table if exists {self.table}")
        admin.execute(f"create table {self.table} (v bigint primary key)")
        self.committed: set[int] = set()
        self.forbidden: set[int] = set()
        self.uncertain: set[int] = set()
        self.runner = Runner(self.flavour_name, self.dsn)
        self.conn: Any = None
        self.connections: list[Any] = []  # all closed at teardown, whatever happened
        self._connect(autocommit=True)

    # -- the model ---------------------------------------------------------

    def _connect(self, autocommit: bool) -> None:
        flavour = self.runner.flavour

        async def connect() -> Any:
            # prepare_threshold=0: every query is prepared, so vanished
            # prepared statements show at once.
            return await flavour.connect(self.dsn, autocommit=autocommit, prepare_threshold=0)

        self.conn = self.runner.run(connect)
        self.connections.append(self.conn)
        self.autocommit = autocommit
        self.status = IDLE
        self.levels: list[Level] = [Level()]  # levels[0]: outside any block
        # Prepared statements were dropped behind the driver's back (rule 5 of
        # psycopg3._prepare): the next execution by name may fail once.
        self.vanished = False

    def fresh(self) -> int:
        return next(self.counter)

    @property
    def blocks(self) -> list[Level]:
        return self.levels[1:]

    @property
    def in_transaction(self) -> bool:
        return self.status != IDLE or bool(self.blocks)

    def wrote(self, values: set[int]) -> None:
        """Writes reported done: committed now, or pending in the current level."""
        if self.autocommit and not self.in_transaction:
            self.committed |= values
        else:
            self.levels[-1].pending |= values
            self.status = INTRANS

    def failed(self, values: set[int]) -> None:
        """Writes reported failed: never visible; a transaction is aborted."""
        self.forbidden |= values
        if self.in_transaction or not self.autocommit:
            self.status = INERROR

    def transaction_ended(self, committed: bool) -> None:
        pending = set().union(*(level.pending for level in self.levels))
        if committed and self.status == INTRANS:
            self.committed |= pending
        else:
            self.forbidden |= pending
        self.levels = [Level()]
        self.status = IDLE

    def connection_lost(self) -> None:
        self.transaction_ended(committed=False)
        self.runner.run(self.conn.close)
        self._connect(autocommit=self.autocommit)

    def run(self, job: Callable[[], Awaitable[Any]]) -> Any:
        return self.runner.run(job)

    def expect_error(self, job: Callable[[], Awaitable[Any]], *kinds: type[BaseException]) -> None:
        if self.vanished:
            kinds += (errors.InvalidSqlStatementName,)
        with pytest.raises(kinds or (psycopg3.Error,)) as caught:
            self.run(job)
        if caught.type is errors.InvalidSqlStatementName:
            self.vanished = False

    def run_prepared(self, job: Callable[[], Awaitable[Any]], *, reruns: bool = True) -> Any:
        """Run a job executing prepared statements; ``Missing`` if one had vanished.

        The driver runs the query again when no transaction was open before it
        (``reruns``: not in a pipeline); otherwise the error is raised once and
        the cache is cleared (``psycopg3._prepare`` rule 5).
        """
        if not self.vanished:
            return self.run(job)
        try:
            result = self.run(job)
        except errors.InvalidSqlStatementName:
            assert not (reruns and self.status == IDLE and not self.blocks), (
                "a vanished statement outside a transaction must be run again"
            )
            self.vanished = False
            return Missing
        return result

    # -- the server's truth, after every step -------------------------------

    @invariant()
    def driver_agrees_with_server(self) -> None:
        conn = self.conn
        assert not conn.closed, "the connection closed by itself"
        blocks = len(conn._transaction_blocks)
        assert blocks == len(self.blocks), f"driver has {blocks} open blocks, model {self.blocks}"
        assert conn.autocommit == self.autocommit
        assert conn.info.transaction_status == self.status, (
            f"driver status {conn.info.transaction_status.name}, expected {self.status.name}"
        )
        state = settled_state(self.admin, conn.info.backend_pid)
        assert SERVER_STATES.get(state or "") == self.status, (
            f"server says {state!r}, expected {self.status.name}"
        )

    @invariant()
    def rows_match_what_was_reported(self) -> None:
        visible = {r[0] for r in self.admin.execute(f"select v from {self.table}")}
        lost = self.committed - visible
        assert not lost, f"reported done and committed, not visible: {sorted(lost)}"
        ghosts = visible & self.forbidden
        assert not ghosts, f"reported failed or rolled back, visible: {sorted(ghosts)}"
        pending = set().union(*(level.pending for level in self.levels))
        early = visible & pending
        assert not early, f"pending in an open transaction, already visible: {sorted(early)}"
        unknown = visible - self.committed - self.uncertain
        assert not unknown, f"visible but never reported done: {sorted(unknown)}"

    @invariant()
    def own_session_sees_its_transaction(self) -> None:
        """Inside a transaction, the session itself sees its pending rows and no rolled-back one."""
        if self.status != INTRANS:
            return  # a read would start a transaction, or fail
        conn, table = self.conn, self.table

        async def job() -> set[int]:
            cur = await conn.execute(f"select v from {table}")
            return {row[0] for row in await cur.fetchall()}

        seen = self.run(job)
        pending = set().union(*(level.pending for level in self.levels))
        missing = (self.committed | pending) - seen
        assert not missing, f"the transaction does not see its own rows: {sorted(missing)}"
        ghosts = seen & self.forbidden
        assert not ghosts, f"rolled back or failed, still seen in the session: {sorted(ghosts)}"

    def teardown(self) -> None:
        try:
            for conn in self.connections:
                self.run(conn.close)
        finally:
            self.runner.close()

    # -- execute -----------------------------------------------------------

    @rule()
    def insert(self) -> None:
        value = self.fresh()
        conn = self.conn

        async def job() -> int:
            cur = await conn.execute(f"insert into {self.table} values (%s)", (value,))
            return int(cur.rowcount)

        if self.status == INERROR:
            self.expect_error(job, errors.InFailedSqlTransaction)
            self.forbidden.add(value)
            return
        done = self.run_prepared(job)
        if done is Missing:
            self.failed({value})
            return
        assert done == 1
        self.wrote({value})

    @rule()
    def insert_failing(self) -> None:
        value = self.fresh()
        conn = self.conn

        async def job() -> None:
            await conn.execute(f"insert into {self.table} values (%s), (%s)", (value, value))

        self.expect_error(job, errors.UniqueViolation, errors.InFailedSqlTransaction)
        self.failed({value})

    @rule(count=st.integers(1, 3))
    def select_tagged(self, count: int) -> None:
        tags = [self.fresh() for _ in range(count)]
        conn = self.conn

        async def job() -> list[Any]:
            cur = conn.cursor()
            answers = []
            for tag in tags:
                await cur.execute("select %s::bigint", (tag,))
                answers.append(await cur.fetchone())
            return answers

        if self.status == INERROR:
            self.expect_error(job, errors.InFailedSqlTransaction)
            return
        answers = self.run_prepared(job)
        if answers is Missing:
            self.failed(set())
            return
        assert answers == [(tag,) for tag in tags]
        if not self.autocommit:
            self.status = INTRANS

    @rule(value=st.booleans())
    def set_autocommit(self, value: bool) -> None:
        conn = self.conn

        async def job() -> None:
            conn.autocommit = value

        if self.in_transaction:
            self.expect_error(job, psycopg3.ProgrammingError)
            return
        self.run(job)
        self.autocommit = value

    @rule()
    def commit(self) -> None:
        if self.blocks:
            self.expect_error(self.conn.commit, psycopg3.ProgrammingError)
            return
        try:
            self.run(self.conn.commit)
        except psycopg3.Error:
            assert self.status == INERROR, "commit failed on a healthy transaction"
        self.transaction_ended(committed=True)

    @rule()
    def rollback(self) -> None:
        if self.blocks:
            self.expect_error(self.conn.rollback, psycopg3.ProgrammingError)
            return
        self.run(self.conn.rollback)
        self.transaction_ended(committed=False)

    # -- transaction blocks ------------------------------------------------

    @precondition(lambda self: len(self.blocks) < 5)
    @rule(name=SAVEPOINT_NAMES)
    def enter_block(self, name: str | None) -> None:
        conn = self.conn
        block = conn.transaction(savepoint_name=name) if name else conn.transaction()

        async def job() -> Any:
            return await block.__aenter__()

        if self.status == INERROR:
            self.expect_error(job, errors.InFailedSqlTransaction)
            return
        begins = not self.blocks and self.status == IDLE
        entered = self.run(job)
        self.levels.append(Level(entered, begins, block))
        self.status = INTRANS

    @precondition(lambda self: len(self.blocks) < 3)
    @rule(names=st.lists(SAVEPOINT_NAMES, min_size=2, max_size=3))
    def enter_nested_blocks(self, names: list[str | None]) -> None:
        """Enter blocks one in another, writing a row in each: deep nesting, reused names."""
        for name in names:
            self.enter_block(name)
            self.insert()

    def _leave(self, level: Level, exc: BaseException | None) -> Any:
        block = level.manager
        info = (type(exc), exc, None) if exc is not None else (None, None, None)

        async def job() -> Any:
            return await block.__aexit__(*info)

        return self.run(job)

    def _level_rolled_back(self, index: int) -> None:
        """Levels from ``index`` on were rolled back: their writes are lost."""
        for level in self.levels[index:]:
            self.forbidden |= level.pending
        begins = self.levels[index].begins
        del self.levels[index:]
        if begins:
            self.transaction_ended(committed=False)
        else:
            self.status = INTRANS

    @precondition(lambda self: self.blocks)
    @rule()
    def leave_block(self) -> None:
        level = self.levels[-1]
        if self.status == INERROR:
            # The block rolls itself back: its error was reported earlier.
            assert not self._leave(level, None)
            self._level_rolled_back(len(self.levels) - 1)
            return
        assert not self._leave(level, None)
        self.levels.pop()
        if level.begins:
            self.levels[-1].pending |= level.pending
            self.transaction_ended(committed=True)
        else:
            self.levels[-1].pending |= level.pending

    @precondition(lambda self: self.blocks)
    @rule()
    def leave_block_raising(self) -> None:
        error = Interrupted("raised in the block")
        with pytest.raises(Interrupted):
            if not self._leave(self.levels[-1], error):
                raise error
        self._level_rolled_back(len(self.levels) - 1)

    @precondition(lambda self: self.blocks)
    @rule(data=st.data())
    def rollback_to_block(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(1, len(self.blocks)), label="target level")
        error = psycopg3.Rollback(self.levels[target].block)
        for index in range(len(self.levels) - 1, target - 1, -1):
            swallowed = self._leave(self.levels[index], error)
            assert bool(swallowed) == (index == target), (
                f"Rollback(level {target}) swallowed={swallowed} at level {index}"
            )
        self._level_rolled_back(target)

    # -- pipelines, executemany, COPY ---------------------------------------

    @precondition(lambda self: self.status != INERROR)
    @rule(count=st.integers(1, 5), data=st.data())
    def pipeline(self, count: int, data: st.DataObject) -> None:
        failing = data.draw(st.none() | st.integers(0, count - 1), label="failing command")
        values = [self.fresh() for _ in range(count)]
        conn, table = self.conn, self.table

        async def job() -> list[int]:
            cursors = []
            async with conn.pipeline():
                for i, value in enumerate(values):
                    params = (value, value) if i == failing else (value,)
                    holes = ", ".join(["(%s)"] * len(params))
                    cur = conn.cursor()
                    await cur.execute(f"insert into {table} values {holes}", params)
                    cursors.append(cur)
            return [cur.rowcount for cur in cursors]

        if failing is None:
            done = self.run_prepared(job, reruns=False)
            if done is Missing:
                self.failed(set(values))
                return
            assert done == [1] * count
            self.wrote(set(values))
            return
        self.expect_error(job, errors.UniqueViolation)
        # Autocommit: the batch was one implicit transaction, rolled back whole.
        self.failed(set(values))

    @precondition(lambda self: self.status != INERROR)
    @rule(count=st.integers(1, 250), data=st.data())
    def executemany(self, count: int, data: st.DataObject) -> None:
        values = [self.fresh() for _ in range(count)]
        duplicate = data.draw(st.none() | st.integers(1, count), label="duplicate at")
        rows = [(v,) for v in values]
        if duplicate is not None:
            rows.insert(duplicate, rows[duplicate - 1])
        conn, table = self.conn, self.table

        async def job() -> int:
            cur = conn.cursor()
            await cur.executemany(f"insert into {table} values (%s)", rows)
            return int(cur.rowcount)

        if duplicate is None:
            done = self.run_prepared(job)
            if done is Missing:
                self.failed(set(values))
                return
            assert done == count, f"executemany of {count} rows reported rowcount {done}"
            self.wrote(set(values))
            return
        self.expect_error(job, errors.UniqueViolation)
        if self.autocommit and not self.in_transaction:
            # Rows before the duplicate may have been committed by an earlier batch.
            self.uncertain |= set(values[:duplicate])
            self.forbidden |= set(values[duplicate:])
        else:
            self.failed(set(values))

    @precondition(lambda self: self.status != INERROR)
    @rule(count=st.integers(0, 20), data=st.data())
    def copy_in(self, count: int, data: st.DataObject) -> None:
        error_at = data.draw(st.none() | st.integers(0, count), label="error after rows")
        bad_row = data.draw(st.booleans(), label="bad row, not an exception")
        values = [self.fresh() for _ in range(count)]
        conn, table = self.conn, self.table

        async def job() -> int:
            cur = conn.cursor()
            async with cur.copy(f"copy {table} (v) from stdin") as copy:
                for i, value in enumerate(values):
                    if i == error_at:
                        if bad_row:
                            await copy.write_row(("not a number",))
                        else:
                            raise Interrupted("raised in the COPY block")
                    await copy.write_row((value,))
                if error_at == count:
                    if bad_row:
                        await copy.write_row(("not a number",))
                    else:
                        raise Interrupted("raised in the COPY block")
            return int(cur.rowcount)

        if error_at is None:
            done = self.run(job)
            assert done == count, f"COPY of {count} rows reported rowcount {done}"
            self.wrote(set(values))
            return
        kinds = (errors.InvalidTextRepresentation,) if bad_row else (Interrupted,)
        self.expect_error(job, *kinds)
        self.failed(set(values))

    # -- prepared statements that vanish -------------------------------------

    @precondition(lambda self: self.status != INERROR)
    @rule()
    def deallocate_behind_the_driver(self) -> None:
        conn = self.conn

        async def job() -> None:
            await conn.execute("do $$ begin execute 'deallocate all'; end $$")

        self.run(job)
        self.vanished = True
        if not self.autocommit:
            self.status = INTRANS

    # -- interruptions -------------------------------------------------------

    @rule()
    def interrupt_sleeping_insert(self) -> None:
        """Interrupt an insert waiting on the server, once the server shows it running."""
        value = self.fresh()
        conn, admin, runner = self.conn, self.admin, self.runner
        pid = conn.info.backend_pid

        missing: list[bool] = []

        async def insert() -> None:
            try:
                await conn.execute(
                    f"insert into {self.table} select %s from pg_sleep(30)", (value,)
                )
            except errors.InvalidSqlStatementName:
                if self.status == INERROR:
                    raise
                missing.append(True)  # (rule 5 of psycopg3._prepare: see run_prepared())

        if self.status == INERROR:
            self.expect_error(insert, errors.InFailedSqlTransaction)
            self.forbidden.add(value)
            return

        finished = threading.Event()

        def cancel_sync() -> None:
            if wait_active(admin, pid, finished):
                conn.target.cancel()

        async def job() -> str:
            if runner.flavour.is_sync:
                # The blocking call holds this thread: cancel() from another one.
                watcher = start_thread(cancel_sync)
                try:
                    await insert()
                except errors.QueryCanceled:
                    return "cancelled"
                finally:
                    finished.set()
                    watcher.join(HANG_GUARD)
                return "done"
            with anyio.CancelScope() as scope:

                def cancel_scope() -> None:
                    if wait_active(admin, pid, finished):
                        runner.portal.call(scope.cancel)

                watcher = start_thread(cancel_scope)
                try:
                    await insert()
                finally:
                    finished.set()
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(watcher.join, HANG_GUARD)
            return "cancelled" if scope.cancelled_caught else "done"

        outcome = self.run(job)
        if missing:
            assert self.vanished and (self.status != IDLE or self.blocks), (
                "a vanished statement outside a transaction must be run again"
            )
            self.vanished = False
            self.failed({value})
            return
        assert outcome == "cancelled"
        if self.conn.closed:
            self.forbidden.add(value)
            self.connection_lost()
            return
        self.failed({value})

    @precondition(lambda self: self.runner.flavour.is_sync is False)
    @rule(data=st.data())
    def interrupt_at_first_wait(self, data: st.DataObject) -> None:
        """Cancel an operation at its first wait (a cancel scope cancelled before it starts)."""
        op = data.draw(st.sampled_from(["enter_block", "insert"]), label="interrupted")
        value = self.fresh()
        conn = self.conn
        block = conn.transaction()

        missing: list[bool] = []

        async def job() -> bool:
            with anyio.CancelScope() as scope:
                scope.cancel()
                if op == "enter_block":
                    await block.__aenter__()
                else:
                    try:
                        await conn.execute(f"insert into {self.table} values (%s)", (value,))
                    except errors.InvalidSqlStatementName:
                        if self.status == INERROR:
                            raise
                        missing.append(True)  # (rule 5 of psycopg3._prepare)
            return scope.cancelled_caught

        before = self.status
        if before == INERROR and op == "enter_block":
            try:
                caught = self.run(job)
            except errors.InFailedSqlTransaction:
                return
        else:
            caught = self.run(job)
        if missing:
            assert self.vanished and (before != IDLE or self.blocks), (
                "a vanished statement outside a transaction must be run again"
            )
            self.vanished = False
            self.failed({value})
            return
        if self.conn.closed:
            self.uncertain.add(value)
            self.connection_lost()
            return
        if not caught:
            # It finished before the cancellation reached it.
            if op == "enter_block":
                self.levels.append(Level(block, not self.blocks and before == IDLE, block))
                self.status = INTRANS
            elif before == INERROR:
                raise AssertionError("an insert succeeded in a failed transaction")
            else:
                self.wrote({value})
            return
        # Interrupted: the operation is not done. The user believes nothing
        # changed, except an insert, whose fate is unknown.
        if op == "insert":
            self.uncertain.add(value)
            if self.autocommit and not self.in_transaction:
                return
            if before != INERROR:
                # Unknown: the insert ran, or failed and aborted the transaction,
                # or (no transaction yet) was interrupted before anything was sent.
                # The driver's word is taken; the invariants check it with the server.
                status = self.conn.info.transaction_status
                allowed = (INTRANS, INERROR) if before == INTRANS else (IDLE, INTRANS, INERROR)
                assert status in allowed, status.name
                self.status = status

    # -- other tasks ---------------------------------------------------------

    @precondition(lambda self: self.status != INERROR)
    @rule(rows=st.integers(0, 3))
    def close_from_another_task_during_copy(self, rows: int) -> None:
        values = [self.fresh() for _ in range(rows + 2)]
        conn, table, runner = self.conn, self.table, self.runner
        written, closed = Signal(), Signal()
        outcome: list[BaseException | None] = []

        async def writer() -> None:
            try:
                cur = conn.cursor()
                async with cur.copy(f"copy {table} (v) from stdin") as copy:
                    for value in values[:rows]:
                        await copy.write_row((value,))
                    written.set()
                    await closed.wait()
                    for value in values[rows:]:
                        await copy.write_row((value,))
            except BaseException as ex:  # noqa: BLE001 - checked below
                written.set()
                outcome.append(ex)
            else:
                outcome.append(None)

        async def closer() -> None:
            await written.wait()
            await conn.close()
            closed.set()

        async def job() -> None:
            # The COPY runs in the program's task, which may hold blocks open.
            await runner.together(closer, here=writer)

        self.run(job)
        assert outcome and isinstance(outcome[0], psycopg3.Error), (
            f"a COPY whose connection was closed by another task ended with {outcome}"
        )
        self.forbidden |= set(values)
        self.connection_lost()

    @precondition(lambda self: self.autocommit and not self.in_transaction)
    @rule()
    def close_from_another_task_while_listening(self) -> None:
        """A task iterates notifies(); another closes the connection; reconnect after."""
        conn, runner = self.conn, self.runner
        channel = f"model_{self.flavour_name}_{self.fresh()}"
        received, outcome = Signal(), []

        async def listener() -> None:
            try:
                async for _ in conn.notifies():
                    received.set()
            except BaseException as ex:  # noqa: BLE001 - checked below
                outcome.append(ex)
            else:
                outcome.append(None)
            finally:
                received.set()

        async def closer() -> None:
            await conn.execute(f"notify {channel}")
            await received.wait()
            await conn.close()

        async def job() -> None:
            await conn.execute(f"listen {channel}")
            await runner.together(listener, closer)

        self.run(job)
        assert outcome and isinstance(outcome[0], psycopg3.OperationalError), (
            f"notifies() on a connection closed by another task ended with {outcome}"
        )
        self.connection_lost()

    @precondition(lambda self: self.autocommit and not self.in_transaction)
    @rule(
        scripts=st.lists(
            st.sampled_from(["select", "insert", "block", "pipeline"]), min_size=2, max_size=4
        )
    )
    def share_between_tasks(self, scripts: list[str]) -> None:
        """Several tasks use the connection at once; each gets its own results."""
        conn, table, runner = self.conn, self.table, self.runner
        plans = []
        for kind in scripts:
            plans.append((kind, [self.fresh() for _ in range(3)], bool(self.fresh() % 2)))
        done: list[int] = []
        rolled_back: list[int] = []
        wrong: list[str] = []
        missing: list[str] = []
        vanished = self.vanished

        def worker(kind: str, values: list[int], commit: bool) -> Callable[[], Awaitable[None]]:
            async def tagged(cur: Any, tag: int) -> None:
                await cur.execute("select %s::bigint", (tag,))
                answer = await cur.fetchone()
                if answer != (tag,):
                    wrong.append(f"{kind} task asked for {tag}, got {answer}")

            async def run() -> None:
                cur = conn.cursor()
                if kind == "select":
                    for tag in values:
                        await tagged(cur, tag)
                elif kind == "insert":
                    for value in values:
                        await cur.execute(f"insert into {table} values (%s)", (value,))
                        done.append(value)
                elif kind == "block":
                    try:
                        async with conn.transaction():
                            await cur.execute(f"insert into {table} values (%s)", (values[0],))
                            await tagged(cur, values[1])
                            await cur.execute(f"insert into {table} values (%s)", (values[2],))
                            if not commit:
                                raise Interrupted("leave the block with an error")
                    except Interrupted:
                        rolled_back.extend((values[0], values[2]))
                    except errors.InvalidSqlStatementName:
                        # Rule 5 of psycopg3._prepare: raised once in a transaction.
                        assert vanished, "a prepared statement went missing by itself"
                        missing.append(kind)
                        rolled_back.extend((values[0], values[2]))
                    else:
                        done.extend((values[0], values[2]))
                else:
                    try:
                        async with conn.pipeline():
                            for value in values:
                                await cur.execute(f"insert into {table} values (%s)", (value,))
                    except errors.InvalidSqlStatementName:
                        # Rule 5: raised once in a pipeline (one implicit transaction).
                        assert vanished, "a prepared statement went missing by itself"
                        missing.append(kind)
                        rolled_back.extend(values)
                    else:
                        done.extend(values)

            return run

        async def job() -> None:
            await runner.together(*(worker(*plan) for plan in plans))

        self.run(job)
        assert not wrong, wrong
        self.committed |= set(done)
        self.forbidden |= set(rolled_back)
        if missing:
            self.vanished = False

    @rule()
    def reconnect(self) -> None:
        self.run(self.conn.close)
        self.uncertain |= set()  # nothing: close() rolls back, as below
        self.transaction_ended(committed=False)
        self._connect(autocommit=self.autocommit)


def wait_active(admin: psycopg3_sync.Connection, pid: int, finished: threading.Event) -> bool:
    """Wait until the backend ``pid`` runs a ``pg_sleep``, or the command ``finished``."""
    # The admin connection is shared with the main thread, which is blocked
    # in the step meanwhile: one user at a time.
    deadline = time.monotonic() + HANG_GUARD
    while not finished.is_set() and time.monotonic() < deadline:
        # Sleeping in pg_sleep itself: not the BEGIN sent before it, nor the
        # Parse of the statement (active too, with the same text, and over before
        # a cancel request arrives: the sleep would then run to its end).
        row = admin.execute(
            "select wait_event from pg_stat_activity where pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "PgSleep":
            return True
        # Polling: pg_stat_activity announces no change.
        time.sleep(0.005)
    return False


def start_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _machine_for(
    flavour: str, dsn: str, admin: psycopg3_sync.Connection
) -> type[ConnectionMachine]:
    attrs = {"flavour_name": flavour, "dsn": dsn, "admin": admin}
    return type(f"ConnectionMachine_{flavour}", (ConnectionMachine,), attrs)


@pytest.fixture
def model_admin(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


def _profile() -> str:
    name = os.environ.get(PROFILE_ENV, "default")
    if name not in ("default", "fuzz"):
        raise ValueError(f"{PROFILE_ENV} must be 'default' or 'fuzz', not {name!r}")
    return name


@pytest.mark.timeout(0 if _profile() == "fuzz" else 120)
@pytest.mark.parametrize("flavour", MODEL_FLAVOURS)
def test_connection_model(flavour: str, dsn: str, model_admin: psycopg3_sync.Connection) -> None:
    machine = _machine_for(flavour, dsn, model_admin)
    if _profile() == "default":
        get_state_machine_test(machine, settings=DEFAULT_SETTINGS)()
        return
    # Fuzz: fresh seeds until the time is up; the flavours share the budget.
    minutes = float(os.environ.get(MINUTES_ENV, "10")) / len(MODEL_FLAVOURS)
    given_seed = os.environ.get(SEED_ENV)
    deadline = time.monotonic() + minutes * 60
    for round_ in itertools.count(1):
        round_seed = int(given_seed) if given_seed else random.SystemRandom().getrandbits(64)
        print(f"model fuzz {flavour} round {round_}: {SEED_ENV}={round_seed}", flush=True)
        test = get_state_machine_test(machine, settings=FUZZ_SETTINGS)
        seed(round_seed)(test)()
        if given_seed or time.monotonic() >= deadline:
            break
