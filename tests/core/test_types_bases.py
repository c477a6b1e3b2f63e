"""Tests of the built-in adapters' shared bases (``psycopg3.types._bases``).

The bases turn class keywords into class bodies: these tests pin what that
must not change (what the row loop calls, who counts as an override).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from datetime import time, timezone
from typing import Any

import psycopg3.types
from psycopg3._adapt.base import PyFormat, overrides_below, row_load_function
from psycopg3.adapt import AdaptersMap, Dumper, Loader, Transformer, adapters
from psycopg3.types._range_codec import BaseRangeDumper
from psycopg3.types.datetime import TimeDumper
from psycopg3.types.numeric import Int4BinaryDumper, IntBinaryDumper, IntLoader
from psycopg3.types.uuid import UUIDLoader


def _builtin_classes(base: type) -> list[type]:
    found = []
    for info in pkgutil.iter_modules(psycopg3.types.__path__):
        module = importlib.import_module(f"psycopg3.types.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_builtin_loaders_are_no_overrides() -> None:
    # A built-in class giving load_function() must get it used by the row loop.
    fast = [c for c in _builtin_classes(Loader) if c.load_function is not Loader.load_function]
    assert IntLoader in fast and UUIDLoader in fast
    assert [c for c in fast if overrides_below(c, "load", "load_function")] == []


def test_builtin_choosing_dumpers_are_no_overrides() -> None:
    # A built-in dumper choosing by value must hand values to the class it chose.
    # (Range dumpers upgrade to their own class: the question never arises.)
    choosing = [
        c
        for c in _builtin_classes(Dumper)
        if c.get_key is not Dumper.get_key and not issubclass(c, BaseRangeDumper)
    ]
    assert TimeDumper in choosing and IntBinaryDumper in choosing
    assert [c for c in choosing if overrides_below(c, "dump", "upgrade")] == []


def test_row_loop_calls_the_function_itself() -> None:
    load = row_load_function(UUIDLoader(2950))
    assert inspect.isfunction(load) and load is UUIDLoader.function
    assert row_load_function(IntLoader(23)) is int
    assert isinstance(Int4BinaryDumper(int).dump, types.BuiltinFunctionType)
    assert Int4BinaryDumper(int).dump(-2) == b"\xff\xff\xff\xfe"


def test_user_override_of_a_keyword_loader_is_called() -> None:
    class ShoutingLoader(UUIDLoader):
        def load(self, data: Any) -> Any:
            return bytes(data).upper()

    load = row_load_function(ShoutingLoader(2950))
    assert load(b"abc") == b"ABC"


def test_user_override_of_a_keyword_dumper_is_kept_when_upgraded() -> None:
    class MarkedTimeDumper(TimeDumper):
        def dump(self, obj: Any) -> bytes:
            return b"marked"

    amap = AdaptersMap(adapters)
    amap.register_dumper(time, MarkedTimeDumper)

    class Context:
        def __init__(self) -> None:
            self.adapters = amap

    tx = Transformer(Context())
    dumper = tx.get_dumper(time(1, tzinfo=timezone.utc), PyFormat.TEXT)
    assert dumper.dump(time(1)) == b"marked"
    assert dumper.oid == 1266  # timetz, as the base class chose
