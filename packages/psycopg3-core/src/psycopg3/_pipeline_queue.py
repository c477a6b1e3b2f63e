"""The queue of a connection in pipeline mode: commands sent, results handed out.

``PipelineState`` (``link.pipeline``, see ``psycopg3._link``) keeps one ``PipelineEntry`` per
command (or sync point) sent and not answered yet, in the order libpq returns
their results, reads the results when asked and hands each command's to the
cursor that sent it. The numbered rules quoted here are those of
``psycopg3._pipeline``. Layer: bases.

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import errors, generators
from .pq import ConnStatus, ExecStatus, PGresult, PipelineStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection
    from ._cursor_base import BaseCursor
    from ._link import Link

__all__ = ["PipelineEntry", "PipelineState", "unsupported", "FLUSH_EVERY", "MAX_QUEUED"]

#: Commands queued between two flushes of the output (rule 2).
FLUSH_EVERY = 100
#: Most commands left waiting for their results: past it, sending waits for
#: the oldest ones' results (rule 2), whatever the server's speed.
MAX_QUEUED = 2 * FLUSH_EVERY

_ERROR_STATUSES = (ExecStatus.FATAL_ERROR, ExecStatus.BAD_RESPONSE)
_COPY_STATUSES = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


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
    """The queue of a connection in pipeline mode (``link.pipeline``), shared by nested blocks.

    :param conn: the connection in pipeline mode.
    :param link: the link of the block that made it, to the connection's internals.
    """

    def __init__(self, conn: BaseConnection, link: Link):
        self._conn = conn
        self._link = link
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
        self._conn.pgconn.send_query_params(self._link.begin_command(), None)
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
            self._link.deliver_pending_notifies()

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
        self._link.deliver_pending_notifies()

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
        self._link.prepare_manager.check_results(entry.results, by_name=entry.by_name)
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
