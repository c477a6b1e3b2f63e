"""The text format of PostgreSQL arrays: quoting elements and parsing ``{...}`` literals.

Must not: know any element type (elements arrive as bytes already dumped, or
leave as bytes for a loader), talk to libpq, or import any concurrency
framework.

Rules:

1. An element is written bare unless the server would read it differently:
   empty, the word NULL in any case, or containing a brace, the delimiter,
   a double quote, a backslash or whitespace (which the server would trim).
   Such an element is double-quoted, with ``"`` and ``\\`` backslash-escaped.
2. A bare NULL is a NULL element; a quoted "NULL" is the string.
3. The server may prefix the literal with its bounds when they don't start
   at 1 (``[0:2]={1,2,3}``): the bounds are dropped, the list starts at 0.
4. Only the box type uses ``;`` as its delimiter; every other built-in uses
   ``,``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .. import errors
from .._adapt.base import Buffer

__all__ = ["quote_element", "parse_array"]

_needs_quotes = re.compile(rb'[{},;"\\\s]|^$|^[Nn][Uu][Ll][Ll]$').search
_escape = re.compile(rb'(["\\])')
_unescape = re.compile(rb"\\(.)", re.DOTALL)
_OPEN, _QUOTE = ord("{"), ord('"')


def quote_element(data: Buffer) -> Buffer:
    """Return an element's bytes as they must appear inside an array literal."""
    if _needs_quotes(data) is None:
        return data
    return b'"' + _escape.sub(rb"\\\1", bytes(data)) + b'"'


_Tokens = list[tuple[bytes, bytes, bytes, bytes]]
_tokenizers: dict[bytes, Callable[[bytes], _Tokens]] = {}


def _tokenizer(delimiter: bytes) -> Callable[[bytes], _Tokens]:
    """Return a function splitting a literal into (open, close, quoted, bare) tokens.

    Delimiters match no group: ``findall`` skips over them.
    """
    findall = _tokenizers.get(delimiter)
    if findall is None:
        bare = rb'([^{}"' + re.escape(delimiter) + rb"]+)"
        pattern = rb'(\{)|(\})|("(?:[^"\\]|\\.)*")|' + bare
        findall = _tokenizers[delimiter] = re.compile(pattern, re.DOTALL).findall
    return findall


def parse_array(data: bytes, load: Callable[[bytes], Any], delimiter: bytes = b",") -> list[Any]:
    """Return the (nested) list of an array's text, its elements passed through *load*.

    :raises DataError: if *data* is not an array literal.
    """
    if data[:1] == b"[":
        # Bounds decoration: "[0:2]={...}" or "[1:1][0:1]={{...}}".
        data = data[data.find(b"=") + 1 :]
    if data[:1] != b"{" or data[-1:] != b"}":
        raise errors.DataError(f"malformed array literal: {data[:50]!r}")
    # Fast path: one dimension, no quoted element (the common case for numbers).
    if data[1] != _OPEN and _QUOTE not in data:
        inner = data[1:-1]
        if not inner:
            return []
        return [None if item == b"NULL" else load(item) for item in inner.split(delimiter)]
    return _parse_nested(data, load, delimiter)


def _parse_nested(data: bytes, load: Callable[[bytes], Any], delimiter: bytes) -> list[Any]:
    stack: list[list[Any]] = []
    current: list[Any] = []
    for opening, _, quoted, bare in _tokenizer(delimiter)(data):
        if bare:
            current.append(None if bare == b"NULL" else load(bare))
        elif quoted:
            item = quoted[1:-1]
            if b"\\" in item:
                item = _unescape.sub(rb"\1", item)
            current.append(load(item))
        elif opening:
            level: list[Any] = []
            current.append(level)
            stack.append(current)
            current = level
        elif stack:
            current = stack.pop()
            if not stack:
                return current[0]  # type: ignore[no-any-return]
        else:
            break
    raise errors.DataError(f"malformed array literal: {data[:50]!r}")
