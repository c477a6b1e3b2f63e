"""A test waiter that interrupts a command at its k-th yield, in every flavour.

Every blocking step of psycopg3 is a generator yielding ``(fileno, Wait)``,
driven by the flavour's waiter. `Interrupter.install()` replaces the waiter
that the flavour's connection and pool modules call (``wait_select``,
``wait_asyncio``, ``wait_trio``) with the real waiter driving a counting
wrapper of the generator: the connection's ``_wait`` hook, ``connect()``,
the sync ``notifies()`` wait (which calls its waiter directly, outside
``_wait``) and the pool's ``_drive`` all go through it. Only the yields of
the task or thread that armed the interrupter count: the pool's background
work and the ``admin`` connection do not.

At yield *k* (the generator has asked for its k-th wait) the interrupter
does what a real interruption would do at that waiting point:

* ``interrupt``:
  - sync: raises ``KeyboardInterrupt`` out of the wait, the generator closed
    at its yield, exactly as ``wait_select`` leaves it when Ctrl-C lands in
    ``poll()``;
  - asyncio: cancels the task, whose ``CancelledError`` then comes out of
    the waiter's ``await``;
  - trio: cancels the command's cancel scope, so the waiter's next
    checkpoint raises ``trio.Cancelled``;
  - the anyio adapter of docs/adapters.md, on asyncio and on trio: cancels
    the command's ``anyio.CancelScope``;
* ``close``: closes the connection from another thread (sync) or task
  (asyncio, trio), which runs while the command waits on yield *k*.

The wait itself is then the real one, and so is everything the adapter does
about the interruption (its interruption policy, the core's recovery).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

import psycopg3_asyncio.connection
import psycopg3_asyncio.pool
import psycopg3_asyncio.waiting
import psycopg3_sync.pool
import psycopg3_sync.waiting
import psycopg3_trio.connection
import psycopg3_trio.pool
import psycopg3_trio.waiting
from fix_flavours import load_doc_adapter, load_doc_gevent_adapter

#: The flavours swept, and the module attributes holding each one's waiter
#: (the anyio flavours': ``waiters()``, their module is docs/adapters.md's).
WAITERS = {
    "sync": [
        (psycopg3_sync.waiting, "wait_select"),  # (what THREADS.wait calls)
    ],
    "asyncio": [
        (psycopg3_asyncio.waiting, "wait_asyncio"),  # (what ASYNCIO.wait calls)
    ],
    "trio": [
        (psycopg3_trio.waiting, "wait_trio"),  # (what TRIO.wait calls)
    ],
}


def waiters(flavour: str) -> list[tuple[Any, str]]:
    """The module attributes holding the waiter of ``flavour``."""
    if flavour.startswith("anyio"):
        return [(load_doc_adapter(), "wait_anyio")]
    if flavour == "gevent":  # (docs/adapters.md's too; its pool calls the same global)
        return [(load_doc_gevent_adapter(), "wait_gevent")]
    return WAITERS[flavour]


_HAS_TIMEOUT = hasattr(asyncio, "timeout")  # Python >= 3.11

#: How each flavour is interrupted: its own interruption, the same twice in a
#: row (trio's cancellation is level-triggered: a second one is the first), or
#: a close from another thread or task.
MODES = {
    "sync": ["interrupt", "twice", "close"],
    "asyncio": ["interrupt", "twice", "close"] + (["timeout"] if _HAS_TIMEOUT else []),
    "trio": ["interrupt", "close"],
    "anyio-asyncio": ["interrupt", "close"],
    "anyio-trio": ["interrupt", "close"],
}


def counted(
    gen: Generator[Any, Any, Any], on_yield: Callable[[], None]
) -> Generator[Any, Any, Any]:
    """Yield what ``gen`` yields, calling ``on_yield()`` before each request goes out.

    If ``on_yield`` raises, ``gen`` is closed at the yield it had reached,
    as a waiter closes it when its wait raises.
    """
    try:
        request = next(gen)
        while True:
            on_yield()
            ready = yield request
            request = gen.send(ready)
    except StopIteration as ex:
        return ex.value
    finally:
        gen.close()


def _current_owner(flavour: str) -> object:
    if flavour == "sync":
        return threading.get_ident()
    if flavour in ("asyncio", "anyio-asyncio"):
        return asyncio.current_task()
    return trio.lowlevel.current_task()


class Interrupter:
    """Counts the yields of the armed task or thread; acts once, at yield ``at``.

    :param flavour: ``sync``, ``asyncio`` or ``trio``.
    :param at: the yield to act at (0 is the first); None: only count.
    """

    def __init__(self, flavour: str, at: int | None = None):
        self.flavour = flavour
        self.at = at
        self.count = 0
        self.fired = False
        self._owner: object = None
        self._action: Callable[[], None] | None = None
        #: Count the yields of every task, not only the armed one's: for work
        #: that the command hands to a shielded task of its own (the asyncio
        #: pool's ``_run_shielded``), where the interruption still lands in
        #: the command's task.
        self.any_task = False
        #: Interrupt again at the next yield: a second Ctrl-C or cancellation
        #: landing in whatever runs next (the recovery, a block's exit).
        self.twice = False
        #: Called when the command first waits, before any interruption: to
        #: make what it waits for happen then (a NOTIFY), and only then.
        self.on_first_yield: Callable[[], None] | None = None
        self._busy = False

    def arm(self, action: Callable[[], None] | None = None) -> None:
        """Count from now the yields of the calling task or thread; act with ``action``."""
        self._owner = _current_owner(self.flavour)
        self._action = action

    def disarm(self) -> None:
        self._owner = None

    def on_yield(self) -> None:
        if self._owner is None:
            return
        if not self.any_task and _current_owner(self.flavour) != self._owner:
            return
        if self._busy:
            return  # a yield of what on_first_yield does: not the command's
        index = self.count
        self.count += 1
        if index == 0 and self.on_first_yield is not None:
            self._busy = True
            try:
                self.on_first_yield()
            finally:
                self._busy = False
        if self._action is None or self.at is None:
            return
        if index == self.at or (self.twice and index == self.at + 1):
            self.fired = True
            self._action()

    @contextmanager
    def install(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Put the counting waiter in place of the flavour's, for the block."""
        with monkeypatch.context() as patch:
            for module, name in waiters(self.flavour):
                patch.setattr(module, name, self._wrap(getattr(module, name)))
            yield

    def _wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        if self.flavour == "sync":

            def wait_counted(gen: Any, *, timeout: float | None = None) -> Any:
                return real(counted(gen, self.on_yield), timeout=timeout)

            return wait_counted

        async def await_counted(gen: Any, *, timeout: float | None = None) -> Any:
            return await real(counted(gen, self.on_yield), timeout=timeout)

        return await_counted


def run_sync_coroutine(coro: Awaitable[Any]) -> Any:
    """Run an ``async def`` written against the sync facade: it never really awaits.

    The sync flavour cannot run under an event loop here: a
    ``KeyboardInterrupt`` raised inside a task stops asyncio's loop itself.
    """
    it = coro.__await__()
    try:
        it.send(None)
    except StopIteration as ex:
        return ex.value
    it.close()
    raise AssertionError("a scenario of the sync flavour awaited something real")
