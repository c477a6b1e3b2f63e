"""A short tour of psycopg3, one example per flavour: ``nox -s demo``.

Uses ``$PSYCOPG3_TEST_DSN`` if set; otherwise starts a throwaway PostgreSQL
cluster from the local server binaries and stops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import trio

import psycopg3
import psycopg3_sync
from psycopg3_asyncio import asyncio_connect
from psycopg3_trio import trio_connect

sys.path.insert(0, str(Path(__file__).parent))
from pgcluster import Cluster  # noqa: E402


def demo_sync(dsn: str) -> None:
    print("== psycopg3_sync (blocking, DB-API 2.0)")
    with psycopg3_sync.connect(dsn) as conn:
        cur = conn.execute("select %s + %s, %s::text", (1, 2, "three"))
        print("  select %s + %s, %s::text ->", cur.fetchone())
        conn.execute("create temp table fruit (name text, price numeric)")
        cur = conn.cursor()
        for name, price in [("apple", "0.5"), ("pear", "0.75")]:
            cur.execute(
                "insert into fruit values (%(name)s, %(price)s::numeric)",
                {"name": name, "price": price},
            )
        cur.execute("select name, price from fruit order by name")
        print("  fruit ->", cur.fetchall(), "columns:", [c.name for c in cur.description])
        try:
            conn.execute("select 1 / 0")
        except psycopg3.DataError as ex:
            print(f"  select 1 / 0 -> {type(ex).__name__} (SQLSTATE {ex.sqlstate}): {ex}")
        conn.rollback()


async def demo_asyncio(dsn: str) -> None:
    print("== psycopg3_asyncio")
    async with asyncio_connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        await cur.execute("select 10; select 20")
        first = await cur.fetchone()
        cur.nextset()
        print("  select 10; select 20 ->", first, await cur.fetchone())
        try:
            async with asyncio.timeout(0.5):
                await conn.execute("select pg_sleep(10)")
        except TimeoutError:
            print("  pg_sleep(10) under asyncio.timeout(0.5) -> TimeoutError, query cancelled")
        cur = await conn.execute("select 'still usable'")
        print("  next query ->", await cur.fetchone())


async def demo_trio(dsn: str) -> None:
    print("== psycopg3_trio")
    async with trio_connect(dsn, autocommit=True) as conn:
        async with conn.cursor() as cur:
            await cur.execute("select generate_series(1, 3) as n, %s::text as label", ("trio",))
            print("  rows ->", [row async for row in cur])
        with trio.move_on_after(0.5) as scope:
            await conn.execute("select pg_sleep(10)")
        print(
            "  pg_sleep(10) under move_on_after(0.5) -> cancelled_caught =", scope.cancelled_caught
        )
        cur = await conn.execute("select 'still usable'")
        print("  next query ->", await cur.fetchone())


def main() -> int:
    with ExitStack() as stack:
        dsn = os.environ.get("PSYCOPG3_TEST_DSN")
        if not dsn:
            print("starting a throwaway PostgreSQL cluster...")
            dsn = stack.enter_context(Cluster()).dsn
        demo_sync(dsn)
        asyncio.run(demo_asyncio(dsn))
        trio.run(demo_trio, dsn)
    print("demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
