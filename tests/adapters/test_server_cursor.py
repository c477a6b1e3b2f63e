"""Server-side cursors (``DECLARE``/``FETCH``/``MOVE``/``CLOSE``), in every flavour."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import psycopg3
from psycopg3 import pq

pytestmark = pytest.mark.anyio


@pytest.fixture
def sconn(aconn: Any) -> Any:
    return aconn


async def server_cursors(aconn: Any) -> list[str]:
    # pg_cursors shows the cursors of the session that reads it.
    cur = await aconn.execute("select name from pg_cursors order by name")
    return [name for (name,) in await cur.fetchall()]


async def test_fetch(sconn: Any) -> None:
    cur = sconn.cursor("fetch_c")
    assert cur.name == "fetch_c"
    assert cur.rownumber is None
    assert await cur.execute("select generate_series(1, %s) as n, %s::text", (10, "x")) is not None
    assert cur.rownumber == 0
    assert await cur.fetchone() == (1, "x")
    assert await cur.fetchmany(3) == [(2, "x"), (3, "x"), (4, "x")]
    cur.arraysize = 2
    assert await cur.fetchmany() == [(5, "x"), (6, "x")]
    assert await cur.fetchmany(0) == []
    assert cur.rownumber == 6
    assert await cur.fetchall() == [(i, "x") for i in range(7, 11)]
    assert await cur.fetchone() is None
    assert await cur.fetchall() == []
    assert cur.rowcount == 10
    await cur.close()


async def test_description_before_fetch(sconn: Any) -> None:
    cur = sconn.cursor("desc_c")
    assert cur.description is None
    await cur.execute("select 1::int4 as a, 'x'::varchar(7) as b")
    assert [tuple(c) for c in cur.description] == [
        ("a", 23, None, 4, None, None, None),
        ("b", 1043, 7, None, None, None, None),
    ]
    await cur.close()


async def test_declare_uses_server_params(sconn: Any, admin: Any) -> None:
    cur = sconn.cursor("params_c")
    evil = "'; select 'pwned"
    await cur.execute("select %s::text", (evil,))
    pid = sconn.pgconn.backend_pid
    row = admin.execute("select query from pg_stat_activity where pid = %s", (pid,)).fetchone()
    assert row == ('DECLARE "params_c" CURSOR FOR select $1::text',)
    assert await cur.fetchone() == (evil,)
    await cur.close()


async def test_iteration_fetches_in_batches(sconn: Any, admin: Any) -> None:
    cur = sconn.cursor("iter_c")
    cur.itersize = 7
    await cur.execute("select generate_series(1, 30)")
    pid = sconn.pgconn.backend_pid
    seen = []
    async for (n,) in cur:
        seen.append(n)
        if n == 3:
            query = admin.execute(
                "select query from pg_stat_activity where pid = %s", (pid,)
            ).fetchone()
            assert query == ('FETCH FORWARD 7 FROM "iter_c"',)
            assert cur.rownumber == 7
    assert seen == list(range(1, 31))
    assert cur.rownumber == 30
    await cur.close()


async def test_default_itersize(sconn: Any) -> None:
    cur = sconn.cursor("itersize_c")
    assert cur.itersize == 100
    await cur.execute("select generate_series(1, 250)")
    assert len([row async for row in cur]) == 250
    await cur.close()


async def test_close_closes_on_server(sconn: Any) -> None:
    cur = sconn.cursor("close_c")
    await cur.execute("select 1")
    assert await server_cursors(sconn) == ["close_c"]
    await cur.close()
    assert cur.closed
    assert await server_cursors(sconn) == []
    with pytest.raises(psycopg3.InterfaceError):
        await cur.fetchone()
    await cur.close()


async def test_close_after_transaction_end(sconn: Any) -> None:
    cur = sconn.cursor("gone_c")
    await cur.execute("select 1")
    await sconn.commit()  # the cursor ends with its transaction
    await cur.close()  # must not fail, nor leave a failed transaction
    assert sconn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    cur = sconn.cursor("gone_c")
    await cur.execute("select 2")
    await sconn.commit()
    await sconn.execute("select 1")  # another transaction is open
    await cur.close()
    assert sconn.pgconn.transaction_status == pq.TransactionStatus.INTRANS


async def test_close_in_failed_transaction(sconn: Any) -> None:
    cur = sconn.cursor("failed_c")
    await cur.execute("select 1")
    with pytest.raises(psycopg3.errors.DivisionByZero):
        await sconn.execute("select 1 / 0")
    await cur.close()
    assert sconn.pgconn.transaction_status == pq.TransactionStatus.INERROR
    await sconn.rollback()


async def test_execute_twice_redeclares(sconn: Any) -> None:
    cur = sconn.cursor("again_c")
    await cur.execute("select 1")
    await cur.execute("select 2")
    assert await cur.fetchall() == [(2,)]
    await cur.close()


async def test_scroll(sconn: Any) -> None:
    cur = sconn.cursor("scroll_c", scrollable=True)
    await cur.execute("select generate_series(0, 9)")
    await cur.scroll(3)
    assert await cur.fetchone() == (3,)
    await cur.scroll(-2)
    assert await cur.fetchone() == (2,)
    await cur.scroll(8, mode="absolute")
    assert await cur.fetchone() == (8,)
    assert await cur.fetchall() == [(9,)]
    await cur.scroll(0, mode="absolute")
    assert await cur.fetchone() == (0,)
    with pytest.raises(IndexError):
        await cur.scroll(-5)
    with pytest.raises(IndexError):
        await cur.scroll(20, mode="absolute")
    assert await cur.fetchone() is None
    await cur.close()


async def test_no_scroll(sconn: Any) -> None:
    cur = sconn.cursor("noscroll_c", scrollable=False)
    await cur.execute("select generate_series(0, 9)")
    await cur.scroll(2)  # forward is always allowed
    assert await cur.fetchone() == (2,)
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.scroll(-1)
    assert await cur.fetchone() == (3,)
    await cur.close()


async def test_withhold_survives_commit(sconn: Any) -> None:
    cur = sconn.cursor("hold_c", withhold=True)
    await cur.execute("select generate_series(1, 5)")
    await sconn.commit()
    assert await cur.fetchmany(2) == [(1,), (2,)]
    await sconn.commit()
    assert await cur.fetchall() == [(3,), (4,), (5,)]
    await cur.close()
    await sconn.commit()
    cur2 = await sconn.execute("select count(*) from pg_cursors")
    assert await cur2.fetchone() == (0,)


async def test_autocommit_needs_withhold(sconn: Any) -> None:
    sconn.autocommit = True
    cur = sconn.cursor("auto_c")
    with pytest.raises(psycopg3.errors.NoActiveSqlTransaction):
        await cur.execute("select 1")
    cur = sconn.cursor("auto_hold_c", withhold=True)
    await cur.execute("select 1")
    assert await cur.fetchall() == [(1,)]
    await cur.close()
    cur2 = await sconn.execute("select count(*) from pg_cursors")
    assert await cur2.fetchone() == (0,)


async def test_binary(sconn: Any) -> None:
    cur = sconn.cursor("binary_c", binary=True)
    await cur.execute("select 1::int4, 'x'::text, 1.5::numeric")
    assert cur.description[0].type_code == 23
    assert await cur.fetchone() == (1, "x", pytest.approx(1.5))
    await cur.close()


async def test_odd_name_is_quoted(sconn: Any) -> None:
    name = 'my "odd"; cursor'
    cur = sconn.cursor(name)
    await cur.execute("select 1")
    assert await cur.fetchone() == (1,)
    await cur.close()
    cur2 = await sconn.execute("select count(*) from pg_cursors")
    assert await cur2.fetchone() == (0,)


async def test_fetch_before_execute(sconn: Any) -> None:
    cur = sconn.cursor("early_c")
    with pytest.raises(psycopg3.ProgrammingError):
        await cur.fetchone()


async def test_context_manager_closes(sconn: Any) -> None:
    async with sconn.cursor("cm_c") as cur:
        await cur.execute("select 1")
    assert cur.closed
    cur2 = await sconn.execute("select count(*) from pg_cursors")
    assert await cur2.fetchone() == (0,)


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import psycopg3_sync

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    query = "select generate_series(1, 1000000), 'x' || repeat('y', 20)"
    with psycopg3_sync.connect(sys.argv[1]) as conn:
        conn.execute("select 1").fetchall()
        before = rss_mb()
        count = 0
        if sys.argv[2] == "server":
            cur = conn.cursor("big")  # default itersize: 100 rows per FETCH
            cur.execute(query)
            for row in cur:
                count += 1
        else:
            count = len(conn.execute(query).fetchall())
        peak = rss_mb()
        print(json.dumps({"rows": count, "peak_mb": peak, "growth_mb": peak - before}))
    """
)


def _memory_growth(dsn: str, mode: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, dsn, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=50,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.slow
def test_million_rows_bounded_memory(dsn: str) -> None:
    server = _memory_growth(dsn, "server")
    client = _memory_growth(dsn, "client")
    print(f"\npeak RSS growth: server-side {server}, client-side fetchall {client}")
    assert server["rows"] == client["rows"] == 1_000_000
    assert server["growth_mb"] < 30
    assert client["growth_mb"] > 3 * server["growth_mb"]
