"""The COPY data formats: text and binary rows, both ways, and the statement's parameters.

Pure functions and small parsers over bytes, used by ``psycopg3._copy``;
must not do I/O or import a concurrency framework.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from . import errors
from ._adapt.base import Buffer, PyFormat
from ._arguments import wrong_argument
from ._queries import (
    Params,
    Query,
    _named_values,
    _nul_error,
    _parse_query,
    _placeholder,
    _positional_values,
)
from ._transformer import Transformer
from .sql import Composable, Literal
from .types._array_binary import pack_array
from .types._numeric_binary import decimal_to_numeric
from .types.array import binary_layout

if TYPE_CHECKING:
    pass


# -- text format -----------------------------------------------------------

_NULL_TEXT = b"\\N"
_needs_escape = re.compile(rb"[\\\t\n\r]").search
_escape_sequence = re.compile(rb"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)", re.DOTALL)
_UNESCAPED = {
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}


def escape_text(data: bytes) -> bytes:
    """Escape a value for a text COPY row: backslash, tab, newline and CR."""
    return (
        data.replace(b"\\", b"\\\\")
        .replace(b"\t", b"\\t")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
    )


def _unescape_one(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code[0] == 0x78 and len(code) > 1:  # \xHH
        return bytes([int(code[1:], 16)])
    if code.isdigit():  # \OOO, octal
        return bytes([int(code, 8) & 0xFF])
    return _UNESCAPED.get(code, code)


def parse_text_row(line: bytes) -> list[bytes | None]:
    """Split a text COPY row (without its newline) into its unescaped values."""
    return [
        None
        if field == _NULL_TEXT
        else _escape_sequence.sub(_unescape_one, field)
        if b"\\" in field
        else field
        for field in line.split(b"\t")
    ]


class TextParser:
    """Cut a stream of text COPY data into rows, whatever the block boundaries."""

    def __init__(self) -> None:
        self._rest = b""

    def parse(self, block: bytes) -> list[list[bytes | None]]:
        data = self._rest + block if self._rest else block
        lines = data.split(b"\n")
        self._rest = lines.pop()  # what follows the last newline: an incomplete row
        return [parse_text_row(line) for line in lines]


# -- binary format ---------------------------------------------------------

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: The signature, the flags (no OIDs) and the length of the header extension.
BINARY_HEADER = BINARY_SIGNATURE + struct.pack("!ii", 0, 0)
BINARY_TRAILER = struct.pack("!h", -1)
_int2 = struct.Struct("!h")
_int4 = struct.Struct("!i")
_pack_int2 = _int2.pack
_pack_int4 = _int4.pack
_unpack_int2 = _int2.unpack_from
_unpack_int4 = _int4.unpack_from
_NULL_BINARY = _pack_int4(-1)
_OIDS_FLAG = 1 << 16


class BinaryParser:
    """Cut a stream of binary COPY data into rows of raw values."""

    def __init__(self) -> None:
        self._rest = b""
        self._header_read = False

    def parse(self, block: bytes) -> list[list[bytes | None]]:
        data = self._rest + block if self._rest else block
        size = len(data)
        pos = 0
        if not self._header_read:
            if size < len(BINARY_HEADER):
                self._rest = data
                return []
            if not data.startswith(BINARY_SIGNATURE):
                raise errors.DataError(f"not binary COPY data: it starts with {data[:11]!r}")
            flags, extension = struct.unpack_from("!ii", data, len(BINARY_SIGNATURE))
            if flags & _OIDS_FLAG:
                raise errors.NotSupportedError("binary COPY data with OIDs is not supported")
            pos = len(BINARY_HEADER) + extension
            if size < pos:
                self._rest = data
                return []
            self._header_read = True
        rows: list[list[bytes | None]] = []
        while pos + 2 <= size:
            (nfields,) = _unpack_int2(data, pos)
            if nfields == -1:  # the trailer
                pos += 2
                break
            at = pos + 2
            row: list[bytes | None] = []
            for _ in range(nfields):
                if at + 4 > size:
                    break
                (length,) = _unpack_int4(data, at)
                at += 4
                if length < 0:
                    row.append(None)
                    continue
                if at + length > size:
                    break
                row.append(data[at : at + length])
                at += length
            else:
                rows.append(row)
                pos = at
                continue
            break  # an incomplete row: wait for the rest
        self._rest = data[pos:]
        return rows


def format_binary_row(values: Sequence[Buffer | None]) -> bytes:
    """Return a binary COPY tuple of values already dumped in binary."""
    parts: list[Buffer] = [_pack_int2(len(values))]
    for value in values:
        if value is None:
            parts.append(_NULL_BINARY)
        else:
            parts.append(_pack_int4(len(value)))
            parts.append(value)
    return b"".join(parts)


INT2_OID, INT4_OID, INT8_OID, OID_OID = 21, 23, 20, 26
FLOAT4_OID, FLOAT8_OID, NUMERIC_OID, JSONB_OID = 700, 701, 1700, 3802
# Types whose binary form is their text: text, varchar, bpchar, name, json.
_TEXT_LIKE = frozenset((25, 1043, 1042, 19, 114))
_NUMBER_STRUCTS = {
    INT2_OID: struct.Struct("!h"),
    INT4_OID: struct.Struct("!i"),
    INT8_OID: struct.Struct("!q"),
    OID_OID: struct.Struct("!I"),
    FLOAT4_OID: struct.Struct("!f"),
    FLOAT8_OID: struct.Struct("!d"),
}
_FLOAT_OIDS = (FLOAT4_OID, FLOAT8_OID)


def type_name(tx: Transformer, oid: int) -> str:
    """The name of a type OID for messages."""
    info = tx.adapters.types.get(oid)
    if info is not None:
        return info.name
    for element in tx.adapters.types:
        if element.array_oid == oid:
            return f"{element.name}[]"
    return f"OID {oid}"


class BinaryColumn:
    """Dump values of one column of a binary COPY as exactly its declared type.

    The server reads binary COPY data with the column's own receive function:
    an int2 sent to an int4 column is an error, not a conversion. Values whose
    binary dumper gives the declared type are dumped as usual; ints and
    floats are packed to the declared width; strings go to any text-like
    type; lists are packed as arrays of the declared element type. Anything
    else raises ``DataError`` naming the column.
    """

    def __init__(self, tx: Transformer, oid: int, column: int):
        self._tx = tx
        self.oid = oid
        self._column = column
        self._number = _NUMBER_STRUCTS.get(oid)
        self._element: BinaryColumn | None = None
        element_oid = next((i.oid for i in tx.adapters.types if i.array_oid == oid), 0)
        if element_oid:
            self._element = BinaryColumn(tx, element_oid, column)

    def __call__(self, value: Any) -> Buffer:
        cls = type(value)
        number = self._number
        if number is not None and (cls is int or (cls is float and self.oid in _FLOAT_OIDS)):
            try:
                return number.pack(value)
            except (struct.error, OverflowError):
                raise errors.DataError(
                    f"COPY column {self._column + 1}: {value!r} is out of range for"
                    f" {type_name(self._tx, self.oid)}"
                ) from None
        if cls is list and self._element is not None:
            return self._dump_array(value)
        if cls is int and self.oid == NUMERIC_OID:
            return decimal_to_numeric(Decimal(value))
        dumper = self._tx.get_dumper(value, PyFormat.BINARY)
        if dumper.oid == self.oid or (dumper.oid in _TEXT_LIKE and self.oid in _TEXT_LIKE):
            return dumper.dump(value)
        if self.oid == JSONB_OID and dumper.oid in _TEXT_LIKE:
            return b"\x01" + bytes(dumper.dump(value))  # jsonb's binary version 1
        raise errors.DataError(
            f"COPY column {self._column + 1}: cannot write {cls.__name__} as"
            f" {type_name(self._tx, self.oid)} in binary format (its binary dumper gives"
            f" {type_name(self._tx, dumper.oid)}): pass a value of a matching type,"
            " or use a text COPY"
        )

    def _dump_array(self, value: list[Any]) -> bytes:
        element = self._element
        assert element is not None
        dims, leaves = binary_layout(value)
        items = [None if x is None else element(x) for x in leaves]
        return pack_array(element.oid, dims, items)


# -- the statement -----------------------------------------------------------


def merge_params(query: Query, params: Params | None, tx: Transformer) -> bytes:
    """Return the statement with its parameters written in as SQL literals.

    COPY takes no bind parameters: the values become literals, escaped by the
    connection (``sql.Literal``). Placeholders follow the rules of
    ``psycopg3._queries``; mistakes raise ``ProgrammingError`` before anything
    is sent.
    """
    codec, handler = tx.encoding.python_codec, tx.encoding.errors
    if isinstance(query, Composable):
        data = query.as_bytes(tx, escape_percent=params is not None)
    elif isinstance(query, str):
        data = query.encode(codec, handler)
    elif isinstance(query, bytes):
        data = query
    elif hasattr(query, "as_bytes"):
        data = query.as_bytes(tx)
    else:
        raise wrong_argument("copy() statement", query, "a str, bytes or psycopg3.sql.Composable")
    if params is None:
        if b"\x00" in data:
            raise _nul_error()
        return data
    parsed = _parse_query(data, codec, handler)
    if parsed.names is None:
        values = list(_positional_values(parsed, params))
    else:
        values = _named_values(parsed, params)
    literals = [Literal(value).as_bytes(tx) for value in values]
    by_name = {name: n for n, name in enumerate(parsed.names or ())}
    chunks: list[bytes] = []
    last = position = 0
    for match in _placeholder.finditer(data):
        start, end = match.span()
        chunks.append(data[last:start])
        last = end
        if match.group(3) == b"%" and match.group(1) is None:
            chunks.append(b"%")
        elif match.group(1) is None:
            chunks.append(literals[position])
            position += 1
        else:
            chunks.append(literals[by_name[match.group(2).decode(codec, handler)]])
    chunks.append(data[last:])
    return b"".join(chunks)


def abort_message(exc: BaseException, codec: str) -> bytes:
    """The reason given to the server for aborting a COPY: the exception, named."""
    text = f"{type(exc).__qualname__} raised in the COPY block"
    detail = str(exc).replace("\x00", "")
    if detail:
        text += f": {detail[:200]}"
    return text.encode(codec, "replace")


#: Python types whose text form never holds a tab, newline, CR or backslash:
#: their values skip the escaping check.
_NEVER_ESCAPED = frozenset([int, float, bool, Decimal, date, datetime, time, timedelta, UUID])
#: A column's text dumping, cached by Python type: (dump function, needs the escape check).
TextDump = tuple[Callable[[Any], Buffer], bool]


def _text_dump_for(tx: Transformer, value: Any, cache: dict[type, TextDump]) -> TextDump:
    """Find how to dump ``value`` in text; cache it if its type alone decides."""
    dumper, by_type = tx.get_dumper_for_type(value, PyFormat.TEXT)
    entry = (dumper.dump, type(value) not in _NEVER_ESCAPED)
    # An int's dumper depends on its size (int2, int4, int8, numeric), its
    # text never does: the type's parameter OID plays no part in COPY.
    if by_type or type(value) is int:
        cache[type(value)] = entry
    return entry


def format_text_row(tx: Transformer, values: Sequence[Any], cache: dict[type, TextDump]) -> bytes:
    # The hot loop of write_row(): one dict lookup per value in the usual case.
    fields: list[bytes] = []
    append = fields.append
    for n, value in enumerate(values):
        if value is None:
            append(_NULL_TEXT)
            continue
        try:
            entry = cache.get(type(value)) or _text_dump_for(tx, value, cache)
            data = entry[0](value)
        except (errors.ProgrammingError, errors.DataError) as ex:
            raise in_column(ex, n) from ex
        if type(data) is not bytes:
            data = bytes(data)
        append(escape_text(data) if entry[1] and _needs_escape(data) else data)
    return b"\t".join(fields) + b"\n"


def in_column(ex: errors.Error, column: int) -> errors.Error:
    """The same error, its message naming the COPY column of the value."""
    if str(ex).startswith("COPY column"):
        return ex
    return type(ex)(f"COPY column {column + 1}: {ex}")
