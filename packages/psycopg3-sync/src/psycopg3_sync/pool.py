"""``ConnectionPool``: the core's ``BlockingPoolBase`` on threads.

What threads provide here: ``time.monotonic()``, ``threading.Event`` s (a
request that finds no idle connection waits on one of its own; maintenance
sleeps on the one a kick sets), a ``threading.Lock`` guarding the books, and
daemon threads named after the pool (maintenance, and one short-lived thread
per connect), which ``close()`` joins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from psycopg3.abc import BlockingPoolBase
from psycopg3.rows import ConnectionRow

from .connection import Connection

__all__ = ["ConnectionPool", "open_pool"]


class ConnectionPool(BlockingPoolBase[Connection[ConnectionRow], threading.Event, ConnectionRow]):
    """A pool of ``Connection`` s shared by the threads of a program.

    ``with pool.connection() as conn:`` borrows one; ``with pool:`` (or
    ``open()``/``close()``) bounds the pool's life and its threads'. The
    parameters are ``PoolProcedures``'; ``reconnect_failed`` is called from
    a connector thread.
    """

    connection_class = Connection
    open_hint = "call open() or use `with pool:`"
    _threads: tuple[threading.Thread, ...] = ()

    def now(self) -> float:
        return time.monotonic()

    def new_event(self) -> threading.Event:
        return threading.Event()

    def wait_event(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)

    def spawn(self, task: Callable[[], None], name: str) -> None:
        # Called by one thread at a time (the opener, then maintenance): the
        # tuple is replaced, never changed, so close() reads a whole one.
        # Ended threads are pruned here, not by themselves: close() joins
        # every thread that may still be running.
        thread = threading.Thread(target=task, name=name, daemon=True)
        self._threads = (*(each for each in self._threads if each.is_alive()), thread)
        thread.start()

    def stop_background(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        joined: set[threading.Thread] = {threading.current_thread()}
        while True:
            # Again until none is left: maintenance may start connectors
            # until it sees the pool closed.
            threads = [each for each in self._threads if each not in joined]
            if not threads:
                return
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
                joined.add(thread)


#: ``with open_pool(dsn, min_size=4) as pool:``, as in the async flavours: the
#: same as ``ConnectionPool(...)``.
open_pool = ConnectionPool
