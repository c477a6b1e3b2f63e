"""LISTEN/NOTIFY in every flavour: ``conn.notifies()``, handlers, the queue.

Notifications are sent from a separate blocking connection (``admin``, or a
sender thread when the listener is busy in a query), so every case runs the
same way in each flavour.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import signal
import threading
import time
from typing import Any

import anyio
import pytest
import trio

import psycopg3
import psycopg3_sync
import psycopg3_trio
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import await_until, wait_until
from notifying import BUSY_QUERY, notify_while_busy, send
from psycopg3 import Notify, _notify
from psycopg3.pq import TransactionStatus


async def collect(conn: Any, **kwargs: Any) -> list[Notify]:
    return [notify async for notify in conn.notifies(**kwargs)]


async def listening(flavour: Any, dsn: str, *channels: str, **kwargs: Any) -> Any:
    conn = await flavour.connect(dsn, autocommit=True, **kwargs)
    for channel in channels:
        await conn.execute(f'LISTEN "{channel}"')
    return conn


# -- receiving ---------------------------------------------------------------


@pytest.mark.anyio
async def test_receive_one(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        admin.execute("NOTIFY ch, 'hello'")
        got = await collect(conn, timeout=10, stop_after=1)
        notify = got[0]
        assert isinstance(notify, Notify)
        assert notify == Notify("ch", "hello", admin.pgconn.backend_pid)
        assert (notify.channel, notify.payload, notify.pid) == notify
        assert await (await conn.execute("select 1")).fetchone() == (1,)
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_several_in_order(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch", "other")
    try:
        pid = send(dsn, "ch", *(f"n{i}" for i in range(5)))
        send(dsn, "other", "last")
        got = await collect(conn, timeout=10, stop_after=6)
        assert got == [Notify("ch", f"n{i}", pid) for i in range(5)] + [
            Notify("other", "last", got[-1].pid)
        ]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_unicode_and_empty_payload(flavour: Any, dsn: str, admin: Any) -> None:
    channel = "canal_ünï"
    conn = await listening(flavour, dsn, channel)
    try:
        admin.execute("select pg_notify(%s, %s)", (channel, "héllo ☃ 𝄞"))
        admin.execute(f'NOTIFY "{channel}"')
        got = await collect(conn, timeout=10, stop_after=2)
        assert [(n.channel, n.payload) for n in got] == [(channel, "héllo ☃ 𝄞"), (channel, "")]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_decoded_with_the_connection_encoding(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch", client_encoding="LATIN1")
    try:
        admin.execute("NOTIFY ch, 'café'")
        got = await collect(conn, timeout=10, stop_after=1)
        assert got[0].payload == "café"
    finally:
        await conn.close()


# -- ending an iteration -----------------------------------------------------


@pytest.mark.anyio
async def test_timeout_ends_the_iteration(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        start = time.monotonic()
        assert await collect(conn, timeout=0.3) == []
        elapsed = time.monotonic() - start
        # Time is the subject: not before the timeout; expected 0.3 s, the
        # upper bound only tells a hang from an end.
        assert 0.3 <= elapsed < 5
        assert not conn.closed
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_timeout_is_for_the_whole_iteration(flavour: Any, dsn: str) -> None:
    # A sender answers each notification received with the next one, until
    # the iteration ends: had each notification restarted the timeout, the
    # iteration would last as long as the sender (``sending`` s), not 0.3 s.
    conn = await listening(flavour, dsn, "ch")
    acks: queue.Queue[str | None] = queue.Queue()
    sender = psycopg3_sync.connect(dsn, autocommit=True)
    sending = 30.0

    def keep_sending() -> None:
        until = time.monotonic() + sending
        i = 1
        while time.monotonic() < until:
            sender.execute("select pg_notify('ch', %s)", (str(i),))
            if acks.get() is None:
                return
            i += 1

    try:
        sender.execute("select pg_notify('ch', '0')")
        await conn.execute("select 1")  # "0" now queued: taken with the results
        thread = threading.Thread(target=keep_sending)
        thread.start()
        got: list[str] = []
        start = time.monotonic()
        try:
            async for notify in conn.notifies(timeout=0.3):
                got.append(notify.payload)
                acks.put(notify.payload)
        finally:
            elapsed = time.monotonic() - start
            acks.put(None)
            thread.join()
        assert got[0] == "0" and got == [str(i) for i in range(len(got))]
        # Expected 0.3 s; the bound is far below the sender's ``sending`` s.
        assert 0.3 <= elapsed < 10
    finally:
        sender.close()
        await conn.close()


@pytest.mark.anyio
async def test_timeout_zero_returns_what_arrived(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        assert await collect(conn, timeout=0) == []
        send(dsn, "ch", "here")
        got: list[Notify] = []

        async def arrived() -> bool:
            got.extend(await collect(conn, timeout=0))
            return bool(got)

        await await_until(arrived, "the notification")
        assert [n.payload for n in got] == ["here"]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_stop_after(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        send(dsn, "ch", "a", "b", "c")
        assert [n.payload for n in await collect(conn, timeout=10, stop_after=2)] == ["a", "b"]
        # The one not taken stays queued for the next iteration.
        assert [n.payload for n in await collect(conn, timeout=10, stop_after=1)] == ["c"]
        assert await collect(conn, stop_after=0) == []
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_break_then_iterate_again(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        send(dsn, "ch", "a", "b")
        async for notify in conn.notifies(timeout=10):
            assert notify.payload == "a"
            break
        # Nothing held between items: the connection works, the rest is kept.
        assert await (await conn.execute("select 2")).fetchone() == (2,)
        assert [n.payload for n in await collect(conn, timeout=10, stop_after=1)] == ["b"]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_bad_arguments(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn, autocommit=True)
    for kwargs in ({"timeout": -1}, {"stop_after": -1}, {"stop_after": 1.5}, {"stop_after": True}):
        with pytest.raises(psycopg3.ProgrammingError, match="notifies"):
            conn.notifies(**kwargs)
    await conn.close()
    with pytest.raises(psycopg3.InterfaceError, match="closed"):
        conn.notifies()


# -- received during other commands ----------------------------------------


@pytest.mark.anyio
async def test_handler_called_during_a_query(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    seen: list[Notify] = []
    conn.add_notify_handler(seen.append)
    try:
        sender = notify_while_busy(admin, conn.pgconn.backend_pid, "while busy")
        await conn.execute(BUSY_QUERY)
        sender.join()
        # Sent while the query ran: the server delivers it with the query's
        # results, and the handler ran before execute() returned.
        assert [n.payload for n in seen] == ["while busy"]
        # Taken by a handler while nobody iterated: not kept a second time.
        assert await collect(conn, timeout=0) == []
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_received_during_a_query_then_yielded(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        sender = notify_while_busy(admin, conn.pgconn.backend_pid, "queued")
        await conn.execute(BUSY_QUERY)
        sender.join()
        assert conn._notify.queue  # taken from libpq with the results
        got = await collect(conn, timeout=0)
        assert [n.payload for n in got] == ["queued"]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_handler_that_raises_is_logged(
    flavour: Any, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await listening(flavour, dsn, "ch")
    seen: list[str] = []

    def broken(notify: Notify) -> None:
        raise ZeroDivisionError("handler bug")

    conn.add_notify_handler(broken)
    conn.add_notify_handler(lambda n: seen.append(n.payload))
    try:
        send(dsn, "ch", "one")
        with caplog.at_level(logging.ERROR, logger="psycopg3"):
            got = await collect(conn, timeout=10, stop_after=1)
        assert [n.payload for n in got] == ["one"]  # the iteration goes on
        assert seen == ["one"]  # so do the other handlers
        assert any("notify handler" in r.message and r.exc_info for r in caplog.records)
        conn.remove_notify_handler(broken)
        with pytest.raises(ValueError):
            conn.remove_notify_handler(broken)
        send(dsn, "ch", "two")
        await collect(conn, timeout=10, stop_after=1)
        assert seen == ["one", "two"]
    finally:
        await conn.close()


def test_queue_is_bounded(
    dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_notify, "NOTIFY_QUEUE_MAX", 5)
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN ch")
        send(dsn, "ch", *(str(i) for i in range(8)))
        with caplog.at_level(logging.WARNING, logger="psycopg3"):

            def last_arrived() -> bool:
                conn.execute("select 1")  # takes what arrived, with its results
                return "7" in [n.payload for n in conn._notify.queue]

            wait_until(last_arrived, "the last notification")
        assert [n.payload for n in conn.notifies(timeout=0)] == ["3", "4", "5", "6", "7"]
        drops = [r for r in caplog.records if "dropping the oldest" in r.message]
        assert len(drops) == 1  # one warning per overflow, not one per notification


# -- transactions ----------------------------------------------------------


@pytest.mark.anyio
async def test_listen_takes_effect_at_commit(
    flavour: Any, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await flavour.connect(dsn)  # DB-API default: not autocommit
    try:
        await conn.execute("LISTEN ch")
        send(dsn, "ch", "too early")
        with caplog.at_level(logging.WARNING, logger="psycopg3"):
            assert await collect(conn, timeout=0.3) == []
        assert any("inside a transaction" in r.message for r in caplog.records)
        await conn.commit()
        send(dsn, "ch", "after commit")
        got = await collect(conn, timeout=10, stop_after=1)
        assert [n.payload for n in got] == ["after commit"]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_listen_rolled_back(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    try:
        await conn.execute("LISTEN ch")
        await conn.rollback()
        send(dsn, "ch", "nobody listens")
        assert await collect(conn, timeout=0.3) == []
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_delivered_after_the_listener_rolls_back(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    try:
        await conn.execute("LISTEN ch")
        await conn.commit()
        await conn.execute("select 1")  # a transaction is open again
        send(dsn, "ch", "kept")
        # Inside a transaction the server holds it back...
        assert await collect(conn, timeout=0.3) == []
        assert conn.pgconn.transaction_status == TransactionStatus.INTRANS
        # ...and delivers it when the transaction ends, even by a rollback.
        await conn.rollback()
        got = await collect(conn, timeout=10, stop_after=1)
        assert [n.payload for n in got] == ["kept"]
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_own_notify_rolled_back_is_never_sent(flavour: Any, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    try:
        await conn.execute("LISTEN ch")
        await conn.commit()
        await conn.execute("NOTIFY ch, 'undone'")
        await conn.rollback()
        await conn.execute("NOTIFY ch, 'done'")
        await conn.commit()
        got = await collect(conn, timeout=0.5)
        assert [n.payload for n in got] == ["done"]
    finally:
        await conn.close()


# -- closing, losing, interrupting -----------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_close_while_iterating(flavour: Any, dsn: str) -> None:
    conn = await listening(flavour, dsn, "ch")
    errors: list[BaseException] = []

    async def listen() -> None:
        try:
            await collect(conn)
        except psycopg3.OperationalError as ex:
            errors.append(ex)

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        await await_until(lambda: conn._notify.iterations == 1, "the iteration to start")
        start = time.monotonic()
        await conn.close()
    # Expected: at once (close() shuts the socket the listener waits on down);
    # the bound tells woken from hung.
    assert time.monotonic() - start < 5
    assert len(errors) == 1 and "closed" in str(errors[0])


def test_close_while_iterating_sync(dsn: str) -> None:
    conn = psycopg3_sync.connect(dsn, autocommit=True)
    conn.execute("LISTEN ch")
    errors: list[BaseException] = []

    def listen() -> None:
        try:
            list(conn.notifies())
        except psycopg3.OperationalError as ex:
            errors.append(ex)

    thread = threading.Thread(target=listen)
    thread.start()
    wait_until(lambda: conn._notify.iterations == 1, "the iteration to start")
    start = time.monotonic()
    conn.close()
    thread.join(10)
    assert not thread.is_alive()
    # Expected: at once (close() shuts the socket the listener polls down).
    assert time.monotonic() - start < 5
    assert len(errors) == 1 and "closed" in str(errors[0])


@pytest.mark.anyio
async def test_connection_lost_while_iterating(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    pid = conn.pgconn.backend_pid
    killed: list[float] = []

    def kill() -> None:
        wait_until(lambda: conn._notify.iterations == 1, "the iteration to start")
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        killed.append(time.monotonic())

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        with pytest.raises(psycopg3.OperationalError):
            await collect(conn, timeout=50)
        lost = time.monotonic()
        killer.join()
        # Expected: at once (the socket becomes readable as it closes); the bound
        # is far below the iteration's timeout, which would end it silently.
        assert lost - killed[0] < 10
        assert conn.closed and conn.broken
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancel_scope_stops_iteration(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        start = time.monotonic()
        with anyio.move_on_after(0.3) as scope:
            await collect(conn)
        assert scope.cancelled_caught
        # Expected 0.3 s (the scope's deadline); the bound tells stopped from hung.
        assert time.monotonic() - start < 5
        await _assert_usable(conn, admin, dsn)
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ["asyncio"], indirect=True)
async def test_asyncio_timeout_and_task_cancel(flavour: Any, dsn: str, admin: Any) -> None:
    conn = await listening(flavour, dsn, "ch")
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await collect(conn)
        await _assert_usable(conn, admin, dsn)
        task = asyncio.ensure_future(collect(conn))
        await await_until(lambda: conn._notify.iterations == 1, "the iteration to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _assert_usable(conn, admin, dsn)
    finally:
        await conn.close()


@pytest.mark.trio
async def test_trio_move_on_after(dsn: str) -> None:
    with psycopg3_sync.connect(dsn, autocommit=True) as admin:
        async with psycopg3_trio.trio_connect(dsn, autocommit=True) as conn:
            await conn.execute("LISTEN ch")
            with trio.move_on_after(0.3) as scope:
                async for _ in conn.notifies():
                    pytest.fail("nothing was sent")
            assert scope.cancelled_caught
            await _assert_usable(conn, admin, dsn)


def test_ctrl_c_while_iterating_sync(dsn: str, admin: Any) -> None:
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    assert main is not None
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN ch")
        timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            for _ in conn.notifies():
                pytest.fail("nothing was sent")
        timer.join()
        assert not conn.closed and not conn.lock.locked()
        assert conn.execute("select 42").fetchone() == (42,)
        send(dsn, "ch", "after")
        assert [n.payload for n in conn.notifies(timeout=10, stop_after=1)] == ["after"]


async def _assert_usable(conn: Any, admin: Any, dsn: str) -> None:
    """Idle, not broken, still listening: no cancel request was needed."""
    assert not conn.closed and not conn.broken
    assert conn.pgconn.transaction_status == TransactionStatus.IDLE
    pid = conn.pgconn.backend_pid
    row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()
    assert row == ("idle",)
    assert await (await conn.execute("select 42")).fetchone() == (42,)
    send(dsn, "ch", "after")
    got = await collect(conn, timeout=10, stop_after=1)
    assert [n.payload for n in got] == ["after"]


# -- sharing the connection ------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_listen_while_another_task_queries(flavour: Any, dsn: str) -> None:
    # One task listens, another queries on the same connection and sends
    # from a second connection: nobody starves, nothing is lost. Notification
    # i is sent after query i: the listener cannot end before every query
    # did, so a listener keeping the connection to itself would starve the
    # queries until its timeout (20 s; the test takes well under 1 s).
    conn = await listening(flavour, dsn, "ch")
    sender = await flavour.connect(dsn, autocommit=True)
    got: list[str] = []
    answered: list[int] = []
    try:

        async def listen() -> None:
            async for notify in conn.notifies(timeout=20, stop_after=10):
                got.append(notify.payload)

        async def query_then_notify() -> None:
            await await_until(lambda: conn._notify.iterations == 1, "the iteration to start")
            for i in range(10):
                cur = await conn.execute("select %s::int", (i,))
                assert await cur.fetchone() == (i,)
                answered.append(i)
                await sender.execute("select pg_notify('ch', %s)", (str(i),))

        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            group.start_soon(query_then_notify)
        assert got == [str(i) for i in range(10)]
        assert answered == list(range(10))
    finally:
        await sender.close()
        await conn.close()


@pytest.mark.trio
async def test_trio_nursery_listen_query_notify(dsn: str) -> None:
    async with (
        psycopg3_trio.trio_connect(dsn, autocommit=True) as conn,
        psycopg3_trio.trio_connect(dsn, autocommit=True) as sender,
    ):
        await conn.execute("LISTEN ch")
        got: list[str] = []
        queried: list[int] = []
        # Notification i is sent once query i was answered: queries and
        # notifications interleave by causality, not by pacing.
        answered_send, answered_receive = trio.open_memory_channel[int](math.inf)

        async def listen() -> None:
            async for notify in conn.notifies():
                got.append(notify.payload)
                if len(got) == 5:
                    nursery.cancel_scope.cancel()  # the listener ends the group

        async def query() -> None:
            for i in range(1000):
                cur = await conn.execute("select %s::int", (i,))
                row = await cur.fetchone()
                assert row is not None
                queried.append(row[0])
                answered_send.send_nowait(row[0])

        async def notify() -> None:
            for i in range(5):
                await answered_receive.receive()
                await sender.execute("NOTIFY ch, '" + str(i) + "'")

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                nursery.start_soon(query)
                nursery.start_soon(notify)
        assert got == ["0", "1", "2", "3", "4"]
        assert queried == list(range(len(queried))) and len(queried) >= 5
        assert not conn.broken
        assert await (await conn.execute("select 7")).fetchone() == (7,)


def test_listen_in_a_thread_while_others_query(dsn: str) -> None:
    # Half the notifications are sent only once the queriers are done: they
    # cannot have waited for the listener's end (its timeout, 20 s; the test
    # takes well under 1 s), and nothing sent meanwhile is lost.
    got: list[str] = []
    answered: list[int] = []
    failures: list[BaseException] = []
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN ch")
        ready = threading.Event()

        def listen() -> None:
            try:
                ready.set()
                for notify in conn.notifies(timeout=20, stop_after=10):
                    got.append(notify.payload)
            except BaseException as ex:  # noqa: BLE001 - reported below
                failures.append(ex)

        def query(n: int) -> None:
            try:
                for i in range(30):
                    assert conn.execute("select %s::int", (i,)).fetchone() == (i,)
                    answered.append(i)
            except BaseException as ex:  # noqa: BLE001 - reported below
                failures.append(ex)

        listener = threading.Thread(target=listen)
        listener.start()
        ready.wait()
        queriers = [threading.Thread(target=query, args=(n,)) for n in range(3)]
        for thread in queriers:
            thread.start()
        for i in range(5):
            send(dsn, "ch", str(i))
        for thread in queriers:
            thread.join(30)
            assert not thread.is_alive()
        # A listening thread never holds the lock while it waits: no starvation.
        assert listener.is_alive()
        for i in range(5, 10):
            send(dsn, "ch", str(i))
        listener.join(30)
        assert not listener.is_alive()
    assert failures == []
    assert got == [str(i) for i in range(10)]
    assert len(answered) == 90


def test_listener_does_not_starve_a_query_under_a_flood(dsn: str) -> None:
    # Notifications keep coming: the listening thread is woken again and
    # again; another thread's queries must still get the lock, while the
    # listener still iterates (a starving listener would keep them waiting
    # until its timeout, 30 s: the queries take well under 1 s).
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN ch")
        stop = threading.Event()
        count = [0]

        def flood() -> None:
            with psycopg3_sync.connect(dsn, autocommit=True) as sender:
                while not stop.is_set():
                    sender.execute("select pg_notify('ch', 'x') from generate_series(1, 50)")
                sender.execute("select pg_notify('ch', 'last')")  # wakes the listener

        def listen() -> None:
            for _ in conn.notifies(timeout=30):
                count[0] += 1
                if stop.is_set():
                    return

        flooder, listener = threading.Thread(target=flood), threading.Thread(target=listen)
        for thread in (flooder, listener):
            thread.start()
        try:
            wait_until(lambda: count[0] > 0, "the flood to reach the listener")
            for i in range(20):
                assert conn.execute("select %s::int", (i,)).fetchone() == (i,)
            assert listener.is_alive()
        finally:
            stop.set()
            for thread in (flooder, listener):
                thread.join(10)
        assert not listener.is_alive()
