"""The adapter flavours under test, and connections to the test server in each.

Behaviour tests are written once, as ``async def`` tests, and run for every
flavour: the ``flavour`` fixture is parametrised and picks anyio's backend to
match (``sync`` runs on asyncio's loop, calling the blocking API through a
thin async facade, so a blocking call simply blocks the test's loop).

* ``flavour``: a ``Flavour`` with ``name``, ``connect(dsn, **kwargs)``.
* ``aconn``: a connection of the flavour, closed after the test;
  ``connect``: ``await connect(**kwargs)`` makes more, closed after the test too.
* ``admin``: a blocking ``psycopg3_sync`` connection (autocommit) to look at
  the server from the side (``pg_stat_activity``), closed after the test.
* ``table``: a fresh ``(x int)`` table named after the test file, test and
  flavour, dropped after the test (a test module may define its own, with
  ``fresh_table``);
  ``rows(admin, table)`` reads its values in order, and
  ``backend_state(admin, pid)`` a backend's state in ``pg_stat_activity``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import psycopg3
import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from psycopg3.abc import BlockingConnectionBase, BlockingCursorBase, BlockingServerCursorBase

DOCS = Path(__file__).parent.parent / "docs"

# Methods that the async API awaits; the facade turns the sync ones into coroutines.
_AWAITED = {
    "execute",
    "fetchone",
    "fetchmany",
    "fetchall",
    "commit",
    "rollback",
    "close",
    "cancel",
    "tpc_begin",
    "tpc_prepare",
    "tpc_commit",
    "tpc_rollback",
    "tpc_recover",
    "executemany",
    "callproc",
    "scroll",
}

# Pipeline blocks (docs/pipeline.md): ``conn.pipeline()`` is entered with
# ``async with`` like a transaction block, and ``p.sync()`` is awaited.
_AWAITED |= {"sync"}
_WRAPPED_CONTEXTS = ("cursor", "transaction", "pipeline")


# What a blocking flavour's calls return that the facade wraps in turn.
_BLOCKING_OBJECTS = (BlockingCursorBase, BlockingServerCursorBase, BlockingConnectionBase)


class SyncFacade:
    """Presents a blocking connection or cursor with the async API's shape."""

    def __init__(self, target: Any):
        self._target = target

    @property
    def target(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name == "copy":
            return lambda *a, **k: SyncCopyFacade(value(*a, **k))
        if name in _WRAPPED_CONTEXTS:
            return lambda *a, **k: SyncFacade(value(*a, **k))
        if name == "notifies":
            # LISTEN/NOTIFY: the sync generator, iterated with ``async for``.
            return lambda *a, **k: SyncFacade(value(*a, **k))
        if name in _AWAITED and callable(value):

            async def call(*args: Any, **kwargs: Any) -> Any:
                result = value(*args, **kwargs)
                if isinstance(result, _BLOCKING_OBJECTS):
                    return SyncFacade(result)
                return result

            return call
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_target":
            object.__setattr__(self, name, value)
        else:
            setattr(self._target, name, value)

    async def __aenter__(self) -> Any:
        entered = self._target.__enter__()
        # A transaction block is returned as is: Rollback(tx) must name it.
        return entered if isinstance(entered, psycopg3.Transaction) else self

    async def __aexit__(self, *exc: Any) -> Any:
        return self._target.__exit__(*exc)

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._target:
            yield row


# -- COPY: the blocking Copy with the AsyncCopy's shape ------------------------


class SyncCopyFacade:
    """Presents a blocking ``Copy`` as an ``AsyncCopy``: ``async with``, awaited methods."""

    def __init__(self, copy: psycopg3.Copy):
        self.target = copy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def __aenter__(self) -> SyncCopyFacade:
        self.target.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return self.target.__exit__(*exc)

    async def write(self, buffer: Any) -> None:
        self.target.write(buffer)

    async def write_row(self, values: Any) -> None:
        self.target.write_row(values)

    async def read(self) -> bytes:
        return self.target.read()

    async def read_row(self) -> Any:
        return self.target.read_row()

    async def rows(self) -> AsyncIterator[Any]:
        for row in self.target.rows():
            yield row

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for block in self.target:
            yield block


def load_doc_adapter() -> Any:
    """Import the worked example of docs/adapters.md as module ``anyio_adapter``.

    The example is the first python block of the page whose first line is
    ``# anyio_adapter.py``: the test suite runs the documentation's own code.
    """
    return _load_doc_module("anyio_adapter")


def load_doc_gevent_adapter() -> Any:
    """Import the gevent example of docs/adapters.md as module ``gevent_adapter``.

    The python block of the page whose first line is ``# gevent_adapter.py``.
    """
    return _load_doc_module("gevent_adapter")


def doc_module_source(name: str) -> str:
    """The python block of docs/adapters.md whose first line is ``# {name}.py``."""
    text = (DOCS / "adapters.md").read_text()
    blocks = text.split("```python\n")[1:]
    return next(b.split("```", 1)[0] for b in blocks if b.startswith(f"# {name}.py"))


def _load_doc_module(name: str) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    source = doc_module_source(name)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, str(DOCS / "adapters.md"), "exec"), module.__dict__)
    return module


@dataclass
class Flavour:
    name: str
    backend: str
    _connect: Callable[..., Any]

    async def connect(self, dsn: str, **kwargs: Any) -> Any:
        conn = self._connect(dsn, **kwargs)
        if inspect.isawaitable(conn):
            return await conn
        return SyncFacade(conn)

    @property
    def is_sync(self) -> bool:
        """Whether the flavour's API blocks (``sync``, ``gevent``): tests reach it through
        ``SyncFacade``, and a blocking call simply blocks the test's loop."""
        return self.name in BLOCKING_FLAVOURS


def _gevent_connect(dsn: str, **kwargs: Any) -> Any:
    return load_doc_gevent_adapter().gevent_connect(dsn, **kwargs)


def _anyio_connect(dsn: str, **kwargs: Any) -> Awaitable[Any]:
    return load_doc_adapter().anyio_connect(dsn, **kwargs)


FLAVOURS = {
    "sync": Flavour("sync", "asyncio", psycopg3_sync.connect),
    "asyncio": Flavour("asyncio", "asyncio", psycopg3_asyncio.asyncio_connect),
    "trio": Flavour("trio", "trio", psycopg3_trio.trio_connect),
    # The fourth flavour: built from docs/adapters.md alone, run on both backends.
    "anyio-asyncio": Flavour("anyio-asyncio", "asyncio", _anyio_connect),
    "anyio-trio": Flavour("anyio-trio", "trio", _anyio_connect),
    # docs/adapters.md's blocking example: greenlets, on gevent's hub (no
    # monkey patching: its waits switch to the hub themselves); shared
    # between OS threads too, where the tests use threads.
    "gevent": Flavour("gevent", "asyncio", _gevent_connect),
}

#: The flavours whose API blocks, run through ``SyncFacade``.
BLOCKING_FLAVOURS = ("sync", "gevent")


@pytest.fixture(params=list(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return FLAVOURS[request.param]


@pytest.fixture
def anyio_backend(flavour: Flavour) -> str:
    return flavour.backend


@pytest.fixture
async def aconn(flavour: Flavour, dsn: str) -> AsyncIterator[Any]:
    conn = await flavour.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def connect(flavour: Flavour, dsn: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``conn = await connect(**kwargs)``: a connection of the flavour, closed after the test."""
    conns: list[Any] = []

    async def make(**kwargs: Any) -> Any:
        conns.append(await flavour.connect(dsn, **kwargs))
        return conns[-1]

    try:
        yield make
    finally:
        for conn in conns:
            await conn.close()


@pytest.fixture
def admin(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def table(admin: Any, flavour: Flavour, request: pytest.FixtureRequest) -> Iterator[str]:
    file = request.path.stem.removeprefix("test_trust_").removeprefix("test_")
    test = request.node.originalname.removeprefix("test_")[:30]
    yield from fresh_table(admin, f"{file}_{test}_{flavour.name.replace('-', '_')}", "x int")


def fresh_table(admin: Any, name: str, columns: str) -> Iterator[str]:
    """A table fixture's body: create ``name (columns)`` afresh, yield it, drop it."""
    admin.execute(f"drop table if exists {name}")
    admin.execute(f"create table {name} ({columns})")
    yield name
    admin.execute(f"drop table if exists {name}")


def rows(admin: Any, table: str) -> list[int]:
    """The values of a ``table`` fixture's table, in order, as a second session sees them."""
    return [r[0] for r in admin.execute(f"select x from {table} order by x").fetchall()]


def backend_state(admin: Any, pid: int) -> str:
    """The state of backend ``pid`` in ``pg_stat_activity``; it must still be there."""
    row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()
    assert row is not None, f"backend {pid} is gone"
    return str(row[0])


def in_pg_sleep(admin: Any, pid: int) -> bool:
    """Whether backend ``pid`` is inside a ``pg_sleep()`` now (its wait event says so)."""
    query = "select wait_event from pg_stat_activity where pid = %s"
    return bool(admin.execute(query, (pid,)).fetchone() == ("PgSleep",))


def recording_thread(action: Callable[[], object], raised: list[BaseException]) -> threading.Thread:
    """A thread (not started) running ``action``; what it raises is appended to ``raised``."""

    def target() -> None:
        try:
            action()
        except BaseException as ex:
            raised.append(ex)

    return threading.Thread(target=target)


@pytest.fixture
def connect_cm(flavour: Flavour) -> Callable[..., Any]:
    """``async with connect_cm(dsn) as conn``, in the flavour's own idiom."""

    def make(dsn: str, **kwargs: Any) -> Any:
        conn = flavour._connect(dsn, **kwargs)
        if flavour.is_sync:
            return SyncFacade(conn)
        return conn

    return make


#: For ``pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)``.
ASYNC_FLAVOURS = [name for name in FLAVOURS if name not in BLOCKING_FLAVOURS]
