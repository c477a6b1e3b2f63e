"""PostgreSQL types known to psycopg3 and their adapters (the built-in ones).

Must not: talk to libpq or import any concurrency framework. Each submodule
holds the dumpers and loaders of one family of types and a
``register_default_adapters(adapters)`` that installs them on a map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._adapt.typeinfo import TypeInfo, TypesRegistry, builtin_types
from . import (
    array,
    bool,
    composite,
    datetime,
    enum,
    hstore,
    json,
    net,
    none,
    numeric,
    range,
    string,
    uuid,
)

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["TypeInfo", "TypesRegistry", "builtin_types", "register_default_adapters"]


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install every built-in dumper and loader on *adapters*."""
    # Arrays last: they build on the dumpers and loaders of their elements.
    families = (string, numeric, bool, none, datetime, uuid, json, net, range, enum)
    for module in (*families, composite, hstore, array):
        module.register_default_adapters(adapters)
