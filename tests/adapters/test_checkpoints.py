"""Every ``await`` of the async API is a checkpoint; a large result does not starve other tasks.

Rule 8 of ``psycopg3._block_lock``. Two checks:

1. trio's own definition, ``trio.testing.assert_checkpoints()`` (a cancel
   point and a schedule point), around each public coroutine of the
   connection, cursors, COPY, pipeline, transaction and pool of the flavours
   running on trio. The coroutines are found by introspection: a new one
   fails here until it is given a case (or a reason in ``NOT_CHECKPOINTS``).
   Each case calls it in its state that waits least (rows already received,
   data that fits in a buffer, a COPY read to its end): where it would pass
   without a checkpoint of its own.
2. In every async flavour, while one task iterates with ``async for`` over
   200,000 rows already received, another task counts its turns: it must get
   turns all along, never more than ``CHECKPOINT_ROWS`` rows apart (twice
   that on trio, see ``_check_fair()``). Causality, no clock.
3. In every async flavour, a cancellation delivered at one of the new
   checkpoints takes nothing: no row skipped, no COPY data written, and the
   connection answers the next query.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from trio.testing import assert_checkpoints

import psycopg3_trio
import psycopg3_trio.pool
from fix_flavours import ASYNC_FLAVOURS, load_doc_adapter
from psycopg3._block_lock import CHECKPOINT_ROWS
from psycopg3._copy import _AsyncReader
from psycopg3._transaction import AsyncTransaction
from psycopg3.abc import AsyncCopy, AsyncPipeline

pytestmark = pytest.mark.anyio

#: The flavours running on trio, where ``assert_checkpoints`` works.
TRIO_FLAVOURS = ["trio", "anyio-trio"]

#: Dunder coroutines awaited by ``async with`` and ``async for``.
_AWAITED_DUNDERS = {"__aenter__", "__aexit__", "__anext__", "__aiter__"}

#: Coroutines that are not checkpoints, on purpose or not yet: (kind, name) -> why.
NOT_CHECKPOINTS = {
    ("connection", "__aenter__"): "returns the connection: entering never fails, so the block"
    " always closes it (trio's own resources enter without a checkpoint)",
    ("cursor", "__aenter__"): "returns the cursor, as the connection's",
    ("server cursor", "__aenter__"): "returns the cursor, as the connection's",
}
#: Coroutines meant to be checkpoints that are not yet (the test then fails
#: as soon as they are, to be moved out of here): (kind, name) -> why.
NOT_YET: dict[tuple[str, str], str] = {
    ("connection", "close"): "each adapter's close() must await self.lock.checkpoint()"
    " after closing; it is being reworked on another branch",
    **{
        ("pool", name): "AsyncPoolBase returns without a wait here; the pool is being"
        " reworked on another branch"
        for name in ("getconn", "putconn", "resize", "wait")
    },
}


def _classes(flavour: str) -> dict[str, type]:
    if flavour == "trio":
        conn, cur, scur = psycopg3_trio.Connection, psycopg3_trio.Cursor, psycopg3_trio.ServerCursor
        pool = psycopg3_trio.pool.ConnectionPool
    else:
        doc = load_doc_adapter()
        conn, cur, scur, pool = doc.Connection, doc.Cursor, doc.ServerCursor, doc.ConnectionPool
    return {
        "pool": pool,
        "connection": conn,
        "cursor": cur,
        "server cursor": scur,
        "copy": AsyncCopy,
        "copy iterator": _AsyncReader,
        "pipeline": AsyncPipeline,
        "transaction": AsyncTransaction,
    }


def coroutine_names(cls: type) -> list[str]:
    """The public coroutine (and async generator) functions of ``cls``, dunders awaited included."""
    return [
        name
        for name in dir(cls)
        if (not name.startswith("_") or name in _AWAITED_DUNDERS)
        and (
            inspect.iscoroutinefunction(getattr(cls, name))
            or inspect.isasyncgenfunction(getattr(cls, name))
        )
    ]


def _introspected() -> list[tuple[str, str, str]]:
    return [
        (flavour, kind, name)
        for flavour in TRIO_FLAVOURS
        for kind, cls in _classes(flavour).items()
        for name in coroutine_names(cls)
    ]


@dataclass
class Env:
    conn: Any
    connect: Callable[..., Awaitable[Any]]
    dsn: str
    pool_class: type


Case = Callable[[Env], Awaitable[None]]
CASES: dict[tuple[str, str], Case] = {}


def case(kind: str, name: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        CASES[kind, name] = function
        return function

    return register


@pytest.mark.parametrize(
    "flavour, kind, name",
    _introspected(),
    indirect=["flavour"],
    ids=[f"{f}-{k}.{n}" for f, k, n in _introspected()],
)
async def test_coroutine_is_a_checkpoint(
    flavour: Any,
    kind: str,
    name: str,
    aconn: Any,
    connect: Any,
    dsn: str,
    request: pytest.FixtureRequest,
) -> None:
    if (kind, name) in NOT_CHECKPOINTS:
        pytest.skip(NOT_CHECKPOINTS[kind, name])
    if (kind, name) not in CASES:
        pytest.fail(f"new coroutine {kind}.{name}: give it a case in this file")
    if (kind, name) in NOT_YET:
        request.applymarker(pytest.mark.xfail(reason=NOT_YET[kind, name], strict=True))
    env = Env(aconn, connect, dsn, _classes(flavour.name)["pool"])
    await CASES[kind, name](env)


def test_no_stale_case() -> None:
    names = {(kind, name) for _, kind, name in _introspected()}
    assert set(CASES) - names == set()
    assert set(NOT_CHECKPOINTS) - names == set()
    assert set(NOT_YET) - names == set()


# -- the connection ------------------------------------------------------------


@case("connection", "__aexit__")
async def _(env: Env) -> None:
    conn = await env.connect()
    with assert_checkpoints():
        await conn.__aexit__(None, None, None)


@case("connection", "close")
async def _(env: Env) -> None:
    conn = await env.connect()
    with assert_checkpoints():
        await conn.close()


@case("connection", "connect")
async def _(env: Env) -> None:
    with assert_checkpoints():
        conn = await type(env.conn).connect(env.dsn)
    await conn.close()


@case("connection", "cancel")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.cancel()


@case("connection", "execute")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.execute("select 1")


@case("connection", "commit")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.commit()  # (no transaction: nothing to send)


@case("connection", "rollback")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.rollback()


@case("connection", "tpc_begin")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.tpc_begin("checkpoints-begin")
    await env.conn.tpc_rollback()


@case("connection", "tpc_prepare")
async def _(env: Env) -> None:
    await env.conn.tpc_begin("checkpoints-prepare")
    with assert_checkpoints():
        await env.conn.tpc_prepare()
    await env.conn.tpc_rollback()


@case("connection", "tpc_commit")
async def _(env: Env) -> None:
    await env.conn.tpc_begin("checkpoints-commit")
    with assert_checkpoints():
        await env.conn.tpc_commit()


@case("connection", "tpc_rollback")
async def _(env: Env) -> None:
    await env.conn.tpc_begin("checkpoints-rollback")
    with assert_checkpoints():
        await env.conn.tpc_rollback()


@case("connection", "tpc_recover")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.tpc_recover()


# -- the cursor: the fetches find the rows already received --------------------


async def _executed(env: Env, rows: int = 3) -> Any:
    return await env.conn.execute("select generate_series(1, %s)", (rows,))


@case("cursor", "__aexit__")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        await cur.__aexit__(None, None, None)


@case("cursor", "__aiter__")
async def _(env: Env) -> None:
    cur = await _executed(env)
    rows = cur.__aiter__()
    with assert_checkpoints():
        assert await rows.__anext__() == (1,)
    await rows.aclose()


@case("cursor", "close")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        await cur.close()


@case("cursor", "execute")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.cursor().execute("select 1")


@case("cursor", "executemany")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.cursor().executemany("select %s", [(1,), (2,)])


@case("cursor", "callproc")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await env.conn.cursor().callproc("pg_backend_pid")


@case("cursor", "fetchone")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        assert await cur.fetchone() == (1,)


@case("cursor", "fetchmany")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        assert await cur.fetchmany(2) == [(1,), (2,)]


@case("cursor", "fetchall")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        assert await cur.fetchall() == [(1,), (2,), (3,)]


@case("cursor", "scroll")
async def _(env: Env) -> None:
    cur = await _executed(env)
    with assert_checkpoints():
        await cur.scroll(2)
    assert await cur.fetchone() == (3,)


# -- the server cursor -----------------------------------------------------------


async def _declared(env: Env) -> Any:
    cur = env.conn.cursor("checkpoints")
    await cur.execute("select generate_series(1, 3)")
    return cur


@case("server cursor", "__aexit__")
async def _(env: Env) -> None:
    cur = await _declared(env)
    with assert_checkpoints():
        await cur.__aexit__(None, None, None)


@case("server cursor", "__aiter__")
async def _(env: Env) -> None:
    cur = await _declared(env)
    rows = cur.__aiter__()
    with assert_checkpoints():
        assert await rows.__anext__() == (1,)
    await rows.aclose()


@case("server cursor", "close")
async def _(env: Env) -> None:
    cur = env.conn.cursor("checkpoints")  # never declared: nothing to send
    with assert_checkpoints():
        await cur.close()


@case("server cursor", "execute")
async def _(env: Env) -> None:
    with assert_checkpoints():
        await _declared(env)


@case("server cursor", "fetchone")
async def _(env: Env) -> None:
    cur = await _declared(env)
    with assert_checkpoints():
        assert await cur.fetchone() == (1,)


@case("server cursor", "fetchmany")
async def _(env: Env) -> None:
    cur = await _declared(env)
    with assert_checkpoints():
        assert await cur.fetchmany(0) == []  # (nothing to fetch)


@case("server cursor", "fetchall")
async def _(env: Env) -> None:
    cur = await _declared(env)
    with assert_checkpoints():
        assert await cur.fetchall() == [(1,), (2,), (3,)]


@case("server cursor", "scroll")
async def _(env: Env) -> None:
    cur = await _declared(env)
    with assert_checkpoints():
        await cur.scroll(1)


# -- COPY: data that fits in a buffer, rows already parsed, the end reached ------

COPY_OUT = "copy (select generate_series(1, 10)) to stdout"


@asynccontextmanager
async def _copy_in(env: Env) -> AsyncIterator[Any]:
    await env.conn.execute("create temp table if not exists checkpoints (x int)")
    async with env.conn.cursor().copy("copy checkpoints from stdin") as copy:
        yield copy


@asynccontextmanager
async def _copy_out(env: Env) -> AsyncIterator[Any]:
    async with env.conn.cursor().copy(COPY_OUT) as copy:
        yield copy


@case("copy", "__aenter__")
async def _(env: Env) -> None:
    copy = env.conn.cursor().copy(COPY_OUT)
    with assert_checkpoints():
        await copy.__aenter__()
    await copy.__aexit__(None, None, None)


@case("copy", "__aexit__")
async def _(env: Env) -> None:
    copy = env.conn.cursor().copy(COPY_OUT)
    await copy.__aenter__()
    while await copy.read():
        pass
    with assert_checkpoints():
        await copy.__aexit__(None, None, None)  # (the COPY has ended: nothing to wait for)


@case("copy", "write")
async def _(env: Env) -> None:
    async with _copy_in(env) as copy:
        with assert_checkpoints():
            await copy.write("1\n")


@case("copy", "write_row")
async def _(env: Env) -> None:
    async with _copy_in(env) as copy:
        with assert_checkpoints():
            await copy.write_row((1,))


@case("copy", "read")
async def _(env: Env) -> None:
    async with _copy_out(env) as copy:
        while await copy.read():
            pass
        with assert_checkpoints():
            assert await copy.read() == b""


@case("copy", "read_row")
async def _(env: Env) -> None:
    async with _copy_out(env) as copy:
        assert await copy.read_row() == ("1",)
        with assert_checkpoints():
            assert await copy.read_row() == ("2",)


@case("copy iterator", "__anext__")
async def _(env: Env) -> None:
    async with _copy_out(env) as copy:
        assert await copy.read_row() == ("1",)
        rows = copy.rows()
        with assert_checkpoints():
            assert await rows.__anext__() == ("2",)


# -- blocks ----------------------------------------------------------------------


@case("pipeline", "__aenter__")
async def _(env: Env) -> None:
    block = env.conn.pipeline()
    with assert_checkpoints():
        await block.__aenter__()
    await block.__aexit__(None, None, None)


@case("pipeline", "__aexit__")
async def _(env: Env) -> None:
    block = env.conn.pipeline()
    await block.__aenter__()
    with assert_checkpoints():
        await block.__aexit__(None, None, None)


@case("pipeline", "sync")
async def _(env: Env) -> None:
    async with env.conn.pipeline() as block:
        with assert_checkpoints():
            await block.sync()


@case("transaction", "__aenter__")
async def _(env: Env) -> None:
    block = env.conn.transaction()
    with assert_checkpoints():
        await block.__aenter__()
    await block.__aexit__(None, None, None)


@case("transaction", "__aexit__")
async def _(env: Env) -> None:
    block = env.conn.transaction()
    await block.__aenter__()
    with assert_checkpoints():
        await block.__aexit__(None, None, None)


# -- the pool: a connection idle in it, nothing to wait for ----------------------


@asynccontextmanager
async def _pool(env: Env) -> AsyncIterator[Any]:
    async with env.pool_class(env.dsn, min_size=1, max_size=2) as pool:
        await pool.wait()
        yield pool


@case("pool", "__aenter__")
async def _(env: Env) -> None:
    pool = env.pool_class(env.dsn, min_size=1)
    with assert_checkpoints():
        await pool.__aenter__()
    await pool.__aexit__(None, None, None)


@case("pool", "__aexit__")
async def _(env: Env) -> None:
    pool = env.pool_class(env.dsn, min_size=1)
    await pool.__aenter__()
    with assert_checkpoints():
        await pool.__aexit__(None, None, None)


@case("pool", "close")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        with assert_checkpoints():
            await pool.close()


@case("pool", "wait")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        with assert_checkpoints():
            await pool.wait()


@case("pool", "getconn")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        conn = None
        try:
            with assert_checkpoints():
                conn = await pool.getconn()
        finally:  # (assert_checkpoints raises after getconn() returned)
            if conn is not None:
                await pool.putconn(conn)


@case("pool", "putconn")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        conn = await pool.getconn()
        with assert_checkpoints():
            await pool.putconn(conn)


@case("pool", "check")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        with assert_checkpoints():
            await pool.check()


@case("pool", "check_connection")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        with assert_checkpoints():
            await pool.check_connection(env.conn)


@case("pool", "resize")
async def _(env: Env) -> None:
    async with _pool(env) as pool:
        with assert_checkpoints():
            await pool.resize(1, 3)


# -- 2. a large result does not starve the other tasks ---------------------------

ROWS = 200_000


class Turns:
    """Another task's turns, and the longest run of rows taken while it had none."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = False
        self._seen = 0
        self._run = 0
        self.longest_run = 0

    async def take(self) -> None:
        """The other task: one turn per checkpoint of the iterating one."""
        while not self.stop:
            self.count += 1
            await anyio.lowlevel.checkpoint()

    def row(self) -> None:
        """Count a row taken by the iterating task."""
        if self.count == self._seen:
            self._run += 1
            self.longest_run = max(self.longest_run, self._run)
        else:
            self._seen = self.count
            self._run = 1


async def _iterate(rows: AsyncIterator[Any]) -> Turns:
    turns = Turns()
    taken = 0
    async with anyio.create_task_group() as group:
        group.start_soon(turns.take)
        async for _ in rows:
            taken += 1
            turns.row()
        turns.stop = True
    assert taken == ROWS
    return turns


def _check_fair(turns: Turns, flavour: Any) -> None:
    # asyncio runs its ready tasks in turn: the other task runs at each of
    # our checkpoints. trio shuffles each batch of runnable tasks: two of
    # our turns may follow each other.
    longest = CHECKPOINT_ROWS * (2 if flavour.backend == "trio" else 1)
    assert turns.longest_run <= longest, "the other task was starved"
    assert turns.count >= ROWS // CHECKPOINT_ROWS // 2


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_over_received_rows_lets_others_run(aconn: Any, flavour: Any) -> None:
    cur = await aconn.execute("select generate_series(1, %s)", (ROWS,))
    _check_fair(await _iterate(cur), flavour)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_over_a_server_cursor_batch_lets_others_run(
    aconn: Any, flavour: Any
) -> None:
    cur = aconn.cursor("checkpoints_fair")
    cur.itersize = ROWS + 1  # one batch, then the loop over its rows
    await cur.execute("select generate_series(1, %s)", (ROWS,))
    _check_fair(await _iterate(cur), flavour)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_copy_rows_let_others_run(aconn: Any, flavour: Any) -> None:
    # A block of COPY data read at once holds thousands of these short rows,
    # parsed with no wait.
    statement = f"copy (select 1 from generate_series(1, {ROWS})) to stdout"
    async with aconn.cursor().copy(statement) as copy:
        _check_fair(await _iterate(copy.rows()), flavour)


# -- 3. a cancellation at a checkpoint loses nothing -------------------------------


async def _cancelled(call: Callable[[], Awaitable[Any]]) -> None:
    """Run ``call`` in a cancel scope cancelled beforehand: it must stop at its checkpoint."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await call()
    assert scope.cancelled_caught


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_fetch_takes_no_row(aconn: Any) -> None:
    cur = await aconn.execute("select generate_series(1, 5)")
    await _cancelled(cur.fetchone)
    await _cancelled(cur.fetchall)
    await _cancelled(lambda: cur.scroll(3))
    assert await cur.fetchone() == (1,)
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_cancelled_between_rows_resumes_at_the_next(aconn: Any) -> None:
    cur = await aconn.execute("select generate_series(1, %s)", (3 * CHECKPOINT_ROWS,))
    with anyio.CancelScope() as scope:
        async for (last,) in cur:
            if last == CHECKPOINT_ROWS // 2:
                scope.cancel()  # raised at the next checkpoint, before taking a row
    assert scope.cancelled_caught
    assert await cur.fetchone() == (last + 1,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_cursor_close_closes(aconn: Any) -> None:
    cur = await aconn.execute("select 1")
    await _cancelled(cur.close)
    assert cur.closed
    cur = await aconn.execute("select 2")
    assert await cur.fetchone() == (2,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_copy_read_takes_nothing(aconn: Any) -> None:
    statement = f"copy (select generate_series(1, {3 * CHECKPOINT_ROWS})) to stdout"
    async with aconn.cursor().copy(statement) as copy:
        await _cancelled(copy.read_row)
        assert await copy.read_row() == ("1",)
        # (Not in the middle of rows(): the next yield may be a wait for data,
        # where a cancellation aborts the COPY, see psycopg3._copy's rule 6.)
        await _cancelled(copy.rows().__anext__)
        assert await copy.read_row() == ("2",)
        await _cancelled(copy.read)
        assert await copy.read_row() == ("3",)
        while await copy.read():
            pass
    cur = await aconn.execute("select 3")
    assert await cur.fetchone() == (3,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_copy_write_writes_nothing(aconn: Any) -> None:
    await aconn.execute("create temp table checkpoints_in (x int)")
    async with aconn.cursor().copy("copy checkpoints_in from stdin") as copy:
        await _cancelled(lambda: copy.write_row((1,)))
        await _cancelled(lambda: copy.write("2\n"))
        await copy.write_row((3,))
    cur = await aconn.execute("select x from checkpoints_in")
    assert await cur.fetchall() == [(3,)]
