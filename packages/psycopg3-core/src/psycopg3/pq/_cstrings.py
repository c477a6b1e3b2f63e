"""Build and check every C string, C int and C array handed to libpq.

Must not: call libpq, or let a value reach C that C would silently change.

ctypes does neither of the checks C needs (see RELIABILITY.md, 3.3):

1. A ``c_char_p`` stops at the first NUL, so a query, a name, a conninfo
   value or a *text* parameter with a NUL would be silently truncated. They
   are rejected with ``DataError``. Binary parameters travel with an explicit
   length and may contain NUL.
2. A Python int stored in a ``c_int`` (or ``c_uint``) wraps around without
   error: a 4 GiB + 5 bytes value would be announced as 5 bytes long and the
   rest read as further protocol messages. Lengths, counts and indexes are
   checked against the C limits before the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from ctypes import Array, c_char_p, c_int, c_uint

from ..errors import DataError, ProgrammingError

INT_MAX = 2**31 - 1
OID_MAX = 2**32 - 1

# The arrays handed to PQsendQueryParams and friends; None stands for NULL.
ParamArrays = tuple[
    int,
    "Array[c_uint] | None",
    "Array[c_char_p] | None",
    "Array[c_int] | None",
    "Array[c_int] | None",
]


def check_nul(value: bytes, what: str) -> bytes:
    """Return *value* unchanged, or raise DataError if it contains a NUL byte.

    :param what: names the value in the message ("query", "conninfo value"...).
    """
    if b"\x00" in value:
        raise DataError(f"{what} contains a NUL byte at position {value.index(0)}")
    return value


def check_length(length: int, what: str) -> int:
    """Return *length*, or raise DataError if a C int cannot hold it."""
    if length > INT_MAX:
        raise DataError(f"{what} is {length} bytes long: the most libpq can send is {INT_MAX}")
    return length


def check_index(value: int, what: str) -> int:
    """Return *value*, or raise DataError if it is not a valid C int index."""
    if not 0 <= value <= INT_MAX:
        raise DataError(f"{what} {value} is out of the range of a C int index")
    return value


def _bad_param(index: int, value: bytes, binary: bool) -> DataError:
    # Called only on the error path: say which check failed for which $n.
    what = f"parameter ${index + 1}"
    try:
        check_length(len(value), what)
        if not binary:
            check_nul(value, what)
    except DataError as exc:
        return exc
    return DataError(f"{what} is invalid")  # pragma: no cover - unreachable


def build_oids(types: Sequence[int], nparams: int) -> Array[c_uint]:
    """Return the ``Oid *`` array of a query's parameter types."""
    if len(types) != nparams:
        raise ProgrammingError(f"got {len(types)} parameter types for {nparams} parameters")
    if types and (min(types) < 0 or max(types) > OID_MAX):
        raise DataError(f"parameter types must be OIDs between 0 and {OID_MAX}")
    return (c_uint * nparams)(*types)


def build_params(
    values: Sequence[bytes | None],
    types: Sequence[int] | None,
    formats: Sequence[int] | None,
) -> ParamArrays:
    """Return ``(nparams, oids, values, lengths, formats)`` for libpq.

    Lengths and formats are None (NULL for libpq) when every parameter is in
    text format: libpq then measures each value itself.

    :raises DataError: for a text parameter containing NUL, a value longer
        than a C int can say, a format other than 0 or 1.
    :raises ProgrammingError: if the types or formats do not match the values.
    """
    nparams = len(values)
    if nparams > INT_MAX:  # pragma: no cover - needs 16 GiB of list
        raise DataError(f"{nparams} parameters: the most libpq can send is {INT_MAX}")
    oids = None if types is None else build_oids(types, nparams)
    if not nparams:
        return 0, oids, None, None, None

    if formats is None or not any(formats):
        # All text: the common case, kept to one pass over the values.
        for i, value in enumerate(values):
            if value is not None and (len(value) > INT_MAX or b"\x00" in value):
                raise _bad_param(i, value, False)
        return nparams, oids, (c_char_p * nparams)(*values), None, None

    if len(formats) != nparams:
        raise ProgrammingError(f"got {len(formats)} parameter formats for {nparams} parameters")
    lengths = []
    for i, (value, fmt) in enumerate(zip(values, formats)):
        if fmt != 0 and fmt != 1:
            raise DataError(f"parameter ${i + 1} has format {fmt}: it must be 0 or 1")
        if value is None:
            lengths.append(0)
            continue
        length = len(value)
        if length > INT_MAX or (not fmt and b"\x00" in value):
            raise _bad_param(i, value, bool(fmt))
        lengths.append(length)
    return (
        nparams,
        oids,
        (c_char_p * nparams)(*values),
        (c_int * nparams)(*lengths),
        (c_int * nparams)(*formats),
    )


def check_result_format(result_format: int) -> int:
    """Return the result format, or raise DataError if it is not 0 or 1."""
    if result_format != 0 and result_format != 1:
        raise DataError(f"result format {result_format} is invalid: it must be 0 or 1")
    return result_format
