"""A listener waits on the socket without the connection's lock, in the async flavours.

What ``psycopg3._notify`` promises (rules 6-9): a query on a listening
connection starts at once; an idle listener does not wake; ``close()`` from
another task wakes it; notifications read by another task's query reach it;
it never spins while another command's results are pending.

The listener's waits are watched through the connection's ``_wait_plain``
(the framework's waiter alone, which it waits with) and its lock's acquisitions
through a counting stand-in for ``lock.operation``: the assertions count
what happened, they do not time it. The blocking flavours wait the same
way (``BlockingConnectionBase``): see ``test_notify_lockless_blocking.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import anyio
import pytest

import psycopg3
from fix_flavours import ASYNC_FLAVOURS
from fix_wait import await_until
from notifying import BUSY_QUERY, fd_is_open, notify_while_busy
from psycopg3.waiting import PQGen, Ready, Wait

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True),
]


class CountingLock:
    """Stands in for ``lock.operation``: who asked for it, and whether it was held then."""

    def __init__(self, lock: Any):
        self._lock = lock
        #: (task id, held by another when asked), one per acquisition.
        self.asked: list[tuple[int, bool]] = []

    async def acquire(self) -> Any:
        self.asked.append((anyio.get_current_task().id, self._lock.locked()))
        return await self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    def by(self, task: int) -> list[bool]:
        """Whether the lock was held, at each acquisition by ``task``."""
        return [held for asker, held in self.asked if asker == task]


class Watch:
    """The waits of a listening connection: made with its ``_wait_plain``, on which fd."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.started = 0
        self.ended = 0
        #: The fd of each wait, and whether it was still open once the wait ended.
        self.fds: list[int] = []
        self.open_at_end: list[bool] = []
        self.lock = CountingLock(conn.lock.operation)
        conn.lock.operation = self.lock
        waiter = conn._wait_plain

        async def watching_waiter(gen: PQGen[Any], *, timeout: float | None = None) -> Any:
            self.started += 1
            try:
                return await waiter(self._seen(gen), timeout=timeout)
            finally:
                self.ended += 1
                self.open_at_end.append(fd_is_open(self.fds[-1]))

        conn._wait_plain = watching_waiter

    def _seen(self, gen: PQGen[Any]) -> Generator[tuple[int, Wait], Ready, Any]:
        try:
            request = next(gen)
            while True:
                self.fds.append(request[0])
                request = gen.send((yield request))
        except StopIteration as ex:
            return ex.value
        finally:
            gen.close()

    def waiting(self) -> bool:
        """Whether the listener is inside a wait now (and so not holding the lock)."""
        return self.started == self.ended + 1


async def listening(connect: Any) -> Any:
    conn = await connect(autocommit=True)
    await conn.execute("LISTEN ch")
    return conn


async def test_query_starts_at_once_while_listening(connect: Any) -> None:
    conn = await listening(connect)
    watch = Watch(conn)
    got: list[str] = []

    async def listen() -> None:
        async for notify in conn.notifies():
            got.append(notify.payload)

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        await await_until(watch.waiting, "the listener to wait")
        # It waits on a duplicate of the socket: a command's own wait on the
        # socket's number never meets its registration.
        assert watch.fds[0] != conn.pgconn.socket
        me = anyio.get_current_task().id
        cur = await conn.execute("select 1")
        assert await cur.fetchone() == (1,)
        # The query found the lock free: it did not wait for the listener.
        assert watch.lock.by(me)[0] is False
        assert got == [] and conn._notify.iterations == 1
        group.cancel_scope.cancel()
    assert watch.waiting() is False
    assert await (await conn.execute("select 2")).fetchone() == (2,)


async def test_idle_listener_does_not_wake(connect: Any) -> None:
    conn = await listening(connect)
    watch = Watch(conn)
    # Time is the subject: an idle second, in which a listener waking in
    # 50 ms slices took the lock 20 times. Here it reads once, then waits
    # once until the deadline.
    got = [notify async for notify in conn.notifies(timeout=1.0)]
    assert got == []
    assert watch.started <= 2, watch.started
    assert len(watch.lock.asked) <= 2, watch.lock.asked


async def test_close_wakes_the_waiting_listener(connect: Any) -> None:
    conn = await listening(connect)
    watch = Watch(conn)
    errors: list[BaseException] = []

    async def listen() -> None:
        try:
            async for _ in conn.notifies():
                pytest.fail("nothing was sent")
        except psycopg3.OperationalError as ex:
            errors.append(ex)

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        await await_until(watch.waiting, "the listener to wait")
        await conn.close()
    assert len(errors) == 1 and "closed while waiting" in str(errors[0])
    assert watch.started == watch.ended == 1
    # The fd waited on was still open when the wait ended: no other file
    # could have taken its number while the wait was registered on it...
    assert watch.open_at_end == [True]
    # ...and it was closed after, with the connection.
    assert conn._notify._watch_fd == -1


async def test_notify_read_by_another_tasks_query_reaches_the_listener(
    connect: Any, admin: Any
) -> None:
    conn = await listening(connect)
    watch = Watch(conn)
    got: list[str] = []

    async def listen() -> None:
        async for notify in conn.notifies(stop_after=1):
            got.append(notify.payload)

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        await await_until(watch.waiting, "the listener to wait")
        sender = notify_while_busy(admin, conn.pgconn.backend_pid, "during the query")
        # The notification arrives while this query runs: it is read with
        # the query's results, by this task, and queued for the listener.
        await conn.execute(BUSY_QUERY)
        sender.join()
        await await_until(lambda: got == ["during the query"], "the listener to yield it")


async def test_what_another_command_queued_is_yielded_before_waiting(connect: Any) -> None:
    # The listener, woken by another command's results, waited for the lock
    # while that command read a notification and queued it: holding the lock
    # now, it finds it queued, and does not go back to waiting on the socket.
    conn = await listening(connect)
    iteration = conn._start_notifies(None, None)
    try:
        async with conn.lock:
            conn._notify.queue.append(psycopg3.Notify("ch", "queued meanwhile", 1))
            assert iteration.start_wait(conn) is None
        assert iteration.pop() == psycopg3.Notify("ch", "queued meanwhile", 1)
        assert not conn._notify.waiting
    finally:
        iteration.close()


async def test_listener_does_not_spin_while_a_command_holds_pending_results(
    connect: Any,
) -> None:
    conn = await listening(connect)
    watch = Watch(conn)

    async def listen() -> None:
        async for _ in conn.notifies():
            pytest.fail("nothing was sent")

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        await await_until(watch.waiting, "the listener to wait")
        cur = conn.cursor()
        statement = "copy (select generate_series(1, 200000)) to stdout"
        async with cur.copy(statement) as copy:
            # The block holds the lock, and the rows wait in the socket,
            # readable: the listener wakes, then waits for the lock.
            await await_until(lambda: watch.ended == 1, "the listener to wake")
            # Time is the subject: a listener that went back to waiting on a
            # readable socket would start thousands of waits in this while.
            await anyio.sleep(0.2)
            assert watch.started == 1, watch.started
            received = 0
            async for data in copy:
                received += len(data)
        assert received > 1_000_000  # ("1\n" to "200000\n")
        # Once the block is over the listener reads, and waits again.
        await await_until(watch.waiting, "the listener to wait again")
        assert watch.started == 2, watch.started
        group.cancel_scope.cancel()
