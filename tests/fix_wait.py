"""Waiting for a condition instead of for time.

A test that needs something to have happened (a backend to be waiting on a
lock, a connection to be back in a pool) asks for it with ``wait_until`` or
``await_until``: the condition is checked again and again until it holds. The
deadline is not a claim about speed: it only turns a condition that never
comes into a clear failure instead of a hang, so it is generous (a minute by
default) and a loaded machine does not change the outcome.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

import anyio

#: How long a condition may take before the test fails: far beyond any
#: expected latency, well within pytest-timeout's 60 s per test.
DEADLINE = 50.0
#: The pause between two checks: short, so that the test goes on soon after
#: the condition holds.
INTERVAL = 0.005


def wait_until(predicate: Callable[[], object], what: str, *, deadline: float = DEADLINE) -> None:
    """Return as soon as ``predicate()`` is true; fail naming ``what`` after ``deadline`` s."""
    until = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > until:
            raise AssertionError(f"still waiting after {deadline:.0f} s for {what}")
        # Polling is the only way to see a state the server does not announce.
        time.sleep(INTERVAL)


async def await_until(
    predicate: Callable[[], object | Awaitable[object]],
    what: str,
    *,
    deadline: float = DEADLINE,
) -> None:
    """``wait_until`` for trio and asyncio alike; ``predicate`` may be a coroutine function."""
    until = time.monotonic() + deadline
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > until:
            raise AssertionError(f"still waiting after {deadline:.0f} s for {what}")
        # Polling is the only way to see a state the server does not announce.
        await anyio.sleep(INTERVAL)
