"""The generators of ``executemany()`` in pipeline mode, and of a COPY met there.

Every generator here follows the numbered rules of ``generators``' docstring
(what ``Ready.NONE`` means, releasing what it creates, errors returned not
raised).

Must not: import a concurrency framework, ``select`` or ``selectors``; call a
libpq function that blocks; sleep; import ``generators`` (which re-exports
this module's public names); decide what a failed result means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

from . import errors
from ._exec_gen import COPY_STATUSES, fetch, has_fatal, send
from .pq import ExecStatus, PGconn, PGresult
from .waiting import PQGen, Wait

__all__ = ["PipelineCommand", "pipeline_execute_many", "end_copy"]

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

    def take(result: PGresult | None) -> TypeGuard[PGresult]:
        # Count a NULL, file a result; True for a COPY, which the caller ends.
        nonlocal done
        if result is None:
            done += 1
            return False
        results[done].append(result)
        return result.status in COPY_STATUSES

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
        while done < sent and not pgconn.is_busy():
            if take(result := pgconn.get_result()):
                yield from end_copy(pgconn, result.status)
    pgconn.pipeline_sync()
    yield from send(pgconn)
    while done < sent:
        if take(result := (yield from fetch(pgconn))):
            yield from end_copy(pgconn, result.status)
    after_error = False
    while True:
        result = yield from fetch(pgconn)
        if result is None:
            if after_error:
                after_error = False  # (the NULL that ends an error's results)
                continue
            # libpq idle before the sync's result: the connection is lost.
            if any(has_fatal(command_results) for command_results in results):
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
