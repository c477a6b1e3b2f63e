"""Adapters of text and binary strings: str <-> text-like types, bytes <-> bytea.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A ``str`` is passed in text format with OID 0 ("unknown"): the server
   types it from the query, so the same string can fill a text, varchar,
   date or json column. (``%b`` passes it as ``text``: binary data with an
   unknown type would be handed to the inferred type's binary reader.)
2. PostgreSQL text cannot contain NUL: such a string is a ``DataError``
   before anything is sent.
3. ``bytes``, ``bytearray`` and ``memoryview`` are passed as bytea in binary
   format: the bytes themselves, no escaping, NULs included.
4. Text is decoded with the connection's encoding; values of types without a
   loader (OID 0 fallback) are ``str`` in text format and ``bytes`` in binary.
"""

from __future__ import annotations

import binascii
import codecs
import re
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import AdaptContext, Buffer, Loader, LoadFunction, context_codec
from ..pq import Format
from ._bases import BuiltinDumper, FunctionLoader, register_dumpers, register_loaders

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

BYTEA_OID, CHAR_OID, NAME_OID, TEXT_OID = 17, 18, 19, 25
UNKNOWN_OID, BPCHAR_OID, VARCHAR_OID = 705, 1042, 1043
_TEXT_OIDS = (CHAR_OID, NAME_OID, TEXT_OID, UNKNOWN_OID, BPCHAR_OID, VARCHAR_OID)


class _StrDumper(BuiltinDumper):
    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._codec, self._errors = context_codec(context)

    def dump(self, obj: Any) -> Buffer:
        if "\x00" in obj:
            raise errors.DataError(
                "PostgreSQL text fields cannot contain NUL (0x00) characters"
                f" (found at index {obj.index(chr(0))}); pass bytes to store binary data"
            )
        try:
            return obj.encode(self._codec, self._errors)  # type: ignore[no-any-return]
        except UnicodeEncodeError as ex:
            raise errors.DataError(
                f"cannot encode {obj[ex.start : ex.end]!r} in the client encoding {self._codec}"
            ) from None


class StrDumper(_StrDumper, oid=0):
    """Dump a str in text format with an unknown type, for the server to infer."""


class StrBinaryDumper(_StrDumper, oid=TEXT_OID, format=Format.BINARY):
    """Dump a str as text in binary format (the same bytes, typed text)."""


class BytesDumper(BuiltinDumper, oid=BYTEA_OID):
    """Dump bytes-like objects as bytea in text format (hex escape)."""

    def dump(self, obj: Any) -> Buffer:
        # Checked before the hex copy (twice the size) is made.
        _check_bytea_size(obj, 2)
        return b"\\x" + binascii.hexlify(obj)


class BytesBinaryDumper(BuiltinDumper, oid=BYTEA_OID, format=Format.BINARY):
    """Dump bytes-like objects as bytea in binary format (the bytes themselves)."""

    def dump(self, obj: Any) -> Buffer:
        _check_bytea_size(obj, 1)
        return obj if type(obj) is bytes else bytes(obj)


_INT_MAX = 2**31 - 1


def _check_bytea_size(obj: Any, expansion: int) -> None:
    # libpq announces a parameter's length as a C int: a longer value is
    # refused here, before a copy of gigabytes is made for nothing.
    nbytes = memoryview(obj).nbytes if type(obj) is not bytes else len(obj)
    if nbytes * expansion + 2 > _INT_MAX:
        hex_note = " once hex-encoded" if expansion > 1 else ""
        raise errors.DataError(
            f"a bytea value of {nbytes} bytes is too large to send{hex_note}:"
            f" a parameter holds at most {_INT_MAX} bytes"
        )


class TextLoader(Loader):
    """Load text-like values (any format) as str, in the connection's encoding."""

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        self._codec, self._errors = context_codec(context)

    def load(self, data: Buffer) -> Any:
        return bytes(data).decode(self._codec, self._errors)

    def load_function(self) -> LoadFunction:
        codec, errors = self._codec, self._errors
        if errors == "strict" and codecs.lookup(codec).name == "utf-8":
            return bytes.decode  # decode()'s defaults: no Python frame per value

        def load(data: bytes) -> Any:
            return data.decode(codec, errors)

        return load


class TextBinaryLoader(TextLoader):
    """Load text-like values sent in binary format (the same bytes as text)."""

    format = Format.BINARY

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        # Text never contains NUL, so the row loop may read these values as C
        # strings; not "char", whose empty value is sent as one NUL byte.
        self.nul_free = oid != CHAR_OID


# bytea's escape output format (bytea_output = escape): '\\' and '\ooo' octal.
_bytea_escape = re.compile(rb"\\(\\|[0-3][0-7][0-7])")


def _unescape_byte(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    return b"\\" if code == b"\\" else bytes((int(code, 8),))


def load_bytea_text(data: bytes) -> bytes:
    """Return the bytes of a bytea value in text format (hex or escape output)."""
    if data[:2] == b"\\x":
        return binascii.unhexlify(data[2:])
    return _bytea_escape.sub(_unescape_byte, data)


class ByteaLoader(FunctionLoader, function=load_bytea_text):
    """Load bytea in text format as bytes."""


class ByteaBinaryLoader(FunctionLoader, function=bytes, format=Format.BINARY):
    """Load bytea (or any type's binary value, as a fallback) as bytes."""


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the string adapters on *adapters* (str as text, bytes as binary)."""
    dumpers = [(cls, BytesDumper, BytesBinaryDumper) for cls in (bytes, bytearray, memoryview)]
    register_dumpers(adapters, [(str, StrBinaryDumper, StrDumper), *dumpers])
    # 0: the fallback for types without a loader of their own.
    loaders = [(oid, TextLoader, TextBinaryLoader) for oid in _TEXT_OIDS]
    register_loaders(adapters, [*loaders, (BYTEA_OID, ByteaLoader, ByteaBinaryLoader)])
    register_loaders(adapters, [(0, TextLoader, ByteaBinaryLoader)])
