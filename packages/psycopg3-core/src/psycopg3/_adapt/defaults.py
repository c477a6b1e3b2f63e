"""The one place that fills the global map with the built-in types and adapters.

Layer: adaptation (its top: it imports the ``types`` package). Imported once,
by the package ``psycopg3`` itself, so that the global map
``psycopg3.adapters`` is complete before any connection copies it. The types
and the adapters are registered in that order: some registrations (arrays)
look their types up by name.

Must not: be imported by a module of the layers below the package (they use
``_adapt.global_map``, which does not depend on this module).
"""

from __future__ import annotations

from .. import types
from .global_map import adapters
from .typeinfo import builtin_types

__all__: list[str] = []


def _install() -> None:
    for info in builtin_types():
        adapters.types.add(info)
    types.register_default_adapters(adapters)


_install()
