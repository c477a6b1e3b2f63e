"""Adapters of json and jsonb: the ``Json`` and ``Jsonb`` wrappers, and configurable loading.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. A Python dict or list is not passed as json by itself (a list is an array,
   a dict has no dumper): wrap the object, ``Json(obj)`` or ``Jsonb(obj)``,
   to say which type the server should receive.
2. Objects are serialised with a ``dumps`` function and values parsed with a
   ``loads`` function, by default the standard library's. Either can be
   replaced for everything (``context=None``), for one connection, or for one
   cursor::

       import orjson
       from psycopg3.types.json import set_json_dumps, set_json_loads

       set_json_loads(orjson.loads)                 # everywhere
       set_json_dumps(my_dumps, context=conn)       # this connection only
       set_json_loads(custom_loads, context=cur)    # this cursor only

   and for one value, ``Json(obj, dumps=my_dumps)``. ``loads`` receives a
   ``str``; ``dumps`` may return ``str`` or ``bytes`` (UTF-8 or the client
   encoding).
3. In binary format json is the same bytes as in text; jsonb is a version
   byte (1) followed by the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import AdaptContext, Buffer, Dumper, Loader, LoadFunction, context_encoding
from .._adapt.global_map import adapters_of
from ..pq import Format
from ._bases import BuiltinDumper, BuiltinLoader

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["Json", "Jsonb", "set_json_dumps", "set_json_loads"]

JSON_OID, JSONB_OID = 114, 3802
_JSONB_VERSION = b"\x01"

JsonDumpsFunction = Callable[[Any], "str | bytes"]
JsonLoadsFunction = Callable[[str], Any]


class _JsonWrapper:
    __slots__ = ("obj", "dumps")

    def __init__(self, obj: Any, dumps: JsonDumpsFunction | None = None):
        self.obj = obj
        self.dumps = dumps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.obj!r})"


class Json(_JsonWrapper):
    """Pass a Python object as a json parameter.

    :param obj: any object the ``dumps`` function accepts.
    :param dumps: serialise this object with this function instead of the
        context's one.
    """

    __slots__ = ()


class Jsonb(_JsonWrapper):
    """Pass a Python object as a jsonb parameter (see `Json`)."""

    __slots__ = ()


class _JsonDumper(BuiltinDumper):
    # Replaced in the subclasses made by set_json_dumps().
    _dumps: JsonDumpsFunction = staticmethod(json.dumps)

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._codec = context_encoding(context).python_codec

    def dump(self, obj: Any) -> Buffer:
        dumps = obj.dumps or self._dumps
        try:
            data = dumps(obj.obj)
        except (TypeError, ValueError) as ex:
            raise errors.DataError(
                f"cannot serialise {type(obj.obj).__name__} to json: {ex}"
            ) from ex
        return data.encode(self._codec) if isinstance(data, str) else bytes(data)


class JsonDumper(_JsonDumper, oid=JSON_OID):
    """Dump a `Json` wrapper as json (text)."""


class JsonBinaryDumper(JsonDumper, format=Format.BINARY):
    """Dump a `Json` wrapper as json (binary: the same bytes as text)."""


class JsonbDumper(_JsonDumper, oid=JSONB_OID):
    """Dump a `Jsonb` wrapper as jsonb (text)."""


class JsonbBinaryDumper(JsonbDumper, format=Format.BINARY):
    """Dump a `Jsonb` wrapper as jsonb (binary: version byte 1, then the text)."""

    def dump(self, obj: Any) -> Buffer:
        return _JSONB_VERSION + _JsonDumper.dump(self, obj)


class _JsonLoader(BuiltinLoader):
    # Replaced in the subclasses made by set_json_loads().
    _loads: JsonLoadsFunction = staticmethod(json.loads)

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        self._codec = context_encoding(context).python_codec

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))


class JsonLoader(_JsonLoader):
    """Load json or jsonb in text format (and json in binary) with ``loads``."""

    def load_function(self) -> LoadFunction:
        loads, codec = self._loads, self._codec

        def load(data: bytes) -> Any:
            return loads(data.decode(codec))

        return load


class JsonBinaryLoader(JsonLoader, format=Format.BINARY):
    """Load json in binary format (the same bytes as text)."""


class JsonbBinaryLoader(_JsonLoader, format=Format.BINARY):
    """Load jsonb in binary format: check the version byte, parse the rest."""

    def load_function(self) -> LoadFunction:
        loads, codec = self._loads, self._codec

        def load(data: bytes) -> Any:
            if data[:1] != _JSONB_VERSION:
                raise errors.DataError(f"unknown jsonb binary format version: {data[:1]!r}")
            return loads(data[1:].decode(codec))

        return load


def set_json_dumps(dumps: JsonDumpsFunction, context: AdaptContext | None = None) -> None:
    """Serialise `Json` and `Jsonb` objects with *dumps* in a context.

    :param dumps: a function taking the wrapped object and returning ``str``
        or ``bytes``.
    :param context: a connection or cursor, to change only it (and, for a
        connection, the cursors it creates afterwards); None to change the
        global default.
    """
    adapters = adapters_of(context)
    attrs = {"_dumps": staticmethod(dumps)}
    bases: list[tuple[type, type[Dumper]]] = [
        (Json, JsonBinaryDumper),
        (Json, JsonDumper),
        (Jsonb, JsonbBinaryDumper),
        (Jsonb, JsonbDumper),
    ]
    for wrapper, base in bases:
        adapters.register_dumper(wrapper, type(base.__name__, (base,), attrs))


def set_json_loads(loads: JsonLoadsFunction, context: AdaptContext | None = None) -> None:
    """Parse json and jsonb values with *loads* in a context.

    :param loads: a function taking the value as ``str``.
    :param context: a connection or cursor, to change only it; None to change
        the global default.
    """
    adapters = adapters_of(context)
    attrs = {"_loads": staticmethod(loads)}
    _register_loaders(adapters, attrs)


def _register_loaders(adapters: AdaptersMap, attrs: dict[str, Any] | None = None) -> None:
    def make(base: type[Loader]) -> type[Loader]:
        return type(base.__name__, (base,), attrs) if attrs else base

    text_loader, binary_loader, jsonb_binary_loader = (
        make(JsonLoader),
        make(JsonBinaryLoader),
        make(JsonbBinaryLoader),
    )
    adapters.register_loader(JSON_OID, text_loader)
    adapters.register_loader(JSONB_OID, text_loader)
    adapters.register_loader(JSON_OID, binary_loader)
    adapters.register_loader(JSONB_OID, jsonb_binary_loader)


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the json adapters on *adapters* (text is the ``%s`` choice)."""
    adapters.register_dumper(Json, JsonBinaryDumper)
    adapters.register_dumper(Json, JsonDumper)
    adapters.register_dumper(Jsonb, JsonbBinaryDumper)
    adapters.register_dumper(Jsonb, JsonbDumper)
    _register_loaders(adapters)
