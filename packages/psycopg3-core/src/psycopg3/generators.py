"""The non-blocking procedures of the PostgreSQL protocol, written once.

Each function here is a generator of type ``PQGen[T]`` (see ``waiting``): it
drives a ``PGconn`` in non-blocking mode, yields ``(fileno, Wait)`` whenever
libpq would block, and returns its result. A waiter in an adapter package
decides *how* to wait; nothing here knows.

This module is the public face of the generators and holds connecting and
notifications; the other groups live in private modules, by concern, and are
re-exported here: a query's round trip in ``_exec_gen``, COPY in
``_copy_gen``, pipelined ``executemany()`` in ``_pipeline_gen``, the
recovery after an interruption in ``_drain_gen``.

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks (``PQconnectdb``, ``PQexec``, ``PQgetResult`` while
``PQisBusy``, ``PQcancel``); sleep.

Rules every generator here and in those modules follows:

1. Sent ``Ready.NONE`` (the waiter's timeout expired), a generator checks its
   own deadline, if it has one, and otherwise asks again for the same thing.
2. A generator that creates a resource releases it if it does not return it,
   including when it is closed (``GeneratorExit``) by an interrupted waiter.
3. Errors from libpq surface as ``OperationalError``: the ``pq`` layer raises
   them; a result with an error status is returned, not raised — deciding
   what to raise is the caller's policy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from . import errors
from ._cancel import CancelOutcome, cancel
from ._copy_gen import copy_end, copy_get, copy_put
from ._drain_gen import drain
from ._exec_gen import execute, fetch, fetch_many, send
from ._pipeline_gen import PipelineCommand as PipelineCommand
from ._pipeline_gen import end_copy, pipeline_execute_many
from .pq import ConnStatus, PGconn, PGnotify, PollingStatus
from .waiting import PQGen, Ready, Wait

__all__ = [
    "connect",
    "connect_attempts",
    "send",
    "fetch",
    "fetch_many",
    "execute",
    "pipeline_execute_many",
    "end_copy",
    "drain",
    "cancel",
    "CancelOutcome",
    "read_notifies",
    "wait_readable",
    "notifies",
    "copy_put",
    "copy_end",
    "copy_get",
]


class ConnectionTimeout(errors.OperationalError):
    """The connection attempt did not complete within ``connect_timeout``."""


def connect(conninfo: bytes, *, timeout: float | None = None) -> PQGen[PGconn]:
    """Open a connection without blocking.

    Nothing must have happened before. ``timeout`` (seconds, None for no
    limit) bounds the whole attempt: it is checked each time the generator is
    resumed, so the waiter must be given a timeout too (see
    ``BaseConnection._connect_gen``) to resume it when the network is silent.

    :return: the connected ``PGconn``, in non-blocking mode.
    :raises OperationalError: if the connection fails or times out; the
        half-open ``PGconn`` is finished before the error propagates.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pgconn = PGconn.connect_start(conninfo)
    try:
        while True:
            if pgconn.status == ConnStatus.BAD:
                raise _connection_error(pgconn)
            status = pgconn.connect_poll()
            if status == PollingStatus.OK:
                break
            elif status == PollingStatus.READING:
                wait = Wait.R
            elif status == PollingStatus.WRITING:
                wait = Wait.W
            else:
                raise _connection_error(pgconn)
            # libpq may switch socket when it moves on to another host: ask
            # for the socket again at every step (rule of the waiter contract).
            fileno = pgconn.socket
            ready = yield fileno, wait
            while not ready:
                # Polling libpq now would make it act as if the socket were
                # ready: wait again, only checking the deadline.
                if deadline is not None and time.monotonic() >= deadline:
                    raise ConnectionTimeout(f"connection timed out after {timeout:g} seconds")
                ready = yield fileno, wait
        pgconn.nonblocking = True
    except BaseException:
        pgconn.finish()
        raise
    return pgconn


def connect_attempts(conninfos: Sequence[bytes], *, timeout: float | None = None) -> PQGen[PGconn]:
    """Try ``connect()`` on each conninfo in turn; return the first connection made.

    Each attempt has its own ``timeout`` (see ``psycopg3._attempts``). An
    interruption (anything not an ``OperationalError``) stops the attempts:
    no further host is tried.

    :raises OperationalError: if every attempt failed, with each one's reason.
    """
    failures: list[errors.OperationalError] = []
    for conninfo in conninfos:
        try:
            return (yield from connect(conninfo, timeout=timeout))
        except errors.OperationalError as ex:
            failures.append(ex)
    if len(failures) == 1:
        raise failures[0]
    reasons = "; ".join(f"attempt {n}: {ex}" for n, ex in enumerate(failures, 1))
    raise errors.OperationalError(f"every connection attempt failed: {reasons}") from failures[-1]


def _connection_error(pgconn: PGconn) -> errors.OperationalError:
    message = pgconn.error_message.decode("utf-8", "replace").strip()
    return errors.OperationalError(f"connection failed: {message or 'no message from libpq'}")


# -- notifications --


def read_notifies(pgconn: PGconn) -> list[PGnotify]:
    """Read what the server sent, without waiting; return the notifications in it.

    Not a generator: it never waits. No command may be in progress. Used
    alone where the waiting happens elsewhere (the blocking flavour waits
    without the connection's lock, see ``psycopg3_sync``).
    """
    pgconn.consume_input()
    received = []
    while (pgnotify := pgconn.notifies()) is not None:
        received.append(pgnotify)
    return received


def wait_readable(fileno: int) -> PQGen[Ready]:
    """Wait once for ``fileno`` to be readable; return what the waiter sent.

    ``Ready.NONE`` means the waiter's timeout expired first.
    """
    return (yield fileno, Wait.R)


def notifies(pgconn: PGconn) -> PQGen[list[PGnotify]]:
    """Return the notifications received, waiting once for the server if there are none.

    No command may be in progress (LISTEN must have been run). Drive it with
    a waiter timeout: sent ``Ready.NONE``, it returns an empty list, so that
    the caller can check its own deadline and let other users of the
    connection in before waiting again (see ``psycopg3._notify``).
    """
    received = read_notifies(pgconn)
    if not received and (yield from wait_readable(pgconn.socket)):
        received = read_notifies(pgconn)
    return received
