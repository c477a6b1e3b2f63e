"""The gevent adapter of docs/adapters.md: greenlets sharing connections and a pool.

The page's own code, loaded by ``fix_flavours.load_doc_gevent_adapter``; the
behaviour tests run it too, as the flavour ``gevent``. Here is what gevent
adds: many greenlets on a few connections, a ``gevent.Timeout`` as the
interruption, the hub kept free while a query runs, ``close()`` from another
greenlet, its lock between OS threads (the behaviour tests share
connections between threads too), and, under ``monkey.patch_all()``, the
cancel request of libpq < 17 in a real OS thread. Progress is counted in
turns of the hub, never in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import gevent
import pytest

import psycopg3
from fix_flavours import backend_state, doc_module_source, in_pg_sleep, load_doc_gevent_adapter
from fix_wait import DEADLINE, INTERVAL, wait_until
from psycopg3.conninfo import conninfo_to_dict

#: Turns of the hub that another greenlet must make while a query is in flight.
TURNS = 100


@pytest.fixture
def adapter() -> Any:
    return load_doc_gevent_adapter()


def outcome_of(conn: Any, query: str) -> object:
    """Run ``query``; return what it raised (a greenlet's failure would be printed)."""
    try:
        return conn.execute(query).fetchone()
    except Exception as ex:
        return ex


def wait_greenlet_until(predicate: Any, what: str) -> None:
    """``wait_until`` for a greenlet: the pauses switch to the hub, so others run."""
    with gevent.Timeout(DEADLINE, AssertionError(f"still waiting for {what}")):
        while not predicate():
            # Polling a state the server does not announce; the pause lets the
            # other greenlets run.
            gevent.sleep(INTERVAL)


def test_host_names_are_resolved_by_gevent_not_libpq(adapter: Any, dsn: str) -> None:
    # libpq's own lookup would block the hub: libpq is given a numeric hostaddr.
    if conninfo_to_dict(dsn).get("host") != "127.0.0.1":
        pytest.skip("needs the test server on 127.0.0.1")  # an external DSN may differ
    with adapter.gevent_connect(dsn, host="localhost") as conn:
        assert conn.pgconn.host == b"localhost"
        assert conn.pgconn.hostaddr in (b"127.0.0.1", b"::1")
        assert conn.execute("select 1").fetchone() == (1,)


def test_200_greenlets_share_a_pool_of_10(adapter: Any, dsn: str) -> None:
    pids: set[int] = set()

    def work(n: int) -> int:
        with pool.connection() as conn:
            pids.add(conn.pgconn.backend_pid)
            row = conn.execute("select %s::int * 2, pg_backend_pid()", (n,)).fetchone()
            assert row is not None and row[1] == conn.pgconn.backend_pid
            return int(row[0])

    with adapter.ConnectionPool(dsn, min_size=10, max_size=10) as pool:
        pool.wait()
        greenlets = [gevent.spawn(work, n) for n in range(200)]
        gevent.joinall(greenlets, raise_error=True)
        assert [g.value for g in greenlets] == [2 * n for n in range(200)]
        assert pool.stats()["pool_size"] == 10
    assert 1 < len(pids) <= 10  # the greenlets interleaved, on 10 connections at most


def backends(admin: Any, app_name: str) -> int:
    query = "select count(*) from pg_stat_activity where application_name = %s"
    return int(admin.execute(query, (app_name,)).fetchone()[0])


def test_pool_replaces_a_closed_connection_and_close_ends_its_work(
    adapter: Any, dsn: str, admin: Any
) -> None:
    app_name = f"gevent-pool-{uuid.uuid4().hex[:12]}"
    pool = adapter.ConnectionPool(
        dsn, min_size=2, max_size=2, kwargs={"application_name": app_name}
    )
    with pool:
        pool.wait()
        conn = pool.getconn()
        conn.close()  # returned unusable: the pool makes another in a greenlet
        pool.putconn(conn)
        wait_greenlet_until(lambda: backends(admin, app_name) == 2, "the replacement")
        with pool.connection() as again:
            assert again.execute("select 1").fetchone() == (1,)
        pool.check()  # check_connection() on each idle one
        assert pool.stats()["pool_size"] == 2
    with pytest.raises(psycopg3.errors.PoolClosed):
        pool.getconn()
    wait_until(lambda: backends(admin, app_name) == 0, "the pool's connections to close")


def test_gevent_timeout_abandons_a_pool_request(adapter: Any, dsn: str) -> None:
    with adapter.ConnectionPool(dsn, min_size=1, max_size=1) as pool:
        pool.wait()
        held = pool.getconn()
        waiting = gevent.spawn(pool.getconn)
        gevent.sleep(0)  # its turn: it waits for the one connection
        waiting.kill(gevent.Timeout(None), block=True)  # what a Timeout's expiry does
        assert isinstance(waiting.exception, gevent.Timeout)
        pool.putconn(held)  # goes back idle: nobody waits for it any more
        with pool.connection(timeout=DEADLINE) as conn:
            assert conn is held
        assert pool.stats()["requests_waiting"] == 0


def test_gevent_timeout_interrupts_and_the_connection_stays_usable(
    adapter: Any, dsn: str, admin: Any
) -> None:
    with adapter.gevent_connect(dsn, autocommit=True) as conn:
        pid = conn.pgconn.backend_pid
        timeout = gevent.Timeout(None)  # fired by hand below, as its timer would
        outcome: list[object] = []

        def query() -> None:
            try:
                with timeout:
                    outcome.append(conn.execute("select pg_sleep(10)").fetchone())
            except gevent.Timeout as ex:
                outcome.append(ex)

        greenlet = gevent.spawn(query)
        wait_greenlet_until(lambda: in_pg_sleep(admin, pid), "the query to run")
        greenlet.kill(timeout, block=False)  # what a gevent.Timeout's expiry does
        greenlet.join()
        assert outcome == [timeout]  # raised from inside the wait, after the recovery
        wait_until(lambda: backend_state(admin, pid) == "idle", "the backend to be idle")
        assert not conn.closed and not conn.broken
        assert conn.execute("select 42").fetchone() == (42,)


def test_a_real_gevent_timeout_interrupts(adapter: Any, dsn: str, admin: Any) -> None:
    with adapter.gevent_connect(dsn, autocommit=True) as conn:
        pid = conn.pgconn.backend_pid
        # Time is the subject: the Timeout's own timer; far below the 10 s sleep.
        with pytest.raises(gevent.Timeout), gevent.Timeout(0.2):
            conn.execute("select pg_sleep(10)")
        wait_until(lambda: backend_state(admin, pid) == "idle", "the backend to be idle")
        assert conn.execute("select 1").fetchone() == (1,)


def test_the_hub_runs_while_a_query_waits(adapter: Any, dsn: str, admin: Any) -> None:
    turns = 0

    def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            gevent.sleep(0)  # a turn of the hub, not a wait for time

    with adapter.gevent_connect(dsn, autocommit=True) as conn:
        pid = conn.pgconn.backend_pid
        query = gevent.spawn(outcome_of, conn, "select pg_sleep(30)")
        tick = gevent.spawn(ticker)
        try:
            wait_greenlet_until(lambda: in_pg_sleep(admin, pid), "the query to run")
            start = turns
            wait_greenlet_until(lambda: turns >= start + TURNS, "the ticker's turns")
            # The query was in flight all along: the server still sleeps.
            assert in_pg_sleep(admin, pid) and not query.dead
        finally:
            tick.kill()
            conn.cancel()
            query.join()
        assert isinstance(query.value, psycopg3.errors.QueryCanceled)
        assert conn.execute("select 1").fetchone() == (1,)


def test_close_from_another_greenlet_wakes_the_waiting_one(
    adapter: Any, dsn: str, admin: Any
) -> None:
    conn = adapter.gevent_connect(dsn, autocommit=True)
    pid = conn.pgconn.backend_pid
    query = gevent.spawn(outcome_of, conn, "select pg_sleep(30)")
    wait_greenlet_until(lambda: in_pg_sleep(admin, pid), "the query to run")
    conn.close()
    query.join()
    assert isinstance(query.value, psycopg3.OperationalError)
    assert conn.closed
    with adapter.gevent_connect(dsn) as again:  # the fd may be reused: nothing is left on it
        assert again.execute("select 2").fetchone() == (2,)


def test_another_greenlet_waits_for_the_block_then_runs(adapter: Any, dsn: str) -> None:
    # test_trust_sharing.py's promise, between greenlets (it uses threads).
    with adapter.gevent_connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("create temp table t (x int)")
            other = gevent.spawn(outcome_of, conn, "select count(*) from t")
            gevent.sleep(0)  # its turn: it starts, and waits for the block
            assert not other.dead
            conn.execute("insert into t values (1)")
        assert other.get() == (1,)  # it ran after the block, which committed


def test_close_wakes_a_greenlet_waiting_for_an_abandoned_block(adapter: Any, dsn: str) -> None:
    # test_trust_ownership.py's promise, between greenlets (it uses threads).
    conn = adapter.gevent_connect(dsn)
    conn.transaction().__enter__()  # never left
    other = gevent.spawn(outcome_of, conn, "select 1")
    gevent.sleep(0)  # its turn: it waits for the block
    assert not other.dead
    closer = gevent.spawn(conn.close)
    closer.join()
    error = other.get()
    assert isinstance(error, (psycopg3.OperationalError, psycopg3.InterfaceError)), error
    assert "closed" in str(error)
    assert conn.closed


# -- the connection's lock, between OS threads ---------------------------------


def test_lock_wakes_a_waiting_thread_while_the_releasing_one_blocks_elsewhere(
    adapter: Any,
) -> None:
    # The releasing thread has a hub (any gevent wait makes one), then blocks
    # outside gevent: its hub never turns again. A gevent semaphore would
    # leave the other thread's waiter to that hub, for ever.
    gevent.get_hub()
    lock = adapter.GeventLock()
    lock.acquire()
    waiting, got = threading.Event(), threading.Event()

    def other() -> None:
        # Runs once the thread's main greenlet waits in acquire() below.
        gevent.spawn(waiting.set)
        if lock.acquire():
            got.set()
            lock.release()

    thread = threading.Thread(target=other, daemon=True)  # (left hanging if this fails)
    thread.start()
    waiting.wait()
    lock.release()
    thread.join(DEADLINE)  # a plain join: no turn of this thread's hub
    assert got.is_set() and not thread.is_alive()
    assert not lock.locked()


def test_lock_timeout_and_kill_leave_it_usable(adapter: Any) -> None:
    lock = adapter.GeventLock()
    assert lock.acquire(blocking=False) and lock.locked()
    assert lock.acquire(blocking=False) is False
    # Time is the subject: acquire()'s own timeout, and the lock is still held after it.
    assert lock.acquire(timeout=0.01) is False
    assert lock.locked()

    def take() -> None:
        lock.acquire()
        lock.release()  # (had the wake-up come before the kill)

    interrupted = gevent.spawn(take)
    gevent.sleep(0)  # its turn: it waits
    lock.release()  # handed to the waiter, which is killed before it runs:
    interrupted.kill(block=True)  # it hands the lock on, to nobody
    assert interrupted.dead and not lock.locked()
    assert lock.acquire(blocking=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


# -- under monkey.patch_all(): the cancel worker is a real OS thread ------------

PATCHED = """
from gevent import monkey

monkey.patch_all()

import json
import sys

import gevent

import gevent_adapter
import psycopg3.pq

# Unpatched: a real lock blocks its whole OS thread, the hub's included.
get_native_id = monkey.get_original("threading", "get_native_id")
allocate_lock = monkey.get_original("_thread", "allocate_lock")
dsn, turns_wanted = sys.argv[1], int(sys.argv[2])
in_flight, enough = allocate_lock(), allocate_lock()
in_flight.acquire()
enough.acquire()
seen = {"main": get_native_id(), "turns": 0}
send = psycopg3.pq.PGcancel.cancel


def cancel(self):
    # The request is held in the worker until the hub has turned meanwhile:
    # a worker in the hub's own thread would block it, and never see that.
    seen["worker"] = get_native_id()
    in_flight.release()
    seen["hub_ran"] = enough.acquire(timeout=30)
    return send(self)


psycopg3.pq.PGcancel.cancel = cancel


def ticker():
    while True:
        if not in_flight.locked():
            seen["turns"] += 1
            if seen["turns"] == turns_wanted:
                enough.release()
        gevent.sleep(0)


with gevent_adapter.gevent_connect(dsn) as admin, gevent_adapter.gevent_connect(dsn) as conn:
    pid = conn.pgconn.backend_pid
    def run():
        try:
            conn.execute("select pg_sleep(30)")
        except Exception as ex:
            return ex

    query = gevent.spawn(run)
    tick = gevent.spawn(ticker)
    sql = "select wait_event from pg_stat_activity where pid = %s"
    while admin.execute(sql, (pid,)).fetchone() != ("PgSleep",):
        gevent.sleep(0.005)  # polling the server's state
    conn.cancel()
    query.join()
    tick.kill()
    seen["error"] = type(query.value).__name__
print(json.dumps(seen))
"""


def test_cancel_worker_is_a_real_thread_under_patch_all(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "gevent_adapter.py").write_text(doc_module_source("gevent_adapter"))
    script = tmp_path / "patched.py"
    script.write_text(textwrap.dedent(PATCHED))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, str(script), dsn, str(TURNS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["hub_ran"] is True, seen  # greenlets ran while the request was held
    assert seen["turns"] >= TURNS
    assert seen["worker"] != seen["main"], seen  # an OS thread of its own
    assert seen["error"] == "QueryCanceled", seen
