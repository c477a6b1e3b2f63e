"""Adapters of numbers: int, float, Decimal <-> int2/int4/int8/oid/float4/float8/numeric.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A Python ``int`` is passed with the type PostgreSQL gives the same number
   written as a literal in the query: int4 if it fits, else int8, else
   numeric. So ``%s`` behaves like the number typed inline: it works where a
   function wants an integer (``repeat('x', %s)``, ``current_date + %s``,
   ``round(x, %s)``, which all fail with an int8), and it is promoted where a
   wider type is wanted (``bigint_col = %s`` uses the column's index). The
   price is PostgreSQL's own: ``select %s * %s`` with two int4-sized values
   whose product needs int8 overflows, as ``select 100000 * 100000`` does;
   cast one operand (``%s::int8``) as you would in SQL. (Choosing int8 for
   every int avoids that overflow but breaks the calls above; int2 for small
   values would overflow as early as ``200 * 200``.)
2. Floats and Decimals are written so they read back exactly: ``repr`` for
   floats, ``str`` for Decimals, and PostgreSQL's spellings ``NaN``,
   ``Infinity``, ``-Infinity`` for the special values.
3. Text loaders are builtins where the builtin accepts PostgreSQL's bytes
   (``int(b"-12")``, ``float(b"Infinity")``): no Python frame per value.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Buffer, Dumper, DumperKey, Loader, LoadFunction, PyFormat
from ..pq import Format
from ._numeric_binary import decimal_to_numeric, numeric_to_decimal

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

INT2_OID, INT4_OID, INT8_OID, OID_OID = 21, 23, 20, 26
FLOAT4_OID, FLOAT8_OID, NUMERIC_OID = 700, 701, 1700

_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_INT8_MIN, _INT8_MAX = -(2**63), 2**63 - 1

_pack_int2 = struct.Struct("!h").pack
_pack_int4 = struct.Struct("!i").pack
_pack_int8 = struct.Struct("!q").pack
_pack_float8 = struct.Struct("!d").pack
_int2_struct = struct.Struct("!h")
_int4_struct = struct.Struct("!i")
_int8_struct = struct.Struct("!q")
_oid_struct = struct.Struct("!I")
_float4_struct = struct.Struct("!f")
_float8_struct = struct.Struct("!d")

# Dumpers of int: one class per PostgreSQL type, and the one choosing by value.


# numeric holds up to 131072 digits before the point: an int of more bits
# than this has more digits, refused before a (quadratic) conversion.
_NUMERIC_MAX_BITS = 435_412


def _int_beyond_numeric(obj: int) -> errors.DataError:
    return errors.DataError(
        f"an int of {obj.bit_length()} bits has more than the 131072 digits numeric holds"
    )


class _IntTextDumper(Dumper):
    def dump(self, obj: Any) -> Buffer:
        # int.__repr__: an int subclass (IntEnum, bool-like) may print itself otherwise.
        try:
            return int.__repr__(obj).encode()
        except ValueError:
            # Beyond sys.get_int_max_str_digits(): Decimal writes any int.
            if obj.bit_length() > _NUMERIC_MAX_BITS:
                raise _int_beyond_numeric(obj) from None
            return Decimal(int(obj)).__str__().encode()


class Int2Dumper(_IntTextDumper):
    """Dump an int as int2 (text)."""

    oid = INT2_OID


class Int4Dumper(_IntTextDumper):
    """Dump an int as int4 (text)."""

    oid = INT4_OID


class Int8Dumper(_IntTextDumper):
    """Dump an int as int8 (text)."""

    oid = INT8_OID


class IntNumericDumper(_IntTextDumper):
    """Dump an int as numeric (text)."""

    oid = NUMERIC_OID


class IntDumper(Int4Dumper):
    """Dump an int as int4, int8 or numeric, the narrowest that holds it (text)."""

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        if _INT4_MIN <= obj <= _INT4_MAX:
            return self.cls
        return Int8Dumper if _INT8_MIN <= obj <= _INT8_MAX else IntNumericDumper

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        key = self.get_key(obj, format)
        if key is self.cls:
            return self
        assert isinstance(key, type) and issubclass(key, Dumper)
        return key(self.cls, self.context)


class Int2BinaryDumper(Dumper):
    """Dump an int as int2 (binary)."""

    oid = INT2_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack_int2(obj)


class Int4BinaryDumper(Dumper):
    """Dump an int as int4 (binary)."""

    oid = INT4_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack_int4(obj)


class Int8BinaryDumper(Dumper):
    """Dump an int as int8 (binary)."""

    oid = INT8_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack_int8(obj)


class IntNumericBinaryDumper(Dumper):
    """Dump an int as numeric (binary)."""

    oid = NUMERIC_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        if obj.bit_length() > _NUMERIC_MAX_BITS:
            raise _int_beyond_numeric(obj)
        return decimal_to_numeric(Decimal(int(obj)))


class IntBinaryDumper(Int4BinaryDumper):
    """Dump an int as int4, int8 or numeric, the narrowest that holds it (binary)."""

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        if _INT4_MIN <= obj <= _INT4_MAX:
            return self.cls
        return Int8BinaryDumper if _INT8_MIN <= obj <= _INT8_MAX else IntNumericBinaryDumper

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        key = self.get_key(obj, format)
        if key is self.cls:
            return self
        assert isinstance(key, type) and issubclass(key, Dumper)
        return key(self.cls, self.context)


# Dumpers of float and Decimal.

_FLOAT_SPECIALS = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}


class FloatDumper(Dumper):
    """Dump a float as float8 (text, shortest repr that reads back exactly)."""

    oid = FLOAT8_OID

    def dump(self, obj: Any) -> Buffer:
        text = float.__repr__(obj)
        special = _FLOAT_SPECIALS.get(text)
        return special if special is not None else text.encode()


class FloatBinaryDumper(Dumper):
    """Dump a float as float8 (binary)."""

    oid = FLOAT8_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack_float8(obj)


class DecimalDumper(Dumper):
    """Dump a Decimal as numeric (text); any NaN, signalling or not, is ``NaN``."""

    oid = NUMERIC_OID

    def dump(self, obj: Any) -> Buffer:
        if obj.is_nan():
            return b"NaN"
        return Decimal.__str__(obj).encode()


class DecimalBinaryDumper(Dumper):
    """Dump a Decimal as numeric (binary)."""

    oid = NUMERIC_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return decimal_to_numeric(obj)


# Loaders.


class IntLoader(Loader):
    """Load int2, int4, int8 and oid in text format."""

    def load(self, data: Buffer) -> Any:
        return int(bytes(data))

    def load_function(self) -> LoadFunction:
        return int


class _StructLoader(Loader):
    format = Format.BINARY
    _struct = _int4_struct

    @property
    def fixed_struct(self) -> struct.Struct | None:
        """The struct of one value: the row loop unpacks a whole column with it.

        None in a subclass that loads differently: its own function is called.
        """
        cls = type(self)
        if cls.load is _StructLoader.load and cls.load_function is _StructLoader.load_function:
            return self._struct
        return None

    def load(self, data: Buffer) -> Any:
        return self._struct.unpack(data)[0]

    def load_function(self) -> LoadFunction:
        unpack = self._struct.unpack

        def load(data: bytes) -> Any:
            return unpack(data)[0]

        return load


class Int2BinaryLoader(_StructLoader):
    """Load int2 in binary format."""

    _struct = _int2_struct


class Int4BinaryLoader(_StructLoader):
    """Load int4 in binary format."""

    _struct = _int4_struct


class Int8BinaryLoader(_StructLoader):
    """Load int8 in binary format."""

    _struct = _int8_struct


class OidBinaryLoader(_StructLoader):
    """Load oid (unsigned 32 bits) in binary format."""

    _struct = _oid_struct


class FloatLoader(Loader):
    """Load float4 and float8 in text format (``NaN``, ``Infinity`` included)."""

    def load(self, data: Buffer) -> Any:
        return float(bytes(data))

    def load_function(self) -> LoadFunction:
        return float


class Float4BinaryLoader(_StructLoader):
    """Load float4 in binary format."""

    _struct = _float4_struct


class Float8BinaryLoader(_StructLoader):
    """Load float8 in binary format."""

    _struct = _float8_struct


class NumericLoader(Loader):
    """Load numeric in text format as Decimal (``NaN``, ``Infinity`` included)."""

    def load(self, data: Buffer) -> Any:
        return Decimal(bytes(data).decode("ascii"))

    def load_function(self) -> LoadFunction:
        def load(data: bytes) -> Any:
            return Decimal(data.decode("ascii"))

        return load


class NumericBinaryLoader(Loader):
    """Load numeric in binary format as Decimal."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return numeric_to_decimal(bytes(data))

    def load_function(self) -> LoadFunction:
        return numeric_to_decimal


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the numeric adapters on *adapters* (text is the ``%s`` choice)."""
    adapters.register_dumper(int, IntBinaryDumper)
    adapters.register_dumper(int, IntDumper)
    adapters.register_dumper(float, FloatBinaryDumper)
    adapters.register_dumper(float, FloatDumper)
    adapters.register_dumper(Decimal, DecimalBinaryDumper)
    adapters.register_dumper(Decimal, DecimalDumper)

    for oid in (INT2_OID, INT4_OID, INT8_OID, OID_OID):
        adapters.register_loader(oid, IntLoader)
    adapters.register_loader(INT2_OID, Int2BinaryLoader)
    adapters.register_loader(INT4_OID, Int4BinaryLoader)
    adapters.register_loader(INT8_OID, Int8BinaryLoader)
    adapters.register_loader(OID_OID, OidBinaryLoader)
    adapters.register_loader(FLOAT4_OID, FloatLoader)
    adapters.register_loader(FLOAT8_OID, FloatLoader)
    adapters.register_loader(FLOAT4_OID, Float4BinaryLoader)
    adapters.register_loader(FLOAT8_OID, Float8BinaryLoader)
    adapters.register_loader(NUMERIC_OID, NumericLoader)
    adapters.register_loader(NUMERIC_OID, NumericBinaryLoader)
