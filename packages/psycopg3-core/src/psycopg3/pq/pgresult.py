"""``PGresult``: a typed wrapper of libpq's result, and the fast row loader.

Must not: interpret values (loaders are handed in), talk to the connection,
or pass a cleared result's pointer to libpq.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from ctypes import c_char_p, c_int, c_ssize_t, c_uint, c_void_p, py_object, pythonapi, string_at
from struct import Struct, unpack
from typing import Any

from ..errors import OperationalError
from . import _libpq as impl
from . import _live
from ._accessors import column_method, libpq_property, or_empty
from ._cstrings import check_index
from ._enums import ExecStatus, exec_status, format_lookup

_MADE = _live.PGRESULT.made
_FREED = _live.PGRESULT.freed

__all__ = ["PGresult", "Loader", "ColumnLoader"]

Loader = Callable[[bytes], Any]
# What load_rows() accepts for a column (see there).
ColumnLoader = Loader | Struct | None


# The row loops' own handles on some libpq functions, declared WITHOUT argtypes:
# ctypes then skips converting every argument through its argtypes' from_param,
# which halves the cost of a call (the loops make one to three per cell). This
# is safe only as they are called here: the result pointer always wrapped in a
# c_void_p (a bare int would be passed as a 32-bit C int) and the row and
# column as ints already checked to be within the result (ctypes passes them
# as C ints and raises if one does not fit).
def _untyped(name: str, restype: Any) -> Any:
    func = impl._lib[name]  # indexing makes a new function object: the declared one is untouched
    func.restype = restype
    return func


_getvalue_str = _untyped("PQgetvalue", c_char_p)  # up to the first NUL: text values only
_getvalue_addr = _untyped("PQgetvalue", c_void_p)  # the address, for a copy with the length
_getlength = _untyped("PQgetlength", c_int)
_getisnull = _untyped("PQgetisnull", c_int)
_ntuples = _untyped("PQntuples", c_int)
_nfields = _untyped("PQnfields", c_int)
_ftype = _untyped("PQftype", c_uint)
_fformat = _untyped("PQfformat", c_int)
# The copy of a binary value: CPython's own bytes constructor (string_at makes
# the same call behind a Python function frame).
_bytes_at = pythonapi["PyBytes_FromStringAndSize"]
_bytes_at.restype = py_object
_bytes_at.argtypes = [c_void_p, c_ssize_t]


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
        if owned:
            next(_MADE)
        # A result's status never changes: read once, on first use (it is
        # asked several times for every query).
        self._status: ExecStatus | None = None
        # (ntuples, column types, column formats), read once when needed.
        self._shape: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None

    @classmethod
    def borrow(cls, pgresult_ptr: int) -> PGresult:
        """Wrap a result that libpq frees itself (never PQclear'ed by us)."""
        return cls(pgresult_ptr, owned=False)

    def __del__(self, _clear: Any = impl.PQclear, _freed: Any = _FREED) -> None:
        # The defaults are bound at definition time: at interpreter shutdown
        # the module globals may already be gone.
        ptr = self._pgresult_ptr
        if ptr is not None:
            self._pgresult_ptr = None
            if self._owned and _clear is not None:
                _clear(ptr)
                next(_freed)

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
                next(_FREED)

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

    error_message = libpq_property(
        impl.PQresultErrorMessage,
        or_empty,
        'The error message of the result, b"" if none (``PQresultErrorMessage``).',
    )

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
        ptr = self._ptr()
        shape = self._shape
        return shape[0] if shape is not None else int(impl.PQntuples(ptr))

    # One libpq call each, on the result's pointer (see ``_accessors``).
    nfields = libpq_property(impl.PQnfields, int, "The number of columns.")
    binary_tuples = libpq_property(
        impl.PQbinaryTuples, bool, "True if every column is in binary format."
    )

    def fname(self, column: int) -> bytes | None:
        """The name of a column, None if the index is out of range."""
        name: bytes | None = impl.PQfname(self._ptr(), check_index(column, "column"))
        return name

    ftable = column_method(
        impl.PQftable, int, "The OID of the table the column comes from, 0 if none."
    )
    ftablecol = column_method(
        impl.PQftablecol, int, "The column number within its table, 0 if none."
    )
    fformat = column_method(impl.PQfformat, format_lookup, "The format of a column.")
    ftype = column_method(impl.PQftype, int, "The type OID of a column.")
    fmod = column_method(impl.PQfmod, int, "The type modifier of a column (-1 if none).")
    fsize = column_method(
        impl.PQfsize, int, "The server's size of the column's type (negative: variable)."
    )
    nparams = libpq_property(
        impl.PQnparams, int, "The number of parameters of a described statement."
    )

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

    oid_value = libpq_property(impl.PQoidValue, int, "The OID of an inserted row, 0 if none.")

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
        res = c_void_p(ptr)
        values: list[Any] = []
        col = 0
        for load in loaders:
            if formats[col]:
                length = _getlength(res, row, col)
                if length:
                    value = _bytes_at(_getvalue_addr(res, row, col), length)
                elif _getisnull(res, row, col):
                    value = None
                else:
                    value = b""
            else:
                value = _getvalue_str(res, row, col)
                if not value and _getisnull(res, row, col):
                    value = None
            values.append(value if load is None or value is None else load(value))
            col += 1
        return tuple(values)

    def columns(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return the type OIDs and the formats of all the columns, in one call."""
        _, types, formats = self._shape or self._read_shape(self._ptr())
        return types, formats

    def _read_shape(self, ptr: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        # Once per query, but every query: the untyped functions, as the row loops.
        res = c_void_p(ptr)
        columns = range(_nfields(res))
        types = tuple([_ftype(res, col) for col in columns])
        formats = tuple([_fformat(res, col) for col in columns])
        shape = self._shape = (_ntuples(res), types, formats)
        return shape

    def load_rows(
        self,
        row0: int,
        row1: int,
        loaders: Sequence[ColumnLoader],
        *,
        nul_free: Collection[int] = (),
    ) -> list[tuple[Any, ...]]:
        """Return rows ``row0`` to ``row1`` (excluded), loaded column by column.

        This is the hot path of fetching: each column is read by one
        comprehension, its format and loader chosen once. A text value costs
        one libpq call (its NULL flag is read only when the value is empty);
        a binary value three (length, address, copy), as it may contain NUL.

        :param loaders: one per column: a function called with the value's
            bytes; or, for a binary column of fixed-size values, the
            `struct.Struct` of one value (one big-endian field, such as
            ``"!i"``), to unpack the whole column in one call; or None to
            return the bytes unchanged. NULL values are None, never loaded.
        :param nul_free: the binary columns whose values never contain a NUL
            byte (text types): read like text values, with one libpq call.
        :raises IndexError: if the rows are not within the result.
        :raises ValueError: if there are not as many loaders as columns.
        """
        ptr = self._ptr()
        ntuples, _, formats = self._shape or self._read_shape(ptr)
        if not 0 <= row0 <= row1 <= ntuples:
            raise IndexError(f"rows {row0}:{row1} are out of the result's range")
        if len(loaders) != len(formats):
            raise ValueError(f"got {len(loaders)} loaders for {len(formats)} columns")
        rows = range(row0, row1)
        if not formats:
            return [()] * len(rows)
        res = c_void_p(ptr)
        getvalue, getisnull = _getvalue_str, _getisnull
        columns: list[list[Any]] = []
        for col, load in enumerate(loaders):
            if formats[col] and col not in nul_free:
                if isinstance(load, Struct):
                    columns.append(_unpack_column(_read_binary_column(res, rows, col, None), load))
                else:
                    columns.append(_read_binary_column(res, rows, col, load))
            elif load is None:
                columns.append(
                    [
                        v if (v := getvalue(res, r, col)) or not getisnull(res, r, col) else None
                        for r in rows
                    ]
                )
            else:
                if isinstance(load, Struct):
                    raise ValueError(f"column {col} is in text format: a Struct cannot load it")
                columns.append(
                    [
                        load(v)
                        if (v := getvalue(res, r, col)) or not getisnull(res, r, col)
                        else None
                        for r in rows
                    ]
                )
        # zip builds the row tuples in C, cheaper than one tuple() per row.
        return list(zip(*columns))


def _read_binary_column(res: c_void_p, rows: range, col: int, load: Loader | None) -> list[Any]:
    # A binary value may hold NUL bytes: it is copied with its length. An
    # empty one is NULL or b"", told apart by PQgetisnull.
    getlength, getvalue, bytes_at, getisnull = _getlength, _getvalue_addr, _bytes_at, _getisnull
    if load is None:
        return [
            bytes_at(getvalue(res, r, col), n)
            if (n := getlength(res, r, col))
            else (None if getisnull(res, r, col) else b"")
            for r in rows
        ]
    return [
        load(bytes_at(getvalue(res, r, col), n))
        if (n := getlength(res, r, col))
        else (None if getisnull(res, r, col) else load(b""))
        for r in rows
    ]


def _unpack_column(values: list[bytes | None], one: Struct) -> list[Any]:
    # One unpack call for the column: 5-10 times cheaper than one per value.
    # Only when every value is there and has the struct's size; otherwise
    # value by value, so NULLs stay None and a bad size raises struct.error
    # as the per-value loader would.
    size = one.size
    if values and None not in values and max(map(len, values)) == size:  # type: ignore[arg-type]
        data = b"".join(values)  # type: ignore[arg-type]
        if len(data) == size * len(values):
            return list(unpack(f"{one.format[0]}{len(values)}{one.format[1:]}", data))
    unpack_one = one.unpack
    return [None if v is None else unpack_one(v)[0] for v in values]
