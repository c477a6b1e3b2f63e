"""The generators that move COPY data: ``copy_put``, ``copy_end``, ``copy_get``.

Used by ``_copy``, which holds a COPY block's state. Every generator here
follows the numbered rules of ``generators``' docstring (what ``Ready.NONE``
means, releasing what it creates, errors returned not raised).

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks; sleep; import ``generators`` (which re-exports
this module's names); format or parse rows.
"""

from __future__ import annotations

from ._exec_gen import execute, send
from .pq import PGconn, PGresult
from .waiting import PQGen, Wait

__all__ = ["copy_put", "copy_end", "copy_get"]


def copy_put(pgconn: PGconn, data: bytes | bytearray | memoryview) -> PQGen[None]:
    """Queue a block of COPY FROM STDIN data and flush it to the server.

    A COPY_IN result must have been read. When libpq's output buffer is full
    the block waits until the socket takes more (the memory stays bounded
    however much is written); meanwhile the input is consumed, as in ``send``.
    """
    while not pgconn.put_copy_data(data):
        yield from send(pgconn)
    yield from send(pgconn)


def copy_end(pgconn: PGconn, error: bytes | None) -> PQGen[list[PGresult]]:
    """End a COPY FROM STDIN and return the results of the command.

    :param error: None to commit the data sent, or a message making the
        server abort the COPY (its result is then a ``QueryCanceled`` error).
    """
    while not pgconn.put_copy_end(error):
        yield from send(pgconn)
    return (yield from execute(pgconn))


def copy_get(pgconn: PGconn, max_size: int) -> PQGen[tuple[bytes, bool]]:
    """Return the COPY TO STDOUT data available now, waiting for some if none is.

    A COPY_OUT result must have been read. Every complete message already
    received is taken, up to about ``max_size`` bytes, so a fast stream costs
    one call per block rather than one per row.

    :return: the data (whole rows in text format) and whether the server
        sent its last one; the command's results are then read with
        ``fetch_many``.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            chunks.append(data)
            size += nbytes
            if size >= max_size:
                return b"".join(chunks), False
        elif nbytes < 0:
            return b"".join(chunks), True
        elif chunks:
            return b"".join(chunks), False
        else:
            ready = yield pgconn.socket, Wait.R
            if ready:
                pgconn.consume_input()
