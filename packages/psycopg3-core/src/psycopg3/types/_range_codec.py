"""Ranges on the wire: the type infos, one range in text and binary, the adapters' bases.

Must not: talk to libpq or import any concurrency framework. The functions
here turn one range into bytes and back; the base classes choose the dumper
or loader of the bounds, shared by the adapters of ranges (``range.py``) and
of multiranges (``_range_multi.py``).

Rules:

1. Text: ``empty``, or ``[lower,upper)`` where a missing bound is infinite and
   a bound is double-quoted when it is empty or holds a delimiter, a quote, a
   backslash or a space; inside quotes ``\\`` escapes the next character and
   ``""`` is a quote (the server writes the doubled form, and reads both).
2. Binary: one flags byte, then each finite bound as a 4-byte length and the
   bound in its subtype's binary format.
"""

from __future__ import annotations

import re
import struct
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Dumper, DumperKey, Loader, PyFormat, row_load_function
from .._adapt.typeinfo import TypeInfo
from .._transformer import Transformer, transformer_of
from ..pq import Format
from ._bases import quote_literal
from ._range_object import Range

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap
    from .._adapt.base import AdaptContext

__all__ = ["RangeInfo", "MultirangeInfo"]

# Flags of the binary format (PostgreSQL's rangetypes.h).
EMPTY, LB_INC, UB_INC, LB_INF, UB_INF = 0x01, 0x02, 0x04, 0x08, 0x10

_pack_len = struct.Struct("!i").pack
_unpack_len = struct.Struct("!i").unpack_from

BoundLoad = Callable[[bytes], Any]
BoundDump = Callable[[Any], bytes]


class RangeInfo(TypeInfo):
    """A range type, with its subtype and its multirange (PostgreSQL 14+).

    :param subtype_oid: the OID of the type of the bounds.
    :param multirange_oid: the OID of the range's multirange type, 0 if none.
    """

    __slots__ = ("subtype_oid", "multirange_oid", "multirange_array_oid", "multirange_name")

    def __init__(
        self,
        name: str,
        oid: int,
        array_oid: int,
        *,
        regtype: str | None = None,
        subtype_oid: int = 0,
        multirange_oid: int = 0,
        multirange_array_oid: int = 0,
        multirange_name: str = "",
    ):
        super().__init__(name, oid, array_oid, regtype=regtype)
        self.subtype_oid = subtype_oid
        self.multirange_oid = multirange_oid
        self.multirange_array_oid = multirange_array_oid
        self.multirange_name = multirange_name

    _typtype = "r"
    _query = """\
select t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typtype,
    r.rngsubtype, m.oid, m.typarray, m.oid::regtype::text
from pg_type t
left join pg_range r on r.rngtypid = t.oid
left join pg_type m on m.oid = r.rngmultitypid
where t.oid = to_regtype(%s)"""

    @classmethod
    def _facts(cls, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        subtype, moid, marray, mname = rows[0][5:9]
        return {
            "subtype_oid": subtype,
            "multirange_oid": moid or 0,
            "multirange_array_oid": marray or 0,
            "multirange_name": mname or "",
        }


class MultirangeInfo(TypeInfo):
    """A multirange type (PostgreSQL 14+), with its range and subtype.

    :param range_oid: the OID of the range type of its items.
    :param subtype_oid: the OID of the type of the ranges' bounds.
    """

    __slots__ = ("range_oid", "subtype_oid")

    def __init__(
        self,
        name: str,
        oid: int,
        array_oid: int,
        *,
        regtype: str | None = None,
        range_oid: int = 0,
        subtype_oid: int = 0,
    ):
        super().__init__(name, oid, array_oid, regtype=regtype)
        self.range_oid = range_oid
        self.subtype_oid = subtype_oid

    _typtype = "m"
    _query = """\
select t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typtype,
    r.rngtypid, r.rngsubtype
from pg_type t
left join pg_range r on r.rngmultitypid = t.oid
where t.oid = to_regtype(%s)"""

    @classmethod
    def _facts(cls, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        range_oid, subtype = rows[0][5:7]
        return {"range_oid": range_oid, "subtype_oid": subtype}


def range_info_of_subtype(adapters: AdaptersMap, subtype_oid: int) -> RangeInfo | None:
    """Return the first range type registered whose bounds are of *subtype_oid*."""
    for info in adapters.types:
        if isinstance(info, RangeInfo) and info.subtype_oid == subtype_oid:
            return info
    return None


# Text format


_NEEDS_QUOTES = re.compile(rb'[",\\()\[\]\s]')
_PLAIN_BOUND = re.compile(rb'[^",()\[\]\\]*')


def format_range(obj: Range[Any], dump: BoundDump) -> bytes:
    """Return the text of a range, its bounds written by *dump*."""
    if obj.isempty:
        return b"empty"
    bounds = obj.bounds.encode()
    lower = b"" if obj.lower is None else quote_literal(dump(obj.lower), _NEEDS_QUOTES, rb"\"")
    upper = b"" if obj.upper is None else quote_literal(dump(obj.upper), _NEEDS_QUOTES, rb"\"")
    return b"%c%s,%s%c" % (bounds[0], lower, upper, bounds[1])


def _parse_bound(data: bytes, pos: int, load: BoundLoad) -> tuple[Any, int]:
    match = _PLAIN_BOUND.match(data, pos)
    end = match.end() if match is not None else pos
    if end < len(data) and data[end] in b",)]":
        return (load(data[pos:end]) if end > pos else None), end
    # Quotes or escapes: walk the characters.
    buf = bytearray()
    in_quotes = False
    n = len(data)
    while pos < n:
        char = data[pos]
        if char == 0x22:  # "
            if in_quotes and data[pos + 1 : pos + 2] == b'"':
                buf.append(char)
                pos += 2
                continue
            in_quotes = not in_quotes
        elif char == 0x5C:  # backslash
            pos += 1
            if pos >= n:
                break
            buf.append(data[pos])
        elif not in_quotes and char in b",)]":
            return load(bytes(buf)), pos
        else:
            buf.append(char)
        pos += 1
    raise errors.DataError(f"malformed range literal: {data!r}")


def parse_range(data: bytes, pos: int, load: BoundLoad) -> tuple[Range[Any], int]:
    """Parse the range starting at *pos*; return it and the position after it.

    :raises DataError: if the text is not a range.
    """
    if data.startswith(b"empty", pos):
        return Range(empty=True), pos + 5
    opening = data[pos : pos + 1]
    if opening not in (b"[", b"("):
        raise errors.DataError(f"malformed range literal: {data!r}")
    lower, pos = _parse_bound(data, pos + 1, load)
    if data[pos : pos + 1] != b",":
        raise errors.DataError(f"malformed range literal: {data!r}")
    upper, pos = _parse_bound(data, pos + 1, load)
    closing = data[pos : pos + 1]
    if closing not in (b"]", b")"):
        raise errors.DataError(f"malformed range literal: {data!r}")
    return Range(lower, upper, (opening + closing).decode()), pos + 1


# Binary format


def pack_range(obj: Range[Any], dump: BoundDump) -> bytes:
    """Return the binary value of a range, its bounds packed by *dump*."""
    if obj.isempty:
        return b"\x01"
    flags = 0
    parts = [b""]
    if obj.lower is None:
        flags |= LB_INF
    else:
        flags |= LB_INC if obj.lower_inc else 0
        data = dump(obj.lower)
        parts += (_pack_len(len(data)), data)
    if obj.upper is None:
        flags |= UB_INF
    else:
        flags |= UB_INC if obj.upper_inc else 0
        data = dump(obj.upper)
        parts += (_pack_len(len(data)), data)
    parts[0] = bytes((flags,))
    return b"".join(parts)


def unpack_range(data: bytes, load: BoundLoad) -> Range[Any]:
    """Return the range of a binary value, its bounds loaded by *load*."""
    flags = data[0]
    if flags & EMPTY:
        return Range(empty=True)
    pos = 1
    lower = upper = None
    if not flags & LB_INF:
        (size,) = _unpack_len(data, pos)
        lower = load(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    if not flags & UB_INF:
        (size,) = _unpack_len(data, pos)
        upper = load(data[pos + 4 : pos + 4 + size])
    bounds = ("[" if flags & LB_INC else "(") + ("]" if flags & UB_INC else ")")
    return Range(lower, upper, bounds)


# Choosing the dumper of the bounds

_INT2, _INT4, _INT8, _NUMERIC = 21, 23, 20, 1700
# An int's dumper picks the narrowest type per value: a range needs the widest.
_INT_WIDTH = {_INT2: 0, _INT4: 1, _INT8: 2, _NUMERIC: 3}


def choose_bound_dumper(tx: Transformer, bounds: Iterable[Any], format: PyFormat) -> Dumper | None:
    """Return the dumper of a range's finite bounds, None if there is none.

    The first bound decides, except between integer types, where the widest
    wins: ``Range(1, 2**40)`` is an int8range, not an int4range.
    """
    chosen: Dumper | None = None
    for bound in bounds:
        if bound is None:
            continue
        dumper = tx.get_dumper(bound, format)
        if chosen is None:
            chosen = dumper
            if dumper.oid not in _INT_WIDTH:
                return chosen
        elif _INT_WIDTH.get(dumper.oid, -1) > _INT_WIDTH[chosen.oid]:
            chosen = dumper
    return chosen


def is_text_int(dumper: Dumper) -> bool:
    """Whether a bound dumper writes integers as text (see range.py, rule 2)."""
    return dumper.format == Format.TEXT and dumper.oid in (_INT2, _INT4, _INT8)


class BaseRangeDumper(Dumper):
    """What the dumpers of ranges and multiranges share: choosing the bounds' dumper.

    Subclasses say where the bounds are (`bounds_of()`) and which OID goes
    with a range type (`oid_of_range()`), and implement `dump()` with
    `dump_bound()`.
    """

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._tx = transformer_of(context)
        self._bound_dumper: Dumper | None = None
        self._bound_format = PyFormat.from_pq(self.format)

    @abstractmethod
    def bounds_of(self, obj: Any) -> Iterable[Any]:
        """Return the bounds of *obj* (None for an infinite one)."""

    @abstractmethod
    def oid_of_range(self, info: RangeInfo) -> int:
        """Return the OID to send for a value whose ranges are of type *info*."""

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        bound_dumper = choose_bound_dumper(self._tx, self.bounds_of(obj), self._bound_format)
        if bound_dumper is None:
            return self.cls
        return (self.cls, type(bound_dumper), bound_dumper.oid)

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        bound_dumper = choose_bound_dumper(self._tx, self.bounds_of(obj), self._bound_format)
        if bound_dumper is None:
            return self
        upgraded = type(self)(self.cls, self._tx)
        upgraded._bound_dumper = bound_dumper
        if not is_text_int(bound_dumper):
            info = range_info_of_subtype(self._tx.adapters, bound_dumper.oid)
            upgraded.oid = self.oid_of_range(info) if info is not None else 0
        return upgraded

    def dump_bound(self, value: Any) -> bytes:
        """Return the bytes of one finite bound."""
        dumper = self._bound_dumper
        if dumper is None or type(value) is not dumper.cls:
            # A bound of another Python type than the one that chose the
            # range type (1 and Decimal("2.5")): its own dumper writes it.
            dumper = self._tx.get_dumper(value, self._bound_format)
        data = dumper.dump(value)
        return data if type(data) is bytes else bytes(data)


class BaseRangeLoader(Loader):
    """What the loaders of ranges and multiranges share: the bounds' load function.

    Subclasses made by the ``register_*`` functions set ``subtype_oid``.
    """

    subtype_oid: int = 0

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        loader = transformer_of(context).get_loader(self.subtype_oid, self.format)
        self.load_bound: BoundLoad = row_load_function(loader) if loader is not None else bytes
