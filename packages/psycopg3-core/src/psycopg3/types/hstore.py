"""Adapters of hstore (the extension's key/value type): ``dict`` <-> hstore.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. hstore is an extension: its OID differs per database. Register it from
   the catalog: ``register_hstore(TypeInfo.fetch(conn, "hstore"), conn)``.
   After that, on that context, every ``dict`` is dumped as an hstore (keys
   ``str``, values ``str`` or None) and hstore values load as dicts.
2. Text: ``"key"=>"value", "k2"=>NULL``, keys and values always quoted, ``"``
   and ``\\`` escaped with a backslash. Binary: a 4-byte count, then each key
   and value as a 4-byte length (-1 for a NULL value) and the bytes.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import AdaptContext, Buffer, Dumper, Loader, context_codec
from .._adapt.global_map import adapters_of
from .._adapt.typeinfo import TypeInfo
from ..pq import Format
from .array import register_array

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["register_hstore", "HstoreDumper", "HstoreLoader"]

_pack_int4 = struct.Struct("!i").pack
_unpack_int4 = struct.Struct("!i").unpack_from

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# One pair, and what follows it: a comma or the end.
_PAIR = re.compile(rf"\s*{_QUOTED}\s*=>\s*(?:{_QUOTED}|(NULL))\s*(,|$)", re.DOTALL | re.IGNORECASE)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _escape(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HstoreDumper(Dumper):
    """Dump a dict of str to str or None as hstore (text format).

    Subclasses made by `register_hstore()` set ``oid``.
    """

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._codec, self._errors = context_codec(context)

    def dump(self, obj: Any) -> Buffer:
        parts = []
        for key, value in obj.items():
            _check_pair(key, value)
            parts.append(f"{_escape(key)}=>{'NULL' if value is None else _escape(value)}")
        return ", ".join(parts).encode(self._codec, self._errors)


class HstoreBinaryDumper(HstoreDumper):
    """Dump a dict of str to str or None as hstore (binary format)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        parts = [_pack_int4(len(obj))]
        codec, errors_ = self._codec, self._errors
        for key, value in obj.items():
            _check_pair(key, value)
            data = key.encode(codec, errors_)
            parts += (_pack_int4(len(data)), data)
            if value is None:
                parts.append(_pack_int4(-1))
            else:
                data = value.encode(codec, errors_)
                parts += (_pack_int4(len(data)), data)
        return b"".join(parts)


def _check_pair(key: Any, value: Any) -> None:
    if not isinstance(key, str) or not (value is None or isinstance(value, str)):
        raise errors.DataError(
            f"hstore holds str keys and str or None values; got {key!r}: {value!r}"
        )
    if "\x00" in key or (value is not None and "\x00" in value):
        raise errors.DataError(f"hstore keys and values cannot contain NUL; got {key!r}")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text) if "\\" in text else text


class HstoreLoader(Loader):
    """Load hstore (text format) as a dict."""

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        self._codec, self._errors = context_codec(context)

    def load(self, data: Buffer) -> Any:
        text = bytes(data).decode(self._codec, self._errors)
        result: dict[str, str | None] = {}
        pos, end = 0, len(text)
        if not text.strip():
            return result
        while pos < end:
            match = _PAIR.match(text, pos)
            if match is None:
                raise errors.DataError(f"malformed hstore literal at {pos}: {text[:200]!r}")
            key, value, null, _ = match.groups()
            result[_unescape(key)] = None if null else _unescape(value)
            pos = match.end()
        return result


class HstoreBinaryLoader(HstoreLoader):
    """Load hstore (binary format) as a dict."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        data = bytes(data)
        codec, errors_ = self._codec, self._errors
        (count,) = _unpack_int4(data, 0)
        result: dict[str, str | None] = {}
        pos = 4
        for _ in range(count):
            (size,) = _unpack_int4(data, pos)
            key = data[pos + 4 : pos + 4 + size].decode(codec, errors_)
            pos += 4 + size
            (size,) = _unpack_int4(data, pos)
            pos += 4
            if size < 0:
                result[key] = None
            else:
                result[key] = data[pos : pos + size].decode(codec, errors_)
                pos += size
        return result


def register_hstore(info: TypeInfo | None, context: AdaptContext | None = None) -> None:
    """Load hstore values as dicts and dump dicts as hstore on a context.

    :param info: the type, from ``TypeInfo.fetch(conn, "hstore")``.
    :param context: a connection or cursor (only it and what it later creates
        are affected), or None for the global adapters.
    :raises ProgrammingError: if *info* is None (the extension isn't installed).
    """
    if info is None:
        raise errors.ProgrammingError(
            "hstore is not installed in this database: run 'create extension hstore'"
        )
    adapters = adapters_of(context)
    info.register(context)
    for loader in (HstoreLoader, HstoreBinaryLoader):
        adapters.register_loader(info.oid, loader)
    for dumper in (HstoreBinaryDumper, HstoreDumper):
        name = f"{dumper.__name__}_{info.oid}"
        adapters.register_dumper(dict, type(name, (dumper,), {"oid": info.oid}))
    if info.array_oid:
        register_array(info, adapters)


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install nothing: hstore is registered per database (see `register_hstore()`)."""
