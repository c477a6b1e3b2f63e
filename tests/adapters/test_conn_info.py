"""``conn.info``, client encodings and notice handlers, in every flavour."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import psycopg3
from psycopg3.conninfo import conninfo_to_dict
from psycopg3.errors import Diagnostic
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio


async def scalar(conn: Any, query: str, params: Any = None) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return row[0]


async def test_info_attributes(aconn: Any, dsn: str) -> None:
    info = aconn.info
    assert isinstance(info, psycopg3.ConnectionInfo)
    params = conninfo_to_dict(dsn)
    if "host" in params and not params["host"].startswith("/"):
        assert info.host == params["host"]
    if "port" in params:
        assert info.port == int(params["port"])
    assert isinstance(info.port, int)
    assert info.dbname == await scalar(aconn, "select current_database()")
    assert info.user == await scalar(aconn, "select current_user")
    assert info.backend_pid == await scalar(aconn, "select pg_backend_pid()")
    assert info.server_version == int(await scalar(aconn, "show server_version_num"))
    assert info.vendor == "PostgreSQL"
    assert info.parameter_status("client_encoding") == "UTF8"
    assert info.parameter_status("integer_datetimes") == "on"
    assert info.parameter_status("no_such_parameter") is None
    assert info.encoding == "utf-8"
    assert info.options == ""
    await aconn.rollback()


async def test_transaction_status(aconn: Any) -> None:
    assert aconn.info.transaction_status == TransactionStatus.IDLE
    await aconn.execute("select 1")
    assert aconn.info.transaction_status == TransactionStatus.INTRANS
    with pytest.raises(psycopg3.DataError):
        await aconn.execute("select 1 / 0")
    assert aconn.info.transaction_status == TransactionStatus.INERROR
    await aconn.rollback()
    assert aconn.info.transaction_status == TransactionStatus.IDLE


async def test_password_never_shown(aconn: Any, dsn: str) -> None:
    info = aconn.info
    password = conninfo_to_dict(dsn).get("password")
    if password:
        assert info.password == password
        assert password not in repr(info)
        assert password not in info.dsn
        assert password not in str(info.get_parameters())
    assert "password" not in info.get_parameters()
    assert "password" not in conninfo_to_dict(info.dsn)


async def test_parameters_and_dsn(aconn: Any, flavour: Any) -> None:
    info = aconn.info
    params = info.get_parameters()
    assert params["dbname"] == info.dbname
    assert params["user"] == info.user
    parsed = conninfo_to_dict(info.dsn)
    assert parsed == params
    assert info.dbname in repr(info)
    # The dsn connects to the same database (with the password given apart).
    other = await flavour.connect(info.dsn, password=info.password or None)
    try:
        assert other.info.dbname == info.dbname
        assert other.info.backend_pid != info.backend_pid
    finally:
        await other.close()


async def test_timezone(aconn: Any) -> None:
    await aconn.execute("set timezone to 'Europe/Rome'")
    assert aconn.info.timezone == ZoneInfo("Europe/Rome")
    assert aconn.info.parameter_status("TimeZone") == "Europe/Rome"
    await aconn.execute("set timezone to 'UTC'")
    tz = aconn.info.timezone
    assert tz.utcoffset(None) is not None and tz.utcoffset(None).total_seconds() == 0  # type: ignore[union-attr]


async def test_closed_connection_info(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    info = conn.info
    await conn.close()
    assert "closed" in repr(info)
    assert info.transaction_status == TransactionStatus.UNKNOWN


# -- client encodings ---------------------------------------------------------


async def test_connect_with_latin1(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(f"{dsn} client_encoding=LATIN1")
    try:
        assert conn.info.parameter_status("client_encoding") == "LATIN1"
        assert conn.info.encoding == "iso8859-1"
        # The server converts from its encoding to LATIN1; we decode LATIN1.
        assert await scalar(conn, "select chr(233) || chr(255)") == "\u00e9\u00ff"
        assert await scalar(conn, "select %s::text", ("àèìòù",)) == "àèìòù"
        assert await scalar(conn, "select ascii(%s::text)", ("é",)) == 233
        with pytest.raises(psycopg3.DataError):  # € has no LATIN1 equivalent
            await scalar(conn, "select chr(8364)")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "pgenc, pyenc",
    [("UTF8", "utf-8"), ("LATIN1", "iso8859-1"), ("SQL_ASCII", "utf-8")],
)
async def test_encoding_follows_set(aconn: Any, pgenc: str, pyenc: str) -> None:
    await aconn.execute(f"set client_encoding to {pgenc}")
    assert aconn.info.encoding == pyenc
    assert aconn.info.parameter_status("client_encoding") == pgenc
    assert await scalar(aconn, "select 'abc'::text") == "abc"
    # SQL_ASCII: no conversion, the server's UTF-8 bytes are decoded as UTF-8.
    assert await scalar(aconn, "select chr(233)") == "é"
    if pgenc != "LATIN1":  # € does not exist in LATIN1
        assert await scalar(aconn, "select %s::text", ("é€",)) == "é€"


async def test_encoding_without_python_codec_is_not_called_utf8(aconn: Any) -> None:
    await aconn.execute("set client_encoding to 'EUC_TW'")
    codec = aconn.info.encoding
    assert codec == "psycopg3_ascii_only_euc_tw"
    assert "abc".encode(codec) == b"abc"
    with pytest.raises(psycopg3.NotSupportedError, match="no codec for the client encoding EUC_TW"):
        "é".encode(codec)  # UTF-8 would give bytes EUC_TW reads as other characters


# -- notices -------------------------------------------------------------------

NOTICES = "do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$"


async def test_notice_handler(aconn: Any) -> None:
    received: list[Diagnostic] = []
    aconn.add_notice_handler(received.append)
    await aconn.execute(NOTICES)
    # Read after the callback: the fields were copied before libpq freed them.
    assert [(d.severity, d.message_primary) for d in received] == [
        ("NOTICE", "hello 42"),
        ("WARNING", "careful"),
    ]
    assert received[0].sqlstate == "00000"
    assert received[1].sqlstate == "01000"
    assert received[0].severity_nonlocalized == "NOTICE"
    aconn.remove_notice_handler(received.append)
    await aconn.execute(NOTICES)
    assert len(received) == 2
    with pytest.raises(ValueError):
        aconn.remove_notice_handler(received.append)


async def test_several_handlers_and_a_failing_one(
    aconn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first: list[str] = []
    second: list[str] = []

    def failing(diag: Diagnostic) -> None:
        raise RuntimeError("handler bug")

    aconn.add_notice_handler(lambda d: first.append(d.message_primary))
    aconn.add_notice_handler(failing)
    aconn.add_notice_handler(lambda d: second.append(d.message_primary))
    with caplog.at_level(logging.INFO, logger="psycopg3"):
        cur = await aconn.execute(NOTICES + "; select 7")
    assert cur.nextset()
    assert await cur.fetchone() == (7,)
    assert first == second == ["hello 42", "careful"]
    failures = [r for r in caplog.records if r.exc_info and "handler bug" in str(r.exc_info[1])]
    assert len(failures) == 2
    # With handlers installed, the default logging is off.
    assert not [r for r in caplog.records if "careful" in r.getMessage()]


async def test_notices_logged_by_default(
    aconn: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="psycopg3"):
        await aconn.execute(NOTICES)
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "psycopg3"]
    assert (logging.INFO, "server notice: hello 42") in records
    assert (logging.WARNING, "server warning: careful") in records
    out, err = capsys.readouterr()
    assert "careful" not in out and "careful" not in err
