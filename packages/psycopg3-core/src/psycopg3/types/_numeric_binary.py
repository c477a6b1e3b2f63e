"""PostgreSQL's binary ``numeric`` format <-> Decimal.

Must not: talk to libpq or import any concurrency framework.

The format (``numeric_send``/``numeric_recv``): four 16-bit big-endian
integers, then the digits.

- ``ndigits``: how many base-10000 digits follow;
- ``weight``: the power of 10000 of the first digit;
- ``sign``: 0x0000 positive, 0x4000 negative, 0xC000 NaN, 0xD000 +Infinity,
  0xF000 -Infinity (infinities exist since PostgreSQL 14);
- ``dscale``: how many decimal digits follow the decimal point;
- ``ndigits`` signed 16-bit base-10000 digits, most significant first, with
  no leading or trailing zero digit.
"""

from __future__ import annotations

import struct
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from .. import errors

__all__ = ["decimal_to_numeric", "numeric_to_decimal"]

_POSITIVE, _NEGATIVE, _NAN, _PINF, _NINF = 0x0000, 0x4000, 0xC000, 0xD000, 0xF000
_header = struct.Struct("!hhHH")
_SPECIALS = {
    "n": _header.pack(0, 0, _NAN, 0),
    "N": _header.pack(0, 0, _NAN, 0),  # sNaN: PostgreSQL has no signalling NaN
    "F": _header.pack(0, 0, _PINF, 0),
}
_NEG_INF = _header.pack(0, 0, _NINF, 0)
_DEC_NAN, _DEC_PINF, _DEC_NINF = Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")


def decimal_to_numeric(value: Decimal) -> bytes:
    """Return the binary numeric representation of a Decimal."""
    sign, digits, exp = value.as_tuple()
    if not isinstance(exp, int):  # 'n', 'N' or 'F'
        if exp == "F" and sign:
            return _NEG_INF
        return _SPECIALS[exp]
    dscale = max(0, -exp)
    text = "".join(map(str, digits))
    if exp > 0:
        text += "0" * exp
        exp = 0
    nfrac = -exp
    # Align the decimal point on a base-10000 digit boundary at both ends.
    text += "0" * (-nfrac % 4)
    nint = len(text) - nfrac - (-nfrac % 4)
    text = "0" * (-nint % 4) + text
    nint += -nint % 4
    groups = [int(text[i : i + 4]) for i in range(0, len(text), 4)]
    weight = nint // 4 - 1
    start = 0
    while start < len(groups) and groups[start] == 0:
        start += 1
        weight -= 1
    end = len(groups)
    while end > start and groups[end - 1] == 0:
        end -= 1
    groups = groups[start:end]
    if not groups:
        weight = 0
    if not -32768 <= weight <= 32767 or dscale > 0x3FFF:
        raise errors.DataError(f"value out of the range of numeric: {value}")
    header = _header.pack(len(groups), weight, _NEGATIVE if sign else _POSITIVE, dscale)
    return header + struct.pack(f"!{len(groups)}h", *groups)


def numeric_to_decimal(data: bytes) -> Decimal:
    """Return the Decimal of a binary numeric value."""
    ndigits, weight, sign, dscale = _header.unpack_from(data)
    if sign != _POSITIVE and sign != _NEGATIVE:
        if sign == _NAN:
            return _DEC_NAN
        if sign == _PINF:
            return _DEC_PINF
        if sign == _NINF:
            return _DEC_NINF
        raise errors.DataError(f"bad sign in binary numeric: 0x{sign:04X}")
    digits = _digits_struct(ndigits).unpack_from(data, 8)
    coeff = 0
    for digit in digits:
        coeff = coeff * 10000 + digit
    # The value is coeff * 10000 ** (weight - ndigits + 1): rescale it to dscale
    # decimal places. Only zeros are dropped: digits beyond dscale are padding.
    shift = 4 * (weight - ndigits + 1) + dscale
    if shift >= 0:
        coeff *= 10**shift
    else:
        coeff //= 10**-shift
    return Decimal(-coeff if sign == _NEGATIVE else coeff).scaleb(-dscale, _EXACT)


# A context that never rounds: scaleb() only moves the exponent.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_DIGITS_STRUCTS = [struct.Struct(f"!{n}h") for n in range(32)]


def _digits_struct(ndigits: int) -> struct.Struct:
    if ndigits < 32:
        return _DIGITS_STRUCTS[ndigits]
    return struct.Struct(f"!{ndigits}h")
