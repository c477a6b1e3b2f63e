"""The protocol between psycopg3's generators and the waiters that drive them.

Must not: import any concurrency framework or ``select``/``selectors``, or
wait for anything itself. A waiter lives in an adapter package.

The contract, for adapter authors (``docs/adapters.md`` has a worked example):

1. A ``PQGen[T]`` is a generator. Start it with ``next(gen)``: it yields a
   request ``(fileno, Wait)`` when it cannot go on until the socket ``fileno``
   is readable (``Wait.R``), writable (``Wait.W``) or either (``Wait.RW``).
2. Wait until the file descriptor is ready as requested, then send back what
   happened: ``req = gen.send(Ready.R | ...)``. Always use the *new* request
   that ``send()`` returns: the file descriptor may change between requests
   (``connect`` may try several hosts).
3. A waiter given a timeout sends ``Ready.NONE`` when it expires; the
   generator decides what that means (``connect`` gives up at its deadline,
   others just ask again). Deadlines that belong to the protocol are checked
   inside the generators, so every waiter behaves the same.
4. When the generator returns, ``StopIteration.value`` is the result. An
   exception raised by the generator is the waiter's caller's to handle: the
   waiter propagates it unchanged.
5. The waiter never swallows its framework's cancellation (KeyboardInterrupt,
   asyncio's CancelledError, trio's Cancelled). It lets it propagate so that
   the connection can run the core's cancel-and-drain procedure.
6. A waiter keeps no state between calls: one function serves every task.
"""

from __future__ import annotations

from collections.abc import Generator
from enum import IntFlag
from typing import Protocol, TypeVar

__all__ = ["Wait", "Ready", "PQGen", "Waiter", "AsyncWaiter"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Wait(IntFlag):
    """What a generator waits for. Valued like ``selectors.EVENT_READ/WRITE``."""

    R = 1
    W = 2
    RW = R | W


class Ready(IntFlag):
    """What a waiter found ready; ``NONE`` means its timeout expired first."""

    NONE = 0
    R = 1
    W = 2
    RW = R | W


PQGen = Generator[tuple[int, Wait], Ready, T]
"""A generator that yields ``(fileno, Wait)``, is sent ``Ready`` and returns T."""


class Waiter(Protocol):
    """A blocking waiter: drives a generator to its end, returns its result."""

    def __call__(self, gen: PQGen[T], *, timeout: float | None = None) -> T: ...


class AsyncWaiter(Protocol):
    """An async waiter: the same contract, awaited in a framework's task."""

    async def __call__(self, gen: PQGen[T], *, timeout: float | None = None) -> T: ...
