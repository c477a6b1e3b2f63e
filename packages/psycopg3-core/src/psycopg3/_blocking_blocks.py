"""The blocks of blocking connections: ``Transaction``, ``Pipeline``, ``Copy``.

Each one drives its core base's generators (``BaseTransaction``,
``BasePipeline``, ``BaseCopy``) under the connection's ``lock`` through its
link's ``wait()`` (``psycopg3._link``), as an adapter method does; the rules
of each block are in its base's module. ``_BlockingBlock`` writes once how a
block that owns the connection (rule 2 of ``psycopg3._block_lock``) is entered
and left. Layer: drivers, beside ``_blocking_connection``.

Must not: import a concurrency framework, or wait other than through the
connection's ``lock`` and its link's ``wait()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ._adapt.base import Buffer
from ._copy import BaseCopy
from ._link import BlockingLink, Link
from ._pipeline import BasePipeline
from ._transaction import BaseTransaction

if TYPE_CHECKING:
    from ._blocking_connection import BlockingConnectionBase
    from .waiting import PQGen

__all__ = ["Transaction", "Pipeline", "Copy"]

X = TypeVar("X")
BlockT = TypeVar("BlockT", bound="_BlockingBlock[Any]")


class _BlockingBlock(Generic[X]):
    """Enter and leave a block that owns the connection for its thread until it ends.

    Entering claims the ownership under the lock and runs ``_enter_locked()``;
    leaving runs ``_exit_gen()`` and gives the ownership back once no block
    is open, however either ended.
    """

    __slots__ = ()

    _conn: BlockingConnectionBase
    _link: BlockingLink
    _link_class: ClassVar[type[Link]] = BlockingLink
    #: What leaving is called in the error raised to another thread.
    _leaving: ClassVar[str]

    if TYPE_CHECKING:  # the block's own, or its base's

        def _enter_locked(self) -> None: ...
        def _exit_gen(self, exc: BaseException | None) -> PQGen[X]: ...
        def _check_exit_after_failure(self) -> None: ...

    def __enter__(self: BlockT) -> BlockT:
        conn, link = self._conn, self._link
        lock = conn.lock
        with lock:
            lock.claim()
            try:
                self._enter_locked()
            finally:
                lock.settle(link.in_block())
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> X:
        conn, link = self._conn, self._link
        lock = conn.lock
        lock.check_owner(self._leaving)
        with lock:
            try:
                return link.wait(self._exit_gen(exc))
            except BaseException:
                self._check_exit_after_failure()
                raise
            finally:
                lock.settle(link.in_block())


class Transaction(_BlockingBlock[bool], BaseTransaction):
    """A transaction block for blocking connections: ``with conn.transaction() as tx:``."""

    __slots__ = ()

    _conn: BlockingConnectionBase
    _link: BlockingLink
    _leaving = "leave a transaction block"

    def _enter_locked(self) -> None:
        wait = self._link.wait
        try:
            wait(self._enter_gen())
        except BaseException:
            sent = self._sent
            if sent is not None:
                try:
                    wait(self._undo_enter_gen())
                finally:
                    self._check_undone(sent)
            raise


class Pipeline(_BlockingBlock[None], BasePipeline):
    """A pipeline block for blocking connections: ``with conn.pipeline() as p:``."""

    _conn: BlockingConnectionBase
    _link: BlockingLink
    _leaving = "leave a pipeline block"

    def _enter_locked(self) -> None:
        self._enter()

    def sync(self) -> None:
        """Send a sync point, wait for every result so far, raise the first unreported error.

        After it the pipeline works again, whatever failed before.
        """
        with self._conn.lock:
            self._link.wait(self._sync_gen())


class Copy(BaseCopy):
    """A COPY block for blocking connections: ``with cur.copy("COPY …") as copy:``.

    Write with `write()` / `write_row()` (``COPY … FROM STDIN``); read with
    `read()`, `read_row()`, `rows()` or by iterating blocks (``COPY … TO
    STDOUT``). See ``psycopg3._copy`` for what leaving the block does.
    """

    _conn: BlockingConnectionBase
    _link: BlockingLink

    def __enter__(self) -> Copy:
        lock = self._conn.lock
        lock.__enter__()
        try:
            self._link.wait(self._start_gen())
        except BaseException:
            lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            with self._ending(exc):
                self._link.wait(self._exit_gen(exc))
        finally:
            self._conn.lock.__exit__(None, None, None)

    def write(self, buffer: Buffer | str) -> None:
        """Send raw COPY data (in the COPY's format); ``str`` is encoded first."""
        self._link.wait(self._write_gen(buffer))

    def write_row(self, values: Sequence[Any]) -> None:
        """Send a row, its values adapted like query parameters.

        :raises ProgrammingError: if a value cannot be adapted, or in binary
            format without `set_types()`.
        :raises DataError: if a value does not fit its column's type.
        """
        if self._add_row(values):
            self._link.wait(self._flush_gen())

    def read(self) -> bytes:
        """Return the next block of raw COPY data; ``b""`` at the end."""
        return self._link.wait(self._read_gen())

    def read_row(self) -> tuple[Any, ...] | None:
        """Return the next row, or None at the end.

        Values are loaded with the types of `set_types()`; without them (text
        format only) they are ``str``, None for NULL.
        """
        row = self._parsed_row()
        return row if row is not None else self._link.wait(self._read_row_gen())

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Iterate over the rows (see `read_row()`)."""
        while (row := self.read_row()) is not None:
            yield row

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read():
            yield data
