"""Ending transactions from a connection, and making its transaction and pipeline blocks.

``TransactionControl`` is the part of ``BaseConnection`` that runs
``commit()``, ``rollback()`` and the end of a ``with conn:`` block, and
refuses them where they would break a block. ``BlockFactory`` makes the
``transaction()`` and ``pipeline()`` blocks of a flavour's classes, for the
blocking and async connection bases.
Layer: bases.

Must not: wait, take a lock, or import a concurrency framework.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from . import errors
from ._pipeline_queue import unsupported
from .pq import TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection
    from ._pipeline import BasePipeline
    from ._pipeline_queue import PipelineState
    from ._transaction import BaseTransaction
    from .pq import PGconn

__all__ = ["TransactionControl", "BlockFactory"]

logger = logging.getLogger("psycopg3")


class TransactionControl:
    """``commit()``, ``rollback()`` and their checks, for ``BaseConnection``."""

    if TYPE_CHECKING:  # provided by BaseConnection
        pgconn: PGconn
        _pipeline: PipelineState | None
        _transaction_blocks: list[BaseTransaction]

        @property
        def closed(self) -> bool: ...
        def _check_usable(self) -> None: ...
        def _check_not_tpc(self, method: str) -> None: ...
        def _exec_command_gen(self, command: bytes) -> PQGen[None]: ...

    def _check_no_pipeline(self, method: str) -> None:
        if self._pipeline is not None:
            raise unsupported(f"{method}()")

    def _in_block(self) -> bool:
        """Tell if a ``transaction()`` or ``pipeline()`` block is open (it owns the lock)."""
        return bool(self._transaction_blocks) or self._pipeline is not None

    def _check_no_transaction_block(self, method: str) -> None:
        if self._transaction_blocks:
            raise errors.ProgrammingError(
                f"{method}() cannot be used inside a transaction() block: leave the block to"
                " commit, or raise psycopg3.Rollback in it to roll back"
            )

    def _check_can_end(self, method: str) -> None:
        """Raise if ``commit()`` or ``rollback()`` is refused now (a block, two-phase)."""
        self._check_usable()
        self._check_no_transaction_block(method)
        self._check_not_tpc(method)

    def _commit_gen(self) -> PQGen[None]:
        self._check_can_end("commit")
        if self._pipeline is not None:
            # The status is exact only after a sync; the batch's first error
            # is raised here, and nothing is committed.
            yield from self._pipeline.sync_gen()
            self._pipeline.raise_unreported()
        if self.pgconn.transaction_status == TransactionStatus.IDLE:
            return
        yield from self._exec_command_gen(b"COMMIT")

    def _rollback_gen(self) -> PQGen[None]:
        self._check_can_end("rollback")
        if self._pipeline is not None:
            yield from self._pipeline.sync_gen()
            if self.pgconn.transaction_status == TransactionStatus.INERROR:
                # The errors that failed the transaction go with it.
                self._pipeline.discard_unreported()
        if self.pgconn.transaction_status == TransactionStatus.IDLE:
            return
        yield from self._exec_command_gen(b"ROLLBACK")

    def _exit_gen(self, exc: BaseException | None) -> PQGen[None]:
        """What leaving a ``with`` block does before closing: commit or roll back."""
        if self.closed:
            return
        if exc is None:
            yield from self._commit_gen()
            return
        try:
            yield from self._rollback_gen()
        except errors.Error as ex:
            # The user's exception matters more than a failed rollback.
            logger.warning("rollback on leaving the connection block failed: %s", ex)


TransactionT = TypeVar("TransactionT", bound="BaseTransaction")
PipelineT = TypeVar("PipelineT", bound="BasePipeline")


class BlockFactory(Generic[TransactionT, PipelineT]):
    """``transaction()`` and ``pipeline()`` for a connection base naming its block classes.

    Shared by the blocking and the async connection bases, each giving its
    flavour's classes as the type parameters and ``_transaction_class``,
    ``_pipeline_class``.
    """

    _transaction_class: type[TransactionT]
    _pipeline_class: type[PipelineT]

    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> TransactionT:
        """Return a transaction block: ``with conn.transaction() as tx:`` (``async with``).

        See ``psycopg3._transaction`` for the rules (BEGIN or SAVEPOINT,
        commit on success, rollback on error, ``psycopg3.Rollback``).

        :param savepoint_name: the name of the block's savepoint, if it uses one.
        :param force_rollback: roll back at the end even if the block succeeds.
        """
        return self._transaction_class(cast("BaseConnection", self), savepoint_name, force_rollback)

    def pipeline(self) -> PipelineT:
        """Return a pipeline block: ``with conn.pipeline() as p:`` (``async with``; libpq >= 14).

        Inside it, ``execute()`` sends without waiting; each cursor gets its
        result when it fetches, or at ``p.sync()`` and the block's end (see
        ``psycopg3._pipeline`` and ``docs/pipeline.md``).

        :raises NotSupportedError: on entering, if libpq is older than 14.
        """
        return self._pipeline_class(cast("BaseConnection", self))
