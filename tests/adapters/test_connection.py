"""Connecting, closing and the connection context manager, in every flavour."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

import psycopg3
from psycopg3 import _connection_base
from psycopg3.conninfo import conninfo_to_dict, timeout_from_conninfo

pytestmark = pytest.mark.anyio


async def test_connect_from_string(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    assert not conn.closed
    cur = await conn.execute("select 1")
    assert await cur.fetchone() == (1,)
    await conn.close()
    assert conn.closed
    await conn.close()  # closing twice is harmless
    assert conn.closed


async def test_connect_from_keywords(flavour: Any, dsn: str) -> None:
    params = conninfo_to_dict(dsn)
    dbname = params.pop("dbname")
    conn = await flavour.connect("", dbname=dbname, **params)
    try:
        cur = await conn.execute("select current_database()")
        assert await cur.fetchone() == (dbname,)
    finally:
        await conn.close()


async def test_keywords_override_string(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, application_name="from keywords")
    try:
        cur = await conn.execute("show application_name")
        assert await cur.fetchone() == ("from keywords",)
    finally:
        await conn.close()


async def test_closed_connection_refuses_work(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    await conn.close()
    with pytest.raises(psycopg3.InterfaceError, match="closed"):
        await conn.execute("select 1")
    with pytest.raises(psycopg3.InterfaceError):
        conn.cursor()


async def test_context_manager_commits(flavour: Any, connect_cm: Any, dsn: str, admin: Any) -> None:
    admin.execute("drop table if exists cm_commit")
    admin.execute("create table cm_commit (x int)")
    async with connect_cm(dsn) as conn:
        await conn.execute("insert into cm_commit values (1)")
    assert conn.closed
    assert admin.execute("select count(*) from cm_commit").fetchone() == (1,)


async def test_context_manager_rolls_back(
    flavour: Any, connect_cm: Any, dsn: str, admin: Any
) -> None:
    admin.execute("drop table if exists cm_rollback")
    admin.execute("create table cm_rollback (x int)")
    with pytest.raises(ZeroDivisionError):
        async with connect_cm(dsn) as conn:
            await conn.execute("insert into cm_rollback values (1)")
            1 / 0
    assert conn.closed
    assert admin.execute("select count(*) from cm_rollback").fetchone() == (0,)


async def test_bad_password(flavour: Any, dsn: str) -> None:
    with pytest.raises(psycopg3.OperationalError, match="password authentication failed"):
        await flavour.connect(dsn, password="certainly not this one")


async def test_refused(flavour: Any, dsn: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nobody listens on that port now.
    with pytest.raises(psycopg3.OperationalError, match="connection failed"):
        await flavour.connect(dsn, port=str(port))


async def test_connect_timeout(flavour: Any, dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket that accepts TCP connections (the kernel does it) and never
    # answers: libpq sends its startup packet and waits forever.
    # connect_timeout counts whole seconds, 2 at least (test_conninfo checks
    # the reading): the deadline read from it is shortened to 0.3 s, since
    # what is tested here is that every flavour gives up at it.
    read: list[float | None] = []

    def shortened(params: dict[str, str]) -> float:
        read.append(timeout_from_conninfo(params))
        return 0.3

    monkeypatch.setattr(_connection_base, "timeout_from_conninfo", shortened)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(10)
        port = sock.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(psycopg3.OperationalError, match="timed out"):
            await flavour.connect(dsn, port=str(port), connect_timeout="2")
        elapsed = time.monotonic() - start
    assert read == [2.0]
    # Not before the deadline; expected 0.3 s, the bound tells a timeout from a hang.
    assert 0.3 <= elapsed < 10


async def test_repr_hides_password(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    try:
        password = conninfo_to_dict(dsn).get("password")
        target = getattr(conn, "target", conn)
        assert "IDLE" in repr(target)
        if password:
            assert password not in repr(target)
            assert password not in repr(target.pgconn)
    finally:
        await conn.close()


async def test_host_name_resolved_before_libpq(flavour: Any, dsn: str) -> None:
    params = conninfo_to_dict(dsn)
    if params.get("host") != "127.0.0.1":
        pytest.skip("needs the test server on 127.0.0.1")  # an external DSN may differ
    conn = await flavour.connect(dsn, host="localhost")
    try:
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)
        target = getattr(conn, "target", conn)
        assert target.pgconn.host == b"localhost"
        if not flavour.is_sync:
            # The async flavours gave libpq a numeric address: no DNS inside libpq.
            assert target.pgconn.hostaddr in (b"127.0.0.1", b"::1")
    finally:
        await conn.close()
