"""The set of known PostgreSQL types, found by OID or by name: ``TypesRegistry``.

Layer: adaptation (the bottom of it, with ``base``). It holds `TypeInfo`
objects but needs nothing of them beyond their attributes, so it imports no
other module of the package: ``adapters_map`` builds on it, ``typeinfo``
(whose ``register()`` reaches the global map) sits above both.

Must not: talk to libpq or import any concurrency framework.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .typeinfo import TypeInfo

__all__ = ["TypesRegistry"]


class TypesRegistry:
    """A set of `TypeInfo`, found by OID or by name.

    A registry made from a *template* starts as a snapshot of it and copies
    its tables only when first changed, so that children are cheap to make
    and a change never reaches the template (or the template's change a child).

    :param template: the registry to start from, or None to start empty.
    """

    __slots__ = ("_by_oid", "_by_name", "_is_own", "generation")

    def __init__(self, template: TypesRegistry | None = None):
        self._by_oid: dict[int, TypeInfo]
        self._by_name: dict[str, TypeInfo]
        # Bumped by every add(): what was chosen with this registry may be stale.
        self.generation = 0
        if template is None:
            self._by_oid, self._by_name = {}, {}
            self._is_own = True
        else:
            self._by_oid, self._by_name = template._by_oid, template._by_name
            # From now on, both share the tables: whoever writes first copies.
            self._is_own = template._is_own = False

    def add(self, info: TypeInfo) -> None:
        """Register a type, replacing any of the same OID or name."""
        if not self._is_own:
            self._by_oid, self._by_name = dict(self._by_oid), dict(self._by_name)
            self._is_own = True
        self.generation += 1
        self._by_oid[info.oid] = info
        self._by_name[info.name] = info
        self._by_name[info.regtype] = info
        if info.array_oid:
            self._by_name[f"{info.name}[]"] = info
            self._by_name[f"{info.regtype}[]"] = info

    def get(self, key: int | str) -> TypeInfo | None:
        """Return the type of an OID or name (``int4``, ``integer``), or None.

        A name ending in ``[]`` returns the element's type.
        """
        if isinstance(key, int):
            return self._by_oid.get(key)
        return self._by_name.get(key)

    def __getitem__(self, key: int | str) -> TypeInfo:
        info = self.get(key)
        if info is None:
            raise KeyError(f"unknown PostgreSQL type: {key!r}")
        return info

    def __contains__(self, key: int | str) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[TypeInfo]:
        return iter(list(self._by_oid.values()))

    def get_oid(self, name: str) -> int:
        """Return the OID of a type name; ``name[]`` gives the array's OID.

        :raises KeyError: if the name is unknown.
        """
        info = self[name]
        return info.array_oid if name.endswith("[]") else info.oid
