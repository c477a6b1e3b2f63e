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

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Buffer, Dumper, DumperKey, LoadFunction, PyFormat
from ..pq import Format
from ._bases import (
    BuiltinDumper,
    BuiltinLoader,
    FunctionLoader,
    StructDumper,
    StructLoader,
    register_dumpers,
    register_loaders,
)
from ._numeric_binary import decimal_to_numeric, numeric_to_decimal

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

INT2_OID, INT4_OID, INT8_OID, OID_OID = 21, 23, 20, 26
FLOAT4_OID, FLOAT8_OID, NUMERIC_OID = 700, 701, 1700

_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_INT8_MIN, _INT8_MAX = -(2**63), 2**63 - 1

# Dumpers of int: one class per PostgreSQL type, and the one choosing by value.


# numeric holds up to 131072 digits before the point: an int of more bits
# than this has more digits, refused before a (quadratic) conversion.
_NUMERIC_MAX_BITS = 435_412


def _int_beyond_numeric(obj: int) -> errors.DataError:
    return errors.DataError(
        f"an int of {obj.bit_length()} bits has more than the 131072 digits numeric holds"
    )


class _IntTextDumper(BuiltinDumper):
    def dump(self, obj: Any) -> Buffer:
        # int.__repr__: an int subclass (IntEnum, bool-like) may print itself otherwise.
        try:
            return int.__repr__(obj).encode()
        except ValueError:
            # Beyond sys.get_int_max_str_digits(): Decimal writes any int.
            if obj.bit_length() > _NUMERIC_MAX_BITS:
                raise _int_beyond_numeric(obj) from None
            return Decimal(int(obj)).__str__().encode()


class Int2Dumper(_IntTextDumper, oid=INT2_OID):
    """Dump an int as int2 (text)."""


class Int4Dumper(_IntTextDumper, oid=INT4_OID):
    """Dump an int as int4 (text)."""


class Int8Dumper(_IntTextDumper, oid=INT8_OID):
    """Dump an int as int8 (text)."""


class IntNumericDumper(_IntTextDumper, oid=NUMERIC_OID):
    """Dump an int as numeric (text)."""


class Int2BinaryDumper(StructDumper, oid=INT2_OID, layout="!h"):
    """Dump an int as int2 (binary)."""


class Int4BinaryDumper(StructDumper, oid=INT4_OID, layout="!i"):
    """Dump an int as int4 (binary)."""


class Int8BinaryDumper(StructDumper, oid=INT8_OID, layout="!q"):
    """Dump an int as int8 (binary)."""


class IntNumericBinaryDumper(BuiltinDumper, oid=NUMERIC_OID, format=Format.BINARY):
    """Dump an int as numeric (binary)."""

    def dump(self, obj: Any) -> Buffer:
        if obj.bit_length() > _NUMERIC_MAX_BITS:
            raise _int_beyond_numeric(obj)
        return decimal_to_numeric(Decimal(int(obj)))


class _NarrowestInt(Dumper):
    # A mixin put before an int4 dumper class (beside it, not above it: its
    # dump() is then no override of this upgrade(), see _adapt.base rule 5).
    # Beyond int4, values go to the first class of wider=, beyond int8 to the second.

    def __init_subclass__(
        cls, *, wider: tuple[type[Dumper], type[Dumper]] | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if wider is None:
            return

        # Called for every int: the classes are default values, read as fast
        # as globals (a closure or a class attribute is slower). Never passed.
        def get_key(
            self: Dumper,
            obj: Any,
            format: PyFormat,
            _int8: type[Dumper] = wider[0],
            _numeric: type[Dumper] = wider[1],
        ) -> DumperKey:
            if _INT4_MIN <= obj <= _INT4_MAX:
                return self.cls
            return _int8 if _INT8_MIN <= obj <= _INT8_MAX else _numeric

        cls.get_key = get_key  # type: ignore[method-assign]

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        key = self.get_key(obj, format)
        if key is self.cls:
            return self
        assert isinstance(key, type) and issubclass(key, Dumper)
        return key(self.cls, self.context)


class IntDumper(_NarrowestInt, Int4Dumper, wider=(Int8Dumper, IntNumericDumper)):
    """Dump an int as int4, int8 or numeric, the narrowest that holds it (text)."""


class IntBinaryDumper(
    _NarrowestInt, Int4BinaryDumper, wider=(Int8BinaryDumper, IntNumericBinaryDumper)
):
    """Dump an int as int4, int8 or numeric, the narrowest that holds it (binary)."""


# Dumpers of float and Decimal.

_FLOAT_SPECIALS = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}


class FloatDumper(BuiltinDumper, oid=FLOAT8_OID):
    """Dump a float as float8 (text, shortest repr that reads back exactly)."""

    def dump(self, obj: Any) -> Buffer:
        text = float.__repr__(obj)
        special = _FLOAT_SPECIALS.get(text)
        return special if special is not None else text.encode()


class FloatBinaryDumper(StructDumper, oid=FLOAT8_OID, layout="!d"):
    """Dump a float as float8 (binary)."""


class DecimalDumper(BuiltinDumper, oid=NUMERIC_OID):
    """Dump a Decimal as numeric (text); any NaN, signalling or not, is ``NaN``."""

    def dump(self, obj: Any) -> Buffer:
        if obj.is_nan():
            return b"NaN"
        return Decimal.__str__(obj).encode()


class DecimalBinaryDumper(BuiltinDumper, oid=NUMERIC_OID, format=Format.BINARY):
    """Dump a Decimal as numeric (binary)."""

    def dump(self, obj: Any) -> Buffer:
        return decimal_to_numeric(obj)


# Loaders.


def _load_numeric_text(data: bytes) -> Decimal:
    return Decimal(data.decode("ascii"))


class IntLoader(FunctionLoader, function=int):
    """Load int2, int4, int8 and oid in text format."""


class Int2BinaryLoader(StructLoader, layout="!h"):
    """Load int2 in binary format."""


class Int4BinaryLoader(StructLoader, layout="!i"):
    """Load int4 in binary format."""


class Int8BinaryLoader(StructLoader, layout="!q"):
    """Load int8 in binary format."""


class OidBinaryLoader(StructLoader, layout="!I"):
    """Load oid (unsigned 32 bits) in binary format."""


class FloatLoader(FunctionLoader, function=float):
    """Load float4 and float8 in text format (``NaN``, ``Infinity`` included)."""


class Float4BinaryLoader(StructLoader, layout="!f"):
    """Load float4 in binary format."""


class Float8BinaryLoader(StructLoader, layout="!d"):
    """Load float8 in binary format."""


class NumericLoader(BuiltinLoader):
    """Load numeric in text format as Decimal (``NaN``, ``Infinity`` included)."""

    # Hand-written: load() inlines the function, one Python frame fewer.
    def load(self, data: Buffer) -> Any:
        return Decimal(bytes(data).decode("ascii"))

    def load_function(self) -> LoadFunction:
        return _load_numeric_text


class NumericBinaryLoader(FunctionLoader, function=numeric_to_decimal, format=Format.BINARY):
    """Load numeric in binary format as Decimal."""


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the numeric adapters on *adapters* (text is the ``%s`` choice)."""
    register_dumpers(
        adapters,
        [
            (int, IntBinaryDumper, IntDumper),
            (float, FloatBinaryDumper, FloatDumper),
            (Decimal, DecimalBinaryDumper, DecimalDumper),
        ],
    )
    register_loaders(
        adapters,
        [
            (INT2_OID, IntLoader, Int2BinaryLoader),
            (INT4_OID, IntLoader, Int4BinaryLoader),
            (INT8_OID, IntLoader, Int8BinaryLoader),
            (OID_OID, IntLoader, OidBinaryLoader),
            (FLOAT4_OID, FloatLoader, Float4BinaryLoader),
            (FLOAT8_OID, FloatLoader, Float8BinaryLoader),
            (NUMERIC_OID, NumericLoader, NumericBinaryLoader),
        ],
    )
