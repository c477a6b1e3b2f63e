"""What the built-in adapters of several types share: small bases and registration.

Layer: adaptation, below every ``types`` module that uses it. Must not: talk
to libpq, know a concrete type, or import any concurrency framework. Nothing
here is part of the contract for adapter authors (``psycopg3.abc``): the bases
spare the built-in modules from writing the same class bodies again.

Rules:

1. A built-in dumper or loader says what it is as class keywords:
   ``class UUIDBinaryLoader(FunctionLoader, function=..., format=BINARY)``.
   The keywords are read once, when the class is made; what the class then
   does for each value is exactly what a hand-written class would do.
2. Speed: the per-value path is never longer than a hand-written class's.
   A loader made of one function gives that function itself to the row loop
   (``load_function()``) and calls it from ``load()`` as a closure variable
   (as fast as a module global); a dumper made of a ``struct`` layout *is*
   the layout's ``pack`` (no Python frame per value).
3. Methods that a keyword makes are set on the class being made, never on a
   base, and together (``load`` with ``load_function``): a user subclass that
   overrides ``load``/``dump`` is then seen as an override, and a built-in
   class is not (see ``_adapt.base``, rule 5).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._adapt.base import Buffer, Dumper, Loader, LoadFunction
from ..pq import Format

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = [
    "BuiltinDumper",
    "StructDumper",
    "BuiltinLoader",
    "FunctionLoader",
    "StructLoader",
    "register_dumpers",
    "register_loaders",
    "quote_literal",
]


class BuiltinDumper(Dumper):
    """A dumper whose OID and format are class keywords (``oid=``, ``format=``)."""

    def __init_subclass__(
        cls, *, oid: int | None = None, format: Format | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if oid is not None:
            cls.oid = oid
        if format is not None:
            cls.format = format


class StructDumper(BuiltinDumper):
    """A binary dumper of one ``struct`` layout (class keyword ``layout="!h"``)."""

    format = Format.BINARY

    def __init_subclass__(cls, *, layout: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if layout:
            # The bound pack() itself (rule 2): dumper.dump(obj) is one C call.
            cls.dump = staticmethod(struct.Struct(layout).pack)  # type: ignore[method-assign,assignment]

    def dump(self, obj: Any) -> Buffer:
        raise NotImplementedError("a StructDumper subclass gives its layout=")


class BuiltinLoader(Loader):
    """A loader whose format is a class keyword (``format=``)."""

    def __init_subclass__(cls, *, format: Format | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if format is not None:
            cls.format = format


class FunctionLoader(BuiltinLoader):
    """A loader that is one function of the value's bytes (class keyword ``function=``).

    The row loop calls that function for each value (rule 2); ``load()`` calls
    it on the value made ``bytes``.
    """

    function: LoadFunction = bytes

    def __init_subclass__(cls, *, function: LoadFunction | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if function is None:
            return
        # staticmethod: a Python function must not become a bound method.
        cls.function = staticmethod(function)

        def load(self: FunctionLoader, data: Buffer) -> Any:
            return function(bytes(data))

        def load_function(self: FunctionLoader) -> LoadFunction:
            return function

        # Rule 3. bytes() takes any buffer: it is its own load().
        own_load = staticmethod(bytes) if function is bytes else load
        cls.load = own_load  # type: ignore[method-assign,assignment]
        cls.load_function = load_function  # type: ignore[method-assign]

    def load(self, data: Buffer) -> Any:
        return self.function(bytes(data))

    def load_function(self) -> LoadFunction:
        return self.function


class StructLoader(BuiltinLoader):
    """A binary loader of one ``struct`` layout (class keyword ``layout="!h"``).

    The row loop unpacks a whole column with its ``fixed_struct``.
    """

    format = Format.BINARY
    _struct = struct.Struct("!i")

    def __init_subclass__(cls, *, layout: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if layout:
            cls._struct = struct.Struct(layout)

    @property
    def fixed_struct(self) -> struct.Struct | None:
        """The struct of one value: the row loop unpacks a whole column with it.

        None in a subclass that loads differently: its own function is called.
        """
        cls = type(self)
        if cls.load is StructLoader.load and cls.load_function is StructLoader.load_function:
            return self._struct
        return None

    def load(self, data: Buffer) -> Any:
        return self._struct.unpack(data)[0]

    def load_function(self) -> LoadFunction:
        unpack = self._struct.unpack

        def load(data: bytes) -> Any:
            return unpack(data)[0]

        return load


DumperPairs = Iterable[tuple[type, type[Dumper], type[Dumper]]]
LoaderPairs = Iterable[tuple[int, type[Loader], type[Loader]]]


def register_dumpers(adapters: AdaptersMap, pairs: DumperPairs) -> None:
    """Register two dumpers for each Python type, the ``%s`` choice last.

    :param pairs: a Python type, its other dumper, then the one ``%s`` uses
        (usually the text one: the binary dumper, then the text one).
    """
    for cls, other_dumper, auto_dumper in pairs:
        adapters.register_dumper(cls, other_dumper)
        adapters.register_dumper(cls, auto_dumper)


def register_loaders(adapters: AdaptersMap, pairs: LoaderPairs) -> None:
    """Register, for each OID, its text loader and its binary one."""
    for oid, text_loader, binary_loader in pairs:
        adapters.register_loader(oid, text_loader)
        adapters.register_loader(oid, binary_loader)


def quote_literal(data: bytes, needs_quotes: re.Pattern[bytes], escaped_quote: bytes) -> bytes:
    """Return a value's text as it must appear inside a range or record literal.

    Bare, unless empty or *needs_quotes* finds a character in it: then
    double-quoted, backslashes doubled and quotes written *escaped_quote*.
    """
    if data and not needs_quotes.search(data):
        return data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', escaped_quote) + b'"'
