"""Reading the rows of a cursor's current result, and moving in it.

The ``RowFetching`` mixin of ``BaseCursor`` (bases layer): the rows are
already on the client, in the current ``PGresult``; these methods load them
with the cursor's transformer and shape them with its row maker. They are
the path of every row: no indirection beyond the attribute lookups they
make is added here.

Must not: do I/O (send, wait or read from the server), take a lock, or
import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic

from . import errors
from ._arguments import check_int
from .pq import ExecStatus, PGresult
from .rows import Row, RowMaker

if TYPE_CHECKING:
    from ._link import Link
    from ._transformer import Transformer

__all__ = ["RowFetching"]

_TUPLES_STATUSES = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE)


class RowFetching(Generic[Row]):
    """The fetch and scroll part of ``BaseCursor`` (a mixin)."""

    if TYPE_CHECKING:  # provided by BaseCursor
        _link: Link
        _closed: bool
        _tx: Transformer | None
        _result: PGresult | None
        _make_row: RowMaker[Any] | None
        _pos: int
        _ntuples: int
        arraysize: int

        def _transformer(self) -> Transformer: ...

    def _check_fetch(self) -> PGresult:
        if self._closed or self._link.closed_by_user:
            raise errors.InterfaceError("the cursor is closed")
        result = self._result
        if result is None:
            raise errors.ProgrammingError("no result available: call execute() first")
        if result.status not in _TUPLES_STATUSES:
            status = ExecStatus(result.status).name
            raise errors.ProgrammingError(f"the last operation produced no rows (status: {status})")
        return result

    def _fetchone(self) -> Row | None:
        self._check_fetch()
        pos = self._pos
        if pos >= self._ntuples:
            return None
        tx = self._tx  # (not self._transformer(): one call less per row)
        if tx is None:
            tx = self._transformer()
        row = tx.load_row(pos)
        make_row = self._make_row
        if make_row is not None:
            row = make_row(row)  # type: ignore[arg-type]
        # Only now: a row that failed to load is not skipped by the next fetch.
        self._pos = pos + 1
        return row  # type: ignore[return-value]

    def _fetchmany(self, size: int | None) -> list[Row]:
        self._check_fetch()
        if size is None:
            size = self.arraysize
        check_int("fetchmany() size", size)
        if size < 0:
            raise errors.ProgrammingError(f"fetchmany() size must not be negative, got {size}")
        pos = self._pos
        end = min(pos + size, self._ntuples)
        rows = self._make_rows(self._transformer().load_rows(pos, end)) if end > pos else []
        self._pos = end  # (after loading, as in _fetchone())
        return rows

    def _fetchall(self) -> list[Row]:
        self._check_fetch()
        pos = self._pos
        end = self._ntuples
        rows = self._make_rows(self._transformer().load_rows(pos, end)) if end > pos else []
        self._pos = end  # (after loading, as in _fetchone())
        return rows

    def _make_rows(self, rows: list[tuple[Any, ...]]) -> list[Row]:
        make_row = self._make_row
        if make_row is None:
            return rows  # type: ignore[return-value]
        return [make_row(row) for row in rows]

    def _scroll(self, value: int, mode: str) -> None:
        """Move the position in the current result (no I/O: the rows are here).

        :raises IndexError: if the new position is outside the result (the
            position just after the last row is allowed).
        """
        self._check_fetch()
        check_int("scroll() value", value)
        newpos = _scroll_target(self._pos, value, mode)
        if not 0 <= newpos <= self._ntuples:
            raise IndexError(f"cannot scroll to row {newpos}: the result has {self._ntuples} rows")
        self._pos = newpos

    def _iter_rows(self) -> Iterable[Row]:
        while (row := self._fetchone()) is not None:
            yield row


def _scroll_target(position: int, value: int, mode: str) -> int:
    if mode == "relative":
        return position + value
    if mode == "absolute":
        return value
    raise errors.ProgrammingError(f"scroll mode must be 'relative' or 'absolute', got {mode!r}")
