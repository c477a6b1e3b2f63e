"""Python <-> PostgreSQL adaptation: the public names.

Must not: hold any implementation (it lives in ``psycopg3._adapt``), talk to
libpq, or import any concurrency framework.

To adapt a new Python type, subclass `Dumper` and register it::

    class PointDumper(Dumper):
        oid = 600  # point

        def dump(self, obj):
            return f"({obj.x},{obj.y})".encode()

    psycopg3.adapt.adapters.register_dumper(Point, PointDumper)

and to load a PostgreSQL type, subclass `Loader` and register it by OID or
name (``adapters.register_loader("point", PointLoader)``). Registering on a
connection's or cursor's ``adapters`` affects only that object (and the
cursors later created from the connection).
"""

from __future__ import annotations

from ._adapt.adapters_map import AdaptersMap
from ._adapt.base import (
    AdaptContext,
    Buffer,
    Dumper,
    DumperKey,
    DumperProtocol,
    Loader,
    LoaderProtocol,
    LoadFunction,
    PyFormat,
)
from ._adapt.global_map import adapters
from ._adapt.typeinfo import TypeInfo, TypesRegistry
from ._transformer import Transformer
from .pq import Format

__all__ = [
    "AdaptContext",
    "AdaptersMap",
    "Buffer",
    "Dumper",
    "DumperKey",
    "DumperProtocol",
    "Format",
    "LoadFunction",
    "Loader",
    "LoaderProtocol",
    "PyFormat",
    "Transformer",
    "TypeInfo",
    "TypesRegistry",
    "adapters",
]
