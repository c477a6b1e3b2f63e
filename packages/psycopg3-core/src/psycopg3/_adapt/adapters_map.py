"""The registry of dumper and loader classes: ``AdaptersMap``.

Must not: instantiate dumpers or loaders (the ``Transformer`` does), talk to
libpq, or import any concurrency framework.

Rules:

1. Three levels: the global map ``psycopg3.adapters``, one per connection
   (made from the global one), one per cursor (made from its connection's).
   A map made from a template is a snapshot of it: registering on any level
   changes that level (and the maps later made from it) only, never the
   template nor its other children, nor children made before the change.
2. Snapshots are cheap: the tables are shared until one side writes, and the
   writer copies (copy-on-write, per table).
3. Dumpers are found by Python type, walking the type's MRO so subclasses
   inherit their base's dumper; a type may be registered by its qualified
   name (``"uuid.UUID"``) so that its module need not be imported.
4. A dumper registered for TEXT or BINARY also becomes the AUTO (``%s``)
   choice for its type: the last registered wins.
5. Loaders are found by OID and libpq format; a type name is resolved to its
   OID through the map's ``TypesRegistry``.
6. Every registration, here or in ``types``, changes `generation`: whoever
   caches what it chose from the map (a cursor's transformer) compares it
   before reusing the choice, so a registration made after first use is
   honoured by the next query.
"""

from __future__ import annotations

from .. import errors
from ..pq import Format
from .base import Dumper, Loader, PyFormat
from .registry import TypesRegistry

__all__ = ["AdaptersMap"]

_DumperTable = dict[type | str, type[Dumper]]
_LoaderTable = dict[int, type[Loader]]
# Maps are made per cursor: avoid iterating the PyFormat Enum (slow) each time.
_FORMATS = tuple(PyFormat)


class AdaptersMap:
    """Which dumper adapts each Python type, which loader each PostgreSQL type.

    :param template: the map to start from (a snapshot is taken), or None
        to start empty.
    :param types: the type registry to resolve names with; by default a
        snapshot of the template's, or an empty one.
    """

    __slots__ = ("types", "_dumpers", "_loaders", "_owned", "_has_names", "_registrations")

    def __init__(self, template: AdaptersMap | None = None, types: TypesRegistry | None = None):
        self._dumpers: dict[PyFormat, _DumperTable]
        self._loaders: list[_LoaderTable]  # indexed by Format
        # The tables this map may write to: PyFormat for dumpers, Format for loaders.
        self._owned: set[PyFormat | Format]
        self.types: TypesRegistry
        self._registrations = 0
        if template is None:
            self._dumpers = {fmt: {} for fmt in _FORMATS}
            self._loaders = [{}, {}]
            self._has_names = False
            self._owned = {*_FORMATS, Format.TEXT, Format.BINARY}
        else:
            self._dumpers = template._dumpers.copy()
            self._loaders = template._loaders.copy()
            self._has_names = template._has_names
            # Tables are shared from now on: the next writer on either side copies.
            template._owned = set()
            self._owned = set()
        if types is None:
            types = TypesRegistry(template.types) if template is not None else TypesRegistry()
        self.types = types

    def __repr__(self) -> str:
        ndumpers = sum(len(t) for t in self._dumpers.values())
        nloaders = sum(len(t) for t in self._loaders)
        return f"<AdaptersMap {ndumpers} dumpers, {nloaders} loaders at 0x{id(self):x}>"

    @property
    def generation(self) -> int:
        """A number that changes whenever a dumper, loader or type is registered."""
        return self._registrations + self.types.generation

    def register_dumper(self, cls: type | str, dumper: type[Dumper]) -> None:
        """Use *dumper* for objects of *cls* and its subclasses.

        The dumper serves placeholders of its own format (``%t`` or ``%b``)
        and becomes the choice for ``%s``.

        :param cls: a Python type, or its qualified name (``"module.Class"``).
        :param dumper: a `Dumper` subclass.
        """
        if not isinstance(cls, (type, str)):
            raise TypeError(f"dumpers are registered for a type or its name, got {cls!r}")
        self._registrations += 1
        for fmt in (PyFormat.from_pq(dumper.format), PyFormat.AUTO):
            if fmt not in self._owned:
                self._dumpers[fmt] = dict(self._dumpers[fmt])
                self._owned.add(fmt)
            self._dumpers[fmt][cls] = dumper
        if isinstance(cls, str):
            self._has_names = True

    def register_loader(self, oid: int | str, loader: type[Loader]) -> None:
        """Use *loader* for values of the type *oid* in the loader's format.

        :param oid: a type OID, or a name known to `types` (``"int4"``).
        :param loader: a `Loader` subclass.
        :raises ProgrammingError: if the name is not a known type.
        """
        if isinstance(oid, str):
            oid = self._oid_of(oid)
        elif not isinstance(oid, int):
            raise TypeError(f"loaders are registered for an OID or a type name, got {oid!r}")
        fmt = loader.format
        self._registrations += 1
        if fmt not in self._owned:
            self._loaders[fmt] = dict(self._loaders[fmt])
            self._owned.add(fmt)
        self._loaders[fmt][oid] = loader

    def get_dumper(self, cls: type, format: PyFormat) -> type[Dumper]:
        """Return the dumper class for objects of *cls* (or of a base class).

        :param format: the placeholder's format.
        :raises ProgrammingError: if no dumper fits.
        """
        dumper = self.find_dumper(cls, format)
        if dumper is None:
            raise errors.ProgrammingError(self.cannot_adapt_message(cls, format))
        return dumper

    def find_dumper(self, cls: type, format: PyFormat) -> type[Dumper] | None:
        """Like `get_dumper()`, but return None if no dumper fits."""
        table = self._dumpers[format]
        for base in cls.__mro__:
            found = table.get(base)
            if found is None and self._has_names:
                found = table.get(f"{base.__module__}.{base.__qualname__}")
            if found is not None:
                return found
        return None

    def get_loader(self, oid: int, format: Format) -> type[Loader] | None:
        """Return the loader class for a type OID and format, or None."""
        return self._loaders[format].get(oid)

    def cannot_adapt_message(self, cls: type, format: PyFormat, param: str | None = None) -> str:
        """Explain why no dumper fits *cls*, naming the parameter if given."""
        where = f" (parameter {param})" if param else ""
        msg = f"cannot adapt type {cls.__name__!r}{where}: no dumper registered"
        if format is PyFormat.AUTO:
            return msg + f" for {cls.__module__}.{cls.__qualname__} or its base classes"
        msg += f" for the {format.name} format (placeholder %{format.value})"
        for other in (PyFormat.TEXT, PyFormat.BINARY):
            if other is not format and self.find_dumper(cls, other) is not None:
                msg += f"; one exists for %{other.value}"
        return msg

    def _oid_of(self, name: str) -> int:
        try:
            return self.types.get_oid(name)
        except KeyError:
            raise errors.ProgrammingError(f"unknown PostgreSQL type name: {name!r}") from None
