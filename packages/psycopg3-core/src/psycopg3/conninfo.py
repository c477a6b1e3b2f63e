"""Conninfo strings and keyword arguments, both directions, validated by libpq.

Must not: connect, read anything but the ``PGCONNECT_TIMEOUT`` environment
variable, or build a string in which a value could inject another keyword.

Rules of this module:

1. Every string we build is parsed back by libpq (``Conninfo.parse``)
   before it is returned, so what we hand out is what libpq will read.
2. A value is written bare only if it is made of characters that cannot
   end it early; otherwise it is single-quoted with ``\\`` and ``'``
   escaped, so ``"x sslmode=disable"`` stays one value.
3. NUL is rejected in keys and values (it would truncate the C string).
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import DataError, ProgrammingError
from .pq import Conninfo

__all__ = ["make_conninfo", "conninfo_to_dict", "timeout_from_conninfo"]

_BARE_VALUE = re.compile(r"[A-Za-z0-9_.\-+/:@,%]+")
_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER = re.compile(r"\s*([+-]?[0-9]+)\s*")

# libpq waits at least this long when connect_timeout is positive (libpq 15
# rounds smaller values up, so that a timeout cannot expire almost at once).
MIN_CONNECT_TIMEOUT = 2.0
_INT_MAX = 2**31 - 1


def _quote(value: str) -> str:
    if _BARE_VALUE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _parse(conninfo: str) -> dict[str, str]:
    if "\x00" in conninfo:
        raise DataError(f"conninfo contains a NUL byte at position {conninfo.index(chr(0))}")
    options = Conninfo.parse(conninfo.encode("utf-8"))
    return {
        opt.keyword.decode("utf-8"): opt.val.decode("utf-8", "replace")
        for opt in options
        if opt.keyword is not None and opt.val is not None
    }


def _kwargs_to_str(kwargs: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if "\x00" in key:
            raise DataError(f"conninfo keyword {key!r} contains a NUL byte")
        if not _KEYWORD.fullmatch(key):
            raise ProgrammingError(f"invalid connection option name: {key!r}")
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            raise DataError(f"conninfo value of {key!r} contains a NUL byte")
        params[key] = text
    return params


def make_conninfo(conninfo: str = "", **kwargs: Any) -> str:
    """Merge a conninfo string (or URI) with keyword arguments.

    :param conninfo: ``"host=x dbname=y"`` or ``"postgresql://..."``.
    :param kwargs: options that override the string's; None values are
        ignored. Non-string values are converted with `str()`.
    :return: a conninfo string; *conninfo* itself, unchanged, if there is
        nothing to merge.
    :raises ProgrammingError: if libpq cannot parse the string or an option
        is unknown, with libpq's message.
    :raises DataError: if a key or value contains a NUL byte.
    """
    params = _kwargs_to_str(kwargs)
    if not params:
        if conninfo:
            _parse(conninfo)
        return conninfo
    merged = _parse(conninfo) if conninfo else {}
    merged.update(params)
    result = " ".join(f"{key}={_quote(value)}" for key, value in merged.items())
    _parse(result)
    return result


def conninfo_to_dict(conninfo: str = "", **kwargs: Any) -> dict[str, str]:
    """Return the options of a conninfo string merged with keyword arguments.

    Keyword arguments win; None values are ignored. Only the options given
    are returned (no defaults from the environment).

    :raises ProgrammingError: if libpq cannot parse the result.
    :raises DataError: if a key or value contains a NUL byte.
    """
    return _parse(make_conninfo(conninfo, **kwargs))


def timeout_from_conninfo(params: dict[str, str]) -> float | None:
    """Return the connection timeout in seconds that libpq would apply.

    Reads ``connect_timeout``, else the ``PGCONNECT_TIMEOUT`` environment
    variable. Unset, zero or negative means no timeout (None); a positive
    value below 2 counts as 2 seconds, as libpq does.

    :raises ProgrammingError: if the value is not an integer.
    """
    value = params.get("connect_timeout")
    source = "connect_timeout"
    if value is None:
        value = os.environ.get("PGCONNECT_TIMEOUT")
        source = "PGCONNECT_TIMEOUT"
        if value is None:
            return None
    match = _INTEGER.fullmatch(value)
    if match is None or abs(int(match.group(1))) > _INT_MAX:
        raise ProgrammingError(f"invalid integer value {value!r} for {source}")
    seconds = int(match.group(1))
    if seconds <= 0:
        return None
    return max(float(seconds), MIN_CONNECT_TIMEOUT)
