"""The global adapters map, ``psycopg3.adapters``: the object, empty at first.

Layer: adaptation. The map is made here and filled by one module,
``_adapt.defaults`` (the built-in types and their dumpers and loaders), which
the package ``psycopg3`` imports: whatever imports a module of the package
finds the map filled, since a package runs before its modules are used. This
module imports neither ``types`` nor ``typeinfo``, so that both can use the
map without an import cycle.

Must not: talk to libpq or import any concurrency framework.

Connections make their map from this one when they are created: a later
registration here reaches the connections created after it, not before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapters_map import AdaptersMap

if TYPE_CHECKING:
    from .base import AdaptContext

__all__ = ["adapters", "adapters_of"]

adapters = AdaptersMap()


def adapters_of(context: AdaptContext | None) -> AdaptersMap:
    """Return the adapters map of a context; this global one for None."""
    return adapters if context is None else context.adapters
