"""What a cursor, COPY, pipeline, transaction or notifies() asks of its connection.

The satellites of a connection (the cursors, the blocks, the notifications'
iteration) build generators that need more of their connection than its
public API: its prepared statements, its pipeline queue, the BEGIN it owes,
its waiters. They reach it through a link, made from the connection when the
satellite is made, whose members are named for what they promise: this
module is the only one outside the connection that knows the connection's
private members, and a test (``tests/core/test_links.py``) keeps it so.

``Link`` is what the generators need; ``BlockingLink`` and ``AsyncLink`` add
the waiters of each kind of connection. Layer: bases.

Rules:

1. A satellite holds its link; the connection never does (nor anything it
   keeps for good). A connection freed by reference counting must stay so:
   a connection -> link -> connection cycle would leave a dropped
   connection to the garbage collector. (The pipeline queue and the open
   transaction blocks, which the connection keeps while a block is open,
   hold a link as they held the connection: for the block's time only.)
   ``tests/adapters/test_refcount.py`` checks it in every flavour.
2. A link holds its connection and, besides, only what the connection
   never replaces (its ``PrepareManager``): one call more per use, no state
   of the connection copied.

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .pq import PGresult, TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._async_connection import AsyncConnectionBase
    from ._blocking_connection import BlockingConnectionBase
    from ._connection_base import BaseConnection
    from ._notify import NotifyIteration
    from ._pipeline_queue import PipelineState
    from ._prepare import PrepareManager
    from ._transaction import BaseTransaction

__all__ = ["AsyncLink", "BlockingLink", "Link"]

T = TypeVar("T")


class Link:
    """A satellite's access to the state and generators of its connection.

    :param connection: the connection the satellite works on.
    """

    __slots__ = ("_conn", "prepare_manager")

    #: The connection's prepared statements and their counts (``_prepare``),
    #: made with the connection and never replaced. (An attribute: it is read
    #: at each execute.)
    prepare_manager: PrepareManager

    def __init__(self, connection: BaseConnection):
        self._conn = connection
        self.prepare_manager = connection._prepare_manager

    # -- state -------------------------------------------------------------

    @property
    def closed_by_user(self) -> bool:
        """True once ``close()`` was called (not when the connection was lost)."""
        return self._conn._closed_by_user

    def check_usable(self) -> None:
        """Raise if no command may be sent: closed, lost, or inherited by a fork."""
        self._conn._check_usable()

    def session_status(self) -> TransactionStatus:
        """The transaction status while open; UNKNOWN once closed or lost."""
        return self._conn._session_status()

    def mark_broken(self) -> None:
        """Close the connection as lost: its session can no longer be trusted."""
        self._conn._mark_broken()

    @property
    def in_tpc(self) -> bool:
        """True between ``tpc_begin()`` and the end of the two-phase transaction."""
        return self._conn._tpc_xid is not None

    # -- blocks ------------------------------------------------------------

    @property
    def pipeline(self) -> PipelineState | None:
        """The queue of the connection's active pipeline block, None outside one."""
        return self._conn._pipeline

    def open_pipeline(self, state: PipelineState) -> None:
        """Make ``state`` the connection's pipeline queue (the outermost block's entering)."""
        self._conn._pipeline = state

    def close_pipeline(self, state: PipelineState) -> None:
        """Forget ``state`` as the connection's pipeline queue, if it still is."""
        conn = self._conn
        if conn._pipeline is state:
            conn._pipeline = None

    def check_no_pipeline(self, method: str) -> None:
        """Raise ``NotSupportedError`` naming ``method`` in a pipeline block."""
        self._conn._check_no_pipeline(method)

    @property
    def transaction_blocks(self) -> list[BaseTransaction]:
        """The ``transaction()`` blocks entered and not left, innermost last.

        The blocks themselves keep it: each one appends itself when entered
        and removes itself (and any block inside) when left.
        """
        return self._conn._transaction_blocks

    def in_block(self) -> bool:
        """True while a ``transaction()`` or ``pipeline()`` block is open."""
        return self._conn._in_block()

    def log_failed_rollback(self, ex: BaseException) -> None:
        """Log that ending a block left by an exception failed (the exception goes on)."""
        self._conn._log_failed_rollback(ex)

    # -- commands ----------------------------------------------------------

    def needs_begin(self) -> bool:
        """True if the DB-API implicit transaction must be opened before a command."""
        return self._conn._needs_begin()

    def begin_command(self) -> bytes:
        """The ``BEGIN`` statement, with the connection's transaction characteristics."""
        return self._conn._begin_command()

    def begin_gen(self) -> PQGen[None]:
        """Open a transaction with the connection's characteristics; raise on error."""
        conn = self._conn
        return conn._exec_command_gen(conn._begin_command())

    def start_query_gen(self) -> PQGen[None]:
        """Before a command that needs the connection to itself (refused in a pipeline).

        Checks the connection, and opens the implicit transaction if due.
        """
        return self._conn._start_query_gen()

    def exec_command_gen(self, command: bytes) -> PQGen[None]:
        """Run a parameterless command (queued and synced in a pipeline); raise on error."""
        return self._conn._exec_command_gen(command)

    def results_gen(self) -> PQGen[list[PGresult]]:
        """Flush the command just sent and return its results, unchecked."""
        return self._conn._results_gen()

    def check_results(self, results: list[PGresult], codec: str | None = None) -> None:
        """Raise the error of the first failed result, read in ``codec`` if given."""
        self._conn._check_results(results, codec)

    def checked_results_gen(self) -> PQGen[list[PGresult]]:
        """Flush the command just sent and return its results; raise if one failed."""
        conn = self._conn
        results = yield from conn._results_gen()
        conn._check_results(results)
        return results

    def deallocate_evicted_gen(self) -> PQGen[None]:
        """Deallocate the statements the cache let go, if outside transactions."""
        return self._conn._deallocate_evicted_gen()

    # -- notifications -----------------------------------------------------

    def deliver_pending_notifies(self) -> None:
        """Deliver the notifications libpq parsed along with the results just read."""
        self._conn._deliver_pending_notifies()

    def receive_notifies(self) -> bool:
        """Read what the server sent, without waiting; True if notifications came.

        Call it holding the connection's lock.
        """
        return self._conn._receive_notifies()


class BlockingLink(Link):
    """The link of a blocking connection's satellite: ``Link`` and its waiter."""

    __slots__ = ()

    _conn: BlockingConnectionBase

    def wait(self, gen: PQGen[T]) -> T:
        """Drive ``gen`` to its end with the connection's waiter and interruption policy.

        Call it holding the connection's lock.
        """
        return self._conn._wait(gen)


class AsyncLink(Link):
    """The link of an async connection's satellite: ``Link`` and its waiters."""

    __slots__ = ()

    _conn: AsyncConnectionBase

    def wait(self, gen: PQGen[T]) -> Coroutine[Any, Any, T]:
        """Drive ``gen`` to its end with the connection's waiter and interruption policy.

        Await it holding the connection's lock.
        """
        return self._conn._wait(gen)

    def wait_shielded(self, gen: PQGen[T]) -> Coroutine[Any, Any, T]:
        """Drive ``gen`` to its end, even if the caller is being cancelled (ending blocks)."""
        return self._conn._wait_shielded(gen)

    def wait_plain(self, gen: PQGen[T], *, timeout: float | None) -> Coroutine[Any, Any, T]:
        """Drive ``gen`` with the framework's waiter alone (no lock, no interruption policy)."""
        return self._conn._wait_plain(gen, timeout=timeout)

    def start_notifies(self, timeout: float | None, stop_after: int | None) -> NotifyIteration:
        """Begin a ``notifies()`` iteration (see ``NotifyIteration``)."""
        return self._conn._start_notifies(timeout, stop_after)
