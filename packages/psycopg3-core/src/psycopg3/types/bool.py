"""Adapters of booleans: bool <-> PostgreSQL bool, in text and binary format.

Must not: talk to libpq or import any concurrency framework.

``bool`` is a subclass of ``int`` but has its own dumpers, found first in its
MRO: ``True`` is passed as the bool ``t``, never as the integer 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._adapt.base import Buffer, Dumper, Loader, LoadFunction
from ..pq import Format

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

BOOL_OID = 16

# The server's spellings: text output is 't'/'f', binary is one byte 1/0.
_TEXT_VALUES = {b"t": True, b"f": False}
_BINARY_VALUES = {b"\x01": True, b"\x00": False}


class BoolDumper(Dumper):
    """Dump a bool as PostgreSQL bool (text)."""

    oid = BOOL_OID

    def dump(self, obj: Any) -> Buffer:
        return b"t" if obj else b"f"


class BoolBinaryDumper(Dumper):
    """Dump a bool as PostgreSQL bool (binary)."""

    oid = BOOL_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return b"\x01" if obj else b"\x00"


class BoolLoader(Loader):
    """Load a PostgreSQL bool in text format."""

    def load(self, data: Buffer) -> Any:
        return _TEXT_VALUES[bytes(data)]

    def load_function(self) -> LoadFunction:
        return _TEXT_VALUES.__getitem__


class BoolBinaryLoader(Loader):
    """Load a PostgreSQL bool in binary format."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return _BINARY_VALUES[bytes(data)]

    def load_function(self) -> LoadFunction:
        return _BINARY_VALUES.__getitem__


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the bool adapters on *adapters* (text is the ``%s`` choice)."""
    adapters.register_dumper(bool, BoolBinaryDumper)
    adapters.register_dumper(bool, BoolDumper)
    adapters.register_loader(BOOL_OID, BoolLoader)
    adapters.register_loader(BOOL_OID, BoolBinaryLoader)
