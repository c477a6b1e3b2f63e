"""A dropped connection is freed at once, by reference counting, in every flavour.

Its cursors, blocks and notifications' iteration reach its internals through
links (``psycopg3._link``) that they hold and the connection never does: a
connection -> satellite -> connection cycle would leave every dropped
connection (its socket, its server session) to the garbage collector.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from psycopg3 import pq

PIPELINE_LIBPQ = 140000


def unwrap(conn: Any) -> Any:
    """The driver's connection behind the blocking flavours' async facade."""
    return getattr(conn, "target", conn)


async def use_every_satellite(conn: Any) -> None:
    """Make each kind of satellite once: cursors, blocks, COPY, notifies()."""
    cur = conn.cursor()
    await cur.execute("select %s", (1,))
    assert await cur.fetchone() == (1,)
    await cur.executemany("select %s", [(1,), (2,)])
    async with conn.transaction():
        scur = conn.cursor("refcount_cursor")
        await scur.execute("select generate_series(1, 3)")
        assert len(await scur.fetchall()) == 3
        await scur.close()
    async with cur.copy("copy (select 1) to stdout") as copy:
        assert await copy.read_row() == ("1",)
    if pq.version() >= PIPELINE_LIBPQ:
        async with conn.pipeline():
            await cur.execute("select 2")
        assert await cur.fetchone() == (2,)
    await conn.commit()
    async for _ in conn.notifies(timeout=0):
        pass


@pytest.mark.anyio
@pytest.mark.parametrize("closed", [False, True], ids=["left_open", "closed"])
async def test_dropped_connection_is_freed_without_the_collector(
    flavour: Any, dsn: str, closed: bool
) -> None:
    gc.collect()
    gc.disable()
    try:
        conn = await flavour.connect(dsn)
        await use_every_satellite(conn)
        if closed:
            await conn.close()
        ref = weakref.ref(unwrap(conn))
        if closed:
            del conn
        else:
            with pytest.warns(ResourceWarning, match="garbage collected while open"):
                del conn
        assert ref() is None, "a dropped connection waits for the garbage collector"
    finally:
        gc.enable()
