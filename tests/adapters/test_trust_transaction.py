"""Transaction blocks keep their promise when interrupted or nested with repeated names.

Issue 14, cases 2 and 5, in every flavour:

* an interruption (Ctrl-C in blocking code, a cancellation in async code) at
  any wait of entering a block (``BEGIN`` or ``SAVEPOINT`` waiting for its
  reply) leaves no block and no transaction the user did not open; at any
  wait of leaving it (``COMMIT``, ``ROLLBACK``, ``RELEASE``) the block still
  ends, and the connection is usable in the state the user believes, or
  closed;
* savepoint names given twice at several nesting levels: ``Rollback(block)``
  rolls back exactly that block.

Interruptions land at an exact wait: ``Interrupter`` wraps the flavour's
waiter and interrupts at the k-th time the generator asks to wait, for
every k the command has. The server's view comes from ``admin``.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Generator
from contextlib import nullcontext
from typing import Any

import anyio
import pytest

import psycopg3
import psycopg3._interruption
from fix_flavours import ASYNC_FLAVOURS, backend_state, load_doc_adapter, rows
from interrupt.yield_points import counted, waiters
from psycopg3 import Rollback
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio

#: Most waits a single command of these tests makes: a safety net for the loops.
MAX_YIELDS = 30


class Interrupter:
    """Interrupts the next command at its k-th wait, through the flavour's waiter.

    Blocking code gets a ``KeyboardInterrupt`` raised where the waiter would
    block (as Ctrl-C does); async code a cancellation of the scope given to
    ``run()``, delivered by the framework at that very wait.
    """

    def __init__(self, flavour: Any, monkeypatch: pytest.MonkeyPatch):
        self.is_sync = flavour.is_sync
        self._at = 0
        self._interrupt: Callable[[], None] = self._raise
        #: Whether the interruption fired during the last ``run()``.
        self.fired = False
        module, name = waiters(flavour.name)[0]  # the connection's (the pool's is not used)
        real = getattr(module, name)
        if self.is_sync:

            def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:
                return real(self._take(gen), *args, **kwargs)

            monkeypatch.setattr(module, name, wait)
        else:

            async def await_(gen: Any, *args: Any, **kwargs: Any) -> Any:
                return await real(self._take(gen), *args, **kwargs)

            monkeypatch.setattr(module, name, await_)

    @staticmethod
    def _raise() -> None:
        raise KeyboardInterrupt

    def _take(self, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        if not self._at:
            return gen
        at, self._at = self._at, 0  # only the first command driven after arming
        waits = itertools.count(1)

        def on_yield() -> None:
            if next(waits) == at:
                self.fired = True
                self._interrupt()

        return counted(gen, on_yield)

    async def run(self, at: int, operation: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``operation`` with the interruption armed at wait ``at``.

        Return True if it was interrupted (and the interruption went on to
        the caller), False if the command it armed finished first.
        """
        self.fired = False
        self._at = at
        try:
            if self.is_sync:
                self._interrupt = self._raise
                try:
                    await operation()
                except KeyboardInterrupt:
                    return True
                return False
            with anyio.CancelScope() as scope:
                self._interrupt = scope.cancel
                await operation()
            return scope.cancelled_caught
        finally:
            self._at = 0

    def arm(self, at: int) -> None:
        """Interrupt the next command driven, at its wait ``at`` (inside ``run()``)."""
        self._at = at

    async def interrupt_now(self) -> None:
        """Interrupt the running operation here (inside ``run()``)."""
        self._interrupt()
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def interrupter(flavour: Any, monkeypatch: pytest.MonkeyPatch) -> Interrupter:
    return Interrupter(flavour, monkeypatch)


async def check_usable(conn: Any, admin: Any, table: str, value: int) -> None:
    """The connection is idle, and a write made now is durable (seen by another session)."""
    assert not conn.closed
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert backend_state(admin, conn.pgconn.backend_pid) == "idle"
    await conn.execute(f"insert into {table} values ({value})")
    if not conn.autocommit:
        await conn.commit()
    assert value in rows(admin, table)


async def every_wait(what: str, step: Callable[[int], Awaitable[bool]]) -> int:
    """Call ``step(at)`` for at = 1, 2, ... until it says it was not interrupted.

    ``step`` runs the command interrupted at its wait ``at``, checks what
    follows and returns whether the interruption fired: once it does not,
    every wait of ``what`` was tried. Return that last ``at``.
    """
    for at in range(1, MAX_YIELDS):
        if not await step(at):
            break
    else:
        pytest.fail(f"{what} never finished")
    assert at > 1, f"no wait of {what} was interrupted"
    return at


# -- case 2: interrupted entering -------------------------------------------


@pytest.mark.parametrize(
    "autocommit, in_pipeline",
    [(True, False), (False, False), (True, True)],
    ids=["True", "False", "pipeline"],
)
async def test_interrupted_begin_leaves_no_block(
    flavour: Any,
    dsn: str,
    admin: Any,
    table: str,
    interrupter: Interrupter,
    autocommit: bool,
    in_pipeline: bool,
) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:
        body_ran: list[int] = []

        async def step(at: int) -> bool:
            async def enter_block() -> None:
                async with conn.transaction():
                    body_ran.append(at)
                    await conn.execute(f"insert into {table} values ({-at})")

            async with conn.pipeline() if in_pipeline else nullcontext():
                interrupted = await interrupter.run(at, enter_block)
                assert conn._transaction_blocks == []
            if interrupted:
                assert body_ran == []
                # No transaction the user did not open: a write made now is durable.
                await check_usable(conn, admin, table, at)
            return interrupted

        at = await every_wait("BEGIN", step)
        assert body_ran == [at]
        assert rows(admin, table) == [-at, *range(1, at)]
    finally:
        await conn.close()


@pytest.mark.parametrize("autocommit", [True, False])
async def test_interrupted_savepoint_leaves_outer_block_intact(
    flavour: Any, dsn: str, admin: Any, table: str, interrupter: Interrupter, autocommit: bool
) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:

        async def step(at: int) -> bool:
            async with conn.transaction() as outer:
                await conn.execute(f"insert into {table} values ({at})")

                async def enter_inner() -> None:
                    async with conn.transaction(savepoint_name="sp"):
                        await conn.execute(f"insert into {table} values ({-at})")

                interrupted = await interrupter.run(at, enter_inner)
                assert conn._transaction_blocks == [outer]
                assert not conn.closed
                # The interrupted SAVEPOINT was undone, or (had the cancel
                # request reached it) failed the transaction, as any
                # interrupted command in a transaction does.
                status = conn.info.transaction_status
                assert status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)
            if not interrupted:
                return False
            if status == TransactionStatus.INTRANS:
                assert outer.status == "committed"
                assert at in rows(admin, table)
            else:
                assert outer.status == "rolled_back"
            await check_usable(conn, admin, table, 1000 + at)
            return True

        at = await every_wait("SAVEPOINT", step)
        assert -at in rows(admin, table)
        assert [x for x in rows(admin, table) if x < 0] == [-at]
    finally:
        await conn.close()


# -- case 2: interrupted leaving --------------------------------------------


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_interrupted_exit_ends_the_block(
    flavour: Any, dsn: str, admin: Any, table: str, interrupter: Interrupter, ending: str
) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:

        async def step(at: int) -> bool:
            nonlocal conn
            block: list[Any] = []

            async def run_block() -> None:
                async with conn.transaction(force_rollback=ending == "rollback") as tx:
                    block.append(tx)
                    await conn.execute(f"insert into {table} values ({-at})")
                    interrupter.arm(at)  # the block's exit only
                await conn.execute("select 1")  # reached only if not interrupted

            interrupted = await interrupter.run(0, run_block)
            (tx,) = block
            assert conn._transaction_blocks == []
            committed = -at in rows(admin, table)
            if interrupter.is_sync and interrupted:
                # Ctrl-C cannot be shielded: the COMMIT's fate is what the
                # server decided, and the block says it failed; all or nothing.
                assert tx.status == "failed"
            elif ending == "commit":
                assert tx.status == "committed" and committed
            else:
                assert tx.status == "rolled_back" and not committed
            if ending == "rollback":
                assert not committed
            if conn.closed:
                conn = await flavour.connect(dsn, autocommit=True)
            await check_usable(conn, admin, table, at)
            return interrupted

        await every_wait("the block's exit", step)
    finally:
        await conn.close()


async def test_second_cancellation_during_rollback(
    flavour: Any, dsn: str, admin: Any, table: str, interrupter: Interrupter
) -> None:
    # A block left by an interruption: its ROLLBACK is interrupted again, at
    # each of its waits. The rollback still happens; nothing is left open.
    conn = await flavour.connect(dsn, autocommit=True)
    try:

        async def step(at: int) -> bool:
            nonlocal conn

            async def interrupted_in_block() -> None:
                async with conn.transaction() as tx:
                    await conn.execute(f"insert into {table} values ({-at})")
                    interrupter.arm(at)  # the ROLLBACK's waits
                    await interrupter.interrupt_now()
                assert tx  # not reached

            assert await interrupter.run(0, interrupted_in_block)
            assert conn._transaction_blocks == []
            assert -at not in rows(admin, table)
            if conn.closed:
                conn = await flavour.connect(dsn, autocommit=True)
            await check_usable(conn, admin, table, at)
            return interrupter.fired

        await every_wait("the ROLLBACK", step)
    finally:
        await conn.close()


# -- case 5: savepoint names repeated at several levels ---------------------


@pytest.mark.parametrize("autocommit", [True, False])
@pytest.mark.parametrize("names", [("sp", "sp", "sp"), (None, "sp", "sp"), ("a", "b", "a")])
async def test_rollback_targets_the_named_block(
    flavour: Any,
    dsn: str,
    admin: Any,
    table: str,
    autocommit: bool,
    names: tuple[str | None, str | None, str | None],
) -> None:
    conn = await flavour.connect(dsn, autocommit=autocommit)
    try:
        for target in ["outer", "middle", "inner"]:
            admin.execute(f"truncate {table}")
            await rollback_one_of_three(conn, admin, table, names, target)
    finally:
        await conn.close()


async def rollback_one_of_three(
    conn: Any, admin: Any, table: str, names: tuple[str | None, ...], target: str
) -> None:
    # A top block so that every named block works on a savepoint.
    async with conn.transaction() as top:
        await conn.execute(f"insert into {table} values (0)")
        async with conn.transaction(names[0]) as outer:
            await conn.execute(f"insert into {table} values (1)")
            async with conn.transaction(names[1]) as middle:
                await conn.execute(f"insert into {table} values (2)")
                async with conn.transaction(names[2]) as inner:
                    await conn.execute(f"insert into {table} values (3)")
                    blocks = {"outer": outer, "middle": middle, "inner": inner}
                    raise Rollback(blocks[target])
                await conn.execute(f"insert into {table} values (20)")
            await conn.execute(f"insert into {table} values (10)")
        await conn.execute(f"insert into {table} values (100)")
    if not conn.autocommit:
        await conn.commit()
    assert top.status == "committed"
    expected = {
        "outer": [0, 100],
        "middle": [0, 1, 10, 100],
        "inner": [0, 1, 2, 10, 20, 100],
    }[target]
    assert rows(admin, table) == expected
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert [outer.savepoint_name, middle.savepoint_name, inner.savepoint_name][1:] == list(
        names[1:]
    )


async def test_repeated_name_released_on_success(aconn: Any, admin: Any, table: str) -> None:
    # Each block releases its own savepoint: the outer one can still be
    # rolled back to, after the inner one of the same name was released.
    async with aconn.transaction():
        async with aconn.transaction("sp") as outer:
            await aconn.execute(f"insert into {table} values (1)")
            async with aconn.transaction("sp") as inner:
                await aconn.execute(f"insert into {table} values (2)")
            assert inner.status == "committed"
            raise Rollback(outer)
        await aconn.execute(f"insert into {table} values (3)")
    assert rows(admin, table) == [3]


# -- a block's exit is bounded ------------------------------------------------


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_exit_to_a_silent_server_closes(
    flavour: Any, proxy: Any, proxy_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shielded is not unbounded: a ROLLBACK the server never answers ends
    # with the connection closed, not with a hang nor a transaction left open.
    load_doc_adapter()
    monkeypatch.setattr(psycopg3._interruption, "CANCEL_TIMEOUT", 0.2)
    monkeypatch.setattr(psycopg3._interruption, "DRAIN_TIMEOUT", 0.2)
    # (every async flavour ends its blocks through the core's _wait_shielded)
    monkeypatch.setattr(psycopg3._async_connection, "DRAIN_TIMEOUT", 0.2)
    conn = await flavour.connect(proxy_dsn, autocommit=True)
    try:
        with anyio.CancelScope() as scope:
            try:
                async with conn.transaction() as tx:
                    await conn.execute("select 1")
                    proxy.freeze()
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()
            except psycopg3.OperationalError:
                pass  # "did not finish in time": the cancellation may come first
        assert tx.status == "failed"
        assert conn.closed and conn.broken
        assert conn._transaction_blocks == []
    finally:
        await conn.close()
