"""Accessor factories for the libpq wrappers: a read that is one libpq call.

Must not: call libpq itself, or hold any state. The accessors they make are
the hand-written ones they replace, written once: a plain ``property`` or
function whose body calls the wrapper's ``_ptr()`` guard (rule 1 of
``pgconn``), the libpq function, then a conversion. They cost what a
hand-written accessor costs (one Python frame, no descriptor of our own).

The libpq function is bound when the class is made: ``_libpq`` declares its
functions once, at import, and never rebinds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ._cstrings import check_index

__all__ = ["Reading", "libpq_property", "column_method", "or_empty"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Wrapper(Protocol):
    # PGconn, PGresult, PGcancelConn: their pointer, or an error if it is gone.
    def _ptr(self) -> int: ...


class Reading(Protocol[T_co]):
    """A read-only attribute of type ``T_co``, as type checkers see `libpq_property`."""

    def __get__(self, instance: Any, owner: Any = None, /) -> T_co: ...


def libpq_property(func: Any, convert: Callable[[Any], T], doc: str) -> Reading[T]:
    """A read-only property: ``convert(func(self._ptr()))``.

    :param func: a libpq function taking the wrapper's pointer only.
    :param convert: makes the Python value of what libpq returned.
    """

    def read(self: _Wrapper) -> T:
        return convert(func(self._ptr()))

    return property(read, doc=doc)


def column_method(func: Any, convert: Callable[[Any], T], doc: str) -> Callable[[Any, int], T]:
    """A method ``(column) -> convert(func(self._ptr(), column))``, the column index checked.

    :param func: a libpq function taking the result's pointer and a column number.
    """

    def read_column(self: _Wrapper, column: int) -> T:
        return convert(func(self._ptr(), check_index(column, "column")))

    read_column.__doc__ = doc
    return read_column


def or_empty(value: bytes | None) -> bytes:
    """A string libpq returned, b"" for NULL."""
    return value or b""
