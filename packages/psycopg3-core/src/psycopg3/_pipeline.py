"""Pipeline mode: commands sent without waiting for their results.

Inside ``with conn.pipeline():`` a cursor's ``execute()`` sends its command
and returns; the results come back later, in the order the commands were
sent, and are handed to the cursor that sent each one. This module keeps the
queue of commands awaiting results and the generators that read them.

Must not: wait, take a lock (except the blocking ``Pipeline``, through its
connection's lock and ``_wait()``, as ``Transaction`` does), or import a
concurrency framework.

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
   its text; a COPY reaching the pipeline anyway fails as ``_complete()``
   says.)
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from . import errors, generators, pq
from ._block_lock import ConnectionLock
from ._encodings import may_change_encoding
from .pq import ConnStatus, ExecStatus, Format, PGresult, PipelineStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
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

__all__ = ["Pipeline", "AsyncPipeline", "BasePipeline", "PipelineState", "PIPELINE_LIBPQ"]

logger = logging.getLogger("psycopg3")
T = TypeVar("T")

#: The first libpq version with pipeline mode.
PIPELINE_LIBPQ = 140000
#: Commands queued between two flushes of the output (rule 2).
FLUSH_EVERY = 100
#: Most commands left waiting for their results: past it, sending waits for
#: the oldest ones' results (rule 2), whatever the server's speed.
MAX_QUEUED = 2 * FLUSH_EVERY

_ERROR_STATUSES = (ExecStatus.FATAL_ERROR, ExecStatus.BAD_RESPONSE)
_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


def check_supported() -> None:
    """Raise ``NotSupportedError`` if the libpq in use has no pipeline mode."""
    version = pq.version()
    if version < PIPELINE_LIBPQ:
        raise errors.NotSupportedError(
            f"pipeline mode needs libpq 14 or later; the libpq loaded is version {version}"
        )


class PipelineEntry:
    """A command (or a sync point) sent and waiting for its results.

    :param cursor: the cursor that receives the results, if any.
    :param on_done: called with the entry once its results are in (internal
        commands: the implicit ``BEGIN``, a ``PREPARE``).
    """

    __slots__ = (
        "cursor",
        "on_done",
        "results",
        "error",
        "done",
        "is_sync",
        "group",
        "returning",
        "by_name",
        "encoding_change",
    )

    def __init__(
        self,
        cursor: BaseCursor[Any] | None = None,
        on_done: Callable[[PipelineEntry], None] | None = None,
        *,
        is_sync: bool = False,
    ):
        self.cursor = cursor
        self.on_done = on_done
        self.results: list[PGresult] = []
        self.error: errors.Error | None = None
        self.done = False
        self.is_sync = is_sync
        # executemany: the entries of every statement, the last one holding the cursor.
        self.group: list[PipelineEntry] | None = None
        self.returning = False
        # Whether the command executes a prepared statement by name.
        self.by_name = False
        # A sync point: whether the command before it may change the encoding (rule 7).
        self.encoding_change = False


class PipelineState:
    """The queue of a connection in pipeline mode (``conn._pipeline``), shared by nested blocks."""

    def __init__(self, conn: BaseConnection):
        self._conn = conn
        self._entries: deque[PipelineEntry] = deque()
        self._unflushed = 0
        # Whether every command sent is followed by a sync or a flush request.
        self._covered = True
        #: Whether commands were sent since the last sync point (rule 5).
        self.unsynced = False
        #: Whether the implicit transaction's BEGIN was queued since the last sync.
        self.begin_pending = False
        #: Whether an interruption abandoned the queue (rule 6).
        self.abandoned = False
        # Errors of failed commands that were not raised to the user (rule 4).
        self._unreported: list[errors.Error] = []
        self.depth = 0
        # The client encoding as of the last sync point's reply (rule 7).
        self._encoding = conn.pgconn.parameter_status(b"client_encoding")

    # -- sending ---------------------------------------------------------

    def start(self) -> None:
        """Enter pipeline mode, again if an interruption made the connection leave it."""
        pgconn = self._conn.pgconn
        if pgconn.pipeline_status == PipelineStatus.OFF:
            pgconn.enter_pipeline_mode()
            self._covered = True
            self.unsynced = self.begin_pending = self.abandoned = False
            self._encoding = pgconn.parameter_status(b"client_encoding")

    def add(self, entry: PipelineEntry) -> None:
        """Queue the entry of a command just sent with a ``send_*`` call."""
        self._entries.append(entry)
        self._unflushed += 1
        self._covered = False
        self.unsynced = True

    def begin(self) -> None:
        """Queue the DB-API implicit transaction's ``BEGIN``."""
        self._conn.pgconn.send_query_params(self._conn._begin_command(), None)
        self.add(PipelineEntry())
        self.begin_pending = True

    def sent_gen(self) -> PQGen[None]:
        """Called after each command: flush and hand out results every ``FLUSH_EVERY``."""
        if self._unflushed < FLUSH_EVERY:
            return
        pgconn = self._conn.pgconn
        pgconn.send_flush_request()
        self._covered = True
        yield from self._flush_gen()
        try:
            pgconn.consume_input()
            while self._entries and not pgconn.is_busy():
                yield from self._take_gen(pgconn.get_result())
        except BaseException:
            self._abandon()
            raise
        excess = len(self._entries) - MAX_QUEUED
        if excess > 0:
            # A server slower than we are: what is taken only when ready
            # would pile up in the queue and in libpq's input buffer.
            yield from self._read_until_gen(self._entries[excess - 1])
        else:
            self._conn._deliver_pending_notifies()

    def _flush_gen(self) -> PQGen[None]:
        self._unflushed = 0
        try:
            yield from generators.send(self._conn.pgconn)
        except BaseException:
            self._abandon()
            raise

    # -- receiving -------------------------------------------------------

    def fetch_gen(self, entry: PipelineEntry) -> PQGen[None]:
        """Read results until ``entry``'s are in, asking the server to flush if needed."""
        if entry.done:
            return
        if not self._covered:
            self._conn.pgconn.send_flush_request()
            self._covered = True
        yield from self._flush_gen()
        yield from self._read_until_gen(entry)

    def sync_gen(self, *, encoding_change: bool = False) -> PQGen[None]:
        """Send a sync point (if commands were sent since the last) and read everything.

        Raises nothing of the commands' own errors: see ``raise_unreported()``.

        :param encoding_change: the last command sent may change the client
            encoding (rule 7): a change reported by this sync point is expected.
        """
        pgconn = self._conn.pgconn
        if pgconn.pipeline_status == PipelineStatus.OFF:
            return  # left by the recovery after an interruption: nothing is pending
        if self.unsynced:
            pgconn.pipeline_sync()
            sync = PipelineEntry(is_sync=True)
            sync.encoding_change = encoding_change
            self._entries.append(sync)
            self._covered = True
            self.unsynced = False
        if not self._entries:
            return
        last = self._entries[-1]
        yield from self._flush_gen()
        yield from self._read_until_gen(last)

    def _read_until_gen(self, entry: PipelineEntry) -> PQGen[None]:
        pgconn = self._conn.pgconn
        try:
            while not entry.done:
                yield from self._take_gen((yield from generators.fetch(pgconn)))
        except BaseException:
            self._abandon()
            raise
        self._conn._deliver_pending_notifies()

    def _take_gen(self, result: PGresult | None) -> PQGen[None]:
        """``_take()``, then end the COPY the result started, if any.

        libpq returns a COPY result again and again until the COPY ends: a
        COPY sent in a pipeline (whose caller cannot feed or read it) is
        ended here, and its command fails (see ``_complete()``).
        """
        status = None if result is None else result.status
        self._take(result)
        if status in _COPY_STATUSES:
            yield from generators.end_copy(self._conn.pgconn, status)

    def _take(self, result: PGresult | None) -> None:
        """Hand one result returned by libpq to the entry at the head of the queue."""
        entry = self._entries[0]
        if entry.is_sync:
            if result is None:
                if self._conn.pgconn.status == ConnStatus.BAD:
                    # Idle before the sync's result: nothing more will come.
                    raise errors.OperationalError("the connection was lost in a pipeline")
                return  # (the NULL after an error at the sync point)
            if result.status != ExecStatus.PIPELINE_SYNC:
                # An error at the sync point: the implicit transaction failed
                # to commit (a deferred constraint). The sync's result follows.
                if result.status in _ERROR_STATUSES:
                    error = errors.error_from_result(result, self._conn.encoding)
                    self._unreported.append(error)
                result.clear()
                return
            result.clear()
            self._entries.popleft()
            entry.done = True
            self._check_encoding(entry)
            if not self._entries and not self.unsynced:
                self.begin_pending = False  # libpq's transaction status is exact again
            return
        if result is not None:
            entry.results.append(result)
            return
        self._entries.popleft()
        self._complete(entry)

    def _check_encoding(self, sync: PipelineEntry) -> None:
        """At a sync point's reply: note an encoding change, flag one nobody expected."""
        encoding = self._conn.pgconn.parameter_status(b"client_encoding")
        if encoding == self._encoding:
            return
        old, self._encoding = self._encoding, encoding
        if sync.encoding_change:
            return
        self._unreported.append(
            errors.InterfaceError(
                f"the client encoding changed from {_name(old)} to {_name(encoding)} inside"
                " the pipeline, by a command not recognised as changing it: the commands"
                " queued after it, up to this sync point, may have been read in the wrong"
                " encoding. Change client_encoding with SET, set_config() or SET NAMES,"
                " or outside the pipeline block"
            )
        )

    def _complete(self, entry: PipelineEntry) -> None:
        entry.done = True
        conn = self._conn
        for result in entry.results:
            status = result.status
            if status in _ERROR_STATUSES:
                entry.error = errors.error_from_result(result, conn.encoding)
                self._unreported.append(entry.error)
                break
            if status in _COPY_STATUSES:
                entry.error = unsupported("COPY")
                self._unreported.append(entry.error)
                break
            if status == ExecStatus.PIPELINE_ABORTED:
                entry.error = errors.PipelineAborted(
                    "this command was skipped: an earlier command of the pipeline failed"
                    " (PostgreSQL ignores the rest of a pipeline until the next sync point)"
                )
                break
        if entry.on_done is not None:
            entry.on_done(entry)
        conn._prepare_manager.check_results(entry.results, by_name=entry.by_name)
        cursor = entry.cursor
        if cursor is not None:
            entry.cursor = None
            _deliver(cursor, entry)
        if not entry.on_done:
            entry.results = []  # the cursor took them, or nobody wants them (rule 3)

    def _abandon(self) -> None:
        """Fail every entry still waiting: an interruption cut the pipeline (rule 6)."""
        self.abandoned = True
        entries, self._entries = self._entries, deque()
        for entry in entries:
            if entry.is_sync:
                entry.done = True
                continue
            entry.results = []
            entry.done = True
            entry.error = errors.OperationalError(
                "the pipeline was interrupted before this command's result arrived"
            )
            if entry.on_done is not None:
                entry.on_done(entry)
            if entry.cursor is not None:
                cursor, entry.cursor = entry.cursor, None
                _deliver(cursor, entry)

    # -- errors ----------------------------------------------------------

    def reported(self, error: errors.Error) -> None:
        """Note that ``error`` reached the user: no sync raises it again."""
        self._unreported = [e for e in self._unreported if e is not error]

    def raise_unreported(self) -> None:
        """Raise the first error no cursor raised (rule 4), and forget them all."""
        if self._unreported:
            first = self._unreported[0]
            self._unreported = []
            raise first

    def discard_unreported(self) -> None:
        """Forget the errors not raised yet (their transaction is being rolled back)."""
        self._unreported = []

    # -- commands run at once --------------------------------------------

    def command_gen(self, command: bytes) -> PQGen[list[PGresult]]:
        """Run a parameterless command and sync at once; raise if it failed.

        If the command was skipped because of an earlier error, that error is
        raised (the first one not raised yet).
        """
        self.start()
        self._conn.pgconn.send_query_params(command, None)
        entry = PipelineEntry(on_done=_keep_results)
        self.add(entry)
        yield from self.sync_gen(encoding_change=True)  # (a COMMIT, a ROLLBACK: rule 7)
        error = entry.error
        if error is None:
            return entry.results
        if not isinstance(error, errors.PipelineAborted):
            self.reported(error)
            raise error
        self.raise_unreported()
        raise error

    def adopt_foreign(self, what: str) -> errors.NotSupportedError:
        """Track a command sent by code that does not know pipelines; return the error to raise.

        The command is queued with its results discarded, so that the queue
        stays in step with libpq.
        """
        self.add(PipelineEntry())
        return unsupported(what)


def unsupported(what: str) -> errors.NotSupportedError:
    """The error for an operation that cannot run inside a pipeline block."""
    return errors.NotSupportedError(
        f"{what} cannot run inside a pipeline block (server-side cursors, COPY,"
        " two-phase commit and notifications need the connection to themselves):"
        " leave the block first"
    )


def _name(encoding: bytes | None) -> str:
    return encoding.decode("ascii", "replace") if encoding else "(unknown)"


def _keep_results(entry: PipelineEntry) -> None:
    """``on_done`` of entries whose results the sender reads itself."""


def _deliver(cursor: BaseCursor[Any], entry: PipelineEntry) -> None:
    """Hand a finished entry's results to its cursor, if the cursor still waits for them."""
    if cursor._pending is not entry:
        return  # the cursor has moved on (rule 3)
    if entry.error is not None:
        return  # kept pending: the cursor raises the error when it fetches
    cursor._pending = None
    group = entry.group
    if group is None:
        cursor._results = entry.results
        cursor._select_result(0)
        return
    last_results = [member.results[-1] for member in group if member.results]
    if entry.returning:
        cursor._results = last_results
        cursor._select_result(0)
    cursor._rowcount = sum(r.command_tuples or 0 for r in last_results)


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
    conn = cursor._conn
    state = conn._pipeline
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
    conn = cursor._conn
    state = conn._pipeline
    assert state is not None
    query, _, types, _, _ = commands[0]
    _refuse_copy(query)
    key, name, must_prepare, by_name = conn._prepare_manager.decide_many(
        query, [c[2] for c in commands]
    )
    group: list[PipelineEntry] = []
    for n, (command, use_name) in enumerate(zip(commands, by_name), 1):
        state.start()
        if conn._needs_begin():
            state.begin()
        if not use_name:
            conn.pgconn.send_query_params(*command)
        else:
            assert name is not None
            if must_prepare:
                _send_prepare(conn, state, key, name, types)
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
    conn = cursor._conn
    state.start()
    if conn._needs_begin():
        state.begin()
    key = pg_query.prepare_key()
    name, must_prepare = conn._prepare_manager.decide(key, prepare)
    if must_prepare:
        assert name is not None
        _send_prepare(conn, state, key, name, pg_query.types)
    cursor._send_converted(pg_query, result_format, name)
    return name is not None


def _send_prepare(
    conn: BaseConnection, state: PipelineState, key: Key, name: bytes, types: Sequence[int]
) -> None:
    """Queue a ``PREPARE``; the statement counts as prepared once the server accepts it."""
    manager = conn._prepare_manager
    conn.pgconn.send_prepare(name, key[0], param_types=types)
    manager.prepare_sent(key, name)

    def prepared(entry: PipelineEntry) -> None:
        manager.prepare_done(key, name, accepted=entry.error is None)

    state.add(PipelineEntry(on_done=prepared))


def pending_result_gen(cursor: BaseCursor[Any]) -> PQGen[None]:
    """Wait for the result of the cursor's pipelined command; raise its error if it failed."""
    entry = cursor._pending
    if entry is None:
        return
    state = cursor._conn._pipeline
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

    def __init__(self, connection: BaseConnection):
        self._conn = connection
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
        conn = self._conn
        conn._check_usable()
        check_supported()
        if self._state is not None:
            raise errors.ProgrammingError("this pipeline block is already active")
        if conn._tpc_xid is not None:
            raise unsupported("a pipeline block in a two-phase transaction")
        state = conn._pipeline
        if state is None:
            state = PipelineState(conn)
            state.start()
            conn._pipeline = state
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
        self._conn._check_usable()
        yield from state.sync_gen()
        state.raise_unreported()

    def _exit_gen(self, exc: BaseException | None) -> PQGen[None]:
        state = self._check_active()
        conn = self._conn
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
                conn._pipeline = None
                yield from conn._deallocate_evicted_gen()
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
            if outermost and conn._pipeline is state:
                conn._pipeline = None


class _BlockingDriver(Protocol):
    lock: ConnectionLock[Any]

    def _wait(self, gen: PQGen[T]) -> T: ...


class Pipeline(BasePipeline):
    """A pipeline block for blocking connections: ``with conn.pipeline() as p:``."""

    def __enter__(self) -> Pipeline:
        conn = self._conn
        lock = cast(_BlockingDriver, conn).lock
        with lock:
            lock.claim()
            try:
                self._enter()
            finally:
                lock.settle(conn._in_block())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        driver = cast(_BlockingDriver, conn)
        driver.lock.check_owner("leave a pipeline block")
        with driver.lock:
            try:
                driver._wait(self._exit_gen(exc))
            finally:
                driver.lock.settle(conn._in_block())

    def sync(self) -> None:
        """Send a sync point, wait for every result so far, raise the first unreported error.

        After it the pipeline works again, whatever failed before.
        """
        driver = cast(_BlockingDriver, self._conn)
        with driver.lock:
            driver._wait(self._sync_gen())


class AsyncPipeline(BasePipeline):
    """A pipeline block for async connections: ``async with conn.pipeline() as p:``.

    Leaving the block runs through the connection's ``_wait_shielded()``:
    the final sync completes (within a deadline) even when the block is left
    by a cancellation. The block owns the connection for its task until it
    ends (see ``psycopg3._block_lock``).
    """

    _conn: AsyncConnectionBase

    async def __aenter__(self) -> AsyncPipeline:
        conn = self._conn
        async with conn.lock:
            await conn.lock.claim()
            try:
                self._enter()
            finally:
                conn.lock.settle(conn._in_block())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        conn.lock.check_owner("leave a pipeline block")
        try:
            await conn._wait_shielded(self._exit_gen(exc))
        finally:
            conn.lock.settle(conn._in_block())

    async def sync(self) -> None:
        """Send a sync point, wait for every result so far, raise the first unreported error."""
        async with self._conn.lock:
            await self._conn._wait(self._sync_gen())
