"""The pool's policy (``psycopg3._pool.PoolPolicy``) on its own: decisions, no I/O.

The policy only reads ``closed`` and calls ``_close()`` on its connections,
so these tests hand it plain stand-ins and their own clock: each rule of the
module is checked exactly, without a server or timing. The pools that drive
it against real servers are tested in ``tests/adapters/test_pool*.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from psycopg3 import errors
from psycopg3._pool import (
    RECONNECT_INITIAL_DELAY,
    RECONNECT_JITTER,
    RECONNECT_MAX_DELAY,
    PoolPolicy,
)
from psycopg3._pool_io import bounded
from psycopg3.waiting import PQGen, Ready, Wait


class Conn:
    """What the policy needs of a connection."""

    def __init__(self) -> None:
        self.closed = False

    def _close(self) -> None:
        self.closed = True


def make_policy(**kwargs: Any) -> PoolPolicy[Any]:
    options: dict[str, Any] = {
        "min_size": 2,
        "max_size": 4,
        "max_waiting": 0,
        "max_lifetime": 3600.0,
        "max_idle": 600.0,
        "reconnect_timeout": 300.0,
        "name": "test",
    }
    options.update(kwargs)
    return PoolPolicy(**options)


def fill(policy: PoolPolicy[Any], now: float = 0.0) -> list[Conn]:
    count = policy.start_connects(now)
    conns = [Conn() for _ in range(count)]
    for conn in conns:
        assert policy.connected(conn, now, 1)
    return conns


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.mark.parametrize(
    ("min_size", "max_size", "message"),
    [(-1, None, "min_size"), (3, 2, "max_size"), (0, 0, "max_size")],
)
def test_bad_sizes(min_size: int, max_size: int | None, message: str) -> None:
    with pytest.raises(errors.ProgrammingError, match=message):
        make_policy(min_size=min_size, max_size=max_size)


@pytest.mark.parametrize("option", ["max_lifetime", "max_idle", "reconnect_timeout"])
def test_bad_durations(option: str) -> None:
    with pytest.raises(errors.ProgrammingError, match=option):
        make_policy(**{option: 0})


def test_max_size_defaults_to_min_size() -> None:
    policy = make_policy(min_size=3, max_size=None)
    assert (policy.min_size, policy.max_size) == (3, 3)


def test_fill_to_min_size_then_nothing_more() -> None:
    policy = make_policy()
    assert policy.start_connects(0.0) == 2
    # Counted while opening: asking again starts nothing (rule 2).
    assert policy.start_connects(0.0) == 0
    assert policy.size == 2
    assert policy.stats()["connections_num"] == 2


def test_idle_handed_out_most_recent_first() -> None:
    policy = make_policy()
    first, second = fill(policy)
    conn, to_close = policy.checkout(1.0)
    assert conn is second
    assert to_close == []
    assert policy.give_back(conn, 2.0)
    assert policy.checkout(3.0)[0] is second


def test_grow_on_demand_one_at_a_time() -> None:
    policy = make_policy(min_size=1, max_size=4)
    fill(policy)
    assert policy.checkout(0.0)[0] is not None
    for _ in range(3):
        assert policy.checkout(0.0)[0] is None
        policy.enqueue(Wakes())
    # Three requests wait, but only one on-demand connect runs at a time (rule 4).
    assert policy.start_connects(0.0) == 1
    assert policy.start_connects(0.0) == 0
    assert policy.connected(Conn(), 0.1, 100)
    assert policy.waiting_count == 2
    assert policy.start_connects(0.1) == 1


def test_never_beyond_max_size() -> None:
    policy = make_policy(min_size=1, max_size=1)
    fill(policy)
    policy.checkout(0.0)
    policy.checkout(0.0)
    policy.enqueue(Wakes())
    assert policy.start_connects(0.0) == 0
    assert policy.size == 1


def test_returned_connection_goes_to_oldest_waiter() -> None:
    policy = make_policy(min_size=1, max_size=1)
    (conn,) = fill(policy)
    assert policy.checkout(0.0)[0] is conn
    wakes = [Wakes(), Wakes()]
    waiters = [policy.enqueue(wake) for wake in wakes]
    assert policy.give_back(conn, 1.0)
    assert waiters[0].conn is conn and wakes[0].count == 1
    assert waiters[1].conn is None and wakes[1].count == 0
    assert policy.idle_count == 0


def test_abandoned_waiter_hands_its_connection_on() -> None:
    policy = make_policy(min_size=1, max_size=1)
    (conn,) = fill(policy)
    policy.checkout(0.0)
    first = policy.enqueue(Wakes())
    second = policy.enqueue(Wakes())
    policy.give_back(conn, 1.0)
    # The first request is cancelled just after it was given the connection.
    policy.abandon(first, 1.0)
    assert first.conn is None
    assert second.conn is conn
    policy.abandon(second, 1.0)
    assert policy.idle_count == 1
    assert policy.waiting_count == 0
    assert policy.size == 1
    assert not conn.closed


def test_abandon_before_anything_was_given() -> None:
    policy = make_policy(min_size=1, max_size=1)
    fill(policy)
    policy.checkout(0.0)
    waiter = policy.enqueue(Wakes())
    policy.abandon(waiter, 0.5)
    policy.abandon(waiter, 0.6)  # twice: harmless
    assert policy.waiting_count == 0


def test_too_many_requests() -> None:
    policy = make_policy(min_size=1, max_size=1, max_waiting=2)
    fill(policy)
    policy.checkout(0.0)
    policy.enqueue(Wakes())
    policy.enqueue(Wakes())
    with pytest.raises(errors.TooManyRequests, match="max_waiting=2"):
        policy.enqueue(Wakes())
    assert policy.stats()["requests_errors"] == 1


def test_timeout_error_names_the_last_connect_failure() -> None:
    policy = make_policy()
    policy.start_connects(0.0)
    policy.connect_failed(errors.OperationalError("connection refused"), 0.0)
    error = policy.timed_out(2.5)
    assert isinstance(error, errors.PoolTimeout)
    assert "2.5 s" in str(error) and "connection refused" in str(error)
    # wait()'s error counts what is open and says the same about the last failure.
    error = policy.not_ready(1.5)
    assert isinstance(error, errors.PoolTimeout)
    assert str(error) == (
        "pool 'test': 0 connections of 2 ready after 1.5 s;"
        " the last connection attempt failed: connection refused"
    )
    assert policy.stats()["requests_errors"] == 1


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = make_policy(min_size=1, max_size=1, reconnect_timeout=1000.0)
    now = 0.0
    gaps = []
    for _ in range(10):
        assert policy.start_connects(now) == 1
        assert not policy.connect_failed(errors.OperationalError("refused"), now)
        # Nothing starts before the retry time.
        deadline = policy.next_deadline()
        assert deadline is not None
        assert policy.start_connects(now + (deadline - now) * 0.99) == 0
        gaps.append(deadline - now)
        now = deadline
    expected = RECONNECT_INITIAL_DELAY
    for gap in gaps:
        assert expected * (1 - RECONNECT_JITTER) <= gap <= expected * (1 + RECONNECT_JITTER)
        expected = min(expected * 2, RECONNECT_MAX_DELAY)


def test_one_probe_at_a_time_while_failing() -> None:
    policy = make_policy(min_size=3, max_size=3)
    assert policy.start_connects(0.0) == 3
    policy.connect_failed(errors.OperationalError("refused"), 0.0)
    # Two are still trying: no new attempt until they end.
    assert policy.start_connects(1.0) == 0
    policy.connect_failed(errors.OperationalError("refused"), 1.0)
    policy.connect_failed(errors.OperationalError("refused"), 1.0)
    assert policy.start_connects(2.0) == 1


class PinnedRandom:
    """The policy's random source, pinned: the jitter of every delay is known."""

    def __init__(self, draw: float) -> None:
        self.draw = draw

    def random(self) -> float:
        return self.draw


# random() in [0, 1): the jitter at its low end, in the middle, near its high end.
@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_reconnect_failed_reported_once_per_timeout(draw: float) -> None:
    policy = make_policy(min_size=1, max_size=1, reconnect_timeout=5.0)
    policy._random = PinnedRandom(draw)  # type: ignore[assignment]
    jitter = 1.0 + RECONNECT_JITTER * (2.0 * draw - 1.0)
    # Every attempt fails, each one made the moment it is due.
    now, attempts, reports = 0.0, [], []
    while now < 30.0:
        assert policy.start_connects(now) == 1
        attempts.append(now)
        if policy.connect_failed(errors.OperationalError("refused"), now):
            reports.append(now)
            # After giving up, attempts go on at the longest delay: the next one too.
            assert policy.next_deadline() == pytest.approx(now + RECONNECT_MAX_DELAY * jitter)
        deadline = policy.next_deadline()
        assert deadline is not None and deadline > now
        now = deadline
    # Attempts at 0, 0.1, 0.3, 0.7, 1.5, 3.1 s (times the jitter) fail within
    # the 5 s; the one at 6.3 s is the first at or after it: reported. Then
    # one attempt, and one report, every longest delay: never two reports
    # less than reconnect_timeout apart.
    first = 6.3 * jitter
    assert attempts[:7] == pytest.approx([t * jitter for t in (0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3)])
    step = RECONNECT_MAX_DELAY * jitter
    assert reports == pytest.approx([first, first + step, first + 2 * step])
    assert attempts[6:] == reports


def test_success_resets_the_backoff() -> None:
    policy = make_policy(min_size=1, max_size=1)
    policy.start_connects(0.0)
    policy.connect_failed(errors.OperationalError("refused"), 0.0)
    assert policy.last_error is not None
    deadline = policy.next_deadline()
    assert deadline is not None
    assert policy.start_connects(deadline) == 1
    assert policy.connected(Conn(), deadline, 5)
    assert policy.last_error is None
    assert policy.next_deadline() is not None  # the lifetime of the idle one
    stats = policy.stats()
    assert (stats["connections_errors"], stats["connections_num"]) == (1, 2)


def test_too_old_connections_are_not_kept() -> None:
    policy = make_policy(min_size=1, max_size=1, max_lifetime=100.0)
    (conn,) = fill(policy)
    deadline = policy.next_deadline()
    assert deadline is not None and 95.0 <= deadline <= 100.0
    assert policy.expired(deadline - 0.01) == []
    assert policy.expired(deadline) == [conn]
    # Replaced: a new connect is due.
    assert policy.start_connects(deadline) == 1


def test_too_old_in_use_connection_closed_on_return() -> None:
    policy = make_policy(min_size=1, max_size=1, max_lifetime=100.0)
    (conn,) = fill(policy)
    policy.checkout(0.0)
    assert not policy.give_back(conn, 101.0)
    assert policy.size == 0


def test_idle_beyond_min_size_closed_after_max_idle() -> None:
    policy = make_policy(min_size=1, max_size=3, max_idle=60.0)
    fill(policy)
    first = policy.checkout(0.0)[0]
    policy.enqueue(Wakes())
    assert policy.start_connects(0.0) == 1
    extra = Conn()
    policy.connected(extra, 1.0, 1)  # goes to the waiter
    assert policy.give_back(first, 10.0)
    assert policy.give_back(extra, 20.0)
    assert policy.next_deadline() == 70.0
    # The longest idle goes first; min_size stays.
    assert policy.expired(70.0) == [first]
    assert policy.expired(1000.0) == []
    assert policy.size == 1


def test_discard_frees_the_slot_and_counts() -> None:
    policy = make_policy()
    first, second = fill(policy)
    policy.checkout(0.0)
    policy.discard(second)
    policy.discard(first, lost=True)
    stats = policy.stats()
    assert (stats["returns_bad"], stats["connections_lost"], stats["pool_size"]) == (1, 1, 0)
    assert policy.start_connects(1.0) == 2


def test_closed_idle_connection_skipped_at_checkout() -> None:
    policy = make_policy()
    first, second = fill(policy)
    second.closed = True
    conn, to_close = policy.checkout(0.0)
    assert conn is first
    assert to_close == [second]
    assert policy.stats()["connections_lost"] == 1


def test_foreign_connection_refused() -> None:
    policy = make_policy()
    with pytest.raises(errors.ProgrammingError, match="not this pool's"):
        policy.give_back(Conn(), 0.0)


def test_resize_closes_surplus_idle() -> None:
    policy = make_policy(min_size=4, max_size=4)
    conns = fill(policy)
    to_close = policy.resize(1, 2, 0.0)
    assert len(to_close) == 2 and set(to_close) <= set(conns)
    assert policy.size == 2
    with pytest.raises(errors.ProgrammingError):
        policy.resize(3, 2, 0.0)


def test_close_wakes_waiters_with_pool_closed() -> None:
    policy = make_policy(min_size=1, max_size=1)
    (conn,) = fill(policy)
    policy.checkout(0.0)
    wake = Wakes()
    waiter = policy.enqueue(wake)
    idle, woken = policy.close()
    assert idle == [] and woken == [waiter]
    assert isinstance(waiter.error, errors.PoolClosed) and wake.count == 1
    # The connection in use is closed when it comes back.
    assert not policy.give_back(conn, 1.0)
    with pytest.raises(errors.PoolClosed):
        policy.checkout(1.0)
    assert policy.start_connects(1.0) == 0


def test_take_idle_for_check() -> None:
    policy = make_policy()
    conns = fill(policy)
    taken = policy.take_idle()
    assert sorted(map(id, taken)) == sorted(map(id, conns))
    assert policy.idle_count == 0 and policy.size == 2
    for conn in taken:
        assert policy.give_back(conn, 1.0)


def test_bounded_gives_up_at_its_deadline() -> None:
    closed = []

    def forever() -> PQGen[int]:
        try:
            while True:
                yield 3, Wait.R
        finally:
            closed.append(True)

    # Before its deadline (an hour away), "nothing ready" is waited on again.
    gen = bounded(forever(), time.monotonic() + 3600)
    assert next(gen) == (3, Wait.R)
    assert gen.send(Ready.NONE) == (3, Wait.R)
    assert closed == []
    gen.close()
    closed.clear()
    # Past it (the deadline is now, no sleep needed), "nothing ready" gives up.
    gen = bounded(forever(), time.monotonic())
    assert next(gen) == (3, Wait.R)
    with pytest.raises(errors.OperationalError, match="in time"):
        gen.send(Ready.NONE)
    assert closed == [True]


def test_bounded_returns_the_result() -> None:
    def answer() -> PQGen[int]:
        ready = yield 3, Wait.R
        return int(ready)

    gen = bounded(answer(), time.monotonic() + 10)
    next(gen)
    with pytest.raises(StopIteration) as info:
        gen.send(Ready.R)
    assert info.value.value == int(Ready.R)


def test_take_back_refuses_foreign_and_twice_returned() -> None:
    policy = make_policy()
    fill(policy)
    conn = policy.checkout(0.0)[0]
    with pytest.raises(errors.ProgrammingError, match="not this pool's"):
        policy.take_back(Conn())
    policy.take_back(conn)
    assert policy.give_back(conn, 1.0)
    with pytest.raises(errors.ProgrammingError, match="returned twice"):
        policy.take_back(conn)
    assert policy.idle_count == 2


def test_take_back_accepts_a_connection_handed_to_a_waiter() -> None:
    policy = make_policy(min_size=1, max_size=1)
    (conn,) = fill(policy)
    policy.checkout(0.0)
    waiter = policy.enqueue(Wakes())
    policy.take_back(conn)
    policy.give_back(conn, 1.0)
    assert waiter.conn is conn
    policy.take_back(conn)
    assert policy.open_count == 1


def test_failures_of_one_round_count_as_one_step() -> None:
    policy = make_policy(min_size=4, max_size=4)
    assert policy.start_connects(0.0) == 4
    for _ in range(4):
        policy.connect_failed(errors.OperationalError("refused"), 0.0)
    deadline = policy.next_deadline()
    assert deadline is not None
    assert deadline <= RECONNECT_INITIAL_DELAY * (1 + RECONNECT_JITTER)
