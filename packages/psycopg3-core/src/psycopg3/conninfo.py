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
4. An error never shows a password. libpq's parse errors quote the token
   they choke on, or a whole URI: every password the string holds (in a
   URI's user info or query, or after ``password=``) is masked with
   ``***`` in the message, and the unmasked error is not chained.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

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


# The user info of a URI ends at the first "@" unless a "/" comes first.
_URI_USERINFO = re.compile(r"postgres(?:ql)?://([^@/]*)@")
_URI_PASSWORD = re.compile(r"[?&]password=([^&]*)")
# A keyword-form password: quoted (maybe unterminated), or bare; the bare
# words after it that hold no "=" are what libpq reports as missing one.
_KEYWORD_PASSWORD = re.compile(
    r"(?:^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'?|(\S*(?:\s+[^\s=]+(?=\s|$))*))"
)


def _passwords_in(conninfo: str) -> Iterator[str]:
    found: list[str] = []
    userinfo = _URI_USERINFO.match(conninfo)
    if userinfo is not None and ":" in userinfo.group(1):
        found.append(userinfo.group(1).split(":", 1)[1])
    found.extend(match.group(1) for match in _URI_PASSWORD.finditer(conninfo))
    for match in _KEYWORD_PASSWORD.finditer(conninfo):
        quoted, bare = match.groups()
        found.append(bare if quoted is None else quoted)
        if quoted is not None:
            found.append(re.sub(r"\\(.)", r"\1", quoted))
    for secret in found:
        yield from (secret, unquote(secret), *secret.split())


def _masked(message: str, conninfo: str) -> str:
    # Longest first: a shorter secret may be part of a longer one.
    for secret in sorted(set(_passwords_in(conninfo)), key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message


def _parse(conninfo: str) -> dict[str, str]:
    if "\x00" in conninfo:
        raise DataError(f"conninfo contains a NUL byte at position {conninfo.index(chr(0))}")
    masked: str | None = None
    try:
        options = Conninfo.parse(conninfo.encode("utf-8"))
    except ProgrammingError as ex:
        masked = _masked(str(ex), conninfo)
        if masked == str(ex):
            raise
    if masked is not None:
        # Raised outside the except block: chaining would keep the secret
        # in __context__.
        raise ProgrammingError(masked)
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
    if not isinstance(conninfo, str):
        raise ProgrammingError(
            f"the connection string must be a str, got {type(conninfo).__name__}:"
            " pass options as keyword arguments (host=..., dbname=...)"
        )
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
