"""The binary format of PostgreSQL arrays: header, dimensions, length-prefixed elements.

Must not: know any element type (elements arrive as bytes already dumped, or
leave as bytes for a loader), talk to libpq, or import any concurrency
framework.

The layout, all integers big-endian: number of dimensions (int4), has-NULLs
flag (int4), element type OID (uint4); for each dimension its size and its
lower bound (int4 each); then every element in row-major order, each as its
length (int4, -1 for NULL) followed by that many bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .. import errors
from .._adapt.base import Buffer

__all__ = ["pack_array", "unpack_array"]

_header = struct.Struct("!iiI")
_int4 = struct.Struct("!i")
_pack_int4 = _int4.pack
_unpack_int4 = _int4.unpack_from
_NULL = _pack_int4(-1)


def pack_array(element_oid: int, dims: list[int], items: list[Buffer | None]) -> bytes:
    """Return the binary array of already dumped elements (row-major) and their shape."""
    has_null = None in items
    parts: list[Buffer] = [_header.pack(len(dims), has_null, element_oid)]
    parts.extend(struct.pack("!ii", dim, 1) for dim in dims)
    for item in items:
        if item is None:
            parts.append(_NULL)
        else:
            parts.append(_pack_int4(len(item)))
            parts.append(item)
    return b"".join(parts)


def unpack_array(data: bytes, get_load: Callable[[int], Callable[[bytes], Any]]) -> list[Any]:
    """Return the (nested) list of a binary array.

    :param get_load: returns the load function of an element OID (read from
        the array's header).
    :raises DataError: if *data* is not a binary array.
    """
    try:
        ndim, _, element_oid = _header.unpack_from(data)
        if ndim == 0:
            return []
        dims = struct.unpack_from(f"!{2 * ndim}i", data, 12)[0::2]
    except struct.error:
        raise errors.DataError(f"malformed binary array: {data[:50]!r}") from None
    load = get_load(element_oid)
    pos = 12 + 8 * ndim
    count = 1
    for dim in dims:
        count *= dim
    items: list[Any] = []
    append = items.append
    try:
        for _ in range(count):
            size = _unpack_int4(data, pos)[0]
            pos += 4
            if size < 0:
                append(None)
            else:
                end = pos + size
                append(load(data[pos:end]))
                pos = end
    except struct.error:
        raise errors.DataError(f"truncated binary array: {data[:50]!r}") from None
    # Group the flat elements, innermost dimension first.
    for dim in reversed(dims[1:]):
        items = [items[i : i + dim] for i in range(0, len(items), dim)]
    return items
