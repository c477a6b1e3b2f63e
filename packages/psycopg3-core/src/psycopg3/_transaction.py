"""Transaction blocks (``conn.transaction()``), savepoints and transaction characteristics.

Must not: wait, sleep, or import a concurrency framework. The blocking and
async blocks (``_blocking_blocks``, ``_async_blocks``) take the connection's
lock and hand the generators below to the connection's ``_wait()``, like an
adapter method does. Layer: bases.

The rules of a transaction block:

1. Entering the outermost block while no transaction is open sends ``BEGIN``
   (with the connection's isolation level, read only and deferrable
   settings), even in autocommit mode; leaving it sends ``COMMIT`` or
   ``ROLLBACK``.
2. Any other block (nested, or entered while a transaction is already open,
   such as the DB-API implicit one) works on a savepoint: ``SAVEPOINT`` on
   entering, ``RELEASE SAVEPOINT`` on success, ``ROLLBACK TO SAVEPOINT`` then
   ``RELEASE SAVEPOINT`` on failure. A block entered in an open transaction
   leaves that transaction open.
3. A block left by an exception rolls back and lets the exception go on,
   except ``Rollback``: it is swallowed by the block it targets (the
   innermost one if it names none); the inner blocks it crosses roll back
   with their target.
4. A block left normally while the server reports a failed transaction (an
   error was caught inside it) is rolled back, as the server would do with
   ``COMMIT``: ``status`` then says ``"rolled_back"``.
5. Blocks are left in the reverse order of entering; ``commit()``,
   ``rollback()`` and ``autocommit = True`` are refused while a block is
   open: each misuse raises ``ProgrammingError`` saying what to do instead.
   A block left while inner ones are still open rolls back, with them, then
   raises ``ProgrammingError``: nothing stays open that no one will leave.
6. Each block's savepoint has a name no open block uses: a name given twice
   (at two nesting levels) gets a suffix in SQL, so that rolling back to a
   block reaches that block's savepoint, not an inner one's.
7. Entering is undone if it does not finish (an interruption while
   ``BEGIN`` or ``SAVEPOINT`` waits for its reply, an error): the
   transaction begun is rolled back, the savepoint made is released, and the
   connection is left as it was; if that cannot be done, it is closed.
8. A block owns the connection for the thread or task that entered it until
   it ends (``psycopg3._block_lock``): others wait. Leaving it (its
   ``COMMIT`` or ``ROLLBACK``) completes even if the task is cancelled again
   meanwhile, within ``DRAIN_TIMEOUT``. Blocking code cannot shield it from
   a second Ctrl-C: the command is then cancelled and drained like any
   other. Either way, a transaction still open once the outermost block has
   failed to end closes the connection.
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from . import errors
from ._arguments import check_bool, check_str, wrong_argument
from ._link import Link
from .pq import PGconn, TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._connection_base import BaseConnection

logger = logging.getLogger("psycopg3")

__all__ = [
    "IsolationLevel",
    "Rollback",
    "TransactionCharacteristics",
    "BaseTransaction",
]

#: The life of a transaction block: ``"pending"`` before ``with``, ``"active"``
#: inside, then ``"committed"``, ``"rolled_back"``, or ``"failed"`` if its
#: COMMIT or ROLLBACK raised (the connection was lost, a deferred constraint...).
TransactionBlockStatus = Literal["pending", "active", "committed", "rolled_back", "failed"]


class IsolationLevel(IntEnum):
    """The isolation levels of PostgreSQL transactions (``None`` means the server's default)."""

    READ_UNCOMMITTED = 1
    READ_COMMITTED = 2
    REPEATABLE_READ = 3
    SERIALIZABLE = 4


class Rollback(Exception):
    """Raise it in a ``transaction()`` block to roll the block back and leave it quietly.

    :param transaction: the block to roll back and leave, if it is not the
        innermost one; the blocks in between are left too.
    """

    def __init__(self, transaction: BaseTransaction | None = None):
        super().__init__(transaction)
        self.transaction = transaction

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.transaction!r})"


class _Switch:
    """A yes/no/default transaction characteristic of ``TransactionCharacteristics``.

    Stored in ``_<name>``; setting it checks the value and that no
    transaction is open, then rebuilds the ``BEGIN`` statement.
    """

    def __init__(self, doc: str):
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._attr = "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> _Switch: ...

    @overload
    def __get__(self, obj: TransactionCharacteristics, owner: type) -> bool | None: ...

    def __get__(self, obj: TransactionCharacteristics | None, owner: type) -> Any:
        return self if obj is None else getattr(obj, self._attr)

    def __set__(self, obj: TransactionCharacteristics, value: bool | None) -> None:
        check_bool(self._name, value, none_ok=True)
        obj._check_characteristic_change(self._name)
        setattr(obj, self._attr, None if value is None else bool(value))
        obj._begin_statement = obj._build_begin()


class TransactionCharacteristics:
    """Connection settings applied to the transactions psycopg3 begins.

    They shape the ``BEGIN`` of the next transaction: the DB-API implicit one
    and those of ``transaction()`` blocks (which also begin transactions in
    autocommit mode). Nothing is sent when they are set: they can be changed
    only while no transaction is open. Setting them does no I/O, so the async
    connections have the same properties.
    """

    _isolation_level: IsolationLevel | None = None
    _read_only: bool | None = None
    _deferrable: bool | None = None
    _begin_statement = b"BEGIN"

    if TYPE_CHECKING:  # provided by BaseConnection
        pgconn: PGconn

        def _check_usable(self) -> None: ...

    @property
    def isolation_level(self) -> IsolationLevel | None:
        """The isolation level of the next transaction; None for the server's default."""
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, value: IsolationLevel | int | None) -> None:
        self._check_characteristic_change("isolation_level")
        if value is not None and value not in IsolationLevel.__members__.values():
            raise wrong_argument(
                "isolation_level", value, "an IsolationLevel or None", bad_value=True
            )
        self._isolation_level = None if value is None else IsolationLevel(value)
        self._begin_statement = self._build_begin()

    read_only = _Switch("Whether the next transaction is READ ONLY; None for the server's default.")
    deferrable = _Switch(
        "Whether the next transaction is DEFERRABLE; None for the server's default."
    )

    def _check_characteristic_change(self, name: str) -> None:
        self._check_usable()
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            raise errors.ProgrammingError(
                f"cannot change {name} inside a transaction: it applies to the next one;"
                " call commit() or rollback() first"
            )

    def _build_begin(self) -> bytes:
        parts = [b"BEGIN"]
        if self._isolation_level is not None:
            level = self._isolation_level.name.replace("_", " ")
            parts.append(b"ISOLATION LEVEL " + level.encode("ascii"))
        if self._read_only is not None:
            parts.append(b"READ ONLY" if self._read_only else b"READ WRITE")
        if self._deferrable is not None:
            parts.append(b"DEFERRABLE" if self._deferrable else b"NOT DEFERRABLE")
        return b" ".join(parts)

    def _begin_command(self) -> bytes:
        """The statement opening a transaction with the current characteristics."""
        return self._begin_statement


class BaseTransaction:
    """A transaction block's state and generators; use ``conn.transaction()`` to get one.

    :param connection: the connection the block works on.
    :param savepoint_name: the savepoint's name; generated (``_pg3_<depth>``)
        when the block needs a savepoint and none is given.
    :param force_rollback: roll back at the end of the block even on success.
    """

    __slots__ = (
        "_conn",
        "_link",
        "savepoint_name",
        "force_rollback",
        "status",
        "_begins",
        "_savepoint",
        "_sent",
        "_left_by_outer",
    )

    #: The kind of link the block reaches its connection's internals through.
    _link_class: ClassVar[type[Link]] = Link

    def __init__(
        self,
        connection: BaseConnection,
        savepoint_name: str | None = None,
        force_rollback: bool = False,
    ):
        if savepoint_name is not None:
            check_str("transaction() savepoint_name", savepoint_name)
        check_bool("transaction() force_rollback", force_rollback)
        self._conn = connection
        self._link = self._link_class(connection)
        self.savepoint_name = savepoint_name
        self.force_rollback = force_rollback
        #: Where the block is in its life: see ``TransactionBlockStatus``.
        self.status: TransactionBlockStatus = "pending"
        self._begins = False
        self._savepoint: bytes | None = None
        # What entering sent and has not confirmed: "begin", "savepoint" or None.
        self._sent: str | None = None
        # Rolled back by an outer block left before it (rule 5).
        self._left_by_outer = False

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        name = f" {self.savepoint_name!r}" if self.savepoint_name else ""
        return f"<{cls}{name} [{self.status}] at 0x{id(self):x}>"

    @property
    def connection(self) -> BaseConnection:
        """The connection of the block."""
        return self._conn

    def _enter_gen(self) -> PQGen[None]:
        conn, link = self._conn, self._link
        link.check_usable()
        if self.status != "pending":
            raise errors.ProgrammingError(
                "a transaction block can be entered only once: call conn.transaction() again"
            )
        if link.in_tpc:
            raise errors.ProgrammingError(
                "transaction() cannot be used in a two-phase transaction:"
                " finish it with tpc_commit() or tpc_rollback() first"
            )
        pipeline = link.pipeline
        if pipeline is not None:
            # The transaction status is the server's last word: commands still
            # queued in a pipeline may change it. Settle them first.
            yield from pipeline.sync_gen()
            pipeline.raise_unreported()
        blocks = link.transaction_blocks
        begins = not blocks and conn.pgconn.transaction_status == TransactionStatus.IDLE
        if begins:
            self._sent = "begin"
            yield from link.begin_gen()
        else:
            name = self.savepoint_name or f"_pg3_{len(blocks) + 1}"
            savepoint = self._unique_savepoint(name)
            self._savepoint = savepoint
            self._sent = "savepoint"
            yield from link.exec_command_gen(b"SAVEPOINT " + savepoint)
            self.savepoint_name = name
        self._begins = begins
        blocks.append(self)
        self.status = "active"
        self._sent = None

    def _unique_savepoint(self, name: str) -> bytes:
        """The escaped SQL name of the block's savepoint, unused by any open block (rule 6)."""
        conn, blocks = self._conn, self._link.transaction_blocks
        used = {block._savepoint for block in blocks}
        candidate, suffix = name, len(blocks) + 1
        while True:
            savepoint = conn.pgconn.escape_identifier(candidate.encode(conn.encoding))
            if savepoint not in used:
                return savepoint
            candidate = f"{name}_{suffix}"
            suffix += 1

    def _undo_enter_gen(self) -> PQGen[None]:
        """Leave the server as before an entering that did not finish (rule 7).

        Drive it after ``_enter_gen()`` raised (once the interrupted command
        was recovered, so the transaction status is exact), shielded. Never
        raises ``Exception``: if undoing fails, the connection is closed.
        """
        conn, link = self._conn, self._link
        sent, self._sent = self._sent, None
        if sent is None:
            return
        self.status = "rolled_back"
        if conn.closed:
            return
        try:
            pipeline = link.pipeline
            if pipeline is not None:
                yield from pipeline.sync_gen()
                pipeline.discard_unreported()
            status = conn.pgconn.transaction_status
            if sent == "begin":
                if status != TransactionStatus.IDLE:
                    yield from link.exec_command_gen(b"ROLLBACK")
            elif status == TransactionStatus.INTRANS and self._savepoint is not None:
                # Still in the transaction: the savepoint was made (had the
                # interruption cancelled it, the transaction would be failed).
                yield from link.exec_command_gen(b"RELEASE SAVEPOINT " + self._savepoint)
        except Exception as ex:
            logger.warning("closing the connection: undoing an interrupted block failed: %s", ex)
            link.mark_broken()

    def _check_undone(self, sent: str) -> None:
        """Close the connection if undoing an entering left a transaction open (rule 7).

        Call it however ``_undo_enter_gen()`` ended (out of time, interrupted
        again): a transaction no block will end must not stay open.
        """
        link = self._link
        if sent == "begin" and link.session_status() not in (
            TransactionStatus.IDLE,
            TransactionStatus.UNKNOWN,
        ):
            logger.warning("closing the connection: an interrupted BEGIN could not be undone")
            link.mark_broken()

    def _check_exit_after_failure(self) -> None:
        """Close the connection if leaving the outermost block failed half-way.

        A block that began the transaction and could not end it (interrupted,
        out of time) would leave the connection in a transaction no block
        will end: every later write lost at close (rule 8).
        """
        link = self._link
        if self._begins and self.status == "failed" and self not in link.transaction_blocks:
            if link.session_status() not in (TransactionStatus.IDLE, TransactionStatus.UNKNOWN):
                logger.warning(
                    "closing the connection: leaving the transaction block was interrupted"
                    " and the transaction is still open"
                )
                link.mark_broken()

    def _exit_gen(self, exc: BaseException | None) -> PQGen[bool]:
        """Commit or roll back the block; return True if ``exc`` must be swallowed."""
        blocks = self._link.transaction_blocks
        if self._left_by_outer:
            self._left_by_outer = False
            if exc is not None:
                return False  # the error of the outer block's leaving is on its way
            raise errors.ProgrammingError(
                "this transaction block was rolled back already: an outer block was left"
                " before it (leave blocks in the reverse order they were entered)"
            )
        if self.status != "active" or self not in blocks:
            raise errors.ProgrammingError(
                f"this transaction block is not active (it is {self.status}): leave it only once"
            )
        crossed = blocks[blocks.index(self) + 1 :]
        del blocks[blocks.index(self) :]
        if crossed:
            # Left before its inner blocks (rule 5): roll them all back.
            for block in crossed:
                block.status = "rolled_back"
                block._left_by_outer = True
            misuse = errors.ProgrammingError(
                "transaction blocks must be left in the reverse order they were entered:"
                f" this block was left while {len(crossed)} inner block(s) were open;"
                " all of them were rolled back"
            )
            yield from self._exit_body_gen(misuse)
            raise misuse
        return (yield from self._exit_body_gen(exc))

    def _exit_body_gen(self, exc: BaseException | None) -> PQGen[bool]:
        conn, link = self._conn, self._link
        blocks = link.transaction_blocks
        if isinstance(exc, Rollback) and exc.transaction in blocks:
            # An outer block is the target: rolling it back undoes this one too.
            self.status = "rolled_back"
            return False
        unreported: errors.Error | None = None
        try:
            link.check_usable()
            pipeline = link.pipeline
            if pipeline is not None:
                yield from pipeline.sync_gen()
                try:
                    pipeline.raise_unreported()
                except errors.Error as ex:
                    unreported = ex  # a queued command failed: the block must not commit
            in_error = conn.pgconn.transaction_status == TransactionStatus.INERROR
            if exc is None and not self.force_rollback and not in_error:
                yield from self._end_gen(commit=True)
                self.status = "committed"
            else:
                yield from self._end_gen(commit=False)
                self.status = "rolled_back"
        except errors.Error as ex:
            self.status = "failed"
            if exc is None or isinstance(exc, Rollback):
                raise
            # The block's own exception says more than the failed rollback.
            link.log_failed_rollback(ex)
            return False
        except BaseException:
            self.status = "failed"
            raise
        if unreported is not None and exc is None:
            raise unreported  # rolled back: the error of a queued command says why
        return isinstance(exc, Rollback) and exc.transaction in (None, self)

    def _end_gen(self, *, commit: bool) -> PQGen[None]:
        """Commit or roll back what the block began: the transaction, or its savepoint."""
        run = self._link.exec_command_gen
        if self._begins:
            yield from run(b"COMMIT" if commit else b"ROLLBACK")
        elif (savepoint := self._savepoint) is not None:
            if not commit:
                yield from run(b"ROLLBACK TO SAVEPOINT " + savepoint)
            yield from run(b"RELEASE SAVEPOINT " + savepoint)
