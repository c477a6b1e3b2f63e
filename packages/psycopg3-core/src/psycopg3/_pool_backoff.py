"""The pool's back-off after failed connects: rule 5 of ``psycopg3._pool``.

Layer: pool policy (``PoolPolicy`` holds one ``Backoff``). After a failed
connect, the next one waits ``RECONNECT_INITIAL_DELAY``, then twice as long
each time, with +/- ``RECONNECT_JITTER``, at most ``RECONNECT_MAX_DELAY``;
failing for ``reconnect_timeout`` is reported once, and attempts go on at
the longest delay.

Must not: read a clock (callers pass ``now``) or draw random numbers of its
own (the policy passes its generator's ``random``, which tests pin).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Backoff", "RECONNECT_INITIAL_DELAY", "RECONNECT_MAX_DELAY", "RECONNECT_JITTER"]

#: Seconds before the first retry after a failed connect (rule 5).
RECONNECT_INITIAL_DELAY = 0.1
#: The longest wait between two connect attempts, in seconds.
RECONNECT_MAX_DELAY = 10.0
#: Each delay is multiplied by a random factor within 1 +/- this.
RECONNECT_JITTER = 0.1


class Backoff:
    """When connects may start again while the server refuses them.

    :param reconnect_timeout: seconds of failed connects after which
        ``failed()`` returns True.
    """

    __slots__ = ("reconnect_timeout", "failing_since", "retry_at", "_delay")

    def __init__(self, reconnect_timeout: float):
        self.reconnect_timeout = reconnect_timeout
        #: When the connects began to fail (None: the last one succeeded).
        self.failing_since: float | None = None
        #: When the next connect may start (None: now).
        self.retry_at: float | None = None
        self._delay = 0.0

    def may_start(self, now: float) -> bool:
        """Tell if connects may start at ``now``; once they may, a new round begins."""
        if self.retry_at is not None and now < self.retry_at:
            return False
        self.retry_at = None
        return True

    def succeeded(self) -> None:
        """A connect succeeded: the next failure starts over from the shortest delay."""
        self.failing_since = self.retry_at = None
        self._delay = 0.0

    def failed(self, now: float, random: Callable[[], float]) -> bool:
        """Schedule the next connect after a failed one.

        :param random: a number in [0, 1) for the jitter, drawn only when a
            connect is scheduled.
        :return: True once per ``reconnect_timeout`` of failures.
        """
        if self.failing_since is None:
            self.failing_since = now
            self._delay = RECONNECT_INITIAL_DELAY
        elif self.retry_at is not None:
            # Connects started together (filling to min_size) fail together:
            # one failed round, one step of the back-off, or a pool of 20
            # losing its server would wait the longest delay at once.
            return False
        else:
            self._delay = min(self._delay * 2.0, RECONNECT_MAX_DELAY)
        gave_up = now - self.failing_since >= self.reconnect_timeout
        if gave_up:
            # Decided before the next attempt is scheduled: rule 5's longest
            # delay starts with that attempt, not with the one after it.
            self.failing_since = now
            self._delay = RECONNECT_MAX_DELAY
        jitter = 1.0 + RECONNECT_JITTER * (2.0 * random() - 1.0)
        self.retry_at = now + self._delay * jitter
        return gave_up
