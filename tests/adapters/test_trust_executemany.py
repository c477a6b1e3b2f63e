"""executemany reports exactly what the server did, in every flavour (issue 14, case 1).

Outside a pipeline block, ``executemany()`` sends its statements in one
pipeline of its own, in batches, with one sync at the end. What it promises,
checked here against the server's truth (a second session):

* success: ``rowcount`` is the sum of every statement's, and every row is
  there (after the commit, in a transaction);
* a failing statement, wherever it is (first, last, at and around the batch
  boundaries, in a later batch): its error is raised, ``rowcount`` is -1 and
  nothing is durable. With no transaction open (autocommit) the statements
  form one implicit transaction, rolled back whole; in a transaction, the
  transaction is aborted and the user rolls it back;
* an error at the sync (the implicit transaction's commit fails: a deferred
  constraint) is raised too, and in a pipeline block it is the sync's, not
  the next command's result;
* a COPY, which cannot run in a pipeline, is refused without hanging;
* the connection is usable afterwards, out of pipeline mode.

The batch size is ``pipeline_execute_many``'s default (100 statements).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from fix_flavours import fresh_table
from psycopg3 import errors
from psycopg3.pq import PipelineStatus, TransactionStatus

pytestmark = pytest.mark.anyio

ROWS = 250
#: Where the failing statement is: first, around each batch boundary, in a later batch, last.
FAILING_AT = [0, 1, 99, 100, 101, 150, 199, 200, 201, 230, 249]


@pytest.fixture
def table(admin: Any, flavour: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    # One table per test (names past 63 bytes would be truncated into one).
    name = "trust_em_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    yield from fresh_table(admin, name, "id int primary key, x text")


def reset(admin: Any, table: str, *ids: int) -> None:
    """Empty the table, then commit the rows ``ids`` (the ones the batch will collide with)."""
    admin.execute(f"delete from {table}")
    for row_id in ids:
        admin.execute(f"insert into {table} values (%s, 'there before')", (row_id,))


def server_ids(admin: Any, table: str) -> list[int]:
    """The rows another session sees: the server's truth."""
    return [row[0] for row in admin.execute(f"select id from {table} order by id").fetchall()]


async def assert_usable(conn: Any) -> None:
    assert conn.pgconn.pipeline_status == PipelineStatus.OFF
    cur = await conn.execute("select %s::int", (42,))
    assert await cur.fetchone() == (42,)


async def check_each_failing(
    conn: Any,
    cur: Any,
    admin: Any,
    table: str,
    failing_at: list[int],
    run: Callable[[], Awaitable[Any]],
) -> None:
    """For each id of ``failing_at`` already in the table: ``run()`` raises, and did nothing.

    Nothing reported done (``rowcount`` -1) and nothing done (the server has
    that row only); autocommit: no transaction is left; in a transaction, it
    is aborted and rolled back; the connection is usable after.
    """
    for failing in failing_at:
        reset(admin, table, failing)
        with pytest.raises(errors.UniqueViolation):
            await run()
        assert cur.rowcount == -1, failing  # nothing reported done…
        assert server_ids(admin, table) == [failing]  # …and nothing done
        if conn.autocommit:
            assert conn.info.transaction_status == TransactionStatus.IDLE
        else:
            assert conn.info.transaction_status == TransactionStatus.INERROR
            await conn.rollback()
            assert server_ids(admin, table) == [failing]
        await assert_usable(conn)


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
async def test_failing_row_raises_and_writes_nothing(
    admin: Any, table: str, connect: Any, autocommit: bool
) -> None:
    conn = await connect(autocommit=autocommit)
    cur = conn.cursor()

    async def run() -> None:
        await cur.executemany(
            f"insert into {table} values (%s, 'new')", [(i,) for i in range(ROWS)]
        )

    await check_each_failing(conn, cur, admin, table, FAILING_AT, run)
    # The same connection writes every row of a batch that can succeed.
    await cur.executemany(f"insert into {table} values (%s, 'new')", [(-i,) for i in range(1, 151)])
    assert cur.rowcount == 150
    if not autocommit:
        await conn.commit()
    assert server_ids(admin, table) == list(range(-150, 0)) + [FAILING_AT[-1]]


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
async def test_rowcount_is_the_servers(
    admin: Any, table: str, connect: Any, autocommit: bool
) -> None:
    conn = await connect(autocommit=autocommit)
    cur = conn.cursor()
    for rows in [1, 99, 100, 101, 200, 201, 350]:
        reset(admin, table)
        await cur.executemany(
            f"insert into {table} values (%s, 'new')", [(i,) for i in range(rows)]
        )
        assert cur.rowcount == rows
        if not autocommit:
            await conn.commit()
        assert server_ids(admin, table) == list(range(rows))
        # Statements that affect no row count for nothing.
        await cur.executemany(
            f"update {table} set x = 'updated' where id = %s",
            [(i % 2 - 1,) for i in range(rows)],
        )
        assert cur.rowcount == rows // 2
        if not autocommit:
            await conn.commit()


async def test_returning(admin: Any, table: str, connect: Any) -> None:
    conn = await connect(autocommit=True)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s, 'new') returning id"
    params = [(i,) for i in range(ROWS)]

    async def run() -> None:
        await cur.executemany(insert, params, returning=True)

    await check_each_failing(conn, cur, admin, table, [0, 100, 150, 249], run)
    reset(admin, table)
    await cur.executemany(insert, params, returning=True)
    assert cur.rowcount == ROWS
    got = [(await cur.fetchone())[0]]
    while cur.nextset():
        got.append((await cur.fetchone())[0])
    assert got == list(range(ROWS))
    assert server_ids(admin, table) == list(range(ROWS))


async def test_not_prepared(admin: Any, table: str, connect: Any) -> None:
    # The same, each statement sent unnamed (nothing prepared).
    conn = await connect(autocommit=True, prepare_threshold=None)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s, 'new')"

    async def run() -> None:
        await cur.executemany(insert, [(i,) for i in range(ROWS)])

    await check_each_failing(conn, cur, admin, table, [0, 99, 100, 101, 201, 249], run)
    await cur.executemany(insert, [(i,) for i in range(ROWS + 1) if i != FAILING_AT[-1]])
    assert cur.rowcount == ROWS
    assert server_ids(admin, table) == list(range(ROWS + 1))


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
async def test_in_a_pipeline_block(admin: Any, table: str, connect: Any, autocommit: bool) -> None:
    # In a user's block the statements join its pipeline: the error comes
    # with the block's end (its sync), and what was sent since the last sync
    # is not durable.
    conn = await connect(autocommit=autocommit)
    cur = conn.cursor()
    insert = f"insert into {table} values (%s, 'new')"
    params = [(i,) for i in range(ROWS)]

    async def run() -> None:
        async with conn.pipeline():
            await cur.executemany(insert, params)

    await check_each_failing(conn, cur, admin, table, [0, 99, 100, 101, 201, 249], run)
    reset(admin, table)
    async with conn.pipeline():
        await cur.executemany(insert, params)
    assert cur.rowcount == ROWS
    if not autocommit:
        await conn.commit()
    assert server_ids(admin, table) == list(range(ROWS))


# -- an error at the sync: the implicit transaction fails to commit -----------


@pytest.fixture
def deferred(admin: Any, table: str) -> str:
    """``table`` with a unique constraint checked at commit: every insert succeeds alone."""
    admin.execute(f"drop table {table}")
    admin.execute(
        f"create table {table} (id int, x text,"
        " constraint deferred_u unique (id) deferrable initially deferred)"
    )
    return table


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
async def test_deferred_constraint(
    admin: Any, deferred: str, connect: Any, autocommit: bool
) -> None:
    conn = await connect(autocommit=autocommit)
    cur = conn.cursor()
    insert = f"insert into {deferred} values (%s, 'new')"
    for duplicate in [0, 150, 249]:
        params = [(i,) for i in range(ROWS)] + [(duplicate,)]
        if autocommit:
            # The commit at the sync fails: no statement is done.
            with pytest.raises(errors.UniqueViolation):
                await cur.executemany(insert, params)
            assert cur.rowcount == -1
        else:
            await cur.executemany(insert, params)
            assert cur.rowcount == ROWS + 1
            with pytest.raises(errors.UniqueViolation):
                await conn.commit()
        assert server_ids(admin, deferred) == []
        await assert_usable(conn)
    await cur.executemany(insert, [(i,) for i in range(ROWS)])
    if not autocommit:
        await conn.commit()
    assert server_ids(admin, deferred) == list(range(ROWS))


async def test_deferred_constraint_in_a_pipeline_block(
    admin: Any, deferred: str, connect: Any
) -> None:
    conn = await connect(autocommit=True)
    cur = conn.cursor()
    insert = f"insert into {deferred} values (%s, 'new')"
    with pytest.raises(errors.UniqueViolation):
        async with conn.pipeline():
            await cur.executemany(insert, [(1,), (2,), (1,)])
    assert server_ids(admin, deferred) == []
    async with conn.pipeline() as p:
        await cur.execute(insert, (1,))
        await cur.execute(insert, (1,))
        with pytest.raises(errors.UniqueViolation):
            await p.sync()  # the error is the sync's, raised once
        # Each command after it gets its own result.
        after = await conn.execute("select %s::int", (42,))
        await cur.execute(insert, (3,))
        assert await after.fetchone() == (42,)
    assert cur.rowcount == 1
    assert server_ids(admin, deferred) == [3]
    await assert_usable(conn)


# -- COPY sent in a pipeline: libpq returns its result until the COPY ends ----


@pytest.mark.timeout(20)
async def test_copy_is_refused_without_hanging(admin: Any, table: str, connect: Any) -> None:
    admin.execute(f"insert into {table} values (1, 'there before')")
    conn = await connect(autocommit=True)
    cur = conn.cursor()
    # Refused by its text before anything is sent: one COPY FROM among
    # others in a pipeline would end the session (the server cannot tell
    # the next commands from COPY data).
    for copy in (f"copy {table} to stdout", f"copy {table} from stdin"):
        for n in (1, 3):
            with pytest.raises(errors.NotSupportedError, match="cursor.copy"):
                await cur.executemany(copy, [()] * n)
            await assert_usable(conn)
    with pytest.raises(errors.NotSupportedError, match="pipeline block"):
        async with conn.pipeline():
            await cur.execute(f"copy {table} to stdout")
    await assert_usable(conn)
    assert server_ids(admin, table) == [1]
