"""The generators of a query's round trip: flush what was sent, read its results.

The hot path of every query (``generators.execute``). Every generator here
follows the numbered rules of ``generators``' docstring (what ``Ready.NONE``
means, releasing what it creates, errors returned not raised).

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks; sleep; import ``generators`` (which re-exports
this module's names: the other generator modules build on this one).
"""

from __future__ import annotations

from . import errors
from .pq import ExecStatus, PGconn, PGresult
from .waiting import PQGen, Ready, Wait

__all__ = ["send", "fetch", "fetch_many", "execute"]

#: The statuses of a result that starts a COPY: libpq returns it until the
#: COPY is ended, so reading results must stop there.
COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


def send(pgconn: PGconn) -> PQGen[None]:
    """Flush what a ``send_*`` call queued, until libpq's buffer is empty.

    A ``send_*`` call must have queued a command. While the output is
    blocked, the input is consumed too: a server that fills our socket with
    results (or notices) while we write would otherwise deadlock us.
    """
    while True:
        if pgconn.flush() == 0:
            return
        ready = yield pgconn.socket, Wait.RW
        if ready & Ready.R:
            pgconn.consume_input()


def fetch(pgconn: PGconn) -> PQGen[PGresult | None]:
    """Return the next result of the command in progress, None when done.

    The command must have been sent (see ``send``).
    """
    if pgconn.is_busy():
        fileno = pgconn.socket
        while True:
            ready = yield fileno, Wait.R
            if ready:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
    return pgconn.get_result()


def fetch_many(pgconn: PGconn) -> PQGen[list[PGresult]]:
    """Return every result of the command in progress.

    The command must have been sent. Reading stops after the last result or
    at a COPY result: the COPY must then be handled by the caller.
    """
    # The loop of fetch(), inlined: this runs for every query.
    is_busy = pgconn.is_busy
    get_result = pgconn.get_result
    results: list[PGresult] = []
    while True:
        if is_busy():
            fileno = pgconn.socket
            while True:
                ready = yield fileno, Wait.R
                if ready:
                    try:
                        pgconn.consume_input()
                    except errors.OperationalError:
                        if has_fatal(results):
                            # The server said why it closed the connection
                            # (terminated, timed out…): that error, with its
                            # SQLSTATE, is the one to report, not the EOF after.
                            return results
                        raise
                    if not is_busy():
                        break
        result = get_result()
        if result is None:
            return results
        results.append(result)
        if result.status in COPY_STATUSES:
            return results


def has_fatal(results: list[PGresult]) -> bool:
    return any(result.status == ExecStatus.FATAL_ERROR for result in results)


def execute(pgconn: PGconn) -> PQGen[list[PGresult]]:
    """Send the command queued by a ``send_*`` call and return all its results."""
    if pgconn.flush():
        yield from send(pgconn)
    return (yield from fetch_many(pgconn))
