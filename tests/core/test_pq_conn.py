"""Tests of pq.PGconn against a real server: connecting, querying, COPY, cancel."""

from __future__ import annotations

import gc
import logging
import os
import select
import threading
import time
import weakref
from typing import Any

import pytest

from fix_wait import wait_until
from psycopg3 import errors, pq
from psycopg3.pq import ConnStatus, ExecStatus, Format, PollingStatus, TransactionStatus


def wait_connected(pgconn: pq.PGconn, timeout: float = 10.0) -> None:
    """Drive connect_poll() with select() until the connection is made."""
    deadline = time.monotonic() + timeout
    status = PollingStatus.WRITING
    while True:
        status = pgconn.connect_poll()
        if status == PollingStatus.OK:
            return
        if status == PollingStatus.FAILED:
            raise errors.OperationalError(pq.error_message(pgconn))
        fd = pgconn.socket
        left = deadline - time.monotonic()
        assert left > 0, "connection timed out"
        if status == PollingStatus.READING:
            select.select([fd], [], [], left)
        else:
            select.select([], [fd], [], left)


def wait_sleeping(dsn: str, pid: int) -> None:
    """Wait until backend ``pid`` sleeps in its query: a cancel sent before is ignored."""
    watcher = pq.PGconn.connect(dsn.encode())
    query = (
        b"select exists (select 1 from pg_stat_activity where pid = $1 and wait_event = 'PgSleep')"
    )
    try:
        wait_until(
            lambda: watcher.exec_params(query, [str(pid).encode()]).get_value(0, 0) == b"t",
            f"backend {pid} to run pg_sleep",
        )
    finally:
        watcher.finish()


def flush(pgconn: pq.PGconn) -> None:
    while pgconn.flush():
        readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [], 10)
        if readable:
            pgconn.consume_input()


def fetch_result(pgconn: pq.PGconn) -> pq.PGresult | None:
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [], 10)
        pgconn.consume_input()
    return pgconn.get_result()


def execute(pgconn: pq.PGconn) -> list[pq.PGresult]:
    """Read every result of the query already sent (non-blocking style)."""
    flush(pgconn)
    results = []
    while (result := fetch_result(pgconn)) is not None:
        results.append(result)
        if result.status in (ExecStatus.COPY_IN, ExecStatus.COPY_OUT):
            break
    return results


@pytest.fixture
def pgconn(dsn: str) -> Any:
    conn = pq.PGconn.connect(dsn.encode())
    yield conn
    conn.finish()


def test_connect_blocking(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    assert conn.status == ConnStatus.OK
    assert not conn.closed
    res = conn.exec_(b"select 40 + 2")
    assert res.status == ExecStatus.TUPLES_OK
    assert res.get_value(0, 0) == b"42"
    conn.finish()
    assert conn.closed


def test_connect_failure_raises() -> None:
    with pytest.raises(errors.OperationalError, match="connection failed"):
        pq.PGconn.connect(b"host=127.0.0.1 port=1 connect_timeout=2")


def test_connect_start_poll(dsn: str) -> None:
    conn = pq.PGconn.connect_start(dsn.encode())
    conn.nonblocking = True
    wait_connected(conn)
    assert conn.status == ConnStatus.OK
    assert conn.exec_(b"select 1").get_value(0, 0) == b"1"
    conn.finish()


def test_connect_start_bad_conninfo() -> None:
    conn = pq.PGconn.connect_start(b"nosuchoption=1")
    assert conn.status == ConnStatus.BAD
    assert conn.closed
    assert b"nosuchoption" in conn.error_message
    assert conn.connect_poll() == PollingStatus.FAILED
    conn.finish()


def test_properties(pgconn: pq.PGconn, dsn: str) -> None:
    params = dict(item.split("=", 1) for item in dsn.split())
    assert pgconn.server_version >= 100000
    assert pgconn.protocol_version == 3
    assert pgconn.backend_pid > 0
    assert pgconn.socket >= 0
    if "dbname" in params:
        assert pgconn.db == params["dbname"].encode()
    if "user" in params:
        assert pgconn.user == params["user"].encode()
    if "port" in params:
        assert pgconn.port == params["port"].encode()
    if "host" in params:
        assert pgconn.host == params["host"].encode()
    assert pgconn.password == params.get("password", "").encode()
    assert isinstance(pgconn.hostaddr, bytes)
    assert isinstance(pgconn.options, bytes)
    assert isinstance(pgconn.ssl_in_use, bool)
    assert pgconn.needs_password is False
    assert isinstance(pgconn.used_password, bool)
    assert pgconn.parameter_status(b"integer_datetimes") == b"on"
    assert pgconn.parameter_status(b"no_such_parameter") is None
    pid = pgconn.exec_(b"select pg_backend_pid()").get_value(0, 0)
    assert pid == str(pgconn.backend_pid).encode()
    info = {opt.keyword: opt for opt in pgconn.info}
    assert info[b"dbname"].val == pgconn.db
    assert pgconn.error_message == b""


def test_repr_hides_password(pgconn: pq.PGconn) -> None:
    text = repr(pgconn)
    assert "[OK]" in text
    assert pgconn.db.decode() in text
    if pgconn.password:
        assert pgconn.password.decode() not in text
    pgconn.finish()
    assert "[closed]" in repr(pgconn)


def tx_status(pgconn: pq.PGconn) -> TransactionStatus:
    return pgconn.transaction_status


def test_transaction_status(pgconn: pq.PGconn) -> None:
    assert tx_status(pgconn) == TransactionStatus.IDLE
    pgconn.exec_(b"begin")
    assert tx_status(pgconn) == TransactionStatus.INTRANS
    pgconn.send_query(b"select pg_sleep(0.05)")
    assert tx_status(pgconn) == TransactionStatus.ACTIVE
    execute(pgconn)
    assert tx_status(pgconn) == TransactionStatus.INTRANS
    assert pgconn.exec_(b"select 1/0").status == ExecStatus.FATAL_ERROR
    assert tx_status(pgconn) == TransactionStatus.INERROR
    pgconn.exec_(b"rollback")
    assert tx_status(pgconn) == TransactionStatus.IDLE


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.BINARY])
def test_send_query_params(pgconn: pq.PGconn, fmt: Format) -> None:
    pgconn.nonblocking = True
    assert pgconn.nonblocking
    pgconn.send_query_params(
        b"select $1::text, $2::int4, $3::bytea, $4::text",
        [b"hello", None, b"\x00\x01\xff", b""],
        param_types=[25, 23, 17, 0],
        param_formats=[0, 0, 1, 0],
        result_format=fmt,
    )
    (res,) = execute(pgconn)
    assert res.status == ExecStatus.TUPLES_OK, res.error_message
    assert res.fformat(0) == fmt
    assert res.get_value(0, 0) == b"hello"
    assert res.get_value(0, 1) is None
    if fmt == Format.BINARY:
        assert res.get_value(0, 2) == b"\x00\x01\xff"
    else:
        assert res.get_value(0, 2) == b"\\x0001ff"
    assert res.get_value(0, 3) == b""


def test_send_query_params_all_text(pgconn: pq.PGconn) -> None:
    pgconn.send_query_params(b"select $1 || $2", [b"ab", b"cd"])
    (res,) = execute(pgconn)
    assert res.get_value(0, 0) == b"abcd"


def test_exec_params_blocking(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_params(b"select $1::int + 1", [b"41"])
    assert res.get_value(0, 0) == b"42"
    res = pgconn.exec_params(b"select 1", None)
    assert res.get_value(0, 0) == b"1"


def test_prepare_describe(pgconn: pq.PGconn) -> None:
    res = pgconn.prepare(b"stmt1", b"select $1::int4 + $2", [23, 20])
    assert res.status == ExecStatus.COMMAND_OK, res.error_message
    desc = pgconn.describe_prepared(b"stmt1")
    assert desc.nparams == 2
    assert [desc.param_type(0), desc.param_type(1)] == [23, 20]
    assert desc.nfields == 1
    assert desc.ftype(0) == 20
    res = pgconn.exec_prepared(b"stmt1", [b"1", b"2"])
    assert res.get_value(0, 0) == b"3"

    pgconn.send_prepare(b"stmt2", b"select $1::text")
    assert [r.status for r in execute(pgconn)] == [ExecStatus.COMMAND_OK]
    pgconn.send_describe_prepared(b"stmt2")
    (desc,) = execute(pgconn)
    assert desc.nparams == 1 and desc.param_type(0) == 25
    pgconn.send_query_prepared(b"stmt2", [b"x"], result_format=Format.BINARY)
    (res,) = execute(pgconn)
    assert res.get_value(0, 0) == b"x"
    assert res.binary_tuples


def test_describe_portal(pgconn: pq.PGconn) -> None:
    pgconn.exec_(b"begin")
    pgconn.exec_(b"declare cur cursor for select 1::int8 as a, 'x'::text as b")
    desc = pgconn.describe_portal(b"cur")
    assert desc.nfields == 2
    assert [desc.fname(0), desc.fname(1)] == [b"a", b"b"]
    pgconn.send_describe_portal(b"cur")
    (desc,) = execute(pgconn)
    assert desc.ftype(0) == 20
    pgconn.exec_(b"rollback")


def test_close_needs_libpq_17(pgconn: pq.PGconn) -> None:
    if pq.version() >= 170000:
        # The libpq has it: closing a prepared statement works.
        pgconn.nonblocking = True
        pgconn.send_prepare(b"to_close", b"select 1")
        (prepared,) = execute(pgconn)
        assert prepared.status == ExecStatus.COMMAND_OK
        pgconn.send_close_prepared(b"to_close")
        (closed,) = execute(pgconn)
        assert closed.status == ExecStatus.COMMAND_OK
        pgconn.nonblocking = False
        return
    with pytest.raises(errors.NotSupportedError, match="libpq 17.0"):
        pgconn.send_close_prepared(b"x")
    with pytest.raises(errors.NotSupportedError, match="libpq 17.0"):
        pgconn.send_close_portal(b"x")


def test_cancel_conn_needs_libpq_17(pgconn: pq.PGconn) -> None:
    if pq.version() < 170000:
        with pytest.raises(errors.NotSupportedError, match="libpq 17.0"):
            pgconn.cancel_conn()
        return
    # Sent to an idle backend, the request is delivered (and ignored by it).
    request = pgconn.cancel_conn()
    request.start()
    while (status := request.poll()) not in (pq.PollingStatus.OK, pq.PollingStatus.FAILED):
        # Poll again only once the socket is ready, as libpq requires.
        reading = status == pq.PollingStatus.READING
        fds = [request.socket]
        select.select(fds if reading else [], [] if reading else fds, [], 5)
    assert status == pq.PollingStatus.OK, request.error_message
    request.finish()
    request.finish()  # idempotent
    assert pgconn.exec_(b"select 1").get_value(0, 0) == b"1"


def test_error_fields(pgconn: pq.PGconn) -> None:
    res = pgconn.exec_(b"select * from no_such_table_xyz")
    assert res.status == ExecStatus.FATAL_ERROR
    field = pq.DiagnosticField
    assert res.error_field(field.SQLSTATE) == b"42P01"
    assert res.error_field(field.SEVERITY_NONLOCALIZED) == b"ERROR"
    primary = res.error_field(field.MESSAGE_PRIMARY)
    assert primary is not None and b"no_such_table_xyz" in primary
    assert res.error_field(field.STATEMENT_POSITION) == b"15"
    assert res.error_field(field.MESSAGE_HINT) is None
    assert b"no_such_table_xyz" in res.error_message
    err = errors.error_from_result(res)
    assert isinstance(err, errors.ProgrammingError)
    assert err.sqlstate == "42P01"


def test_nul_rejected(pgconn: pq.PGconn) -> None:
    with pytest.raises(errors.DataError, match="query contains a NUL byte at position 8"):
        pgconn.exec_(b"select 1\x00; drop table x")
    with pytest.raises(errors.DataError, match="query contains a NUL byte"):
        pgconn.send_query(b"select \x00")
    with pytest.raises(errors.DataError, match=r"parameter \$2 contains a NUL byte"):
        pgconn.send_query_params(b"select $1, $2", [b"a", b"b\x00c"])
    with pytest.raises(errors.DataError, match=r"parameter \$1 contains a NUL byte"):
        pgconn.send_query_params(b"select $1", [b"\x00"], param_formats=[0])
    with pytest.raises(errors.DataError, match="statement name"):
        pgconn.prepare(b"a\x00b", b"select 1")
    # Nothing was sent: the session is untouched.
    assert pgconn.transaction_status == TransactionStatus.IDLE
    assert pgconn.exec_(b"select 1").get_value(0, 0) == b"1"


def test_nul_in_conninfo_rejected(dsn: str) -> None:
    with pytest.raises(errors.DataError, match="conninfo contains a NUL byte"):
        pq.PGconn.connect((dsn + " sslmode=require\x00").encode())
    with pytest.raises(errors.DataError, match="conninfo contains a NUL byte"):
        pq.PGconn.connect_start(b"\x00")


class LongBytes(bytes):
    """Bytes that claim to be over 2 GiB long, to reach the length checks."""

    def __len__(self) -> int:
        return 3_000_000_000


def test_overlong_param_rejected_on_call_path(pgconn: pq.PGconn) -> None:
    big = LongBytes(b"x")
    msg = r"parameter \$2 is 3000000000 bytes long: the most libpq can send is 2147483647"
    with pytest.raises(errors.DataError, match=msg):
        pgconn.send_query_params(b"select $1, $2", [b"a", big])
    with pytest.raises(errors.DataError, match=msg):
        pgconn.send_query_params(b"select $1, $2", [b"a", big], param_formats=[0, 1])
    with pytest.raises(errors.DataError, match=msg):
        pgconn.exec_prepared(b"x", [None, big], param_formats=[1, 1])
    pgconn.exec_(b"create temp table t (x text)")
    pgconn.exec_(b"copy t from stdin")
    with pytest.raises(errors.DataError, match="COPY data is 3000000000 bytes long"):
        pgconn.put_copy_data(big)
    pgconn.put_copy_end()
    assert pgconn.get_result() is not None
    assert pgconn.exec_(b"select 1").get_value(0, 0) == b"1"


def test_notice_handler(pgconn: pq.PGconn) -> None:
    seen: list[tuple[bytes | None, bytes | None]] = []
    kept: list[pq.PGresult] = []

    def handler(res: pq.PGresult) -> None:
        seen.append((res.error_field(pq.DiagnosticField.SEVERITY_NONLOCALIZED),
                     res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)))  # fmt: skip
        kept.append(res)

    pgconn.notice_handler = handler
    res = pgconn.exec_(b"do $$ begin raise notice 'hello'; raise warning 'there'; end $$")
    assert res.status == ExecStatus.COMMAND_OK
    assert seen == [(b"NOTICE", b"hello"), (b"WARNING", b"there")]
    # libpq owns notices: once the handler returned, the result is unusable.
    with pytest.raises(errors.OperationalError, match="the result was cleared"):
        kept[0].error_message  # noqa: B018
    pgconn.notice_handler = None
    pgconn.exec_(b"do $$ begin raise notice 'ignored'; end $$")
    assert len(seen) == 2


def test_notice_handler_error_is_logged(
    pgconn: pq.PGconn, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(res: pq.PGresult) -> None:
        raise ZeroDivisionError("boom")

    pgconn.notice_handler = handler
    with caplog.at_level(logging.ERROR, logger="psycopg3"):
        res = pgconn.exec_(b"do $$ begin raise notice 'hello'; end $$")
    assert res.status == ExecStatus.COMMAND_OK
    assert any("notice handler" in r.message and r.exc_info for r in caplog.records)


def test_notifies(pgconn: pq.PGconn, dsn: str) -> None:
    pgconn.exec_(b"listen chan_pq")
    other = pq.PGconn.connect(dsn.encode())
    other.exec_(b"notify chan_pq, 'payload'")
    other.exec_(b"notify chan_pq")
    other_pid = other.backend_pid
    other.finish()
    received: list[pq.PGnotify] = []
    # A guard against a hang only: both arrive within milliseconds.
    deadline = time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        select.select([pgconn.socket], [], [], 0.5)
        pgconn.consume_input()
        while (notify := pgconn.notifies()) is not None:
            received.append(notify)
    assert received == [
        pq.PGnotify(b"chan_pq", other_pid, b"payload"),
        pq.PGnotify(b"chan_pq", other_pid, b""),
    ]
    assert pgconn.notifies() is None


def test_copy_in_out(pgconn: pq.PGconn) -> None:
    pgconn.exec_(b"create temp table c (a int, b text)")
    res = pgconn.exec_(b"copy c from stdin")
    assert res.status == ExecStatus.COPY_IN
    assert pgconn.put_copy_data(b"1\thello\n") == 1
    assert pgconn.put_copy_data(bytearray(b"2\t\\N\n")) == 1
    assert pgconn.put_copy_data(memoryview(b"3\twith\\ttab\n")) == 1
    assert pgconn.put_copy_end() == 1
    done = pgconn.get_result()
    assert done is not None and done.status == ExecStatus.COMMAND_OK
    assert done.command_tuples == 3
    assert pgconn.get_result() is None

    out = pgconn.exec_(b"copy (select * from c order by a) to stdout")
    assert out.status == ExecStatus.COPY_OUT
    rows = []
    while True:
        nbytes, data = pgconn.get_copy_data(0)
        if nbytes == -1:
            break
        assert nbytes == len(data)
        rows.append(data)
    assert rows == [b"1\thello\n", b"2\t\\N\n", b"3\twith\\ttab\n"]
    end = pgconn.get_result()
    assert end is not None and end.status == ExecStatus.COMMAND_OK


def test_copy_in_abort(pgconn: pq.PGconn) -> None:
    pgconn.exec_(b"create temp table c (a int)")
    pgconn.exec_(b"copy c from stdin")
    pgconn.put_copy_data(b"1\n")
    assert pgconn.put_copy_end(b"given up") == 1
    res = pgconn.get_result()
    assert res is not None and res.status == ExecStatus.FATAL_ERROR
    assert b"given up" in res.error_message
    assert pgconn.exec_(b"select count(*) from c").get_value(0, 0) == b"0"


def test_get_copy_data_async(pgconn: pq.PGconn) -> None:
    pgconn.nonblocking = True
    pgconn.send_query(b"copy (select 'x' from generate_series(1, 3)) to stdout")
    assert [r.status for r in execute(pgconn)] == [ExecStatus.COPY_OUT]
    rows = []
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes == 0:
            select.select([pgconn.socket], [], [], 5)
            pgconn.consume_input()
            continue
        if nbytes == -1:
            break
        rows.append(data)
    assert rows == [b"x\n"] * 3
    assert [r.status for r in execute(pgconn)] == [ExecStatus.COMMAND_OK]


def test_escaping(pgconn: pq.PGconn) -> None:
    assert pgconn.escape_literal(b"it's") == b"'it''s'"
    assert pgconn.escape_literal(b"back\\slash") == b" E'back\\\\slash'"
    assert pgconn.escape_identifier(b'a "b"') == b'"a ""b"""'
    assert pgconn.escape_string(b"it's") == b"it''s"
    assert pgconn.escape_string(bytearray(b"")) == b""
    escaped = pgconn.escape_bytea(b"\x00\x01\xffa")
    assert escaped == b"\\x0001ff61"
    assert pq.unescape_bytea(escaped) == b"\x00\x01\xffa"
    literal = pgconn.escape_literal("ünï".encode())
    assert pgconn.exec_(b"select " + literal).get_value(0, 0) == "ünï".encode()
    for method in (pgconn.escape_literal, pgconn.escape_identifier, pgconn.escape_string):
        with pytest.raises(errors.DataError, match="NUL"):
            method(b"a\x00b")


@pytest.mark.parametrize("algorithm", [b"scram-sha-256", b"md5", None])
def test_encrypt_password(pgconn: pq.PGconn, algorithm: bytes | None) -> None:
    hashed = pgconn.encrypt_password(b"secret", b"someone", algorithm)
    assert b"secret" not in hashed
    if algorithm == b"md5":
        assert hashed.startswith(b"md5") and len(hashed) == 35
    elif algorithm == b"scram-sha-256":
        assert hashed.startswith(b"SCRAM-SHA-256$")


def test_encrypt_password_bad_algorithm(pgconn: pq.PGconn) -> None:
    with pytest.raises(errors.OperationalError, match="encrypting the password failed"):
        pgconn.encrypt_password(b"secret", b"someone", b"rot13")


def test_cancel_same_thread(pgconn: pq.PGconn, dsn: str) -> None:
    pgconn.nonblocking = True
    pgconn.send_query(b"select pg_sleep(10)")
    flush(pgconn)
    wait_sleeping(dsn, pgconn.backend_pid)
    cancel = pgconn.get_cancel()
    t0 = time.monotonic()
    cancel.cancel()
    results = execute(pgconn)
    # Expected: a cancel round trip (ms); the bound is far below the 10 s sleep.
    assert time.monotonic() - t0 < 5
    assert [r.status for r in results] == [ExecStatus.FATAL_ERROR]
    assert results[0].error_field(pq.DiagnosticField.SQLSTATE) == b"57014"
    cancel.free()
    cancel.free()
    with pytest.raises(errors.OperationalError, match="freed"):
        cancel.cancel()


def test_cancel_from_thread(pgconn: pq.PGconn, dsn: str) -> None:
    pid = pgconn.backend_pid

    def worker(handle: pq.PGcancel) -> None:
        wait_sleeping(dsn, pid)
        handle.cancel()
        handle.free()

    thread = threading.Thread(target=worker, args=(pgconn.get_cancel(),))
    thread.start()
    res = pgconn.exec_(b"select pg_sleep(10)")
    thread.join()
    assert res.error_field(pq.DiagnosticField.SQLSTATE) == b"57014"


def pipeline_status(pgconn: pq.PGconn) -> pq.PipelineStatus:
    return pgconn.pipeline_status


def test_pipeline(pgconn: pq.PGconn) -> None:
    pgconn.nonblocking = True
    assert pipeline_status(pgconn) == pq.PipelineStatus.OFF
    pgconn.enter_pipeline_mode()
    assert pipeline_status(pgconn) == pq.PipelineStatus.ON
    pgconn.send_query_params(b"select $1::int", [b"1"])
    pgconn.send_query_params(b"select $1::int * 2", [b"21"])
    pgconn.send_flush_request()
    pgconn.pipeline_sync()
    flush(pgconn)
    values = []
    for _ in range(2):
        res = fetch_result(pgconn)
        assert res is not None and res.status == ExecStatus.TUPLES_OK
        values.append(res.get_value(0, 0))
        assert fetch_result(pgconn) is None  # end of this query's results
    sync = fetch_result(pgconn)
    assert sync is not None and sync.status == ExecStatus.PIPELINE_SYNC
    assert values == [b"1", b"42"]
    pgconn.exit_pipeline_mode()
    assert pipeline_status(pgconn) == pq.PipelineStatus.OFF


def test_pipeline_exit_with_pending_results_fails(pgconn: pq.PGconn) -> None:
    pgconn.enter_pipeline_mode()
    pgconn.send_query_params(b"select 1", None)
    with pytest.raises(errors.OperationalError, match="exiting pipeline mode failed"):
        pgconn.exit_pipeline_mode()


def test_single_row_mode(pgconn: pq.PGconn) -> None:
    pgconn.send_query(b"select generate_series(1, 3)")
    pgconn.set_single_row_mode()
    statuses = [r.status for r in execute(pgconn)]
    assert statuses == [ExecStatus.SINGLE_TUPLE] * 3 + [ExecStatus.TUPLES_OK]


def test_finish_idempotent(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    conn.finish()
    conn.finish()
    assert conn.closed
    assert conn.pgconn_ptr is None


# Every method and property, called on a finished connection: each must raise,
# never hand NULL to libpq.
CALLS_ON_CLOSED: list[tuple[str, tuple[Any, ...]]] = [
    ("connect_poll", ()),
    ("status", ()),
    ("transaction_status", ()),
    ("error_message", ()),
    ("parameter_status", (b"x",)),
    ("server_version", ()),
    ("protocol_version", ()),
    ("backend_pid", ()),
    ("socket", ()),
    ("db", ()),
    ("user", ()),
    ("password", ()),
    ("host", ()),
    ("hostaddr", ()),
    ("port", ()),
    ("options", ()),
    ("ssl_in_use", ()),
    ("needs_password", ()),
    ("used_password", ()),
    ("info", ()),
    ("nonblocking", ()),
    ("exec_", (b"select 1",)),
    ("exec_params", (b"select 1", None)),
    ("prepare", (b"s", b"select 1")),
    ("exec_prepared", (b"s", None)),
    ("describe_prepared", (b"s",)),
    ("describe_portal", (b"s",)),
    ("send_query", (b"select 1",)),
    ("send_query_params", (b"select 1", None)),
    ("send_prepare", (b"s", b"select 1")),
    ("send_query_prepared", (b"s", None)),
    ("send_describe_prepared", (b"s",)),
    ("send_describe_portal", (b"s",)),
    ("send_close_prepared", (b"s",)),
    ("send_close_portal", (b"s",)),
    ("consume_input", ()),
    ("is_busy", ()),
    ("flush", ()),
    ("get_result", ()),
    ("set_single_row_mode", ()),
    ("notifies", ()),
    ("put_copy_data", (b"x",)),
    ("put_copy_end", ()),
    ("get_copy_data", (0,)),
    ("get_cancel", ()),
    ("cancel_conn", ()),
    ("escape_literal", (b"x",)),
    ("escape_identifier", (b"x",)),
    ("escape_string", (b"x",)),
    ("escape_bytea", (b"x",)),
    ("encrypt_password", (b"x", b"y")),
    ("pipeline_status", ()),
    ("enter_pipeline_mode", ()),
    ("exit_pipeline_mode", ()),
    ("pipeline_sync", ()),
    ("send_flush_request", ()),
]


@pytest.mark.parametrize("name, args", CALLS_ON_CLOSED, ids=[c[0] for c in CALLS_ON_CLOSED])
def test_finished_raises(dsn: str, name: str, args: tuple[Any, ...]) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    conn.finish()
    with pytest.raises(errors.OperationalError, match="the connection is closed"):
        attr = getattr(conn, name)
        if callable(attr):
            attr(*args)


def test_set_nonblocking_on_closed_raises(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    conn.finish()
    with pytest.raises(errors.OperationalError, match="the connection is closed"):
        conn.nonblocking = True


def test_all_public_methods_covered() -> None:
    public = {n for n in dir(pq.PGconn) if not n.startswith("_")}
    exempt = {
        "connect",
        "connect_start",
        "finish",
        "closed",
        "owned_here",
        "inherited",
        "inherited_error",
        "pgconn_ptr",
        "notice_handler",
        "with_socket",  # (returns False: test_with_socket)
    }
    assert public - exempt == {name for name, _ in CALLS_ON_CLOSED}


def test_with_socket(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    seen: list[int] = []
    assert conn.with_socket(seen.append)
    assert seen == [conn.socket]
    conn.finish()
    assert not conn.with_socket(seen.append)  # finished: not called
    assert seen == [seen[0]]


def test_del_finishes_once(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    ref = weakref.ref(conn)
    conn.finish()
    del conn
    gc.collect()
    assert ref() is None


def test_del_closes_the_session(dsn: str, pgconn: pq.PGconn) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    pid = conn.backend_pid
    del conn
    gc.collect()
    query = b"select count(*) from pg_stat_activity where pid = $1"
    wait_until(
        lambda: pgconn.exec_params(query, [str(pid).encode()]).get_value(0, 0) == b"0",
        "the backend of a collected PGconn to go",
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_del_in_forked_child_does_not_finish(pgconn: pq.PGconn) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            del_target = pgconn
            del del_target
            pgconn.__del__()
            gc.collect()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    # Had the child called PQfinish, the server would have closed our session.
    assert pgconn.exec_(b"select 1").get_value(0, 0) == b"1"
