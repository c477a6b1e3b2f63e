"""Adapters of composite types: Python tuples <-> PostgreSQL composite types (records).

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A composite type is registered from the server's catalog:
   ``CompositeInfo.fetch()`` then `register_composite()`. Its values load
   as instances of a factory called with the field values in order: by
   default a namedtuple generated from the field names.
2. Each field is loaded with the loader of its type (text or binary): nested
   composites, arrays and user types load as registered.
3. Instances of the factory, when it is a class, are dumped with the type's
   OID in text format (a record literal the server parses field by field);
   there is no binary dumper, as a binary record needs each field in its
   declared type's binary form, which the fields' Python types don't tell.
4. A plain tuple is not a composite: the server can't infer a ``record``
   parameter, so tuples stay unadaptable (register a composite, or cast a
   text literal).
"""

from __future__ import annotations

import keyword
import re
import struct
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import (
    AdaptContext,
    Buffer,
    Dumper,
    Loader,
    LoadFunction,
    PyFormat,
    row_load_function,
)
from .._adapt.global_map import adapters_of
from .._adapt.typeinfo import TypeInfo
from .._transformer import transformer_of
from ..pq import Format
from ._bases import quote_literal
from .array import register_array

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["CompositeInfo", "register_composite", "CompositeDumper", "CompositeLoader"]

_unpack_len = struct.Struct("!i").unpack_from
_unpack_oid = struct.Struct("!I").unpack_from


class CompositeInfo(TypeInfo):
    """A composite type, with its fields' names and type OIDs in order.

    :param field_names: the names of the fields (``pg_attribute.attname``).
    :param field_types: the OIDs of the fields' types.
    """

    __slots__ = ("field_names", "field_types")

    def __init__(
        self,
        name: str,
        oid: int,
        array_oid: int,
        *,
        regtype: str | None = None,
        field_names: Sequence[str] = (),
        field_types: Sequence[int] = (),
    ):
        super().__init__(name, oid, array_oid, regtype=regtype)
        self.field_names = list(field_names)
        self.field_types = list(field_types)

    _typtype = "c"
    _query = """\
select t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typtype, a.attname, a.atttypid
from pg_type t
left join pg_attribute a
    on a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
where t.oid = to_regtype(%s)
order by a.attnum"""

    @classmethod
    def _facts(cls, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        fields = [(row[5], row[6]) for row in rows if row[5] is not None]
        return {"field_names": [f[0] for f in fields], "field_types": [f[1] for f in fields]}


# Text format: "(a,,"b c")": empty for NULL, quotes around values with
# delimiters, quotes, backslashes or spaces; "" or \" is a quote inside them.

_NEEDS_QUOTES = re.compile(rb'[",\\()\s]')
_PLAIN_FIELD = re.compile(rb'[^",()\\]*')


def parse_record(data: bytes) -> list[bytes | None]:
    """Split the text of a record into its fields' texts (None for NULL).

    :raises DataError: if the text is not a record.
    """
    end = len(data) - 1
    if data[:1] != b"(" or data[end:] != b")":
        raise errors.DataError(f"malformed record literal: {data!r}")
    fields: list[bytes | None] = []
    pos = 1
    while True:
        match = _PLAIN_FIELD.match(data, pos)
        stop = match.end() if match is not None else pos
        if stop == end or data[stop] == 0x2C:  # ","
            fields.append(data[pos:stop] if stop > pos else None)
        else:
            stop = _parse_quoted(data, pos, end, fields)
        if stop >= end:
            return fields
        pos = stop + 1


def _parse_quoted(data: bytes, pos: int, end: int, fields: list[bytes | None]) -> int:
    buf = bytearray()
    in_quotes = False
    while pos < end:
        char = data[pos]
        if char == 0x22:  # "
            if in_quotes and data[pos + 1] == 0x22:
                buf.append(char)
                pos += 1
            else:
                in_quotes = not in_quotes
        elif char == 0x5C:  # backslash
            pos += 1
            buf.append(data[pos])
        elif char == 0x2C and not in_quotes:
            break
        else:
            buf.append(char)
        pos += 1
    if in_quotes:
        raise errors.DataError(f"malformed record literal: {data!r}")
    fields.append(bytes(buf))
    return pos


class CompositeLoader(Loader):
    """Load a composite type in text format through a factory.

    Subclasses made by `register_composite()` set ``factory`` and ``field_types``.
    """

    factory: Callable[..., Any]
    field_types: Sequence[int] = ()

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        self._tx = transformer_of(context)
        self._loads: list[LoadFunction] = []
        for field_oid in self.field_types:
            loader = self._tx.get_loader(field_oid, self.format)
            self._loads.append(row_load_function(loader) if loader is not None else bytes)

    def load(self, data: Buffer) -> Any:
        if not self._loads:
            return self.factory()
        fields = parse_record(bytes(data))
        if len(fields) != len(self._loads):
            raise errors.DataError(
                f"a record of {len(fields)} fields cannot load as {len(self._loads)} fields:"
                " did the type change since it was registered?"
            )
        return self.factory(
            *(None if f is None else load(f) for f, load in zip(fields, self._loads))
        )


class CompositeBinaryLoader(CompositeLoader):
    """Load a composite type in binary format through a factory."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        data = bytes(data)
        (nfields,) = _unpack_len(data, 0)
        if nfields != len(self._loads):
            raise errors.DataError(
                f"a record of {nfields} fields cannot load as {len(self._loads)} fields:"
                " did the type change since it was registered?"
            )
        values: list[Any] = []
        pos = 4
        for load in self._loads:
            (size,) = _unpack_len(data, pos + 4)  # after the field's type OID
            pos += 8
            if size < 0:
                values.append(None)
                continue
            values.append(load(data[pos : pos + size]))
            pos += size
        return self.factory(*values)


class CompositeDumper(Dumper):
    """Dump a sequence as a record literal (text), its fields dumped by their Python type.

    Subclasses made by `register_composite()` set ``oid``.
    """

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._tx = transformer_of(context)

    def dump(self, obj: Any) -> Buffer:
        parts = []
        get_dumper = self._tx.get_dumper
        for value in obj:
            if value is None:
                parts.append(b"")
                continue
            data = get_dumper(value, PyFormat.TEXT).dump(value)
            parts.append(quote_literal(bytes(data), _NEEDS_QUOTES, b'""'))
        return b"(" + b",".join(parts) + b")"


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        name = "T" + name
    return name


def _field_name(name: str) -> str:
    # What is still no valid field name, namedtuple's rename=True replaces.
    return re.sub(r"\W", "_", name)


def register_composite(
    info: CompositeInfo,
    context: AdaptContext | None = None,
    factory: Callable[..., Any] | None = None,
) -> Callable[..., Any]:
    """Load a composite type through a factory and, if it is a class, dump its instances.

    :param info: the type, from ``CompositeInfo.fetch(conn, "card")``.
    :param context: a connection or cursor (only it and what it later creates
        are affected), or None for the global adapters.
    :param factory: called with the field values, in order, for each value
        loaded; by default a namedtuple named after the type, with fields
        named after its fields (characters not allowed in a name become
        ``_``; keywords, names starting with ``_`` and duplicates are renamed
        ``_0``, ``_1``… by position, as namedtuple does).
    :return: the factory used.
    """
    if factory is None:
        factory = _generated_namedtuple(info)
    adapters = adapters_of(context)
    info.register(context)
    attrs = {"factory": staticmethod(factory), "field_types": tuple(info.field_types)}
    for loader in (CompositeLoader, CompositeBinaryLoader):
        name = f"{loader.__name__}_{info.name}"
        adapters.register_loader(info.oid, type(name, (loader,), attrs))
    if isinstance(factory, type):
        name = f"CompositeDumper_{info.name}"
        adapters.register_dumper(factory, type(name, (CompositeDumper,), {"oid": info.oid}))
    if info.array_oid:
        register_array(info, adapters)
    return factory


def _generated_namedtuple(info: CompositeInfo) -> type[tuple[Any, ...]]:
    fields = [_field_name(name) for name in info.field_names]
    return namedtuple(_identifier(info.name), fields, rename=True)


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install nothing: composites are registered one by one (see `register_composite()`)."""
