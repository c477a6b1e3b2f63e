"""Adapters of booleans: bool <-> PostgreSQL bool, in text and binary format.

Must not: talk to libpq or import any concurrency framework.

``bool`` is a subclass of ``int`` but has its own dumpers, found first in its
MRO: ``True`` is passed as the bool ``t``, never as the integer 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._adapt.base import Buffer, Loader, LoadFunction
from ..pq import Format
from ._bases import BuiltinDumper, BuiltinLoader, register_dumpers, register_loaders

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

BOOL_OID = 16

# The server's spellings: text output is 't'/'f', binary is one byte 1/0.
_TEXT_VALUES = {b"t": True, b"f": False}
_BINARY_VALUES = {b"\x01": True, b"\x00": False}


class BoolDumper(BuiltinDumper, oid=BOOL_OID):
    """Dump a bool as PostgreSQL bool (text)."""

    def dump(self, obj: Any) -> Buffer:
        return b"t" if obj else b"f"


class BoolBinaryDumper(BuiltinDumper, oid=BOOL_OID, format=Format.BINARY):
    """Dump a bool as PostgreSQL bool (binary)."""

    def dump(self, obj: Any) -> Buffer:
        return b"\x01" if obj else b"\x00"


# Hand-written: a subscript in load() is faster than a call to __getitem__.
class BoolLoader(Loader):
    """Load a PostgreSQL bool in text format."""

    def load(self, data: Buffer) -> Any:
        return _TEXT_VALUES[bytes(data)]

    def load_function(self) -> LoadFunction:
        return _TEXT_VALUES.__getitem__


class BoolBinaryLoader(BuiltinLoader, format=Format.BINARY):
    """Load a PostgreSQL bool in binary format."""

    def load(self, data: Buffer) -> Any:
        return _BINARY_VALUES[bytes(data)]

    def load_function(self) -> LoadFunction:
        return _BINARY_VALUES.__getitem__


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the bool adapters on *adapters* (text is the ``%s`` choice)."""
    register_dumpers(adapters, [(bool, BoolBinaryDumper, BoolDumper)])
    register_loaders(adapters, [(BOOL_OID, BoolLoader, BoolBinaryLoader)])
