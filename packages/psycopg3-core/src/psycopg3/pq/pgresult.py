"""``PGresult``: a typed wrapper of libpq's result, and the fast row loader.

Must not: interpret values (loaders are handed in), talk to the connection,
or pass a cleared result's pointer to libpq.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ctypes import string_at
from typing import Any

from ..errors import OperationalError
from . import _libpq as impl
from ._cstrings import check_index
from ._enums import ExecStatus, Format, exec_status, format_lookup

__all__ = ["PGresult", "Loader"]

Loader = Callable[[bytes], Any]


class PGresult:
    """A result returned by libpq, freed by `clear()` or when collected.

    A *borrowed* result (the notices libpq hands to a notice handler) is
    owned by libpq: it is never cleared here and stops being usable when the
    handler returns.
    """

    __slots__ = ("_pgresult_ptr", "_owned", "_status", "_shape", "__weakref__")

    def __init__(self, pgresult_ptr: int, *, owned: bool = True):
        self._pgresult_ptr: int | None = pgresult_ptr
        self._owned = owned
        # A result's status never changes: read once, on first use (it is
        # asked several times for every query).
        self._status: ExecStatus | None = None
        # (ntuples, column types, column formats), read once when needed.
        self._shape: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None

    @classmethod
    def borrow(cls, pgresult_ptr: int) -> PGresult:
        """Wrap a result that libpq frees itself (never PQclear'ed by us)."""
        return cls(pgresult_ptr, owned=False)

    def __del__(self, _clear: Any = impl.PQclear) -> None:
        # _clear is bound at definition time: at interpreter shutdown the
        # module globals may already be gone.
        ptr = self._pgresult_ptr
        if ptr is not None:
            self._pgresult_ptr = None
            if self._owned and _clear is not None:
                _clear(ptr)

    def __repr__(self) -> str:
        ptr = self._pgresult_ptr
        if ptr is None:
            return f"<{type(self).__name__} [cleared] at 0x{id(self):x}>"
        status = exec_status(impl.PQresultStatus(ptr)).name
        return f"<{type(self).__name__} [{status}] at 0x{id(self):x}>"

    def clear(self) -> None:
        """Free the result now (idempotent); every accessor raises after."""
        ptr = self._pgresult_ptr
        if ptr is not None:
            self._pgresult_ptr = None
            if self._owned:
                impl.PQclear(ptr)

    @property
    def cleared(self) -> bool:
        """True once the result was cleared (or a borrowed one expired)."""
        return self._pgresult_ptr is None

    def _ptr(self) -> int:
        ptr = self._pgresult_ptr
        if ptr is None:
            raise OperationalError("the result was cleared")
        return ptr

    @property
    def pgresult_ptr(self) -> int | None:
        """The address of the C ``PGresult``, None once cleared."""
        return self._pgresult_ptr

    # --- status and errors ---

    @property
    def status(self) -> ExecStatus:
        """The result status (``PQresultStatus``)."""
        ptr = self._pgresult_ptr
        if ptr is None:
            raise OperationalError("the result was cleared")
        status = self._status
        if status is None:
            status = self._status = exec_status(impl.PQresultStatus(ptr))
        return status

    @property
    def error_message(self) -> bytes:
        """The error message of the result, b"" if none (``PQresultErrorMessage``)."""
        msg: bytes | None = impl.PQresultErrorMessage(self._ptr())
        return msg or b""

    def error_field(self, code: int) -> bytes | None:
        """Return one field of the error report, or None if absent.

        :param code: a `DiagnosticField` value.
        """
        value: bytes | None = impl.PQresultErrorField(self._ptr(), code)
        return value

    # --- shape of the result ---

    @property
    def ntuples(self) -> int:
        """The number of rows."""
        return int(impl.PQntuples(self._ptr()))

    @property
    def nfields(self) -> int:
        """The number of columns."""
        return int(impl.PQnfields(self._ptr()))

    @property
    def binary_tuples(self) -> bool:
        """True if every column is in binary format."""
        return bool(impl.PQbinaryTuples(self._ptr()))

    def fname(self, column: int) -> bytes | None:
        """The name of a column, None if the index is out of range."""
        name: bytes | None = impl.PQfname(self._ptr(), check_index(column, "column"))
        return name

    def ftable(self, column: int) -> int:
        """The OID of the table the column comes from, 0 if none."""
        return int(impl.PQftable(self._ptr(), check_index(column, "column")))

    def ftablecol(self, column: int) -> int:
        """The column number within its table, 0 if none."""
        return int(impl.PQftablecol(self._ptr(), check_index(column, "column")))

    def fformat(self, column: int) -> Format:
        """The format of a column."""
        return format_lookup(impl.PQfformat(self._ptr(), check_index(column, "column")))

    def ftype(self, column: int) -> int:
        """The type OID of a column."""
        return int(impl.PQftype(self._ptr(), check_index(column, "column")))

    def fmod(self, column: int) -> int:
        """The type modifier of a column (-1 if none)."""
        return int(impl.PQfmod(self._ptr(), check_index(column, "column")))

    def fsize(self, column: int) -> int:
        """The server's size of the column's type (negative: variable)."""
        return int(impl.PQfsize(self._ptr(), check_index(column, "column")))

    @property
    def nparams(self) -> int:
        """The number of parameters of a described statement."""
        return int(impl.PQnparams(self._ptr()))

    def param_type(self, index: int) -> int:
        """The type OID of a parameter of a described statement."""
        return int(impl.PQparamtype(self._ptr(), check_index(index, "parameter")))

    @property
    def command_status(self) -> bytes | None:
        """The command tag, such as b"INSERT 0 1"."""
        tag: bytes | None = impl.PQcmdStatus(self._ptr())
        return tag

    @property
    def command_tuples(self) -> int | None:
        """The rows affected by the command, None if it does not say."""
        count: bytes | None = impl.PQcmdTuples(self._ptr())
        return int(count) if count else None

    @property
    def oid_value(self) -> int:
        """The OID of an inserted row, 0 if none."""
        return int(impl.PQoidValue(self._ptr()))

    # --- values ---

    def get_value(self, row: int, column: int) -> bytes | None:
        """Return one value as bytes, None if NULL (binary values may hold NUL)."""
        ptr = self._ptr()
        check_index(row, "row")
        check_index(column, "column")
        if impl.PQfformat(ptr, column) == 0:
            value: bytes | None = impl.PQgetvalue_text(ptr, row, column)
            if value or value is None:
                return value
            return None if impl.PQgetisnull(ptr, row, column) else b""
        length = impl.PQgetlength(ptr, row, column)
        if length:
            return string_at(impl.PQgetvalue_ptr(ptr, row, column), length)
        return None if impl.PQgetisnull(ptr, row, column) else b""

    def get_isnull(self, row: int, column: int) -> bool:
        """True if the value is NULL."""
        ptr = self._ptr()
        return bool(impl.PQgetisnull(ptr, check_index(row, "row"), check_index(column, "column")))

    def get_length(self, row: int, column: int) -> int:
        """The length of a value in bytes."""
        ptr = self._ptr()
        return int(impl.PQgetlength(ptr, check_index(row, "row"), check_index(column, "column")))

    def load_row(self, row: int, loaders: Sequence[Loader | None]) -> tuple[Any, ...]:
        """Return one row, each value passed through its column's loader.

        :param loaders: one per column; None returns the raw bytes.
        :return: a tuple with None for NULL values.
        :raises IndexError: if the row is not within the result.
        :raises ValueError: if there are not as many loaders as columns.
        """
        # fetchone() calls this once per row: no per-call list building as in
        # load_rows(), and the shape of the result is read only once.
        ptr = self._ptr()
        ntuples, _, formats = self._shape or self._read_shape(ptr)
        if not 0 <= row < ntuples:
            raise IndexError(f"row {row} is out of the result's range")
        if len(loaders) != len(formats):
            raise ValueError(f"got {len(loaders)} loaders for {len(formats)} columns")
        getvalue = impl.PQgetvalue_text
        values: list[Any] = []
        for col, load in enumerate(loaders):
            if formats[col]:
                value = self._binary_value(ptr, row, col)
                if value is None:
                    values.append(None)
                    continue
            else:
                value = getvalue(ptr, row, col)
                if not value and impl.PQgetisnull(ptr, row, col):
                    values.append(None)
                    continue
            values.append(value if load is None else load(value))
        return tuple(values)

    def columns(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return the type OIDs and the formats of all the columns, in one call."""
        _, types, formats = self._shape or self._read_shape(self._ptr())
        return types, formats

    def _read_shape(self, ptr: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        columns = range(impl.PQnfields(ptr))
        types = tuple(impl.PQftype(ptr, col) for col in columns)
        formats = tuple(impl.PQfformat(ptr, col) for col in columns)
        shape = self._shape = (impl.PQntuples(ptr), types, formats)
        return shape

    @staticmethod
    def _binary_value(ptr: int, row: int, col: int) -> bytes | None:
        length = impl.PQgetlength(ptr, row, col)
        if length:
            return string_at(impl.PQgetvalue_ptr(ptr, row, col), length)
        return None if impl.PQgetisnull(ptr, row, col) else b""

    def load_rows(
        self, row0: int, row1: int, loaders: Sequence[Loader | None]
    ) -> list[tuple[Any, ...]]:
        """Return rows ``row0`` to ``row1`` (excluded), loaded column by column.

        This is the hot path of fetching: the format of each column is read
        once per call; a text value costs one libpq call (its NULL flag is
        read only when the value is empty); binary values are read with
        their length, so they may contain NUL.

        :param loaders: one per column: called with the value's bytes; None
            returns the bytes unchanged. NULL values are None, never loaded.
        :raises IndexError: if the rows are not within the result.
        :raises ValueError: if there are not as many loaders as columns.
        """
        ptr = self._ptr()
        nfields = impl.PQnfields(ptr)
        if not 0 <= row0 <= row1 <= impl.PQntuples(ptr):
            raise IndexError(f"rows {row0}:{row1} are out of the result's range")
        if len(loaders) != nfields:
            raise ValueError(f"got {len(loaders)} loaders for {nfields} columns")
        rows = range(row0, row1)
        if not nfields:
            return [()] * len(rows)

        fformat = impl.PQfformat
        getvalue = impl.PQgetvalue_text
        getisnull = impl.PQgetisnull
        columns: list[list[Any]] = []
        for col, load in enumerate(loaders):
            if fformat(ptr, col) != 0:
                columns.append(self._load_binary_column(ptr, rows, col, load))
            elif load is None:
                columns.append(
                    [
                        v if (v := getvalue(ptr, r, col)) or not getisnull(ptr, r, col) else None
                        for r in rows
                    ]
                )
            else:
                columns.append(
                    [
                        load(v)
                        if (v := getvalue(ptr, r, col)) or not getisnull(ptr, r, col)
                        else None
                        for r in rows
                    ]
                )
        # zip builds the row tuples in C, cheaper than one tuple() per row.
        return list(zip(*columns))

    @staticmethod
    def _load_binary_column(ptr: int, rows: range, col: int, load: Loader | None) -> list[Any]:
        getlength = impl.PQgetlength
        getisnull = impl.PQgetisnull
        getvalue = impl.PQgetvalue_ptr
        out: list[Any] = []
        append = out.append
        for r in rows:
            length = getlength(ptr, r, col)
            if length:
                value = string_at(getvalue(ptr, r, col), length)
            elif getisnull(ptr, r, col):
                append(None)
                continue
            else:
                value = b""
            append(value if load is None else load(value))
        return out
