"""The global adapters map, ``psycopg3.adapters``, with every built-in adapter.

Must not: talk to libpq or import any concurrency framework.

Connections make their map from this one when they are created: a later
registration here reaches the connections created after it, not before.
"""

from __future__ import annotations

from ..types import register_default_adapters
from .adapters_map import AdaptersMap
from .typeinfo import builtin_types

__all__ = ["adapters"]

adapters = AdaptersMap(types=builtin_types())
register_default_adapters(adapters)
