"""Every flavour offers the same API: what one can do, the others can.

The classes of each flavour expose the same public names; a method that
waits is a coroutine in the async flavours and a plain method in the
blocking one, and nothing else differs. The modules export the same names
but for each flavour's own waiter and connect alias, and for the DB-API 2.0
module contents (exceptions, type objects, ``apilevel``…), which the
specification asks of a blocking module only.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import pytest

import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from pep249 import EXCEPTIONS, TYPES

FLAVOURS = {"sync": psycopg3_sync, "asyncio": psycopg3_asyncio, "trio": psycopg3_trio}
CLASSES = ["Connection", "Cursor", "ServerCursor", "ConnectionPool"]

#: Names a flavour alone has, each with the reason.
OWN_NAMES = {
    "sync": {
        "wait_select": "the waiter",
        "apilevel": "DB-API module global",
        "threadsafety": "DB-API module global",
        "paramstyle": "DB-API module global",
        "errors": "DB-API: the exceptions, reachable from the module",
        **dict.fromkeys(EXCEPTIONS, "DB-API exception"),
        **dict.fromkeys(TYPES, "DB-API type object or constructor"),
    },
    "asyncio": {"wait_asyncio": "the waiter", "asyncio_connect": "connect alias"},
    "trio": {"wait_trio": "the waiter", "trio_connect": "connect alias"},
}

#: Public methods a flavour's class lacks, each with the reason.
LACKING = {
    ("trio", "ConnectionPool"): {
        "open": "a trio pool lives in a nursery: `async with open_pool(...)` only",
    },
}


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_modules_export_the_same_names() -> None:
    shared = {
        flavour: set(module.__all__) - set(OWN_NAMES[flavour])
        for flavour, module in FLAVOURS.items()
    }
    assert shared["sync"] == shared["asyncio"] == shared["trio"], shared
    for flavour, module in FLAVOURS.items():
        assert set(OWN_NAMES[flavour]) <= set(module.__all__), flavour
        for name in module.__all__:
            assert hasattr(module, name), f"{flavour}.{name} is in __all__ but missing"


@pytest.mark.parametrize("name", CLASSES)
def test_classes_expose_the_same_names(name: str) -> None:
    excused = {attr for (_, cls), lacking in LACKING.items() if cls == name for attr in lacking}
    names = {
        flavour: public(getattr(module, name)) - excused for flavour, module in FLAVOURS.items()
    }
    assert names["sync"] == names["asyncio"] == names["trio"], {
        flavour: sorted(these ^ names["sync"]) for flavour, these in names.items()
    }
    for flavour, module in FLAVOURS.items():
        lacking = set(LACKING.get((flavour, name), {}))
        assert not lacking & public(getattr(module, name)), (flavour, name)
        assert excused - lacking <= public(getattr(module, name)), (flavour, name)


@pytest.mark.parametrize("name", CLASSES)
def test_async_methods_where_sync_ones_wait(name: str) -> None:
    # A method is a coroutine in both async flavours or in neither; and a
    # coroutine there is a plain method (or a property) in the blocking one.
    sync_cls, asyncio_cls, trio_cls = (getattr(m, name) for m in FLAVOURS.values())
    for attr in sorted(public(asyncio_cls) & public(trio_cls)):
        a, t = getattr(asyncio_cls, attr), getattr(trio_cls, attr)
        assert is_coroutine(a) == is_coroutine(t), f"{name}.{attr}"
        if attr in public(sync_cls):
            assert not is_coroutine(getattr(sync_cls, attr)), f"sync {name}.{attr}"


def is_coroutine(obj: Any) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj)


def test_the_table_of_exceptions_is_needed() -> None:
    # Each name excused above still exists: a stale excuse would hide a gap.
    for flavour, module in FLAVOURS.items():
        stale = [name for name in OWN_NAMES[flavour] if name not in module.__all__]
        assert not stale, (flavour, stale)
    assert isinstance(psycopg3_sync, ModuleType)
