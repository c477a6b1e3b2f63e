"""Adapters of arrays: Python lists <-> PostgreSQL arrays of any type, any number of dimensions.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A list is dumped with the dumper of its elements: the first non-None
   element, found depth first, picks it (for ints, the one of largest
   magnitude, so that ``[1, 10**10]`` is an int8 array, not an overflowing
   int4 one). The array's OID is the element type's array type, found in the
   context's `TypesRegistry`; the array's format is the element dumper's.
   So ``[1, 2, 3]`` is an int4[] and ``x = any(%s)`` works as in SQL.
   Every element must be dumped to that same type, else ``DataError`` (an
   aware datetime in a timestamp array would silently lose its offset);
   ints are accepted in float and Decimal arrays.
2. Elements of type ``str`` are dumped with an unknown type (OID 0), but the
   server has no "array of unknown": their array is passed as text[]. Cast
   it where another type is wanted (``%s::uuid[]``).
3. A list with no non-None element (``[]``, ``[None]``, ``[[], []]``) has no
   element type: it is passed in text format with an unknown type, for the
   server to infer from the query (``x = any(%s)``, ``%s::int[]``).
4. Nested lists are dimensions: they must be rectangular and hold no NULL
   sub-list (PostgreSQL arrays can't), else ``DataError``.
5. Every array type known to the adapters' `TypesRegistry` when the defaults
   are installed gets a loader; types registered later (enums, composites)
   get theirs from `register_array()`. Loaded arrays are lists (nested for
   several dimensions), whatever their lower bounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import (
    AdaptContext,
    Buffer,
    Dumper,
    DumperKey,
    Loader,
    LoadFunction,
    PyFormat,
    row_load_function,
)
from .._adapt.typeinfo import TypeInfo
from .._transformer import Transformer, transformer_of
from ..pq import Format
from ._array_binary import pack_array, unpack_array
from ._array_text import parse_array, quote_element

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["ListDumper", "ListBinaryDumper", "ArrayLoader", "ArrayBinaryLoader", "register_array"]

TEXT_OID, TEXT_ARRAY_OID, BOX_OID = 25, 1009, 603
_WIDER_THAN_INT = (float, Decimal)


# PostgreSQL's MAXDIM: deeper lists (a list containing itself included) are refused.
_MAX_DIMENSIONS = 6


def _too_deep() -> errors.DataError:
    return errors.DataError(
        f"lists nested more than {_MAX_DIMENSIONS} deep (or containing themselves)"
        f" can't be an array: PostgreSQL arrays have at most {_MAX_DIMENSIONS} dimensions"
    )


def _first_leaf(items: list[Any], depth: int = 1) -> Any:
    if depth > _MAX_DIMENSIONS:
        raise _too_deep()
    for item in items:
        if type(item) is list:
            item = _first_leaf(item, depth + 1)
        if item is not None:
            return item
    return None


def _leaves(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if type(item) is list:
            yield from _leaves(item)
        else:
            yield item


def _representative(items: list[Any]) -> Any:
    """Return the element that picks the array's dumper, or None if all are NULL."""
    item = _first_leaf(items)
    if type(item) is not int:
        return item
    # Ints: the one of largest magnitude, unless a float or Decimal makes the
    # array one of those (~x maps the negative half of int4's and int8's
    # ranges onto the positive one).
    # A None first means a NULL sub-array or ragged lists: rejected when dumped.
    flat = items if type(items[0]) is not list else _leaves(items)
    largest, magnitude = item, item if item >= 0 else ~item
    for x in flat:
        if type(x) is int:
            if (x if x >= 0 else ~x) > magnitude:
                largest, magnitude = x, x if x >= 0 else ~x
        elif type(x) in _WIDER_THAN_INT:
            return x
    return largest


def _shape(obj: list[Any]) -> list[int]:
    dims: list[int] = []
    while type(obj) is list:
        if len(dims) == _MAX_DIMENSIONS:
            raise _too_deep()
        dims.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    return dims


def _flatten(obj: list[Any], dims: list[int], depth: int, out: list[Any]) -> None:
    """Append the leaves of *obj* to *out*, checking that it has the shape *dims*."""
    if len(obj) != dims[depth]:
        raise errors.DataError("nested lists of different lengths can't be an array")
    if depth + 1 == len(dims):
        for item in obj:
            if type(item) is list:
                raise errors.DataError("nested lists of different depths can't be an array")
            out.append(item)
        return
    for item in obj:
        if type(item) is not list:
            what = "NULL sub-arrays" if item is None else "nested lists of different depths"
            raise errors.DataError(f"{what} can't be an array")
        _flatten(item, dims, depth + 1, out)


class _BaseListDumper(Dumper):
    """Choose, by its elements, the dumper of a list (see the rules above)."""

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._tx = transformer_of(context)

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        item = _representative(obj)
        if item is None:
            return (list,)
        element = self._tx.get_dumper(item, format)
        return (list, type(item), type(element))

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        item = _representative(obj)
        if item is None:
            return _ArrayDumper(self.cls, self._tx, None, 0)
        element = self._tx.get_dumper(item, format)
        oid = element.oid
        info = self._tx.adapters.types.get(oid) if oid else None
        array_oid = info.array_oid if info is not None else TEXT_ARRAY_OID if not oid else 0
        if element.format == Format.BINARY:
            if not array_oid:
                raise errors.ProgrammingError(
                    f"no array type known for the type OID {oid} of {type(item).__name__}:"
                    " register its TypeInfo on the adapters' types"
                )
            return _ArrayBinaryDumper(self.cls, self._tx, element, array_oid)
        return _ArrayDumper(self.cls, self._tx, element, array_oid, oid == BOX_OID)

    def dump(self, obj: Any) -> Buffer:
        return self.upgrade(obj, PyFormat.from_pq(self.format)).dump(obj)


class ListDumper(_BaseListDumper):
    """Dump a list as an array (chooses a text or binary one by its elements for ``%s``)."""


class ListBinaryDumper(_BaseListDumper):
    """Dump a list as an array in binary format."""

    format = Format.BINARY


class _ElementsDumper(Dumper):
    """Dump the leaves of a list with one element dumper (and compatible ones)."""

    def __init__(self, cls: type, tx: Transformer, element: Dumper | None, array_oid: int) -> None:
        super().__init__(cls, tx)
        self._tx = tx
        self.element = element
        self.oid = array_oid
        self._element_cls = element.cls if element is not None else type(None)
        # A dumper choosing by value (naive or aware datetime) may give two
        # elements of one class two types: then check each element (rule 1).
        # Ints need no check: the one of largest magnitude picked the dumper.
        self._check_each = False
        if element is not None and self._element_cls is not int:
            fmt = PyFormat.from_pq(element.format)
            base = tx.adapters.find_dumper(self._element_cls, fmt)
            self._check_each = base is not None and base.get_key is not Dumper.get_key

    def _dump_leaves(self, leaves: list[Any]) -> list[Buffer | None]:
        element = self.element
        if element is None:
            return [None] * len(leaves)
        dump, dump_other = element.dump, self._dump_other
        # With _check_each, every element goes through _dump_other().
        cls = self._element_cls if not self._check_each else type(None)
        return [None if x is None else dump(x) if type(x) is cls else dump_other(x) for x in leaves]

    def _dump_other(self, item: Any) -> Buffer:
        """Dump an element of another class than the one that picked the dumper."""
        assert self.element is not None
        if type(item) is int and self._element_cls in _WIDER_THAN_INT:
            # [1.5, 2]: the int becomes an element of the array's type.
            try:
                return self.element.dump(self._element_cls(item))
            except OverflowError:
                raise errors.DataError(
                    f"an int of {item.bit_length()} bits is too large for a float array"
                ) from None
        return self._other_dumper(item).dump(item)

    def _other_dumper(self, item: Any) -> Dumper:
        assert self.element is not None
        if type(item) is list:
            raise errors.DataError("nested lists of different depths can't be an array")
        fmt = PyFormat.from_pq(self.element.format)
        try:
            other = self._tx.get_dumper(item, fmt)
        except errors.ProgrammingError:
            other = None
        if other is None or other.oid != self.element.oid or other.format != self.format:
            what = self._type_name(other.oid) if other is not None else "no type"
            raise errors.DataError(
                f"cannot put {item!r:.60} ({what}) in an array of"
                f" {self._type_name(self.element.oid)}: an array's elements have one type"
            )
        return other

    def _type_name(self, oid: int) -> str:
        info = self._tx.adapters.types.get(oid)
        return info.name if info is not None else "unknown" if not oid else f"OID {oid}"


class _ArrayDumper(_ElementsDumper):
    """Dump a list as an array in text format (``{1,2,NULL}``)."""

    def __init__(
        self,
        cls: type,
        tx: Transformer,
        element: Dumper | None,
        array_oid: int,
        uses_semicolons: bool = False,
    ) -> None:
        super().__init__(cls, tx, element, array_oid)
        self._delimiter = b";" if uses_semicolons else b","

    def dump(self, obj: Any) -> Buffer:
        dims = _shape(obj)
        if 0 in dims:
            leaves: list[Any] = []
            _flatten(obj, dims, 0, leaves)
            return b"{}"
        if len(dims) == 1:
            leaves = obj
        else:
            leaves = []
            _flatten(obj, dims, 0, leaves)
        items = [b"NULL" if x is None else quote_element(x) for x in self._dump_leaves(leaves)]
        # Join the innermost dimension first, then each enclosing one.
        delimiter = self._delimiter
        for dim in reversed(dims):
            items = [
                b"{" + delimiter.join(items[i : i + dim]) + b"}" for i in range(0, len(items), dim)
            ]
        return items[0]


class _ArrayBinaryDumper(_ElementsDumper):
    """Dump a list as an array in binary format."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        assert self.element is not None
        dims, leaves = binary_layout(obj)
        return pack_array(self.element.oid, dims, self._dump_leaves(leaves))


def binary_layout(obj: list[Any]) -> tuple[list[int], list[Any]]:
    """Return the dimensions and the leaves (row-major) of a list, for a binary array.

    An array with no element has no dimension.

    :raises DataError: if the nested lists do not form a rectangular array.
    """
    dims = _shape(obj)
    leaves: list[Any] = []
    _flatten(obj, dims, 0, leaves)
    return (dims if leaves else []), leaves


def _element_oid(array_oid: int, context: AdaptContext | None) -> int:
    """Return the element type of an array type, from the context's registry (0 if unknown)."""
    if context is not None:
        for info in context.adapters.types:
            if info.array_oid == array_oid:
                return info.oid
    return 0


class ArrayLoader(Loader):
    """Load an array in text format as a list, its elements with their own loader.

    Subclasses made by `register_array()` fix ``element_oid``; when it is 0 the
    element type is found in the context's `TypesRegistry`.
    """

    element_oid: int = 0
    delimiter: bytes = b","

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        self._tx = transformer_of(context)
        if not self.element_oid:
            self.element_oid = _element_oid(oid, self._tx)
            if self.element_oid == BOX_OID:
                self.delimiter = b";"
        loader = self._tx.get_loader(self.element_oid, self.format)
        self._load_element: LoadFunction = row_load_function(loader) if loader else bytes

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))

    def load_function(self) -> LoadFunction:
        load_element, delimiter = self._load_element, self.delimiter

        def load(data: bytes) -> Any:
            return parse_array(data, load_element, delimiter)

        return load


class ArrayBinaryLoader(ArrayLoader):
    """Load an array in binary format as a list (the element type is in the value)."""

    format = Format.BINARY

    def load_function(self) -> LoadFunction:
        expected_oid, load_expected = self.element_oid, self._load_element
        get_loader = self._tx.get_loader

        def get_load(element_oid: int) -> LoadFunction:
            if element_oid == expected_oid:
                return load_expected
            loader = get_loader(element_oid, Format.BINARY)
            return row_load_function(loader) if loader else bytes

        def load(data: bytes) -> Any:
            return unpack_array(data, get_load)

        return load


def register_array(info: TypeInfo, adapters: AdaptersMap, *, delimiter: str = ",") -> None:
    """Load the arrays of a type, and dump lists of it with its array OID.

    Call it after registering the element type's own adapters, for types not
    known when the defaults were installed (enums, composites, extensions).
    The type is added to ``adapters.types`` if it isn't there.

    :param info: the element type; its ``array_oid`` must be set.
    :param adapters: the map to register the loaders on.
    :param delimiter: the type's array delimiter (``typdelim``).
    :raises ProgrammingError: if the type has no array type.
    """
    if not info.array_oid:
        raise errors.ProgrammingError(f"the type {info.name!r} has no array type")
    if adapters.types.get(info.oid) is None:
        adapters.types.add(info)
    attrs = {"element_oid": info.oid, "delimiter": delimiter.encode()}
    for base in (ArrayLoader, ArrayBinaryLoader):
        name = f"{info.name.title().replace('.', '')}{base.__name__}"
        adapters.register_loader(info.array_oid, type(name, (base,), attrs))


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the list dumpers and a loader for every array type in ``adapters.types``."""
    adapters.register_dumper(list, ListBinaryDumper)
    adapters.register_dumper(list, ListDumper)
    for info in adapters.types:
        if info.array_oid:
            adapters.register_loader(info.array_oid, ArrayLoader)
            adapters.register_loader(info.array_oid, ArrayBinaryLoader)
