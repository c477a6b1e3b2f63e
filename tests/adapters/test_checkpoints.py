"""Every ``await`` of the async API is a checkpoint, as trio defines one.

Rule 8 of ``psycopg3._block_lock`` (its other half, fairness and what a
cancellation at a checkpoint leaves, is in ``test_checkpoint_fairness.py``).
trio's own check, ``trio.testing.assert_checkpoints()`` (a cancel point and
a schedule point), runs around each public coroutine of the connection,
cursors, COPY, pipeline, transaction, notifications and pool of the
flavours running on trio. The coroutines are found by introspection: a new
one fails here until it is given a case (or a reason in ``NOT_CHECKPOINTS``).
Each case calls it in its state that waits least (rows already received,
data that fits in a buffer, a COPY read to its end): where it would pass
without a checkpoint of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from trio.testing import assert_checkpoints

import psycopg3_trio
import psycopg3_trio.pool
from fix_flavours import load_doc_adapter
from psycopg3._async_blocks import AsyncTransaction, _AsyncReader
from psycopg3.abc import AsyncCopy, AsyncNotifies, AsyncPipeline
from psycopg3.pq import TransactionStatus

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
    **dict.fromkeys(
        [("pool", "wait_event"), ("pool", "stop_background")],
        "a hook of the adapter, awaited only by the pool's coroutines (checkpoints themselves)",
    ),
}
#: Coroutines meant to be checkpoints that are not yet (the test then fails
#: as soon as they are, to be moved out of here): (kind, name) -> why.
NOT_YET: dict[tuple[str, str], str] = {}


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
        "notifies": AsyncNotifies,
    }


def coroutine_names(cls: type) -> list[str]:
    """The public coroutine (and async generator) functions of ``cls``, dunders awaited included.

    ``connect()`` counts too: it returns an awaitable (``ConnectContext``)
    rather than being a coroutine function, and is awaited all the same.
    """
    return [
        name
        for name in dir(cls)
        if (not name.startswith("_") or name in _AWAITED_DUNDERS)
        and (
            inspect.iscoroutinefunction(getattr(cls, name))
            or inspect.isasyncgenfunction(getattr(cls, name))
            or _returns_awaitable(getattr(cls, name))
        )
    ]


def _returns_awaitable(member: object) -> bool:
    """Whether ``member`` is a function annotated to return a ``ConnectContext``."""
    if not callable(member):
        return False
    returns = getattr(member, "__annotations__", {}).get("return", "")
    return isinstance(returns, str) and returns.startswith("ConnectContext[")


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
    #: What the call under test returned, for its preparation to clean up.
    result: Any = None


Prepare = Callable[[Env], AbstractAsyncContextManager[Any]]
Call = Callable[[Any], Awaitable[Any]]


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
    prepare, call = CASES[kind, name]
    missed: AssertionError | None = None
    async with prepare(env) as target:
        try:
            with assert_checkpoints():
                env.result = await call(target)
        except AssertionError as ex:
            missed = ex  # (raised once the preparation has cleaned up)
    if missed is not None:
        raise missed


def test_no_stale_case() -> None:
    names = {(kind, name) for _, kind, name in _introspected()}
    assert set(CASES) - names == set()
    assert set(NOT_CHECKPOINTS) - names == set()
    assert set(NOT_YET) - names == set()


# -- the preparations: each call in its state that waits least ---------------------

COPY_OUT = "copy (select generate_series(1, 10)) to stdout"


@asynccontextmanager
async def _conn(env: Env) -> AsyncIterator[Any]:
    yield env.conn


@asynccontextmanager
async def _new_conn(env: Env) -> AsyncIterator[Any]:
    yield await env.connect()


@asynccontextmanager
async def _conn_class(env: Env) -> AsyncIterator[Any]:
    yield type(env.conn), env.dsn
    await env.result.close()


@asynccontextmanager
async def _tpc(env: Env, begin: bool = True) -> AsyncIterator[Any]:
    conn = env.conn
    if begin:
        await conn.tpc_begin(XID)
    yield conn
    # Begun, or prepared, by the call: end it.
    if conn.info.transaction_status == TransactionStatus.INTRANS or XID in [
        xid.gtrid for xid in await conn.tpc_recover()
    ]:
        await conn.tpc_rollback()


@asynccontextmanager
async def _executed(env: Env) -> AsyncIterator[Any]:
    yield await env.conn.execute("select generate_series(1, 3)")


@asynccontextmanager
async def _declared(env: Env) -> AsyncIterator[Any]:
    cur = env.conn.cursor("checkpoints")
    await cur.execute("select generate_series(1, 3)")
    yield cur


@asynccontextmanager
async def _rows(env: Env, cursor: Prepare) -> AsyncIterator[Any]:
    async with cursor(env) as cur:
        rows = cur.__aiter__()
        yield rows
        await rows.aclose()


@asynccontextmanager
async def _copy_in(env: Env) -> AsyncIterator[Any]:
    await env.conn.execute("create temp table if not exists checkpoints (x int)")
    async with env.conn.cursor().copy("copy checkpoints from stdin") as copy:
        yield copy


@asynccontextmanager
async def _copy_out(env: Env) -> AsyncIterator[Any]:
    async with env.conn.cursor().copy(COPY_OUT) as copy:
        yield copy


@asynccontextmanager
async def _copy_parsed(env: Env) -> AsyncIterator[Any]:
    async with _copy_out(env) as copy:
        assert await copy.read_row() == ("1",)  # (the rest of the block is parsed)
        yield copy


@asynccontextmanager
async def _copy_ended(env: Env, leave: bool = True) -> AsyncIterator[Any]:
    copy = env.conn.cursor().copy(COPY_OUT)
    await copy.__aenter__()
    while await copy.read():
        pass
    yield copy
    if leave:
        await copy.__aexit__(None, None, None)


@asynccontextmanager
async def _entered(env: Env, block: Callable[[Any], Any], leave: bool) -> AsyncIterator[Any]:
    entered = block(env.conn)
    await entered.__aenter__()
    yield entered
    if leave:
        await entered.__aexit__(None, None, None)


@asynccontextmanager
async def _left(env: Env, block: Callable[[Any], Any]) -> AsyncIterator[Any]:
    entered = block(env.conn)
    yield entered
    await entered.__aexit__(None, None, None)


@asynccontextmanager
async def _pool(env: Env) -> AsyncIterator[Any]:
    async with env.pool_class(env.dsn, min_size=1, max_size=2) as pool:
        await pool.wait()
        yield pool
        if isinstance(env.result, type(env.conn)):
            await pool.putconn(env.result)  # (from getconn())


@asynccontextmanager
async def _borrowed(env: Env, give_back: bool = True) -> AsyncIterator[Any]:
    async with _pool(env) as pool:
        conn = await pool.getconn()
        yield pool, conn
        if give_back:
            await pool.putconn(conn)


@asynccontextmanager
async def _pool_closed(env: Env) -> AsyncIterator[Any]:
    pool = env.pool_class(env.dsn, min_size=1)
    yield pool
    await pool.__aexit__(None, None, None)


@asynccontextmanager
async def _pool_open(env: Env) -> AsyncIterator[Any]:
    pool = env.pool_class(env.dsn, min_size=1)
    await pool.__aenter__()
    yield pool


@asynccontextmanager
async def _notified(env: Env) -> AsyncIterator[Any]:
    conn = await env.connect(autocommit=True)
    await conn.execute("listen checkpoints")
    await conn.execute("notify checkpoints")  # (received with the command's result)
    yield conn.notifies(timeout=10)


XID = "checkpoints"
_EXIT = (None, None, None)

#: (kind, name) -> (its preparation, the call under ``assert_checkpoints``).
CASES: dict[tuple[str, str], tuple[Prepare, Call]] = {
    ("connection", "__aexit__"): (_new_conn, lambda conn: conn.__aexit__(*_EXIT)),
    ("connection", "close"): (_new_conn, lambda conn: conn.close()),
    ("connection", "connect"): (_conn_class, lambda made: made[0].connect(made[1])),
    ("connection", "cancel"): (_conn, lambda conn: conn.cancel()),
    ("connection", "execute"): (_conn, lambda conn: conn.execute("select 1")),
    ("connection", "commit"): (_conn, lambda conn: conn.commit()),  # (nothing to commit)
    ("connection", "rollback"): (_conn, lambda conn: conn.rollback()),
    ("connection", "tpc_begin"): (partial(_tpc, begin=False), lambda conn: conn.tpc_begin(XID)),
    ("connection", "tpc_prepare"): (_tpc, lambda conn: conn.tpc_prepare()),
    ("connection", "tpc_commit"): (_tpc, lambda conn: conn.tpc_commit()),
    ("connection", "tpc_rollback"): (_tpc, lambda conn: conn.tpc_rollback()),
    ("connection", "tpc_recover"): (_conn, lambda conn: conn.tpc_recover()),
    ("cursor", "__aexit__"): (_executed, lambda cur: cur.__aexit__(*_EXIT)),
    ("cursor", "__aiter__"): (partial(_rows, cursor=_executed), lambda rows: rows.__anext__()),
    ("cursor", "close"): (_executed, lambda cur: cur.close()),
    ("cursor", "execute"): (_executed, lambda cur: cur.execute("select 1")),
    ("cursor", "executemany"): (_executed, lambda cur: cur.executemany("select %s", [(1,)])),
    ("cursor", "callproc"): (_executed, lambda cur: cur.callproc("pg_backend_pid")),
    ("cursor", "fetchone"): (_executed, lambda cur: cur.fetchone()),
    ("cursor", "fetchmany"): (_executed, lambda cur: cur.fetchmany(2)),
    ("cursor", "fetchall"): (_executed, lambda cur: cur.fetchall()),
    ("cursor", "scroll"): (_executed, lambda cur: cur.scroll(2)),
    ("server cursor", "__aexit__"): (_declared, lambda cur: cur.__aexit__(*_EXIT)),
    ("server cursor", "__aiter__"): (
        partial(_rows, cursor=_declared),
        lambda rows: rows.__anext__(),
    ),
    ("server cursor", "close"): (_declared, lambda cur: cur.close()),
    ("server cursor", "execute"): (_declared, lambda cur: cur.execute("select 1")),
    ("server cursor", "fetchone"): (_declared, lambda cur: cur.fetchone()),
    ("server cursor", "fetchmany"): (_declared, lambda cur: cur.fetchmany(0)),  # (no FETCH)
    ("server cursor", "fetchall"): (_declared, lambda cur: cur.fetchall()),
    ("server cursor", "scroll"): (_declared, lambda cur: cur.scroll(1)),
    ("copy", "__aenter__"): (
        partial(_left, block=lambda conn: conn.cursor().copy(COPY_OUT)),
        lambda copy: copy.__aenter__(),
    ),
    ("copy", "__aexit__"): (partial(_copy_ended, leave=False), lambda c: c.__aexit__(*_EXIT)),
    ("copy", "write"): (_copy_in, lambda copy: copy.write("1\n")),  # (buffered)
    # (The first row: then one in CHECKPOINT_ROWS, see test_checkpoint_fairness.py.)
    ("copy", "write_row"): (_copy_in, lambda copy: copy.write_row((1,))),
    ("copy", "read"): (_copy_ended, lambda copy: copy.read()),  # (b"": the end)
    ("copy", "read_row"): (_copy_parsed, lambda copy: copy.read_row()),
    ("copy iterator", "__anext__"): (_copy_parsed, lambda copy: copy.rows().__anext__()),
    ("pipeline", "__aenter__"): (
        partial(_left, block=lambda conn: conn.pipeline()),
        lambda block: block.__aenter__(),
    ),
    ("pipeline", "__aexit__"): (
        partial(_entered, block=lambda conn: conn.pipeline(), leave=False),
        lambda block: block.__aexit__(*_EXIT),
    ),
    ("pipeline", "sync"): (
        partial(_entered, block=lambda conn: conn.pipeline(), leave=True),
        lambda block: block.sync(),
    ),
    ("transaction", "__aenter__"): (
        partial(_left, block=lambda conn: conn.transaction()),
        lambda block: block.__aenter__(),
    ),
    ("transaction", "__aexit__"): (
        partial(_entered, block=lambda conn: conn.transaction(), leave=False),
        lambda block: block.__aexit__(*_EXIT),
    ),
    ("notifies", "__anext__"): (_notified, lambda notifies: notifies.__anext__()),
    ("pool", "__aenter__"): (_pool_closed, lambda pool: pool.__aenter__()),
    ("pool", "__aexit__"): (_pool_open, lambda pool: pool.__aexit__(*_EXIT)),
    ("pool", "close"): (_pool, lambda pool: pool.close()),
    ("pool", "wait"): (_pool, lambda pool: pool.wait()),
    ("pool", "getconn"): (_pool, lambda pool: pool.getconn()),
    ("pool", "putconn"): (
        partial(_borrowed, give_back=False),
        lambda borrowed: borrowed[0].putconn(borrowed[1]),
    ),
    ("pool", "check"): (_pool, lambda pool: pool.check()),
    ("pool", "check_connection"): (
        _borrowed,
        lambda borrowed: borrowed[0].check_connection(borrowed[1]),
    ),
    ("pool", "resize"): (_pool, lambda pool: pool.resize(1, 3)),
}
