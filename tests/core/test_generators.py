"""The core's generators against a real server, driven by a minimal waiter."""

from __future__ import annotations

import os
import selectors
import socket
import time
from typing import Any, TypeVar

import pytest

from fix_wait import wait_until
from psycopg3 import errors, generators, pq
from psycopg3._cancel import CancelOutcome, cancel
from psycopg3.pq import ExecStatus, TransactionStatus
from psycopg3.waiting import PQGen, Ready

T = TypeVar("T")


def drive(gen: PQGen[T], timeout: float | None = None) -> T:
    """The simplest waiter: a selector per call; counts nothing, hides nothing."""
    with selectors.DefaultSelector() as sel:
        try:
            fileno, wait = next(gen)
            while True:
                sel.register(fileno, wait)
                events = sel.select(timeout)
                sel.unregister(fileno)
                fileno, wait = gen.send(Ready(events[0][1]) if events else Ready.NONE)
        except StopIteration as ex:
            return ex.value  # type: ignore[no-any-return]


@pytest.fixture
def pgconn(dsn: str) -> Any:
    conn = drive(generators.connect(dsn.encode()))
    yield conn
    conn.finish()


def test_connect(dsn: str) -> None:
    conn = drive(generators.connect(dsn.encode()))
    try:
        assert conn.nonblocking
        assert conn.transaction_status == TransactionStatus.IDLE
        assert conn.backend_pid > 0
    finally:
        conn.finish()


def test_connect_failure_finishes(dsn: str) -> None:
    with pytest.raises(errors.OperationalError, match="password"):
        drive(generators.connect((dsn + " password=wrong").encode()))


def test_connect_timeout_with_none(dsn: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(generators.ConnectionTimeout):
            drive(generators.connect(f"{dsn} port={port}".encode(), timeout=0.5), timeout=0.1)
        # Expected 0.5 s (the deadline); the bound tells a timeout from a hang.
        assert time.monotonic() - start < 5


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_connect_closed_mid_way_releases(dsn: str) -> None:
    before = open_fds()
    gen = generators.connect(dsn.encode())
    next(gen)
    assert open_fds() == before + 1  # the socket libpq opened
    gen.close()  # what a waiter does when interrupted: must not leak a PGconn
    assert open_fds() == before


def test_execute_returns_every_result(pgconn: Any) -> None:
    pgconn.send_query(b"select 1; select 'a', 'b'; create temp table g (x int)")
    results = drive(generators.execute(pgconn))
    assert [r.status for r in results] == [
        ExecStatus.TUPLES_OK,
        ExecStatus.TUPLES_OK,
        ExecStatus.COMMAND_OK,
    ]
    assert results[1].get_value(0, 1) == b"b"
    assert pgconn.transaction_status == TransactionStatus.IDLE


def test_execute_error_result_is_returned(pgconn: Any) -> None:
    pgconn.send_query(b"select 1/0")
    (result,) = drive(generators.execute(pgconn))
    assert result.status == ExecStatus.FATAL_ERROR
    assert result.error_field(ord("C")) == b"22012"


def test_large_query_is_flushed(pgconn: Any) -> None:
    # Bigger than any socket buffer: send() must loop on flush.
    big = "x" * 20_000_000
    pgconn.send_query_params(b"select length($1)", [big.encode()])
    (result,) = drive(generators.execute(pgconn))
    assert result.get_value(0, 0) == b"20000000"


def test_drain_after_cancel(pgconn: Any, dsn: str) -> None:
    pgconn.send_query(b"select pg_sleep(10)")
    drive(generators.send(pgconn))
    assert pgconn.transaction_status == TransactionStatus.ACTIVE
    # A cancel request that reaches the backend before it starts running the
    # query is ignored by the server: let the query start first.
    watcher = pq.PGconn.connect(dsn.encode())
    query = b"select wait_event from pg_stat_activity where pid = $1"
    pid = str(pgconn.backend_pid).encode()
    try:
        wait_until(
            lambda: watcher.exec_params(query, [pid]).get_value(0, 0) == b"PgSleep",
            "the query to run",
        )
    finally:
        watcher.finish()
    cancel = pgconn.get_cancel()
    cancel.cancel()
    cancel.free()
    # Expected: drained a few ms after the cancel; the deadline (5 s, far
    # below the 10 s sleep) fails the test if the cancel was not honoured.
    drive(generators.drain(pgconn, deadline=time.monotonic() + 5))
    assert pgconn.transaction_status == TransactionStatus.IDLE
    pgconn.send_query(b"select 7")
    (result,) = drive(generators.execute(pgconn))
    assert result.get_value(0, 0) == b"7"


def test_drain_gives_up_at_deadline(pgconn: Any) -> None:
    pgconn.send_query(b"select pg_sleep(3)")
    drive(generators.send(pgconn))
    with pytest.raises(errors.OperationalError, match="drained in time"):
        drive(generators.drain(pgconn, deadline=time.monotonic() + 0.2), timeout=0.1)


@pytest.mark.parametrize(
    "query, status",
    [
        (b"create temp table c (x int); copy c from stdin", ExecStatus.COPY_IN),
        (b"copy (select generate_series(1, 100000)) to stdout", ExecStatus.COPY_OUT),
    ],
    ids=["copy_in", "copy_out"],
)
def test_drain_ends_copy(pgconn: Any, query: bytes, status: ExecStatus) -> None:
    pgconn.send_query(query)
    results = drive(generators.execute(pgconn))
    assert results[-1].status == status
    drive(generators.drain(pgconn, deadline=time.monotonic() + 5))
    pgconn.send_query(b"select 2")
    (result,) = drive(generators.execute(pgconn))
    assert result.status == ExecStatus.TUPLES_OK
    assert result.get_value(0, 0) == b"2"


def test_cancel_returns_with_its_fds_closed(pgconn: Any) -> None:
    # Rule 4 of psycopg3._cancel: with a libpq < 17 the request runs in a
    # worker thread that signals on a pipe; cancel() used to return on the
    # signal byte, before the worker closed its end, so an fd count taken
    # right after could still see it (test_no_fd_leak[sync-cancel_request]
    # failed so under load, "-1 fds leaked").
    for _ in range(100):
        before = open_fds()
        outcome = drive(cancel(pgconn, deadline=time.monotonic() + 30), timeout=0.1)
        assert outcome == CancelOutcome.DELIVERED
        assert open_fds() == before
