"""Adapters of nothing: the ``void`` type (of ``select pg_sleep(0)``) loads as None.

Must not: talk to libpq or import any concurrency framework.

Python's None needs no dumper: the transformer passes it as a NULL parameter
of unknown type (OID 0), which the server accepts wherever a value may go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._adapt.base import Buffer, Loader, LoadFunction
from ..pq import Format

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

VOID_OID = 2278


def _load_nothing(data: bytes) -> None:
    return None


class VoidLoader(Loader):
    """Load a ``void`` value (an empty string in text format) as None."""

    def load(self, data: Buffer) -> Any:
        return None

    def load_function(self) -> LoadFunction:
        return _load_nothing


class VoidBinaryLoader(VoidLoader):
    """Load a ``void`` value in binary format as None."""

    format = Format.BINARY


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the void loaders on *adapters*."""
    adapters.register_loader(VOID_OID, VoidLoader)
    adapters.register_loader(VOID_OID, VoidBinaryLoader)
