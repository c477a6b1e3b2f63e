"""Every waiter honours the contract of ``psycopg3.waiting``, on a socketpair.

No server here: the generators are fakes that record what they are sent.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from fix_flavours import ASYNC_FLAVOURS, load_doc_adapter
from psycopg3.waiting import PQGen, Ready, Wait
from psycopg3_asyncio import wait_asyncio
from psycopg3_sync import wait_select
from psycopg3_trio import wait_trio

pytestmark = pytest.mark.anyio


@pytest.fixture
def waiter(flavour: Any) -> Any:
    """An async callable ``await waiter(gen, timeout=None)`` for the flavour."""
    if flavour.name == "sync":

        async def run_sync(gen: PQGen[Any], timeout: float | None = None) -> Any:
            return wait_select(gen, timeout=timeout)

        return run_sync
    if flavour.name == "asyncio":
        return wait_asyncio
    if flavour.name == "trio":
        return wait_trio
    return load_doc_adapter().wait_anyio


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def record(requests: list[tuple[int, Wait]]) -> PQGen[list[Ready]]:
    """Yield each request in turn; return everything sent back."""
    received: list[Ready] = []
    for request in requests:
        received.append((yield request))
    return received


async def test_readable(waiter: Any, pair: Any) -> None:
    a, b = pair
    b.send(b"x")
    assert await waiter(record([(a.fileno(), Wait.R)])) == [Ready.R]


async def test_writable(waiter: Any, pair: Any) -> None:
    a, _ = pair
    assert await waiter(record([(a.fileno(), Wait.W)])) == [Ready.W]


async def test_read_or_write(waiter: Any, pair: Any) -> None:
    a, b = pair
    (ready,) = await waiter(record([(a.fileno(), Wait.RW)]))
    assert ready & Ready.W
    # Fill the socket so it is not writable; make it readable.
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    b.send(b"y")
    (ready,) = await waiter(record([(a.fileno(), Wait.RW)]))
    assert ready == Ready.R


async def test_timeout_sends_none(waiter: Any, pair: Any) -> None:
    a, _ = pair
    start = time.monotonic()
    assert await waiter(record([(a.fileno(), Wait.R)] * 3), timeout=0.05) == [Ready.NONE] * 3
    # Time is the subject: each of the three timeouts was waited out (a lower
    # bound, which load cannot break).
    assert time.monotonic() - start >= 0.14


async def test_sub_millisecond_timeout_is_waited_out(waiter: Any, pair: Any) -> None:
    # A timeout shorter than the poll's millisecond unit must not become
    # "don't wait": a notifies() near its deadline would spin (wait_select
    # rounded 0.4 ms down to 0 and took the lock 35 times in 0.4 ms).
    a, _ = pair
    start = time.monotonic()
    assert await waiter(record([(a.fileno(), Wait.R)] * 10), timeout=0.0004) == [Ready.NONE] * 10
    # Time is the subject: each of the ten timeouts was waited out (a lower
    # bound, which load cannot break).
    assert time.monotonic() - start >= 10 * 0.0004


async def test_uses_what_send_returns(waiter: Any, pair: Any) -> None:
    # The file descriptor changes between requests; each must be honoured.
    a, b = pair
    c, d = socket.socketpair()
    try:
        b.send(b"x")
        requests = [(a.fileno(), Wait.R), (c.fileno(), Wait.W), (a.fileno(), Wait.R)] * 3
        assert await waiter(record(requests)) == [Ready.R, Ready.W, Ready.R] * 3
    finally:
        c.close()
        d.close()


async def test_returns_immediately(waiter: Any) -> None:
    def nothing_to_wait() -> PQGen[int]:
        return 42
        yield  # a generator that never yields

    assert await waiter(nothing_to_wait()) == 42


async def test_generator_error_propagates(waiter: Any, pair: Any) -> None:
    a, b = pair
    b.send(b"x")

    def failing() -> PQGen[None]:
        yield a.fileno(), Wait.R
        raise ValueError("from the generator")

    with pytest.raises(ValueError, match="from the generator"):
        await waiter(failing())


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancel_closes_generator_and_unregisters(
    flavour: Any, waiter: Any, pair: Any
) -> None:
    a, b = pair
    closed = []

    def forever() -> PQGen[None]:
        try:
            while True:
                yield a.fileno(), Wait.R
        finally:
            closed.append(True)

    with anyio.move_on_after(0.1) as scope:
        await waiter(forever())
    assert scope.cancelled_caught
    assert closed == [True]
    # Nothing is left registered: another wait on the same fd works, and
    # is woken normally.
    b.send(b"x")
    assert await waiter(record([(a.fileno(), Wait.R)])) == [Ready.R]
    if flavour.name == "asyncio":
        loop = asyncio.get_running_loop()
        assert loop.remove_reader(a.fileno()) is False
        assert loop.remove_writer(a.fileno()) is False
