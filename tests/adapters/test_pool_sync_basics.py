"""``psycopg3_sync.ConnectionPool``: the API and the thread driving, on a real server.

The trouble cases shared by every flavour (cancelled requests, server
restarts, hundreds of tasks) live in ``test_pool.py``; here each public
method and callback of the threaded pool, its threads' lifetime, and a
hammering by many threads with every connection accounted for.

Each pool gets its name as ``application_name``, so that
``pg_stat_activity`` tells its backends apart (``backends()``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import psycopg3_sync
from fix_wait import wait_until
from psycopg3.pq import TransactionStatus
from psycopg3_sync import (
    Connection,
    ConnectionPool,
    OperationalError,
    PoolClosed,
    PoolTimeout,
    ProgrammingError,
    TooManyRequests,
)


def make_pool(dsn: str, **kwargs: Any) -> ConnectionPool:
    name = f"test-{uuid.uuid4().hex[:8]}"
    return ConnectionPool(dsn, name=name, kwargs={"application_name": name}, **kwargs)


def pool_threads(pool: ConnectionPool) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{pool.name}-")]


def backends(admin: Connection[Any], pool: ConnectionPool) -> list[int]:
    cur = admin.execute(
        "select pid from pg_stat_activity where application_name = %s order by pid", (pool.name,)
    )
    return [pid for (pid,) in cur.fetchall()]


def status(conn: Connection[Any]) -> TransactionStatus:
    return conn.pgconn.transaction_status


def pid_of(conn: Connection[Any]) -> int:
    return conn.pgconn.backend_pid


@pytest.fixture
def table(admin: Connection[Any]) -> Iterator[str]:
    name = f"pool_{uuid.uuid4().hex[:8]}"
    admin.execute(f"create table {name} (id int)")
    yield name
    admin.execute(f"drop table {name}")


# -- life ----------------------------------------------------------------


def test_open_wait_close(dsn: str, admin: Connection[Any]) -> None:
    opened: list[Connection[Any]] = []
    pool = make_pool(dsn, min_size=2, configure=opened.append)
    assert pool.closed
    assert pool.name.startswith("test-")
    with pytest.raises(PoolClosed, match="not open"):
        pool.getconn()
    with pool:
        assert not pool.closed
        pool.wait(timeout=10)
        stats = pool.stats()
        assert (stats["pool_size"], stats["pool_available"]) == (2, 2)
        assert len(backends(admin, pool)) == 2
        assert pool_threads(pool)
        assert all(t.daemon for t in pool_threads(pool))
    assert pool.closed
    assert pool_threads(pool) == []
    assert len(opened) == 2 and all(conn.closed for conn in opened)
    wait_until(lambda: backends(admin, pool) == [], "the backends to go")
    with pytest.raises(PoolClosed, match="is closed"):
        pool.getconn()
    with pytest.raises(PoolClosed, match="cannot be reopened"):
        pool.open()
    pool.close()  # twice: nothing


def test_default_names_differ(dsn: str) -> None:
    first, second = ConnectionPool(dsn), ConnectionPool(dsn)
    assert first.name.startswith("pool-") and second.name.startswith("pool-")
    assert first.name != second.name


def test_open_wait_true(dsn: str) -> None:
    pool = make_pool(dsn, min_size=3)
    pool.open(wait=True, timeout=10)
    try:
        assert pool.stats()["pool_available"] == 3
        pool.open()  # already open: nothing
        assert len([t for t in pool_threads(pool) if t.name.endswith("-maintenance")]) == 1
    finally:
        pool.close()
    assert pool_threads(pool) == []


def test_bad_sizes(dsn: str) -> None:
    with pytest.raises(ProgrammingError):
        ConnectionPool(dsn, min_size=3, max_size=2)
    with pytest.raises(ProgrammingError):
        ConnectionPool(dsn, min_size=-1)


def test_close_wakes_waiters_and_closes_returned(dsn: str) -> None:
    pool = make_pool(dsn, min_size=1)
    pool.open(wait=True, timeout=10)
    conn = pool.getconn()
    errors: list[BaseException] = []

    def request() -> None:
        try:
            pool.getconn(timeout=20)
        except BaseException as ex:
            errors.append(ex)

    thread = threading.Thread(target=request)
    thread.start()
    wait_until(lambda: pool.stats()["requests_waiting"] == 1, "a request waiting")
    pool.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], PoolClosed)
    assert not conn.closed  # in use: left to its user...
    pool.putconn(conn)
    assert conn.closed  # ...and closed on its return
    assert pool.stats()["pool_size"] == 0
    assert pool_threads(pool) == []


def test_no_thread_left_while_connects_fail(dsn: str) -> None:
    calls: list[ConnectionPool] = []
    pool = ConnectionPool(
        "host=127.0.0.1 port=1 connect_timeout=2",
        min_size=2,
        reconnect_timeout=0.3,
        reconnect_failed=calls.append,
    )
    with pool:
        with pytest.raises(PoolTimeout, match="ready after 0.5 s; the last connection"):
            pool.wait(timeout=0.5)
        wait_until(lambda: calls == [pool], "reconnect_failed to be called")
        with pytest.raises(PoolTimeout, match="last connection attempt failed"):
            pool.getconn(timeout=0.2)
        assert pool.stats()["connections_errors"] >= 2
    assert pool_threads(pool) == []


# -- requests ------------------------------------------------------------


def test_getconn_putconn_reuses(dsn: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=2) as pool:
        pool.wait(timeout=10)
        conn = pool.getconn()
        assert conn.execute("select 1").fetchone() == (1,)
        assert pool.stats()["pool_available"] == 1
        pool.putconn(conn)
        assert status(conn) == TransactionStatus.IDLE
        assert pool.getconn() is conn  # the most recently returned, warm
        pool.putconn(conn)
        assert len(backends(admin, pool)) == 2
        stats = pool.stats()
        assert (stats["requests_num"], stats["requests_queued"], stats["returns_bad"]) == (2, 0, 0)


def test_connection_commits_on_clean_exit(dsn: str, table: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=1) as pool:
        with pool.connection() as conn:
            conn.execute(f"insert into {table} values (1)")
            assert status(conn) == TransactionStatus.INTRANS
        assert status(conn) == TransactionStatus.IDLE
        assert admin.execute(f"select count(*) from {table}").fetchone() == (1,)


def test_connection_rolls_back_on_error(dsn: str, table: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=1) as pool:
        with pytest.raises(ZeroDivisionError), pool.connection() as conn:
            conn.execute(f"insert into {table} values (1)")
            1 / 0  # noqa: B018
        assert admin.execute(f"select count(*) from {table}").fetchone() == (0,)
        with pool.connection() as again:
            assert again is conn
            assert again.pgconn.transaction_status == TransactionStatus.IDLE
        assert pool.stats()["returns_bad"] == 0


def test_putconn_rolls_back_failed_transaction(dsn: str) -> None:
    with make_pool(dsn, min_size=1) as pool:
        conn = pool.getconn()
        with pytest.raises(psycopg3_sync.errors.DivisionByZero):
            conn.execute("select 1 / 0")
        assert status(conn) == TransactionStatus.INERROR
        pool.putconn(conn)
        with pool.connection() as again:
            assert again is conn
            assert again.execute("select 2").fetchone() == (2,)


def test_closed_connection_is_replaced(dsn: str) -> None:
    with make_pool(dsn, min_size=1) as pool:
        with pool.connection() as conn:
            pid = pid_of(conn)
            conn.close()
        assert pool.stats()["returns_bad"] == 1
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) != pid
            assert conn.execute("select 1").fetchone() == (1,)


def test_session_status(dsn: str, admin: Connection[Any]) -> None:
    # What connection() and putconn() read in one libpq call.
    conn = Connection.connect(dsn)
    assert conn._session_status() == TransactionStatus.IDLE
    conn.execute("select 1")
    assert conn._session_status() == TransactionStatus.INTRANS
    admin.execute("select pg_terminate_backend(%s)", (pid_of(conn),))
    with pytest.raises(OperationalError):
        conn.execute("select 1")
    assert conn._session_status() == TransactionStatus.UNKNOWN
    conn.close()
    assert conn._session_status() == TransactionStatus.UNKNOWN


def test_returned_while_locked_is_discarded(dsn: str) -> None:
    with make_pool(dsn, min_size=1) as pool:
        conn = pool.getconn()
        pid = pid_of(conn)
        # Another thread still inside the connection: the pool does not wait
        # for it (a COPY block left open would hold the lock for good).
        conn.lock.acquire()
        released_late: list[bool] = []

        def release_late() -> None:
            released_late.append(True)
            conn.lock.release()

        # Frees the lock only if putconn() waited for it (a bug): a discard takes a
        # few ms, 10 s is a hang guard.
        releaser = threading.Timer(10, release_late)
        releaser.start()
        pool.putconn(conn)
        releaser.cancel()
        releaser.join()
        assert not released_late, "putconn() waited for the lock"
        conn.lock.release()
        assert conn.closed
        assert pool.stats()["returns_bad"] == 1
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) != pid


def test_pool_timeout(dsn: str) -> None:
    with make_pool(dsn, min_size=1) as pool:
        conn = pool.getconn()
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match="no connection available after 0.2 s"):
            pool.getconn(timeout=0.2)
        # Expected: 0.2 s, the timeout; 5 s (25x) only tells a hang.
        assert time.monotonic() - started < 5
        stats = pool.stats()
        assert (stats["requests_errors"], stats["requests_waiting"]) == (1, 0)
        pool.putconn(conn)
        assert pool.getconn(timeout=0.2) is conn
        pool.putconn(conn)


def test_default_timeout(dsn: str) -> None:
    with make_pool(dsn, min_size=1, timeout=0.1) as pool:
        with pool.connection(), pytest.raises(PoolTimeout, match="after 0.1 s"):
            pool.getconn()


def test_too_many_requests(dsn: str) -> None:
    with make_pool(dsn, min_size=1, max_waiting=1) as pool:
        pool.wait(timeout=10)
        conn = pool.getconn()
        got: list[Connection[Any]] = []
        thread = threading.Thread(target=lambda: got.append(pool.getconn(timeout=20)))
        thread.start()
        wait_until(lambda: pool.stats()["requests_waiting"] == 1, "a request waiting")
        with pytest.raises(TooManyRequests, match="max_waiting=1"):
            pool.getconn(timeout=20)
        pool.putconn(conn)
        thread.join(10)
        assert got == [conn]  # handed over to the waiting request
        stats = pool.stats()
        assert (stats["requests_queued"], stats["requests_errors"]) == (1, 1)
        assert stats["requests_wait_ms"] >= 0
        pool.putconn(conn)


def test_putconn_foreign(dsn: str) -> None:
    with make_pool(dsn, min_size=1) as pool, make_pool(dsn, min_size=1) as other:
        pool.wait(timeout=10)
        with psycopg3_sync.connect(dsn) as stranger:
            with pytest.raises(ProgrammingError, match="not this pool's"):
                pool.putconn(stranger)
            assert not stranger.closed
        with other.connection() as conn, pytest.raises(ProgrammingError, match="not this pool's"):
            pool.putconn(conn)
        assert pool.stats()["pool_available"] == 1


def test_putconn_twice(dsn: str) -> None:
    with make_pool(dsn, min_size=2) as pool:
        pool.wait(timeout=10)
        conn = pool.getconn()
        pool.putconn(conn)
        with pytest.raises(ProgrammingError, match="returned twice"):
            pool.putconn(conn)
        stats = pool.stats()
        assert (stats["pool_size"], stats["pool_available"]) == (2, 2)
        first, second = pool.getconn(), pool.getconn()
        assert first is not second  # not the same connection handed out twice
        pool.putconn(first)
        pool.putconn(second)


# -- sizes and maintenance -----------------------------------------------


def test_resize(dsn: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=1) as pool:
        pool.wait(timeout=10)
        pool.resize(3)
        assert (pool.min_size, pool.max_size) == (3, 3)
        pool.wait(timeout=10)
        assert len(backends(admin, pool)) == 3
        held = pool.getconn()
        pool.resize(1, 2)
        stats = pool.stats()
        assert (stats["pool_min"], stats["pool_max"], stats["pool_size"]) == (1, 2, 2)
        pool.putconn(held)
        assert pool.stats()["pool_size"] == 2
        wait_until(lambda: len(backends(admin, pool)) == 2, "two backends")
        with pytest.raises(ProgrammingError):
            pool.resize(2, 1)


def test_grows_on_demand_and_shrinks_when_idle(dsn: str) -> None:
    with make_pool(dsn, min_size=1, max_size=3, max_idle=0.3) as pool:
        held = [pool.getconn(timeout=10) for _ in range(3)]
        assert pool.stats()["pool_size"] == 3
        for conn in held:
            pool.putconn(conn)
        # Closed by the maintenance thread, after the policy let them go.
        wait_until(lambda: sum(conn.closed for conn in held) == 2, "two connections closed")
        assert pool.stats()["pool_size"] == 1


def test_max_lifetime_replaces(dsn: str) -> None:
    with make_pool(dsn, min_size=1, max_lifetime=0.3) as pool:
        with pool.connection() as conn:
            first = pid_of(conn)
        wait_until(lambda: conn.closed, "the connection replaced")
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) != first
        assert pool.stats()["connections_num"] >= 2


# -- callbacks -----------------------------------------------------------


def test_configure(dsn: str) -> None:
    def configure(conn: Connection[Any]) -> None:
        conn.execute("set timezone to 'Asia/Kathmandu'")
        conn.commit()

    with make_pool(dsn, min_size=2, configure=configure) as pool:
        pool.wait(timeout=10)
        for _ in range(2):
            with pool.connection() as conn:
                assert conn.execute("show timezone").fetchone() == ("Asia/Kathmandu",)


def test_configure_failing_counts_as_failed_connect(dsn: str) -> None:
    def configure(conn: Connection[Any]) -> None:
        conn.execute("select 1")  # leaves a transaction open

    with make_pool(dsn, min_size=1, configure=configure) as pool:
        # A connect has failed (however long it took): the timeout names why.
        wait_until(lambda: pool.stats()["connections_errors"] >= 1, "a failed connect")
        with pytest.raises(PoolTimeout, match="configure callback left the connection"):
            pool.getconn(timeout=0.5)
    assert pool_threads(pool) == []


def test_reset(dsn: str) -> None:
    seen: list[TransactionStatus] = []

    def reset(conn: Connection[Any]) -> None:
        seen.append(conn.pgconn.transaction_status)
        conn.execute("reset all")
        conn.commit()

    with make_pool(dsn, min_size=1, reset=reset) as pool:
        with pool.connection() as conn:
            conn.execute("set search_path to nowhere")
            conn.execute("select 1")
        assert seen == [TransactionStatus.IDLE]  # after the commit, before reuse
        with pool.connection() as again:
            assert again is conn
            assert again.execute("show search_path").fetchone() != ("nowhere",)


def reset_raising(conn: Connection[Any]) -> None:
    raise RuntimeError("no reuse")


def reset_leaving_transaction(conn: Connection[Any]) -> None:
    conn.execute("select 1")


@pytest.mark.parametrize("reset", [reset_raising, reset_leaving_transaction])
def test_reset_failing_discards(dsn: str, reset: Any) -> None:
    with make_pool(dsn, min_size=1, reset=reset) as pool:
        with pool.connection() as conn:
            pid = pid_of(conn)
        assert conn.closed
        assert pool.stats()["returns_bad"] == 1
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) != pid


def test_check_callback_discards_and_retries(dsn: str) -> None:
    refused: list[int] = []

    def check(conn: Connection[Any]) -> None:
        if not refused:
            refused.append(pid_of(conn))
            raise OperationalError("refused by the test")

    with make_pool(dsn, min_size=2, check=check) as pool:
        pool.wait(timeout=10)
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) not in refused
        assert pool.stats()["connections_lost"] == 1
        pool.wait(timeout=10)  # the discarded one is replaced
        assert pool.stats()["pool_size"] == 2


def test_check_connection_replaces_terminated(dsn: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=1, check=ConnectionPool.check_connection) as pool:
        with pool.connection() as conn:
            pid = pid_of(conn)
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        with pool.connection(timeout=10) as conn:
            assert pid_of(conn) != pid
            assert conn.execute("select 1").fetchone() == (1,)
        assert pool.stats()["connections_lost"] == 1


def test_pool_check(dsn: str, admin: Connection[Any]) -> None:
    with make_pool(dsn, min_size=3) as pool:
        pool.wait(timeout=10)
        pids = backends(admin, pool)
        admin.execute("select pg_terminate_backend(%s)", (pids[0],))
        wait_until(lambda: pids[0] not in backends(admin, pool), "the first backend to go")
        pool.check()
        assert pool.stats()["connections_lost"] == 1
        pool.wait(timeout=10)
        now = backends(admin, pool)
        assert len(now) == 3 and pids[0] not in now and set(pids[1:]) <= set(now)


# -- many threads --------------------------------------------------------


def test_threads_hammering(dsn: str, admin: Connection[Any]) -> None:
    workers, rounds = 20, 25
    failures: list[BaseException] = []
    pids: set[int] = set()

    def work(worker: int) -> None:
        try:
            for round in range(rounds):
                with pool.connection(timeout=30) as conn:
                    value = worker * 1000 + round
                    row = conn.execute("select %s::int, pg_backend_pid()", (value,)).fetchone()
                    assert row is not None and row[0] == value
                    pids.add(row[1])
                    if round % 5 == 0:
                        conn.execute("select 1")  # left in a transaction: committed at exit
        except BaseException as ex:
            failures.append(ex)

    with make_pool(dsn, min_size=4) as pool:
        pool.wait(timeout=10)
        before = pool.stats()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        after = pool.stats()
        assert after["requests_num"] - before["requests_num"] == workers * rounds
        assert (after["pool_size"], after["pool_available"], after["requests_waiting"]) == (4, 4, 0)
        assert (after["returns_bad"], after["connections_num"]) == (0, 4)
        assert len(pids) == 4 and set(backends(admin, pool)) == pids
    assert pool_threads(pool) == []
    wait_until(lambda: backends(admin, pool) == [], "the backends to go")


def test_open_pool(dsn: str) -> None:
    # As in the async flavours: a pool to use in a `with` block, which opens it.
    pool = psycopg3_sync.open_pool(dsn, min_size=1, name="test-open-pool")
    assert isinstance(pool, ConnectionPool)
    with pool:
        with pool.connection() as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert pool.closed
