"""The satellites of a connection use only its public members; the rest through a link.

A cursor, a COPY, a pipeline or transaction block, a ``notifies()``
iteration: each builds generators that need more of its connection than its
public API, and gets it from a ``psycopg3._link`` link, whose members say
what they promise. This test parses every satellite module and fails on any
access to a private member of a name that holds a connection (``conn._x``,
``self._conn._x``, ``cursor._conn._x``, ``self.connection._x``,
``getattr(conn, "_x")``), so that ``_link`` stays the one place outside the
connection that knows the connection's internals.

The names that hold a connection are those the satellites use for it:
``conn``, ``connection``, and any ``<something>._conn``,
``<something>._connection`` or ``<something>.connection``. (A connection
renamed to anything else is out of sight: keep to these names.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent.parent / "packages" / "psycopg3-core" / "src" / "psycopg3"

#: The modules that work on a connection from outside it. (``_tpc`` and
#: ``_transaction_control`` are not: they are mixins of the connection itself,
#: whose ``self`` is the connection.)
SATELLITES = [
    "_copy",
    "_copy_gen",
    "_pipeline",
    "_pipeline_queue",
    "_pipeline_gen",
    "_transaction",
    "_server_cursor",
    "_async_cursor",
    "_blocking_cursor",
    "_cursor_base",
    "_cursor_fetch",
    "_cursor_many",
    "_notify",
    "_async_blocks",
    "_blocking_blocks",
]

CONNECTION_NAMES = {"conn", "connection"}
CONNECTION_ATTRIBUTES = {"_conn", "_connection", "connection"}


def holds_connection(node: ast.expr) -> bool:
    """Whether the expression names a connection, by the satellites' names for one."""
    if isinstance(node, ast.Name):
        return node.id in CONNECTION_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in CONNECTION_ATTRIBUTES
    return False


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str) -> list[str]:
    """Every private member of a connection the source reads, writes or calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            if holds_connection(node.value):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and holds_connection(node.args[0])
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", SATELLITES)
def test_satellite_uses_no_private_member_of_its_connection(module: str) -> None:
    uses = private_uses((CORE / f"{module}.py").read_text())
    assert not uses, (
        f"psycopg3.{module} reaches into its connection; use a member of its link"
        " (psycopg3._link, add one there if needed) instead:\n" + "\n".join(uses)
    )


def test_the_link_is_where_the_connection_internals_are_used() -> None:
    # The check sees what the link does (it is not a satellite): the
    # rule is applied to something real.
    assert private_uses((CORE / "_link.py").read_text())


@pytest.mark.parametrize(
    "source",
    [
        "conn._pipeline",
        "self._conn._wait(gen)",
        "cursor._conn._prepare_manager.decide(key)",
        "self.connection._check_usable()",
        "connection._tpc_xid = None",
        "conn._transaction_blocks.append(self)",
        "getattr(self._conn, '_pipeline', None)",
        "await self._conn._wait_shielded(gen)",
    ],
)
def test_checker_finds_private_uses(source: str) -> None:
    assert len(private_uses(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "self._conn.pgconn",
        "conn.lock.settle(link.in_block())",
        "self._link.wait(gen)",
        "cursor._conn",
        "self._pipeline._entries",
        "conn.__class__",
        "getattr(conn, 'target', conn)",
    ],
)
def test_checker_allows_public_uses(source: str) -> None:
    assert private_uses(source) == []


def test_every_satellite_exists() -> None:
    for module in SATELLITES:
        assert (CORE / f"{module}.py").is_file(), module
