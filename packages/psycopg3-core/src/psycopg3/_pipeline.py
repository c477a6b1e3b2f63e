"""Pipeline mode: commands sent without waiting for their results.

Inside ``with conn.pipeline():`` a cursor's ``execute()`` sends its command
and returns; the results come back later, in the order the commands were
sent, and are handed to the cursor that sent each one. This module keeps the
queue of commands awaiting results and the generators that read them.

This module holds the rules, what a cursor does in a pipeline and the
block's state (``BasePipeline``); the queue is ``_pipeline_queue``'s
``PipelineState``, the blocking and async blocks are in ``_blocking_blocks``
and ``_async_blocks``. Layer: bases.

Must not: wait, take a lock, or import a concurrency framework.

Rules:

1. Every command goes through the extended protocol (libpq refuses the
   simple one in pipeline mode), one statement per command; each one queues
   an entry here, in the order libpq will return its results. A sync point
   (``PQpipelineSync``) queues an entry too.
2. Results are read only when someone needs them: a cursor fetching (the
   server is asked to flush what it has, ``PQsendFlushRequest``), ``sync()``,
   a command that must know its outcome at once (``commit()``…), the end of
   the block. Every ``FLUSH_EVERY`` commands the output is flushed (reading
   while the socket is full, so neither side stalls), a flush request is
   sent and the results already received are handed out; past
   ``MAX_QUEUED`` commands waiting, the oldest ones' results are waited
   for: the queue and libpq's buffers stay bounded in a long pipeline.
3. A cursor holds its latest command's entry only: the results of an entry
   its cursor has moved on from (executed again, closed, dropped) are freed
   on arrival. Their error, if any, is still raised by the next sync.
4. After an error PostgreSQL skips every command until the next sync point:
   the failed command's cursor raises its error when it fetches, a skipped
   one raises ``PipelineAborted``. ``sync()`` and the end of the block raise
   the first error that no cursor raised yet, once.
5. libpq's transaction status is stale between sync points: a ``BEGIN``
   queued since the last sync is remembered (``begin_pending``) so that the
   DB-API implicit transaction is opened once.
6. An interruption while waiting abandons the queue: every entry still
   waiting gets an ``OperationalError`` (never stale results), and the
   connection's recovery (``generators.drain``) syncs and leaves pipeline
   mode. The next command in the block enters pipeline mode again.
7. The server reads each queued command in the client encoding of the
   moment it runs it, but reports a change only with the next sync point's
   reply. A command whose text may change the encoding (``SET
   client_encoding``, ``SET NAMES``, ``set_config('client_encoding', …)``,
   ``RESET``/``DISCARD ALL``), or that ends a transaction (which reverts
   ``SET LOCAL`` and the changes of a rolled back transaction), is followed
   by a sync point, so the next command is encoded (and its results decoded)
   in the new encoding. A change made some other way (a function calling
   ``set_config``) is noticed at the sync point that reports it: the commands
   queued after it may have been misread, and an ``InterfaceError`` saying
   so is raised like a command's error (rule 4), never silence.
8. A ``COPY … FROM STDIN`` or ``TO STDOUT`` sent with ``execute()`` is
   refused before it is sent: libpq cannot feed or read a COPY in pipeline
   mode, and the server, switched to COPY mode, would take the commands
   queued after it for a protocol violation and end the session. (Found by
   its text; a COPY reaching the pipeline anyway fails as
   ``PipelineState._complete()`` says.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from . import errors, generators, pq
from ._encodings import may_change_encoding
from ._link import Link
from ._pipeline_queue import PipelineEntry, PipelineState, unsupported
from .pq import Format, PipelineStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection
    from ._cursor_base import BaseCursor
    from ._prepare import Key
    from ._queries import PostgresQuery

# A COPY to or from the client (rule 8), after any leading comments.
_COPY_WITH_CLIENT = re.compile(
    rb"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*copy\b[^;]*?\b(?:from\s+stdin|to\s+stdout)\b",
    re.IGNORECASE | re.DOTALL,
)
# A query that ends a transaction (rule 7).
_ENDS_TRANSACTION = re.compile(rb"\s*(?:commit|rollback|end|abort)\b", re.IGNORECASE)

__all__ = ["BasePipeline", "PipelineState", "PIPELINE_LIBPQ", "check_supported", "unsupported"]

logger = logging.getLogger("psycopg3")

#: The first libpq version with pipeline mode.
PIPELINE_LIBPQ = 140000


def check_supported() -> None:
    """Raise ``NotSupportedError`` if the libpq in use has no pipeline mode."""
    version = pq.version()
    if version < PIPELINE_LIBPQ:
        raise errors.NotSupportedError(
            f"pipeline mode needs libpq 14 or later; the libpq loaded is version {version}"
        )


def _group_done(entry: PipelineEntry) -> None:
    """``on_done`` of executemany's statements: the last one carries the group's error."""
    if entry.cursor is None or entry.group is None:
        return  # not the last statement: the last one looks back at it
    failed = [member.error for member in entry.group if member.error is not None]
    own = [error for error in failed if not isinstance(error, errors.PipelineAborted)]
    entry.error = own[0] if own else failed[0] if failed else None


# -- what a cursor does in a pipeline ---------------------------------------


def execute_gen(
    cursor: BaseCursor[Any], pg_query: PostgresQuery, binary: bool, prepare: bool | None
) -> PQGen[None]:
    """Send a converted query in the pipeline; its results come at fetch time.

    Always the extended protocol: a string of several statements is refused
    by the server (a ``SyntaxError`` raised at fetch time).
    """
    state = cursor._link.pipeline
    assert state is not None
    _refuse_copy(pg_query.query)
    entry = PipelineEntry(cursor)
    entry.by_name = _send_query(
        cursor, state, pg_query, Format.BINARY if binary else Format.TEXT, prepare
    )
    cursor._pending = entry
    state.add(entry)
    query = pg_query.query
    if may_change_encoding(query) or _ENDS_TRANSACTION.match(query):
        yield from state.sync_gen(encoding_change=True)
    yield from state.sent_gen()


def executemany_gen(
    cursor: BaseCursor[Any], commands: list[generators.PipelineCommand], returning: bool
) -> PQGen[None]:
    """Add ``commands`` to the pipeline, for one cursor.

    As outside a pipeline, each parameter set counts towards
    ``prepare_threshold``: a large enough batch queues a ``PREPARE`` and runs
    the statement by name. ``rowcount`` (the sum) and, with ``returning``,
    the results, are there once the last statement's result arrived; the
    cursor raises the first failed statement's error.
    """
    conn, link = cursor._conn, cursor._link
    state = link.pipeline
    assert state is not None
    query, _, types, _, _ = commands[0]
    _refuse_copy(query)
    key, name, must_prepare, by_name = link.prepare_manager.decide_many(
        query, [c[2] for c in commands]
    )
    group: list[PipelineEntry] = []
    for n, (command, use_name) in enumerate(zip(commands, by_name), 1):
        state.start()
        if link.needs_begin():
            state.begin()
        if not use_name:
            conn.pgconn.send_query_params(*command)
        else:
            assert name is not None
            if must_prepare:
                _send_prepare(cursor, state, key, name, types)
                must_prepare = False
            _, params, _, formats, result_format = command
            conn.pgconn.send_query_prepared(name, params, formats, result_format)
        entry = PipelineEntry(on_done=_group_done)
        entry.group = group
        entry.returning = returning
        entry.by_name = use_name
        group.append(entry)
        if n == len(commands):
            # The cursor waits for the last one: set before a flush may read it.
            entry.cursor = cursor
            cursor._pending = entry
        state.add(entry)
        yield from state.sent_gen()


def copies_with_client(query: bytes) -> bool:
    """Whether the query is a ``COPY … FROM STDIN``/``TO STDOUT``, by its text (rule 8)."""
    return _COPY_WITH_CLIENT.match(query) is not None


def _refuse_copy(query: bytes) -> None:
    """Raise before sending a COPY with the client (rule 8)."""
    if copies_with_client(query):
        raise unsupported("COPY (use cursor.copy() outside the block)")


def _send_query(
    cursor: BaseCursor[Any],
    state: PipelineState,
    pg_query: PostgresQuery,
    result_format: Format,
    prepare: bool | None,
) -> bool:
    """Send the query, by a statement's name if prepared; return whether by name."""
    link = cursor._link
    state.start()
    if link.needs_begin():
        state.begin()
    key = pg_query.prepare_key()
    name, must_prepare = link.prepare_manager.decide(key, prepare)
    if must_prepare:
        assert name is not None
        _send_prepare(cursor, state, key, name, pg_query.types)
    cursor._send_converted(pg_query, result_format, name)
    return name is not None


def _send_prepare(
    cursor: BaseCursor[Any], state: PipelineState, key: Key, name: bytes, types: Sequence[int]
) -> None:
    """Queue a ``PREPARE``; the statement counts as prepared once the server accepts it."""
    manager = cursor._link.prepare_manager
    cursor._conn.pgconn.send_prepare(name, key[0], param_types=types)
    manager.prepare_sent(key, name)

    def prepared(entry: PipelineEntry) -> None:
        manager.prepare_done(key, name, accepted=entry.error is None)

    state.add(PipelineEntry(on_done=prepared))


def pending_result_gen(cursor: BaseCursor[Any]) -> PQGen[None]:
    """Wait for the result of the cursor's pipelined command; raise its error if it failed."""
    entry = cursor._pending
    if entry is None:
        return
    state = cursor._link.pipeline
    if not entry.done:
        if state is None:
            raise errors.InternalError("a pipelined command has no pipeline to wait on")
        yield from state.fetch_gen(entry)
    if cursor._pending is entry:
        cursor._pending = None
        if entry.error is not None:
            if state is not None:
                state.reported(entry.error)
            raise entry.error


# -- the context managers ----------------------------------------------------


class BasePipeline:
    """A ``conn.pipeline()`` block's state and generators; see the module's rules.

    Blocks nest: an inner block shares the outer one's queue and syncs at
    its end; the outermost one also leaves pipeline mode.
    """

    #: The kind of link the block reaches its connection's internals through.
    _link_class: ClassVar[type[Link]] = Link

    def __init__(self, connection: BaseConnection):
        self._conn = connection
        self._link = self._link_class(connection)
        self._state: PipelineState | None = None

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        status = "active" if self._state is not None else "inactive"
        return f"<{cls} [{status}] at 0x{id(self):x}>"

    @property
    def connection(self) -> BaseConnection:
        """The connection of the block."""
        return self._conn

    def _enter(self) -> None:
        link = self._link
        link.check_usable()
        check_supported()
        if self._state is not None:
            raise errors.ProgrammingError("this pipeline block is already active")
        if link.in_tpc:
            raise unsupported("a pipeline block in a two-phase transaction")
        state = link.pipeline
        if state is None:
            state = PipelineState(self._conn, link)
            state.start()
            link.open_pipeline(state)
        state.depth += 1
        self._state = state

    def _check_active(self) -> PipelineState:
        if self._state is None:
            raise errors.ProgrammingError(
                "the pipeline block is not active: use it in a with block"
            )
        return self._state

    def _sync_gen(self) -> PQGen[None]:
        state = self._check_active()
        self._link.check_usable()
        yield from state.sync_gen()
        state.raise_unreported()

    def _check_exit_after_failure(self) -> None:
        pass  # (the connection's recovery leaves pipeline mode: nothing stays open)

    def _exit_gen(self, exc: BaseException | None) -> PQGen[None]:
        state = self._check_active()
        conn, link = self._conn, self._link
        self._state = None
        state.depth -= 1
        outermost = state.depth == 0
        try:
            if conn.closed:
                # Closed from elsewhere during the block: what was sent since
                # the last sync point never completed, and must not look done.
                cut = state.unsynced or bool(state._entries)
                state._abandon()
                if cut and exc is None:
                    raise errors.InterfaceError(
                        "the connection was closed during the pipeline block: the"
                        " commands sent since its last sync() did not complete"
                    )
                return
            yield from state.sync_gen()
            if outermost:
                if conn.pgconn.pipeline_status != PipelineStatus.OFF:
                    conn.pgconn.exit_pipeline_mode()
                link.close_pipeline(state)
                yield from link.deallocate_evicted_gen()
            if exc is None:
                state.raise_unreported()
            elif state._unreported:
                # The user's exception matters more than the pipeline's errors.
                logger.warning(
                    "error in the pipeline left by an exception: %s", state._unreported[0]
                )
        except errors.Error as ex:
            if exc is None:
                raise
            logger.warning("leaving the pipeline block after an exception failed: %s", ex)
        finally:
            if outermost:
                link.close_pipeline(state)
