"""Adapters of multiranges (PostgreSQL 14+): ``Multirange`` <-> PostgreSQL multiranges.

Must not: talk to libpq or import any concurrency framework.

The type sent is the multirange of the range type a `Range` with the same
bounds would be sent as (see ``range.py``); a multirange without finite
bounds, like ``{}``, is sent untyped.

Text: ``{}`` or ``{range,range...}``. Binary: a 4-byte count, then each range
as a 4-byte length and the range's binary value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import AdaptContext, Buffer
from .._adapt.global_map import adapters_of
from ..pq import Format
from ._range_codec import (
    BaseRangeDumper,
    BaseRangeLoader,
    MultirangeInfo,
    RangeInfo,
    format_range,
    pack_range,
    parse_range,
    unpack_range,
)
from ._range_object import Multirange

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["register_multirange"]

_pack_int4 = struct.Struct("!i").pack
_unpack_int4 = struct.Struct("!i").unpack_from


class MultirangeDumper(BaseRangeDumper):
    """Dump a `Multirange` in text format."""

    def bounds_of(self, obj: Any) -> Iterable[Any]:
        for item in obj:
            yield item.lower
            yield item.upper

    def oid_of_range(self, info: RangeInfo) -> int:
        return info.multirange_oid

    def dump(self, obj: Any) -> Buffer:
        dump_bound = self.dump_bound
        return b"{" + b",".join(format_range(item, dump_bound) for item in obj) + b"}"


class MultirangeBinaryDumper(MultirangeDumper):
    """Dump a `Multirange` in binary format."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        parts = [_pack_int4(len(obj))]
        for item in obj:
            data = pack_range(item, self.dump_bound)
            parts += (_pack_int4(len(data)), data)
        return b"".join(parts)


class MultirangeLoader(BaseRangeLoader):
    """Load a multirange in text format as a `Multirange`."""

    def load(self, data: Buffer) -> Any:
        data = bytes(data)
        if data[:1] != b"{":
            raise errors.DataError(f"malformed multirange literal: {data!r}")
        ranges = []
        pos = 1
        if data[1:2] != b"}":
            while True:
                item, pos = parse_range(data, pos, self.load_bound)
                ranges.append(item)
                if data[pos : pos + 1] != b",":
                    break
                pos += 1
        if data[pos:] != b"}":
            raise errors.DataError(f"malformed multirange literal: {data!r}")
        return Multirange(ranges)


class MultirangeBinaryLoader(BaseRangeLoader):
    """Load a multirange in binary format as a `Multirange`."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        data = bytes(data)
        (count,) = _unpack_int4(data, 0)
        ranges = []
        pos = 4
        for _ in range(count):
            (size,) = _unpack_int4(data, pos)
            ranges.append(unpack_range(data[pos + 4 : pos + 4 + size], self.load_bound))
            pos += 4 + size
        return Multirange(ranges)


def register_multirange(info: MultirangeInfo, context: AdaptContext | None = None) -> None:
    """Load values of a multirange type as `Multirange` objects.

    `register_range()` already does it for the multirange of the range it
    registers; use this for a multirange fetched on its own.

    :param info: the type, from ``MultirangeInfo.fetch(conn, "floatmultirange")``.
    :param context: a connection or cursor (only it and what it later creates
        are affected), or None for the global adapters.
    """
    register_multirange_on(adapters_of(context), info)


def register_multirange_on(adapters: AdaptersMap, info: MultirangeInfo) -> None:
    """Register a multirange type and its loaders on an adapters map."""
    adapters.types.add(info)
    attrs = {"subtype_oid": info.subtype_oid}
    for base in (MultirangeLoader, MultirangeBinaryLoader):
        adapters.register_loader(info.oid, type(f"{base.__name__}_{info.name}", (base,), attrs))


def register_multirange_dumpers(adapters: AdaptersMap) -> None:
    """Install the dumpers of `Multirange` (text last: the ``%s`` choice)."""
    adapters.register_dumper(Multirange, MultirangeBinaryDumper)
    adapters.register_dumper(Multirange, MultirangeDumper)
