"""The non-blocking procedures of the PostgreSQL protocol, written once.

Each function here is a generator of type ``PQGen[T]`` (see ``waiting``): it
drives a ``PGconn`` in non-blocking mode, yields ``(fileno, Wait)`` whenever
libpq would block, and returns its result. A waiter in an adapter package
decides *how* to wait; nothing here knows.

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks (``PQconnectdb``, ``PQexec``, ``PQgetResult`` while
``PQisBusy``, ``PQcancel``); sleep.

Rules every generator here follows:

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
from collections.abc import Callable, Sequence

from . import errors
from ._cancel import CancelOutcome, cancel
from .pq import ConnStatus, ExecStatus, PGconn, PGnotify, PGresult, PipelineStatus, PollingStatus
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

_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


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
                        if _has_fatal(results):
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
        if result.status in _COPY_STATUSES:
            return results


def _has_fatal(results: list[PGresult]) -> bool:
    return any(result.status == ExecStatus.FATAL_ERROR for result in results)


def execute(pgconn: PGconn) -> PQGen[list[PGresult]]:
    """Send the command queued by a ``send_*`` call and return all its results."""
    if pgconn.flush():
        yield from send(pgconn)
    return (yield from fetch_many(pgconn))


#: A command for ``pipeline_execute_many``: query (or the name of a prepared
#: statement), parameters, their type OIDs and formats, and the result format.
PipelineCommand = tuple[bytes, Sequence[bytes | None], Sequence[int], Sequence[int], int]


def pipeline_execute_many(
    pgconn: PGconn,
    commands: Sequence[PipelineCommand],
    *,
    prepared: bytes | None = None,
    batch_size: int = 100,
) -> PQGen[list[list[PGresult]]]:
    """Run ``commands`` in one pipeline: send them in batches, reading as results come.

    The connection must be idle, out of pipeline mode (libpq >= 14). Commands
    are queued ``batch_size`` at a time; after each batch libpq's buffer is
    flushed, the server is asked to send what it has, and the results
    already received are taken: the server never stalls on a full socket
    while we write, and its work overlaps ours. One sync ends the pipeline:
    if no transaction is open, the commands form a single implicit
    transaction (an error rolls them all back). The connection leaves
    pipeline mode before this returns.

    :param prepared: the name of a prepared statement: commands whose query
        is ``prepared`` (the same bytes object) execute it by name.
    :return: the results of each command, in order. After a failed command
        the following ones each have one ``PIPELINE_ABORTED`` result. An
        error reported at the sync (the implicit transaction's commit
        failed) is added to the last command's results.
    """
    results: list[list[PGresult]] = [[] for _ in commands]
    sent = 0  # commands queued in libpq
    done = 0  # commands whose results are all in

    # Rules of libpq's pipeline mode that the accounting below rests on:
    # while a command sent has results to come, a NULL from get_result() ends
    # exactly one command's results (after an error, each skipped command
    # brings one PIPELINE_ABORTED result, then its NULL); a PIPELINE_SYNC
    # result is not followed by a NULL. With every command sent answered,
    # libpq is idle and get_result() returns NULL for nothing: never count
    # those, or the real results of the commands sent next are lost.

    def take_ready() -> PQGen[None]:
        nonlocal done
        while done < sent and not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                done += 1
            else:
                results[done].append(result)
                if result.status in _COPY_STATUSES:
                    yield from end_copy(pgconn, result.status)

    pgconn.enter_pipeline_mode()
    for start in range(0, len(commands), batch_size):
        for query, params, types, formats, result_format in commands[start : start + batch_size]:
            if query is prepared:
                pgconn.send_query_prepared(query, params, formats, result_format)
            else:
                pgconn.send_query_params(query, params, types, formats, result_format)
            sent += 1
        pgconn.send_flush_request()
        yield from send(pgconn)
        pgconn.consume_input()
        yield from take_ready()
    pgconn.pipeline_sync()
    yield from send(pgconn)
    while done < sent:
        result = yield from fetch(pgconn)
        if result is None:
            done += 1
        else:
            results[done].append(result)
            if result.status in _COPY_STATUSES:
                yield from end_copy(pgconn, result.status)
    after_error = False
    while True:
        result = yield from fetch(pgconn)
        if result is None:
            if after_error:
                after_error = False  # (the NULL that ends an error's results)
                continue
            # libpq idle before the sync's result: the connection is lost.
            if any(_has_fatal(command_results) for command_results in results):
                return results  # the caller raises the server's reason
            raise _connection_error_in("the pipeline of executemany()", pgconn)
        status = result.status
        if status == ExecStatus.PIPELINE_SYNC:
            break
        if status not in (ExecStatus.FATAL_ERROR, ExecStatus.BAD_RESPONSE):
            # Nothing but the sync is due: a result here means lost synchronisation.
            raise errors.InternalError(
                f"unexpected {ExecStatus(status).name} result at the end of a pipeline"
            )
        # An error at the sync: the implicit transaction failed to commit (a
        # deferred constraint): none of the commands is done. The caller
        # raises it with the last command's.
        results[-1].append(result)
        after_error = True
    pgconn.exit_pipeline_mode()
    return results


def end_copy(pgconn: PGconn, status: int) -> PQGen[None]:
    """End a COPY that a pipelined command started: its caller cannot feed or read it.

    COPY FROM is aborted (the server reports an error, the pipeline skips
    the rest); COPY TO's data is read and dropped. libpq then goes on with
    the command's final result. Without this libpq would return the COPY
    result forever.
    """
    if status == ExecStatus.COPY_IN:
        pgconn.put_copy_end(b"COPY cannot run in a pipeline")
        yield from send(pgconn)
        return
    while True:
        nbytes, _ = pgconn.get_copy_data(1)
        if nbytes < 0:
            return
        if nbytes == 0:
            ready = yield pgconn.socket, Wait.R
            if ready:
                pgconn.consume_input()


def _connection_error_in(what: str, pgconn: PGconn) -> errors.OperationalError:
    message = pgconn.error_message.decode("utf-8", "replace").strip()
    return errors.OperationalError(
        f"the connection was lost during {what}: {message or 'no message from libpq'}"
    )


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


# -- COPY --


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
