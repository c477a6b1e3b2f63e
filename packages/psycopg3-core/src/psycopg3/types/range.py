"""Adapters of ranges and multiranges: ``Range`` and ``Multirange`` <-> PostgreSQL ranges.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A ``Range`` is sent with the range type of its bounds' type, found among
   the range types the context knows (built-in or registered with
   `register_range()`): Decimal bounds give a numrange, dates a daterange,
   naive datetimes a tsrange, aware ones a tstzrange. A range without finite
   bounds (empty, or infinite both sides) is sent untyped: the server infers
   the type from the query.
2. Integer bounds are sent untyped in text format (``%s``, ``%t``): the server
   has no cast between int4range and int8range, so a typed int4range could
   never fill an int8range column (nor the reverse), while an untyped literal
   becomes whatever the query needs. Write ``%s::int4range`` where the query
   gives no type (``select %s``). In binary format (``%b``) the type must be
   given: int4range if both bounds fit int4, int8range if they fit int8,
   numrange beyond.
3. Bounds are dumped and loaded by the context's adapters of the subtype: a
   range of a type with no Python loader has ``str`` (text) or ``bytes``
   (binary) bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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
from ._range_multi import register_multirange, register_multirange_dumpers, register_multirange_on
from ._range_object import Multirange, Range

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = [
    "Range",
    "Multirange",
    "RangeInfo",
    "MultirangeInfo",
    "register_range",
    "register_multirange",
]


class RangeDumper(BaseRangeDumper):
    """Dump a `Range` in text format."""

    def bounds_of(self, obj: Any) -> Iterable[Any]:
        return (obj.lower, obj.upper)

    def oid_of_range(self, info: RangeInfo) -> int:
        return info.oid

    def dump(self, obj: Any) -> Buffer:
        return format_range(obj, self.dump_bound)


class RangeBinaryDumper(RangeDumper):
    """Dump a `Range` in binary format."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return pack_range(obj, self.dump_bound)


class RangeLoader(BaseRangeLoader):
    """Load a range in text format as a `Range`."""

    def load(self, data: Buffer) -> Any:
        return parse_range(bytes(data), 0, self.load_bound)[0]


class RangeBinaryLoader(BaseRangeLoader):
    """Load a range in binary format as a `Range`."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return unpack_range(bytes(data), self.load_bound)


def _register_range_on(adapters: AdaptersMap, info: RangeInfo) -> None:
    adapters.types.add(info)
    attrs = {"subtype_oid": info.subtype_oid}
    for base in (RangeLoader, RangeBinaryLoader):
        adapters.register_loader(info.oid, type(f"{base.__name__}_{info.name}", (base,), attrs))
    if info.multirange_oid:
        multi = MultirangeInfo(
            info.multirange_name,
            info.multirange_oid,
            info.multirange_array_oid,
            range_oid=info.oid,
            subtype_oid=info.subtype_oid,
        )
        register_multirange_on(adapters, multi)


def register_range(info: RangeInfo, context: AdaptContext | None = None) -> None:
    """Load values of a range type (and of its multirange) as `Range` objects.

    Ranges whose bounds are of the type's subtype are then dumped with this
    type, unless a built-in range type has the same subtype.

    :param info: the type, from ``RangeInfo.fetch(conn, "floatrange")``.
    :param context: a connection or cursor (only it and what it later creates
        are affected), or None for the global adapters.
    """
    _register_range_on(adapters_of(context), info)


# name, oid, array oid, subtype; multirange name, oid, array oid (pg_range, PostgreSQL 15).
_BUILTIN_RANGES = [
    ("int4range", 3904, 3905, 23, "int4multirange", 4451, 6150),
    ("int8range", 3926, 3927, 20, "int8multirange", 4536, 6157),
    ("numrange", 3906, 3907, 1700, "nummultirange", 4532, 6151),
    ("daterange", 3912, 3913, 1082, "datemultirange", 4535, 6155),
    ("tsrange", 3908, 3909, 1114, "tsmultirange", 4533, 6152),
    ("tstzrange", 3910, 3911, 1184, "tstzmultirange", 4534, 6153),
]


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install the range and multirange adapters and the built-in range types."""
    for name, oid, array_oid, subtype, mname, moid, marray in _BUILTIN_RANGES:
        info = RangeInfo(
            name,
            oid,
            array_oid,
            subtype_oid=subtype,
            multirange_oid=moid,
            multirange_array_oid=marray,
            multirange_name=mname,
        )
        _register_range_on(adapters, info)
    # Text last: it is the %s choice (see rule 2).
    adapters.register_dumper(Range, RangeBinaryDumper)
    adapters.register_dumper(Range, RangeDumper)
    register_multirange_dumpers(adapters)
