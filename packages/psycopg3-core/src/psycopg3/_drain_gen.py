"""The generator that discards what an interrupted command still has to produce.

Run after an interruption to bring a connection back to idle (see ``drain``).
Every generator here follows the numbered rules of ``generators``' docstring
(what ``Ready.NONE`` means, releasing what it creates, errors returned not
raised).

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks (the cancel request is the caller's, through
``on_silence``); sleep; import ``generators`` (which re-exports ``drain``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import errors
from .pq import ExecStatus, PGconn, PipelineStatus
from .waiting import PQGen, Ready, Wait

__all__ = ["drain"]


def drain(
    pgconn: PGconn,
    *,
    deadline: float,
    on_silence: Callable[[], PQGen[None]] | None = None,
    silence: float = 0.5,
) -> PQGen[None]:
    """Discard everything the command in progress still has to produce.

    Used after an interruption (a cancel request should have been sent, so
    the server stops soon). Whatever was being written is finished, results
    are read and dropped, a COPY is ended, a pipeline is synced and left,
    until libpq is idle again.

    :param deadline: a ``time.monotonic()`` value; past it the drain gives up.
    :param on_silence: run (``yield from``) when the server has sent nothing
        for ``silence`` seconds, then again after twice as long, and so on:
        the caller repeats its cancel request there, in case the first one
        reached the server before the command did (the server ignores a
        cancel request while it waits for a command). Drive the drain with a
        waiter timeout shorter than ``silence`` for it to run on time.
    :raises OperationalError: if the deadline passes or the connection fails.
        The connection is then in an unknown state: the caller must close it.
    """
    pipelined = pgconn.pipeline_status != PipelineStatus.OFF
    if pipelined:
        # A sync of our own ends whatever the pipeline holds; without one the
        # server would wait for the rest of it forever.
        pgconn.pipeline_sync()
    yield from _flush_until_deadline(pgconn, deadline)

    next_silence_call = time.monotonic() + silence
    while True:
        while pgconn.is_busy():
            ready = yield pgconn.socket, Wait.R
            now = time.monotonic()
            if now >= deadline:
                raise errors.OperationalError("the connection could not be drained in time")
            if ready:
                pgconn.consume_input()
                next_silence_call = now + silence
            elif on_silence is not None and now >= next_silence_call:
                yield from on_silence()
                silence *= 2
                next_silence_call = time.monotonic() + silence
        result = pgconn.get_result()
        if result is None:
            if not pipelined:
                # Outside pipeline mode the first NULL result ends the command.
                return
            _check_deadline(deadline)
            continue
        status = result.status
        result.clear()
        if status == ExecStatus.PIPELINE_SYNC:
            try:
                pgconn.exit_pipeline_mode()
            except errors.OperationalError:
                continue  # more of the pipeline to read: the sync was not ours
            return
        if status == ExecStatus.COPY_IN:
            pgconn.put_copy_end(b"interrupted by the client")
            yield from _flush_until_deadline(pgconn, deadline)
        elif status in (ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH):
            while True:
                nbytes, _ = pgconn.get_copy_data(1)
                if nbytes == 0:
                    ready = yield pgconn.socket, Wait.R
                    _check_deadline(deadline)
                    if ready:
                        pgconn.consume_input()
                elif nbytes < 0:
                    break


def _check_deadline(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise errors.OperationalError("the connection could not be drained in time")


def _flush_until_deadline(pgconn: PGconn, deadline: float) -> PQGen[None]:
    while pgconn.flush() != 0:
        ready = yield pgconn.socket, Wait.RW
        _check_deadline(deadline)
        if ready & Ready.R:
            pgconn.consume_input()
