"""The core is sans-I/O: importing it pulls in no framework and no selector."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys

import psycopg3
from psycopg3.waiting import Ready, Wait

FORBIDDEN = ["asyncio", "trio", "anyio", "select", "selectors", "threading"]


def test_core_imports_no_io_module() -> None:
    # Every public module of the core, imported in a fresh interpreter.
    code = (
        "import sys, json\n"
        "import psycopg3, psycopg3.pq, psycopg3.generators, psycopg3.waiting\n"
        "import psycopg3.adapt, psycopg3.abc, psycopg3.conninfo, psycopg3.errors\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # threading may come in through the standard library's logging: only
    # the waiting-related modules are forbidden outright.
    found = set(json.loads(out.stdout)) - {"threading"}
    assert found == set()


def test_adapters_do_import_their_framework() -> None:
    # The check above could pass by never importing anything: make sure the
    # same probe does see a framework when one is imported.
    code = (
        "import sys, json\nimport psycopg3_trio\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "trio" in json.loads(out.stdout)


def test_wait_values_match_selectors() -> None:
    assert Wait.R == selectors.EVENT_READ == Ready.R
    assert Wait.W == selectors.EVENT_WRITE == Ready.W
    assert Wait.RW == selectors.EVENT_READ | selectors.EVENT_WRITE == Ready.RW
    assert Ready.NONE == 0


def test_version_is_shared() -> None:
    import psycopg3_asyncio
    import psycopg3_sync
    import psycopg3_trio

    versions = {
        psycopg3.__version__,
        psycopg3_sync.__version__,
        psycopg3_asyncio.__version__,
        psycopg3_trio.__version__,
    }
    assert len(versions) == 1
