"""Pools under faults: outages, dead idle backends, spikes, a frozen link, soak (L11-12, P1-2).

Each test runs for the three pools (``sync``, ``asyncio``, ``trio``) behind
one async shape (``open_pool``): the async pools as they are, the threads
pool through ``SyncPool``, whose calls simply block. Work that must run
concurrently goes through ``run_jobs``: tasks of a task group for the async
pools, one thread per job for the threads pool (each job on an event loop of
its own in its thread, so that the same job code serves every flavour).

What the tests hold the pools to: a request fails with ``PoolTimeout`` or
``OperationalError`` within its timeout plus a margin, never a hang; no
connection is lost or left reserved (``stats()``, ``pg_stat_activity``);
the pool gets back to ``min_size`` by itself; an acknowledged commit is
never lost or doubled. Timings are recorded with ``observe``; bounds are
loose enough to prove "no hang", not speed.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import anyio
import pytest

import psycopg3
import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from faultproxy import FaultProxy
from fix_flavours import Flavour, SyncFacade
from fix_wait import await_until, wait_until
from psycopg3._pool import RECONNECT_INITIAL_DELAY, RECONNECT_JITTER
from psycopg3.abc import CANCEL_TIMEOUT
from psycopg3.errors import PoolTimeout

T = TypeVar("T")

#: The flavours that have a pool (the anyio flavour of docs/adapters.md has none).
POOL_FLAVOURS = ["sync", "asyncio", "trio"]
#: Scheduling and teardown margin on top of a bound the pool promises.
SLACK = 3.0
#: How long a pool may take to get back to its size once the server is back:
#: expected within the next retry (at most ~1.6 s in these tests), 15 s tells a hang.
REFILL_BOUND = 15.0

# Outages, freezes and a soak: run by `nox -s reliability`.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]
flavours = pytest.mark.parametrize("flavour", POOL_FLAVOURS, indirect=True)


# -- the three pools behind one shape ----------------------------------------


class SyncPool:
    """A ``psycopg3_sync.ConnectionPool`` with the async pools' shape; its calls block."""

    def __init__(self, pool: psycopg3_sync.ConnectionPool):
        self.target = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        with self.target.connection(timeout) as conn:
            yield SyncFacade(conn)

    async def getconn(self, timeout: float | None = None) -> Any:
        return SyncFacade(self.target.getconn(timeout))

    async def putconn(self, conn: SyncFacade) -> None:
        self.target.putconn(conn.target)

    async def wait(self, timeout: float = 30.0) -> None:
        self.target.wait(timeout)

    async def check(self) -> None:
        self.target.check()


def pool_class(flavour: Flavour) -> Any:
    modules = {"sync": psycopg3_sync, "asyncio": psycopg3_asyncio, "trio": psycopg3_trio}
    return modules[flavour.name].ConnectionPool


@asynccontextmanager
async def open_pool(flavour: Flavour, conninfo: str, **kwargs: Any) -> AsyncIterator[Any]:
    """The flavour's pool, open for the block and closed after it."""
    if flavour.is_sync:
        pool = psycopg3_sync.ConnectionPool(conninfo, **kwargs)
        pool.open()
        try:
            yield SyncPool(pool)
        finally:
            pool.close()
        assert not [t for t in threading.enumerate() if t.name.startswith(f"{pool.name}-")]
        return
    module: Any = psycopg3_asyncio if flavour.name == "asyncio" else psycopg3_trio
    async with module.open_pool(conninfo, **kwargs) as pool:
        yield pool


def raw(pool: Any) -> Any:
    """The pool object itself (what callbacks receive)."""
    return pool.target if isinstance(pool, SyncPool) else pool


async def run_jobs(flavour: Flavour, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs at once; return their results in order.

    Async flavours: tasks of one task group. Sync: a thread per job, each
    running its job on an event loop of its own, where the pool's calls
    block that thread only.
    """
    results: list[Any] = [None] * len(jobs)
    if not flavour.is_sync:

        async def run(index: int) -> None:
            results[index] = await jobs[index]()

        async with anyio.create_task_group() as group:
            for index in range(len(jobs)):
                group.start_soon(run, index)
        return results

    failures: list[BaseException] = []
    # The jobs start together, once every thread has its loop.
    barrier = threading.Barrier(len(jobs))

    async def together(index: int) -> Any:
        barrier.wait(30)
        return await jobs[index]()

    def run_in_thread(index: int) -> None:
        try:
            results[index] = asyncio.run(together(index))
        except BaseException as ex:
            failures.append(ex)

    threads = [threading.Thread(target=run_in_thread, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a job thread hung"
    if failures:
        raise failures[0]
    return results


async def until(predicate: Callable[[], bool], bound: float, what: str) -> float:
    """Wait for ``predicate()``, at most ``bound`` seconds; return the time it took."""
    start = time.monotonic()
    await await_until(predicate, what, deadline=bound)
    return time.monotonic() - start


def settled(pool: Any, size: int) -> bool:
    """The pool holds ``size`` connections, all idle, no one waiting."""
    stats = pool.stats()
    return (stats["pool_size"], stats["pool_available"], stats["requests_waiting"]) == (
        size,
        size,
        0,
    )


def backends(admin: psycopg3_sync.Connection, app: str) -> list[int]:
    cur = admin.execute(
        "select pid from pg_stat_activity where application_name = %s order by pid", (app,)
    )
    return [pid for (pid,) in cur.fetchall()]


async def no_leaked_backends(admin: psycopg3_sync.Connection, app: str, expected: int) -> None:
    """Wait until the pool's backends are ``expected`` (the terminated ones end in a moment)."""
    query = "select count(*) from pg_stat_activity where application_name = %s"
    await await_until(
        lambda: admin.execute(query, (app,)).fetchone() == (expected,),
        f"{expected} backends of {app}",
    )


def terminate_all(admin: psycopg3_sync.Connection, app: str) -> list[int]:
    """Terminate the pool's backends and wait until they are gone; return their pids."""
    pids = backends(admin, app)
    for pid in pids:
        admin.execute("select pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: not set(backends(admin, app)) & set(pids), "the terminated backends to go")
    return pids


def app_name() -> str:
    """An application_name unique to the test, to find its backends."""
    return f"pf-{uuid.uuid4().hex[:12]}"


class Later:
    """Run ``action`` in a thread after ``delay`` seconds."""

    def __init__(self, delay: float, action: Callable[[], object]):
        self._thread = threading.Timer(delay, action)
        self._thread.start()

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the scheduled action did not return"


class FailureClock:
    """When connects failed: ``connections_errors`` of ``stats()``, read every ms by a thread.

    Connects failing together count as one round (the policy's back-off
    takes one step per round): failures within ``ROUND`` of the previous
    one belong to its round. The shortest retry delay is 90 ms.
    """

    ROUND = 0.03

    def __init__(self, pool: Any):
        self._pool = pool
        self.instants: list[float] = []
        self._last = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seen = self._pool.stats()["connections_errors"]
        while not self._stop.wait(0.001):
            errors = self._pool.stats()["connections_errors"]
            if errors > seen:
                now = time.monotonic()
                if not self.instants or now - self._last > self.ROUND:
                    self.instants.append(now)
                self._last = now
                seen = errors

    def __enter__(self) -> FailureClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.instants, self.instants[1:])]


# -- L12: total outage, back-off, recovery; cancelled waiters -----------------


@pytest.mark.scenario("L12")
@flavours
async def test_outage_backoff_and_refill(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    app = app_name()
    fired: list[Any] = []
    request_timeout = 0.3
    async with open_pool(
        flavour,
        proxy_dsn,
        kwargs={"application_name": app},
        min_size=4,
        reconnect_timeout=60.0,
        reconnect_failed=fired.append,
    ) as pool:
        await pool.wait(10)
        errors_before = pool.stats()["connections_errors"]
        with FailureClock(pool) as clock:
            proxy.close()  # the connections get a FIN, new connects are refused
            down = time.monotonic()
            outcomes: Counter[str] = Counter()
            worst = 0.0
            # 2.5 s of outage: long enough for the back-off's first four steps.
            while time.monotonic() - down < 2.5:
                start = time.monotonic()
                # The idle connections are dead: their users see OperationalError
                # on the first query; once none is left, requests time out.
                with pytest.raises(psycopg3.OperationalError) as excinfo:
                    async with pool.connection(timeout=request_timeout) as conn:
                        await conn.execute("select 1")
                worst = max(worst, time.monotonic() - start)
                outcomes[type(excinfo.value).__name__] += 1
            assert outcomes["PoolTimeout"] > 0
            requests = pool.stats()["requests_num"]
            attempts = pool.stats()["connections_errors"] - errors_before
            outage = time.monotonic() - down
            proxy.forward()
            refill = await until(lambda: settled(pool, 4), REFILL_BOUND, "refill to min_size")
        assert pool.stats()["requests_num"] == requests  # refilled without being asked
        async with pool.connection(timeout=5) as conn:
            assert await (await conn.execute("select 1")).fetchone() == (1,)
    # Expected: each request ends by its 0.3 s timeout; 10x that tells a hang.
    assert worst < 10 * request_timeout
    assert not fired  # reconnect_timeout (60 s) not reached
    # The back-off, whatever the load: the first failed round (at most
    # max_size connects started together), then one attempt per retry, each
    # retry at least twice as far as the one before, the shortest 90 ms. A
    # loaded machine only delays attempts, so this many at most could fail in
    # the outage; a pool without back-off would have made thousands. The
    # exact doubling with its jitter is core's, checked on a fake clock in
    # tests/core/test_pool_policy.py.
    shortest = RECONNECT_INITIAL_DELAY * (1 - RECONNECT_JITTER)
    retries = math.floor(math.log2(outage / shortest + 1))
    assert 0 < attempts <= pool.max_size + retries, (attempts, outage)
    gaps = clock.gaps()
    # Rounds of failures: expected at about 0, 0.1, 0.3 s (then 0.7, 1.5 s);
    # three within the 2.5 s outage tells a pool that keeps retrying.
    assert len(gaps) >= 2, gaps
    observe(
        "retry gaps ms: "
        + ", ".join(f"{gap * 1000:.0f}" for gap in gaps)
        + f"; outage requests: {dict(outcomes)}, each ended within {worst * 1000:.0f} ms"
        f" (timeout {request_timeout * 1000:.0f} ms); back to 4 idle {refill:.2f} s after"
        " the proxy returned, without a request"
    )


@pytest.mark.scenario("L12")
@flavours
async def test_reconnect_failed_after_reconnect_timeout(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    fired: list[tuple[float, Any]] = []
    async with open_pool(
        flavour,
        proxy_dsn,
        min_size=2,
        reconnect_timeout=1.0,
        reconnect_failed=lambda p: fired.append((time.monotonic(), p)),
    ) as pool:
        await pool.wait(10)
        proxy.close()
        down = time.monotonic()
        await pool.check()  # finds both dead: the reconnects begin now
        assert pool.stats()["connections_lost"] == 2
        await await_until(lambda: bool(fired), "reconnect_failed")
        when, arg = fired[0]
        assert arg is raw(pool)
        # The first failed attempt at or after reconnect_timeout fires it:
        # attempts at about 0, 0.1, 0.3, 0.7, 1.5 s. Never before 1 s;
        # expected at about 1.5 s, 15 s (10x) tells a hang.
        assert 1.0 <= when - down < 15
        with pytest.raises(PoolTimeout) as excinfo:
            async with pool.connection(timeout=0.2):
                pass
        # The error says why no connection came.
        assert "last connection attempt failed" in str(excinfo.value)
        assert len(fired) == 1
    observe(
        f"reconnect_timeout 1 s: reconnect_failed called {when - down:.2f} s into the outage,"
        f" once, with the pool; requests then: {type(excinfo.value).__name__} naming the"
        " last connect error"
    )


@pytest.mark.scenario("L12")
@flavours
async def test_cancelled_waiters_leave_nothing_reserved(
    flavour: Flavour, proxy_dsn: str, admin: psycopg3_sync.Connection, observe: Any
) -> None:
    app = app_name()
    served: list[Any] = []
    async with open_pool(
        flavour, proxy_dsn, kwargs={"application_name": app}, min_size=3, max_size=3
    ) as pool:
        await pool.wait(10)
        held = [await pool.getconn() for _ in range(3)]
        if flavour.is_sync:
            # A thread cannot be cancelled: its wait ends by its timeout.
            async def wait_in_vain() -> float:
                start = time.monotonic()
                with pytest.raises(PoolTimeout):
                    async with pool.connection(timeout=0.5):
                        pass
                return time.monotonic() - start

            took = await run_jobs(flavour, [wait_in_vain] * 9)
            # Expected: each at its 0.5 s timeout; 10x that tells a hang.
            assert max(took) < 10 * 0.5
            how = f"9 waits timed out (0.5 s), the last after {max(took):.2f} s"
        else:

            async def wait_then_use() -> None:
                async with pool.connection(timeout=30) as conn:
                    served.append(conn)
                    await conn.execute("select pg_sleep(10)")

            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    for _ in range(9):
                        group.start_soon(wait_then_use)
                    await await_until(lambda: pool.stats()["requests_waiting"] == 9, "9 waiting")
                    # The oldest waiter is handed this one, then everyone is
                    # cancelled, whether it got to use it or not.
                    await pool.putconn(held.pop())
                    scope.cancel()
            assert scope.cancelled_caught
            how = f"9 waiters cancelled, {len(served)} of them just handed a connection"
        for conn in held:
            await pool.putconn(conn)
        await await_until(lambda: settled(pool, 3), "all 3 idle again")
        async with pool.connection(timeout=2) as conn:
            assert await (await conn.execute("select 1")).fetchone() == (1,)
        assert settled(pool, 3)
        assert len(backends(admin, app)) == 3
    observe(f"{how}; then 3 idle of 3, none waiting, the next request served, 3 backends")


# -- L11: backends that died while idle in the pool ----------------------------


@pytest.mark.scenario("L11")
@flavours
async def test_check_replaces_terminated_idle_connections(
    flavour: Flavour, dsn: str, admin: psycopg3_sync.Connection, observe: Any
) -> None:
    app = app_name()
    async with open_pool(flavour, dsn, kwargs={"application_name": app}, min_size=3) as pool:
        await pool.wait(10)
        old = terminate_all(admin, app)
        assert len(old) == 3
        await pool.check()
        assert pool.stats()["connections_lost"] == 3
        took = await until(lambda: settled(pool, 3), REFILL_BOUND, "refill after check()")
        new = backends(admin, app)
        assert len(new) == 3 and not set(new) & set(old)
        async with pool.connection(timeout=5) as conn:
            (pid,) = await (await conn.execute("select pg_backend_pid()")).fetchone()
        assert pid in new
    observe(f"check() found 3 terminated idle backends, lost=3; 3 new in {took * 1000:.0f} ms")


@pytest.mark.scenario("L11")
@pytest.mark.parametrize("with_check", [False, True], ids=["no-check", "check"])
@flavours
async def test_backend_terminated_while_idle(
    flavour: Flavour, dsn: str, admin: psycopg3_sync.Connection, with_check: bool, observe: Any
) -> None:
    app = app_name()
    extra = {"check": pool_class(flavour).check_connection} if with_check else {}
    async with open_pool(
        flavour, dsn, kwargs={"application_name": app}, min_size=1, **extra
    ) as pool:
        await pool.wait(10)
        (old,) = terminate_all(admin, app)
        if with_check:
            async with pool.connection(timeout=5) as conn:
                (pid,) = await (await conn.execute("select pg_backend_pid()")).fetchone()
            assert pool.stats()["connections_lost"] == 1
            seen = "with check: the user got a working connection"
        else:
            with pytest.raises(psycopg3.OperationalError) as excinfo:
                async with pool.connection(timeout=5) as conn:
                    await conn.execute("select 1")
            assert pool.stats()["returns_bad"] == 1
            async with pool.connection(timeout=5) as conn:
                (pid,) = await (await conn.execute("select pg_backend_pid()")).fetchone()
            seen = (
                f"without check: the next user got {type(excinfo.value).__name__},"
                " returns_bad=1, the one after a working connection"
            )
        assert pid != old
        await until(lambda: settled(pool, 1), REFILL_BOUND, "back to 1 idle")
    observe(f"backend terminated while idle: {seen} (new backend)")


# -- P1: a spike with slow connects; a frozen link under load ------------------


@pytest.mark.scenario("P1")
@flavours
async def test_spike_grows_one_at_a_time(flavour: Flavour, dsn: str, observe: Any) -> None:
    # The proxy has no connect-delay mode: a configure callback that sleeps
    # stands in for a slow connect (the pool waits for it like for one).
    connect_delay = 0.15
    # Connects under way now, and the most at once since ``peak`` was reset.
    connecting = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def enter() -> None:
        with lock:
            connecting["now"] += 1
            connecting["peak"] = max(connecting["peak"], connecting["now"])

    def leave() -> None:
        with lock:
            connecting["now"] -= 1

    configure: Any
    if flavour.is_sync:

        def configure(conn: Any) -> None:
            enter()
            # A slow connect: its length is the subject.
            time.sleep(connect_delay)
            leave()

    else:

        async def configure(conn: Any) -> None:
            enter()
            # A slow connect: its length is the subject.
            await anyio.sleep(connect_delay)
            leave()

    async with open_pool(flavour, dsn, min_size=5, max_size=10, configure=configure) as pool:
        await pool.wait(10)
        with lock:
            connecting["peak"] = 0

        async def job() -> tuple[float, float, float]:
            start = time.monotonic()
            async with pool.connection(timeout=10) as conn:
                waited = time.monotonic() - start
                await conn.execute("select pg_sleep(0.002)")
            return start, waited, time.monotonic()

        times = await run_jobs(flavour, [job] * 50)
        # A connect started during the spike may still be under way: let it land.
        await await_until(lambda: connecting["now"] == 0, "the connects to end")
        size = pool.stats()["pool_size"]
        assert pool.stats()["requests_num"] == 50
    assert len(times) == 50
    # Connects on demand are one at a time (how many there were depends on speed).
    assert connecting["peak"] <= 1, connecting
    assert 5 <= size <= 10
    elapsed = max(end for _, _, end in times) - min(start for start, _, _ in times)
    waits = sorted(waited for _, waited, _ in times)
    p95 = waits[int(len(waits) * 0.95) - 1]
    observe(
        f"connect slowed to 150 ms by a sleeping configure callback (no delay mode in the"
        f" proxy); 50 jobs of 2 ms on a 5-10 pool: {len(waits) / elapsed:.0f} jobs/s,"
        f" p95 wait {p95 * 1000:.1f} ms, pool size after {size}"
    )


async def query_with_deadline(flavour: Flavour, conn: Any, query: str, deadline: float) -> str:
    """Run ``query`` under a client-side deadline; return "result" or "deadline".

    The threads flavour has no deadline of its own: a timer thread calls
    ``cancel()`` (and is joined, so that its cancel cannot reach a later user).
    """
    if flavour.is_sync:

        def cancel() -> None:
            try:
                conn.target.cancel()
            except psycopg3.Error:
                pass

        timer = threading.Timer(deadline, cancel)
        timer.start()
        try:
            await conn.execute(query)
        finally:
            timer.cancel()
            timer.join(CANCEL_TIMEOUT + SLACK)
        return "result"
    with anyio.move_on_after(deadline) as scope:
        await conn.execute(query)
    return "deadline" if scope.cancelled_caught else "result"


@pytest.mark.scenario("P1")
@flavours
async def test_freeze_under_load(
    flavour: Flavour, proxy: FaultProxy, proxy_dsn: str, observe: Any
) -> None:
    pool_timeout, command_timeout, frozen = 2.0, 1.0, 2.0
    # Expected: about 3 s at worst (the freeze, then a command timeout); 10x tells a hang.
    bound = 10 * (frozen + command_timeout)
    async with open_pool(
        flavour, proxy_dsn, kwargs={"autocommit": True}, min_size=3, timeout=pool_timeout
    ) as pool:
        await pool.wait(10)

        results: list[str] = []

        async def worker() -> tuple[str, float]:
            start = time.monotonic()
            try:
                async with pool.connection() as conn:
                    outcome = await query_with_deadline(
                        flavour, conn, "select pg_sleep(0.5)", command_timeout
                    )
            except psycopg3.OperationalError as ex:
                outcome = type(ex).__name__
            results.append(outcome)
            return outcome, time.monotonic() - start

        def freeze_for_two_seconds() -> None:
            wait_until(lambda: len(results) >= 3, "the first round to end")
            proxy.freeze()
            # The network stays frozen for 2 s: the freeze's length is the subject.
            time.sleep(frozen)
            proxy.forward()

        freezer = threading.Thread(target=freeze_for_two_seconds)
        freezer.start()
        ends = await run_jobs(flavour, [worker] * 9)
        await anyio.to_thread.run_sync(freezer.join)
        restored = time.monotonic()
        async with pool.connection(timeout=10) as conn:
            assert await (await conn.execute("select 1")).fetchone() == (1,)
        serving = time.monotonic() - restored
        await until(lambda: settled(pool, 3), REFILL_BOUND, "back to 3 idle")
    worst = max(took for _, took in ends)
    assert worst < bound
    outcomes = Counter(outcome for outcome, _ in ends)
    assert outcomes["result"] >= 3  # the first round ran before the freeze
    observe(
        f"9 workers x pg_sleep(0.5) on 3, frozen 2 s after the first round: {dict(outcomes)},"
        f" all ended within {worst:.1f} s (bound {bound:.1f} s); served again"
        f" {serving * 1000:.0f} ms after the restore, back to 3 idle"
    )


# -- P2: a soak with faults ----------------------------------------------------

SOAK_SECONDS = float(os.environ.get("PSYCOPG3_SOAK_SECONDS", "20"))
#: An operation taking longer than this is a hang (expected: a few ms, 5 s at most).
WATCHDOG = 30.0
#: The exceptions an operation may raise under the soak's faults.
SOAK_ALLOWED = (psycopg3.OperationalError,)


class Soak:
    """The books of a soak: what was done, acknowledged, raised."""

    def __init__(self, flavour: Flavour, admin: psycopg3_sync.Connection, app: str):
        self.flavour = flavour
        self.admin = admin
        self.app = app
        tag = flavour.name
        self.ledger, self.many, self.copied = (
            f"soak_{t}_{tag}" for t in ("ledger", "many", "copy")
        )
        self.attempted: set[str] = set()
        self.acked: list[str] = []
        self.errors: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.ops = 0
        self.longest = 0.0
        # Workers that ran to the end: a stray cancellation ends a task silently.
        self.finished = 0
        # The threads flavour's workers share the books and the admin connection.
        self._lock = threading.Lock()
        self._ops = [
            (self.select, 30),
            (self.sleep, 10),
            (self.executemany, 10),
            (self.copy_in, 10),
            (self.copy_out, 10),
            (self.ledger_at_exit, 15),
            (self.ledger_in_block, 15),
        ]

    @contextmanager
    def tables(self) -> Iterator[None]:
        for table, columns in (
            (self.ledger, "id text, worker int"),
            (self.many, "worker int, n int"),
            (self.copied, "worker int, n int"),
        ):
            self.admin.execute(f"drop table if exists {table}")
            self.admin.execute(f"create table {table} ({columns})")
        try:
            yield
        finally:
            for table in (self.ledger, self.many, self.copied):
                self.admin.execute(f"drop table if exists {table}")

    # Each operation gets a pooled connection; one returning a ledger id
    # leaves it to the pool to commit at the end of the ``connection()`` block.

    async def select(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        number, text = rng.randrange(1 << 40), uuid.uuid4().hex
        cur = conn.cursor(binary=rng.random() < 0.5)
        await cur.execute("select %s::int8, %s::text", (number, text))
        row = await cur.fetchone()
        assert row == (number, text), f"crossed results: {row!r}, expected {(number, text)!r}"
        return None

    async def sleep(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        await conn.execute("select pg_sleep(0.005)")
        return None

    async def executemany(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        await conn.cursor().executemany(
            f"insert into {self.many} (worker, n) values (%s, %s)", [(worker, n) for n in range(20)]
        )
        return None

    async def copy_in(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        async with conn.cursor().copy(f"copy {self.copied} (worker, n) from stdin") as copy:
            for n in range(50):
                await copy.write_row((worker, n))
        return None

    async def copy_out(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        lines = 0
        async with conn.cursor().copy("copy (select generate_series(1, 500)) to stdout") as copy:
            async for block in copy:
                lines += bytes(block).count(b"\n")
        assert lines == 500, f"COPY TO gave {lines} lines"
        return None

    async def ledger_at_exit(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        entry = self.attempt()
        await conn.execute(
            f"insert into {self.ledger} (id, worker) values (%s, %s)", (entry, worker)
        )
        return entry  # committed by the pool's block, acknowledged if that returns

    async def ledger_in_block(self, conn: Any, rng: random.Random, worker: int) -> str | None:
        entry = self.attempt()
        async with conn.transaction():
            await conn.execute(
                f"insert into {self.ledger} (id, worker) values (%s, %s)", (entry, worker)
            )
        self.ack(entry)
        return None

    def attempt(self) -> str:
        entry = uuid.uuid4().hex
        with self._lock:
            self.attempted.add(entry)
        return entry

    def ack(self, entry: str) -> None:
        with self._lock:
            self.acked.append(entry)

    def terminate_one(self) -> None:
        with self._lock:
            self.admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = %s order by random() limit 1",
                (self.app,),
            )

    def count(self, what: str, took: float) -> None:
        with self._lock:
            self.ops += 1
            self.longest = max(self.longest, took)
            if what:
                self.errors[what] += 1

    async def use(
        self, pool: Any, op: Any, rng: random.Random, worker: int, timeout: float, cancel: float
    ) -> None:
        """One operation on a pooled connection; ``cancel`` > 0: interrupt it (threads)."""
        async with pool.connection(timeout=timeout) as conn:
            if cancel:
                await query_with_deadline(self.flavour, conn, "select pg_sleep(0.05)", cancel)
            entry = await op(conn, rng, worker)
        if entry is not None:
            self.ack(entry)

    async def worker(self, pool: Any, worker: int, seed: int, until_time: float) -> None:
        rng = random.Random(seed + worker)
        functions, weights = zip(*self._ops)
        while time.monotonic() < until_time:
            op = rng.choices(functions, weights)[0]
            roll = rng.random()
            start = time.monotonic()
            what = ""
            try:
                if roll < 0.005:
                    self.terminate_one()
                    what = "terminate"
                elif roll < 0.03:
                    # A pool timeout too short when all are busy.
                    await self.use(pool, op, rng, worker, rng.uniform(0.001, 0.02), 0.0)
                elif roll < 0.055:
                    what = await self.interrupted(pool, op, rng, worker)
                elif self.flavour.is_sync:
                    await self.use(pool, op, rng, worker, 5.0, 0.0)
                else:
                    with anyio.fail_after(WATCHDOG):
                        await self.use(pool, op, rng, worker, 5.0, 0.0)
            except SOAK_ALLOWED as ex:
                what = type(ex).__name__
            except Exception as ex:
                what = "unexpected"
                with self._lock:
                    self.unexpected.append(repr(ex))
            self.count(what, time.monotonic() - start)
        with self._lock:
            self.finished += 1

    async def interrupted(self, pool: Any, op: Any, rng: random.Random, worker: int) -> str:
        """Interrupt an operation at a random moment: a cancel scope, or (threads) cancel()."""
        delay = rng.uniform(0.0, 0.02)
        if self.flavour.is_sync:
            await self.use(pool, op, rng, worker, 5.0, delay)
            return ""
        with anyio.move_on_after(delay) as scope:
            await self.use(pool, op, rng, worker, 5.0, 0.0)
        return "interrupted" if scope.cancelled_caught else ""


@pytest.mark.timeout(SOAK_SECONDS + 60)
@pytest.mark.scenario("P2")
@flavours
async def test_soak_with_faults(
    flavour: Flavour,
    proxy: FaultProxy,
    proxy_dsn: str,
    admin: psycopg3_sync.Connection,
    observe: Any,
) -> None:
    app = app_name()
    soak = Soak(flavour, admin, app)
    seed = random.randrange(1 << 30)
    with soak.tables():
        async with open_pool(
            flavour, proxy_dsn, kwargs={"application_name": app}, min_size=4
        ) as pool:
            await pool.wait(10)
            start = time.monotonic()
            # Halfway, the network drops every connection for half a second.
            flap = [
                Later(SOAK_SECONDS / 2, proxy.close),
                Later(SOAK_SECONDS / 2 + 0.5, proxy.forward),
            ]
            end = start + SOAK_SECONDS
            await run_jobs(
                flavour,
                [lambda w=w: soak.worker(pool, w, seed, end) for w in range(8)],  # type: ignore[misc]
            )
            elapsed = time.monotonic() - start
            assert soak.finished == 8, f"workers ended early (after {elapsed:.1f} s)"
            for action in flap:
                await anyio.to_thread.run_sync(action.join)
            back = await until(lambda: settled(pool, 4), REFILL_BOUND, "back to min_size")
            await no_leaked_backends(admin, app, 4)
        counts = dict(admin.execute(f"select id, count(*) from {soak.ledger} group by id"))
    assert not soak.unexpected, soak.unexpected[:5]
    assert soak.longest < WATCHDOG
    duplicated = [entry for entry, count in counts.items() if count != 1]
    assert not duplicated
    lost = [entry for entry in soak.acked if entry not in counts]
    assert not lost, f"{len(lost)} acknowledged commits missing"
    assert set(counts) <= soak.attempted
    unacked = soak.attempted - set(soak.acked)
    observe(
        f"{SOAK_SECONDS:g} s, 8 tasks on 4 via the proxy (seed {seed}): {soak.ops} ops,"
        f" {soak.ops / elapsed:.0f} ops/s; {len(soak.acked)} acknowledged commits all in the"
        f" ledger once; {len(unacked)} commits raised ({len(unacked & set(counts))} of them"
        f" applied); errors: {dict(sorted(soak.errors.items()))}; one 0.5 s network drop;"
        f" back to 4 idle {back:.2f} s after the end; longest op {soak.longest:.2f} s"
    )
