"""Sending a cancel request without blocking, as a generator like the others.

A cancel request is a separate, short connection to the server. libpq 17
offers it in non-blocking form (``PQcancelStart``/``PQcancelPoll``), which
``cancel()`` drives like any other generator. Older libpqs only have the
blocking ``PQcancel``: ``cancel()`` then runs it in a worker thread and
waits, through the waiter like for anything else, on a pipe that the worker
writes one byte to when it is done. Either way the waiter sees nothing but
``(fileno, Wait)``: the same procedure serves every adapter, and can be
repeated from inside the drain after an interruption (see
``BaseConnection._recover_gen``).

Rules:

1. The worker owns the ``PGcancel`` and the pipe's write end and frees them
   itself: the generator may give up first (deadline, interruption), and
   libpq's ``PQcancel`` cannot be stopped — it returns when TCP gives up.
2. The generator owns the read end and closes it on every way out.
3. Nothing here raises for a request that could not be delivered: the
   generator says so (``CancelOutcome``), logs why, and the caller decides.
4. A request that got its answer in time returns once the worker closed its
   end of the pipe (end of file after the outcome byte): ``cancel()`` leaves
   no file descriptor of its own open behind it, so a caller counting fds
   sees them back at once.
5. The worker must be a real OS thread: ``PQcancel`` blocks in C, and a
   green thread would freeze its whole hub meanwhile. ``start_os_thread``
   is the default; a framework that patches ``threading`` (gevent,
   eventlet) passes its own ``start_worker`` (a ``WorkerStarter``) that
   reaches the unpatched threads.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable

from . import errors
from .pq import PGcancel, PGcancelConn, PGconn, PollingStatus
from .pq import version as libpq_version
from .waiting import PQGen, Wait

__all__ = ["cancel", "CancelOutcome", "NONBLOCKING_CANCEL", "WorkerStarter", "start_os_thread"]

logger = logging.getLogger("psycopg3")

#: Whether the loaded libpq sends cancel requests without blocking (17+).
NONBLOCKING_CANCEL = libpq_version() >= 170000

_DONE, _FAILED = b"1", b"0"

#: Runs a function, which blocks, in a new OS thread and returns at once.
WorkerStarter = Callable[[Callable[[], None]], None]


def start_os_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a new daemon thread of ``threading``: the default ``WorkerStarter``."""
    threading.Thread(target=work, name="psycopg3-cancel", daemon=True).start()


class CancelOutcome(enum.Enum):
    """How a cancel request ended."""

    #: The server took the request (the command may have finished before it).
    DELIVERED = "delivered"
    #: The request could not be sent (refused, reset…): it will never arrive.
    FAILED = "failed"
    #: No answer by the deadline: the request may still arrive later, and
    #: cancel whatever runs then.
    TIMED_OUT = "timed out"


def cancel(
    pgconn: PGconn, *, deadline: float, start_worker: WorkerStarter = start_os_thread
) -> PQGen[CancelOutcome]:
    """Ask the server to cancel the command in progress on ``pgconn``.

    Drive it with a waiter timeout, so that ``deadline`` is checked while
    the server is silent.

    :param deadline: a ``time.monotonic()`` value after which to stop waiting.
    :param start_worker: how the blocking request of a libpq < 17 gets its
        OS thread (rule 5); unused with libpq 17 and later.
    :return: what became of the request; failures are logged.
    """
    try:
        if NONBLOCKING_CANCEL:
            request = _cancel_nonblocking(pgconn.cancel_conn(), deadline)
        else:
            request = _cancel_in_thread(pgconn.get_cancel(), deadline, start_worker)
    except errors.OperationalError as ex:
        # Closed by another thread or task since the caller checked: there
        # is nothing left to cancel, and nothing to raise (rule 3).
        logger.warning("the cancel request failed: %s", ex)
        return CancelOutcome.FAILED
    return (yield from request)


def _cancel_nonblocking(request: PGcancelConn, deadline: float) -> PQGen[CancelOutcome]:
    try:
        request.start()
        while True:
            status = request.poll()
            if status == PollingStatus.OK:
                return CancelOutcome.DELIVERED
            if status == PollingStatus.FAILED:
                logger.warning("the cancel request failed: %s", request.error_message)
                return CancelOutcome.FAILED
            wait = Wait.R if status == PollingStatus.READING else Wait.W
            ready = yield request.socket, wait
            if not ready and time.monotonic() >= deadline:
                logger.warning("the cancel request got no answer in time")
                return CancelOutcome.TIMED_OUT
    except errors.OperationalError as ex:
        logger.warning("the cancel request failed: %s", ex)
        return CancelOutcome.FAILED
    finally:
        request.finish()


def _cancel_in_thread(
    handle: PGcancel, deadline: float, start_worker: WorkerStarter
) -> PQGen[CancelOutcome]:
    read_end, write_end = os.pipe()
    try:
        start_worker(lambda: _send_and_signal(handle, write_end))
    except BaseException:
        os.close(write_end)
        os.close(read_end)
        handle.free()
        raise
    outcome = b""
    try:
        while True:
            ready = yield read_end, Wait.R
            if ready:
                byte = os.read(read_end, 1)
                if byte:
                    outcome = byte
                    continue  # (rule 4) the worker closes its end next
                return CancelOutcome.DELIVERED if outcome == _DONE else CancelOutcome.FAILED
            if time.monotonic() >= deadline:
                if outcome:
                    return CancelOutcome.DELIVERED if outcome == _DONE else CancelOutcome.FAILED
                logger.warning("the cancel request got no answer in time")
                return CancelOutcome.TIMED_OUT
    finally:
        os.close(read_end)


def _send_and_signal(handle: PGcancel, write_end: int) -> None:
    outcome = _FAILED
    try:
        handle.cancel()
        outcome = _DONE
    except errors.OperationalError as ex:
        logger.warning("the cancel request failed: %s", ex)
    finally:
        handle.free()
        try:
            os.write(write_end, outcome)
        except OSError:
            pass  # the waiting side gave up and closed its end: nobody to tell
        finally:
            os.close(write_end)
