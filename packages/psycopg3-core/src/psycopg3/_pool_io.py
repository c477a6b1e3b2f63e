"""The connection pool's I/O: resetting a returned connection, checking one.

Layer: pool, beside the policy (``psycopg3._pool``). Generators like every
other step of a connection, driven by the flavour's waiter: the procedures
of ``psycopg3._pool_procs`` yield them in a ``Drive`` effect, and
``check_connection`` drives ``health_gen`` under the connection's lock.

Must not: wait, or import a concurrency framework.
"""

from __future__ import annotations

import time
from typing import TypeVar

from . import errors
from ._connection_base import BaseConnection
from .pq import TransactionStatus
from .waiting import PQGen, Ready

__all__ = [
    "RESET_TIMEOUT",
    "CHECK_TIMEOUT",
    "reset_gen",
    "is_clean",
    "lock_held",
    "health_gen",
    "bounded",
]

T = TypeVar("T")

#: Seconds a returned connection may take to cancel, drain and roll back.
RESET_TIMEOUT = 5.0
#: Seconds a health check (``pool.check()``, ``check_connection``) may take.
CHECK_TIMEOUT = 5.0


def reset_gen(conn: BaseConnection) -> PQGen[bool]:
    """Bring a returned connection back to idle; tell if it can be reused.

    A command in progress (a COPY left open, results not read) is cancelled
    and drained; an open or failed transaction is rolled back. A connection
    that is closed, inside a ``transaction()`` or ``pipeline()`` block, or in
    a state these cannot fix, or that does not settle within
    ``RESET_TIMEOUT``, is not reusable (it is closed if the attempt left it
    in an unknown state). Never raises ``Exception``.

    Drive with a waiter timeout (``RECOVER_POLL_INTERVAL``): the deadline is
    checked when the waiter answers ``Ready.NONE``.
    """
    if conn.closed or conn._transaction_blocks or conn._pipeline is not None:
        return False
    if is_clean(conn):
        return True
    try:
        status = conn.pgconn.transaction_status
        if status == TransactionStatus.ACTIVE:
            yield from conn._recover_gen()
            if conn.closed:
                return False
            status = conn.pgconn.transaction_status
        if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            yield from bounded(
                conn._exec_command_gen(b"ROLLBACK"), time.monotonic() + RESET_TIMEOUT
            )
            status = conn.pgconn.transaction_status
        if status != TransactionStatus.IDLE:
            conn._mark_broken()
            return False
        return True
    except Exception:
        conn._mark_broken()
        return False


def is_clean(conn: BaseConnection) -> bool:
    """Tell if a returned connection is idle, open and outside any block.

    Then ``reset_gen()`` has nothing to do: a pool may skip driving it (and,
    in async flavours, shielding it).
    """
    return (
        conn._session_status() == TransactionStatus.IDLE
        and not conn._transaction_blocks
        and conn._pipeline is None
    )


def lock_held(conn: BaseConnection) -> bool:
    """Tell if someone holds a returned connection's lock: then it is still in use."""
    # threading's, asyncio's, trio's and anyio's locks all have locked().
    locked = getattr(getattr(conn, "lock", None), "locked", None)
    return bool(locked()) if locked is not None else False


def health_gen(conn: BaseConnection) -> PQGen[None]:
    """Check that a connection answers: an empty query, within ``CHECK_TIMEOUT``.

    :raises OperationalError: if the connection is closed, fails or does not
        answer in time (then it is marked broken).
    """
    conn._check_usable()
    if conn.pgconn.transaction_status != TransactionStatus.IDLE:
        raise errors.ProgrammingError(
            f"a connection can be checked only when idle, not {conn.pgconn.transaction_status.name}"
        )
    try:
        yield from bounded(conn._exec_command_gen(b""), time.monotonic() + CHECK_TIMEOUT)
    except errors.OperationalError:
        conn._mark_broken()
        raise


def bounded(gen: PQGen[T], deadline: float) -> PQGen[T]:
    """Drive ``gen``, giving up (and closing it) once ``time.monotonic()`` passes ``deadline``.

    :raises OperationalError: at the deadline; what ``gen`` had begun is left
        unfinished, so the caller closes the connection.
    """
    try:
        request = next(gen)
        while True:
            ready = yield request
            if ready == Ready.NONE and time.monotonic() >= deadline:
                gen.close()
                raise errors.OperationalError("the server did not answer in time")
            request = gen.send(ready)
    except StopIteration as ex:
        result: T = ex.value
        return result
