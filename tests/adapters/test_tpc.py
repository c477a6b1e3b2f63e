"""Two-phase commit: Xid, tpc_begin/prepare/commit/rollback/recover, in every flavour.

The server must allow prepared transactions (the test cluster sets
``max_prepared_transactions``). Every test's prepared transactions are
rolled back at the end, whatever happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from psycopg3 import ProgrammingError, Xid
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio


@pytest.fixture
def gid_prefix(admin: Any) -> Iterator[str]:
    """A prefix for this test's transaction ids: any of them left prepared is cleaned."""
    prefix = f"pg3test-{uuid.uuid4().hex[:12]}"
    yield prefix
    cur = admin.execute("select gid from pg_prepared_xacts")
    for (gid,) in cur.fetchall():
        if prefix in gid or prefix in str(Xid.from_string(gid).gtrid):
            escaped = gid.replace("'", "''")
            admin.execute(f"rollback prepared '{escaped}'")


@pytest.fixture
def table(admin: Any, flavour: Any, gid_prefix: str) -> Iterator[str]:
    # Dropped by the autouse ``drop_table``, which tears down after
    # ``gid_prefix``: a prepared transaction would hold a lock on the table.
    name = f"tpc_{flavour.name.replace('-', '_')}"
    admin.execute(f"drop table if exists {name}")
    admin.execute(f"create table {name} (x int)")
    yield name


@pytest.fixture(autouse=True)
def drop_table(admin: Any, flavour: Any) -> Iterator[None]:
    yield
    name = f"tpc_{flavour.name.replace('-', '_')}"
    admin.execute(f"drop table if exists {name}")


def prepared_gids(admin: Any) -> list[str]:
    return [r[0] for r in admin.execute("select gid from pg_prepared_xacts").fetchall()]


def rows(admin: Any, table: str) -> list[int]:
    return [r[0] for r in admin.execute(f"select x from {table} order by x").fetchall()]


# -- Xid --------------------------------------------------------------------


def test_xid_string_form() -> None:
    xid = Xid.from_parts(42, "global", "branch")
    assert str(xid) == "42_Z2xvYmFs_YnJhbmNo"
    assert Xid.from_string(str(xid)) == xid
    assert (xid.format_id, xid.gtrid, xid.bqual) == (42, "global", "branch")
    assert xid[:3] == (42, "global", "branch")
    assert xid.prepared is None and xid.owner is None and xid.database is None


def test_xid_non_xa() -> None:
    xid = Xid.from_parts(None, "just a string", None)
    assert str(xid) == "just a string"
    assert Xid.from_string("just a string") == xid
    # Looks like XA but is not valid base64: a plain id.
    assert Xid.from_string("1_!!_x").format_id is None
    assert Xid.from_string("1_a_b").format_id is None


@pytest.mark.parametrize(
    "args",
    [(-1, "a", "b"), (2**31, "a", "b"), (1, "a" * 65, "b"), (1, "a", "b" * 65), (None, "a", "b")],
)
def test_xid_checks(args: tuple[Any, ...]) -> None:
    with pytest.raises(ProgrammingError):
        Xid.from_parts(*args)


def test_xid_unicode_round_trip() -> None:
    xid = Xid.from_parts(0, "tëst€", "")
    assert Xid.from_string(str(xid)) == xid


# -- the protocol ---------------------------------------------------------------


async def test_two_phase_commit(aconn: Any, admin: Any, table: str, gid_prefix: str) -> None:
    xid = aconn.xid(7, gid_prefix, "branch-1")
    await aconn.tpc_begin(xid)
    assert aconn.info.transaction_status == TransactionStatus.INTRANS
    await aconn.execute(f"insert into {table} values (1)")
    await aconn.tpc_prepare()
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert str(xid) in prepared_gids(admin)
    assert rows(admin, table) == []
    recovered = [x for x in await aconn.tpc_recover() if x.gtrid == gid_prefix]
    assert len(recovered) == 1
    found = recovered[0]
    assert found[:3] == (7, gid_prefix, "branch-1")
    assert found.database == aconn.info.dbname
    assert found.owner == aconn.info.user
    assert isinstance(found.prepared, datetime)
    now = datetime.now(timezone.utc)
    assert now - timedelta(minutes=5) < found.prepared <= now + timedelta(minutes=5)
    await aconn.tpc_commit()
    assert str(xid) not in prepared_gids(admin)
    assert rows(admin, table) == [1]
    # The connection is back to normal use.
    await aconn.execute(f"insert into {table} values (2)")
    await aconn.commit()
    assert rows(admin, table) == [1, 2]


async def test_two_phase_rollback(aconn: Any, admin: Any, table: str, gid_prefix: str) -> None:
    await aconn.tpc_begin(aconn.xid(1, gid_prefix, ""))
    await aconn.execute(f"insert into {table} values (1)")
    await aconn.tpc_prepare()
    await aconn.tpc_rollback()
    assert not [g for g in prepared_gids(admin) if gid_prefix in str(Xid.from_string(g))]
    assert rows(admin, table) == []


@pytest.mark.parametrize("commit", [True, False])
async def test_one_phase(aconn: Any, admin: Any, table: str, gid_prefix: str, commit: bool) -> None:
    await aconn.tpc_begin(aconn.xid(1, gid_prefix, "b"))
    await aconn.execute(f"insert into {table} values (1)")
    if commit:
        await aconn.tpc_commit()
    else:
        await aconn.tpc_rollback()
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert rows(admin, table) == ([1] if commit else [])
    assert not [g for g in prepared_gids(admin) if gid_prefix in str(Xid.from_string(g))]


@pytest.mark.parametrize("commit", [True, False])
async def test_recover_from_another_connection(
    flavour: Any, dsn: str, admin: Any, table: str, gid_prefix: str, commit: bool
) -> None:
    conn = await flavour.connect(dsn)
    try:
        xid = conn.xid(3, gid_prefix, "x")
        await conn.tpc_begin(xid)
        await conn.execute(f"insert into {table} values (1)")
        await conn.tpc_prepare()
    finally:
        await conn.close()
    assert str(xid) in prepared_gids(admin)
    conn2 = await flavour.connect(dsn)
    try:
        (found,) = [x for x in await conn2.tpc_recover() if x.gtrid == gid_prefix]
        # tpc_recover() opens no transaction.
        assert conn2.info.transaction_status == TransactionStatus.IDLE
        if commit:
            await conn2.tpc_commit(found)
        else:
            await conn2.tpc_rollback(str(found))
    finally:
        await conn2.close()
    assert str(xid) not in prepared_gids(admin)
    assert rows(admin, table) == ([1] if commit else [])


async def test_non_xa_id(aconn: Any, admin: Any, table: str, gid_prefix: str) -> None:
    gid = f"{gid_prefix} it's plain"
    await aconn.tpc_begin(gid)
    await aconn.execute(f"insert into {table} values (5)")
    await aconn.tpc_prepare()
    assert gid in prepared_gids(admin)
    (found,) = [x for x in await aconn.tpc_recover() if x.gtrid == gid]
    assert found.format_id is None and found.bqual is None
    await aconn.tpc_commit()
    assert rows(admin, table) == [5]


# -- misuse ---------------------------------------------------------------------


async def test_misuse(aconn: Any, admin: Any, gid_prefix: str) -> None:
    with pytest.raises(ProgrammingError, match="tpc_begin"):
        await aconn.tpc_prepare()
    with pytest.raises(ProgrammingError, match="tpc_begin"):
        await aconn.tpc_commit()
    await aconn.execute("select 1")
    with pytest.raises(ProgrammingError, match="commit\\(\\) or rollback\\(\\) first"):
        await aconn.tpc_begin(aconn.xid(1, gid_prefix, "a"))
    await aconn.rollback()
    await aconn.tpc_begin(aconn.xid(1, gid_prefix, "a"))
    with pytest.raises(ProgrammingError, match="already in progress"):
        await aconn.tpc_begin(aconn.xid(1, gid_prefix, "b"))
    for method in ("commit", "rollback"):
        with pytest.raises(ProgrammingError, match="tpc_commit\\(\\) or tpc_rollback\\(\\)"):
            await getattr(aconn, method)()
    with pytest.raises(ProgrammingError, match="two-phase"):
        async with aconn.transaction():
            pass
    with pytest.raises(ProgrammingError, match="outside any transaction"):
        await aconn.tpc_commit(aconn.xid(1, gid_prefix, "zzz"))
    with pytest.raises(ProgrammingError, match="autocommit"):
        aconn.autocommit = True
    await aconn.tpc_prepare()
    with pytest.raises(ProgrammingError, match="already prepared"):
        await aconn.tpc_prepare()
    await aconn.tpc_rollback()
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    assert not [g for g in prepared_gids(admin) if gid_prefix in str(Xid.from_string(g))]


async def test_tpc_begin_in_autocommit_refused(flavour: Any, dsn: str, gid_prefix: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        with pytest.raises(ProgrammingError, match="autocommit"):
            await conn.tpc_begin(conn.xid(1, gid_prefix, "a"))
        assert conn.info.transaction_status == TransactionStatus.IDLE
    finally:
        await conn.close()


async def test_tpc_begin_inside_block_refused(aconn: Any, gid_prefix: str) -> None:
    async with aconn.transaction() as tx:
        with pytest.raises(ProgrammingError):
            await aconn.tpc_begin(aconn.xid(1, gid_prefix, "a"))
    assert tx.status == "committed"


async def test_commit_prepared_unknown_xid_is_a_server_error(aconn: Any, gid_prefix: str) -> None:
    from psycopg3 import DatabaseError

    with pytest.raises(DatabaseError) as excinfo:
        await aconn.tpc_commit(aconn.xid(1, gid_prefix, "never"))
    assert excinfo.value.sqlstate == "42704"  # undefined_object
