"""Small libpq objects and functions: notifications, conninfo, bytea, version.

Must not: hold connections, or leave a libpq allocation unfreed.
"""

from __future__ import annotations

from ctypes import byref, c_size_t, c_void_p, string_at
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import OperationalError, ProgrammingError
from . import _libpq as impl
from ._cstrings import check_nul

if TYPE_CHECKING:
    from .pgconn import PGconn
    from .pgresult import PGresult

__all__ = [
    "PGnotify",
    "ConninfoOption",
    "Conninfo",
    "unescape_bytea",
    "version",
    "version_string",
    "error_message",
]


class PGnotify(NamedTuple):
    """A notification received after LISTEN."""

    relname: bytes
    be_pid: int
    extra: bytes


class ConninfoOption(NamedTuple):
    """One connection option, as libpq describes it (``PQconninfoOption``)."""

    keyword: bytes | None
    envvar: bytes | None
    compiled: bytes | None
    val: bytes | None
    label: bytes | None
    dispchar: bytes | None
    dispsize: int


def take_options(array: Any, what: str) -> list[ConninfoOption]:
    """Read a ``PQconninfoOption`` array (ended by a NULL keyword), then free it.

    :param what: names the array in the MemoryError raised if it is NULL
        (libpq could not allocate it).
    """
    if not array:
        raise MemoryError(f"libpq could not allocate {what}")
    try:
        options: list[ConninfoOption] = []
        i = 0
        while True:
            opt = array[i]
            if opt.keyword is None:
                return options
            options.append(
                ConninfoOption(
                    opt.keyword, opt.envvar, opt.compiled, opt.val, opt.label, opt.dispchar,
                    opt.dispsize,
                )
            )  # fmt: skip
            i += 1
    finally:
        impl.PQconninfoFree(array)


class Conninfo:
    """The connection options libpq knows, and the parsing of conninfo strings."""

    @classmethod
    def defaults(cls) -> list[ConninfoOption]:
        """Return every option with its default (from env vars or compiled in).

        :raises MemoryError: if libpq cannot allocate the list.
        """
        return take_options(impl.PQconndefaults(), "the conninfo defaults")

    @classmethod
    def parse(cls, conninfo: bytes) -> list[ConninfoOption]:
        """Parse a conninfo string or URI the way libpq's connect would.

        :return: every option libpq knows, ``val`` None for those not given.
        :raises ProgrammingError: with libpq's message if the string is invalid.
        :raises DataError: if the string contains a NUL byte.
        """
        check_nul(conninfo, "conninfo")
        errmsg = c_void_p()
        array = impl.PQconninfoParse(conninfo, byref(errmsg))
        if not array and errmsg.value:
            try:
                message = string_at(errmsg.value).decode("utf-8", "replace").strip()
            finally:
                impl.PQfreemem(errmsg.value)
            raise ProgrammingError(f"invalid connection string: {message}")
        return take_options(array, "the conninfo options")


def unescape_bytea(data: bytes) -> bytes:
    """Decode a bytea value from its text form (hex or escape format).

    :raises DataError: if *data* contains a NUL byte (never valid there).
    """
    check_nul(data, "bytea text")
    length = c_size_t()
    ptr = impl.PQunescapeBytea(data, byref(length))
    if not ptr:
        raise MemoryError("libpq could not unescape the bytea value")
    try:
        return string_at(ptr, length.value)
    finally:
        impl.PQfreemem(ptr)


def version() -> int:
    """The version of the loaded libpq, as a number like 150018 for 15.18."""
    return int(impl.PQlibVersion())


def version_string(number: int | None = None) -> str:
    """Format a libpq or server version number as "15.18" (default: libpq's)."""
    if number is None:
        number = version()
    return f"{number // 10000}.{number % 10000}"


def error_message(obj: PGconn | PGresult) -> str:
    """Return the error message of a connection or result as a stripped str."""
    try:
        raw = obj.error_message
    except OperationalError as exc:
        return str(exc)
    return raw.decode("utf-8", "replace").strip()
