"""The records of a pool's books, and the checks of its parameters.

Layer: drivers (the pool), under ``psycopg3._pool``'s policy, which keeps
the books with these records: a request waiting for a connection
(``PoolWaiter``), what is known of each connection (``Entry``), the
counters of ``stats()``.

Must not: import a concurrency framework, read a clock or do I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from . import errors

__all__ = ["PoolWaiter", "Entry", "COUNTERS", "check_sizes", "check_limits"]

C = TypeVar("C")


class PoolWaiter(Generic[C]):
    """A request queued for a connection.

    The pool gives it a connection (``conn``) or an error (``error``) and
    calls ``wake``, the set method of the framework's event the request
    waits on.
    """

    __slots__ = ("conn", "error", "wake")

    def __init__(self, wake: Callable[[], None]):
        self.conn: C | None = None
        self.error: BaseException | None = None
        self.wake = wake


class Entry:
    """What the policy knows of one connection."""

    __slots__ = ("expires_at", "idle_since")

    def __init__(self, expires_at: float, idle_since: float):
        self.expires_at = expires_at
        self.idle_since = idle_since


#: The counters of ``stats()``, each since the pool opened.
COUNTERS = (
    "requests_num",  # requests for a connection
    "requests_queued",  # requests that had to wait
    "requests_wait_ms",  # total time requests waited
    "requests_errors",  # requests that timed out or were refused
    "returns_bad",  # connections returned closed, broken or not resettable
    "connections_num",  # connects started
    "connections_ms",  # total time successful connects took
    "connections_errors",  # connects that failed
    "connections_lost",  # connections found broken by a check
)


def check_sizes(min_size: int, max_size: int | None) -> tuple[int, int]:
    """Validate a pool's sizes; ``max_size`` None means ``min_size``."""
    if max_size is None:
        max_size = min_size
    if min_size < 0:
        raise errors.ProgrammingError(f"min_size must be 0 or more, got {min_size}")
    if max_size < max(min_size, 1):
        raise errors.ProgrammingError(
            f"max_size must be at least min_size and 1, got min_size={min_size},"
            f" max_size={max_size}"
        )
    return min_size, max_size


def check_limits(
    max_waiting: int, max_lifetime: float, max_idle: float, reconnect_timeout: float
) -> None:
    """Validate a pool's limits: ``max_waiting`` 0 or more, the durations positive."""
    if max_waiting < 0:
        raise errors.ProgrammingError(f"max_waiting must be 0 or more, got {max_waiting}")
    for what, value in (
        ("max_lifetime", max_lifetime),
        ("max_idle", max_idle),
        ("reconnect_timeout", reconnect_timeout),
    ):
        if not value > 0:
            raise errors.ProgrammingError(f"{what} must be a positive number, got {value!r}")
