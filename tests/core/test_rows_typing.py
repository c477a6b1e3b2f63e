"""mypy infers the row type from the row factory: checked by running mypy on a snippet."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPET = """
from dataclasses import dataclass
from typing import Any, Sequence

import psycopg3_asyncio
import psycopg3_sync
import psycopg3_trio
from psycopg3.abc import BaseCursor
from psycopg3.rows import RowMaker, args_row, class_row, dict_row, namedtuple_row, tuple_row


@dataclass
class Person:
    name: str


def first_value(cursor: BaseCursor[Any]) -> RowMaker[int]:
    def make(values: Sequence[Any]) -> int:
        return int(values[0])

    return make


def sync_cases(conn: psycopg3_sync.Connection) -> None:
    reveal_type(conn.cursor(row_factory=tuple_row).fetchone())  # tuple
    reveal_type(conn.cursor().fetchone())  # connection default
    reveal_type(conn.cursor(row_factory=dict_row).fetchone())  # dict
    reveal_type(conn.cursor(row_factory=dict_row).fetchall())  # dict list
    reveal_type(conn.cursor(row_factory=namedtuple_row).fetchmany())  # namedtuple list
    reveal_type(conn.cursor(row_factory=class_row(Person)).fetchone())  # person
    reveal_type(conn.cursor(row_factory=args_row(lambda *a: str(a))).fetchone())  # str
    reveal_type(conn.cursor(row_factory=first_value).fetchone())  # user
    reveal_type(conn.cursor().execute("select 1", row_factory=dict_row))  # execute
    reveal_type(conn.cursor("c", row_factory=dict_row))  # server
    reveal_type(conn.cursor("c", row_factory=dict_row).fetchall())  # server rows
    for row in conn.cursor(row_factory=class_row(Person)):
        reveal_type(row)  # iteration


def connect_cases(dsn: str) -> None:
    conn = psycopg3_sync.connect(dsn, row_factory=dict_row)
    reveal_type(conn)  # connect
    reveal_type(conn.cursor().fetchone())  # connect cursor
    reveal_type(conn.execute("select 1").fetchall())  # connect execute
    with psycopg3_sync.connect(dsn, autocommit=True, row_factory=class_row(Person)) as conn2:
        reveal_type(conn2.cursor().fetchone())  # connect with


async def asyncio_cases(conn: psycopg3_asyncio.Connection) -> None:
    reveal_type(await conn.cursor(row_factory=dict_row).fetchone())  # asyncio
    async for row in conn.cursor("c", row_factory=class_row(Person)):
        reveal_type(row)  # asyncio server iteration


async def trio_cases(conn: psycopg3_trio.Connection) -> None:
    reveal_type(await conn.cursor(row_factory=namedtuple_row).fetchall())  # trio


async def async_connect_cases(dsn: str) -> None:
    aconn = await psycopg3_asyncio.asyncio_connect(dsn, row_factory=dict_row)
    reveal_type(await aconn.cursor().fetchone())  # asyncio connect
    async with psycopg3_trio.trio_connect(dsn, row_factory=class_row(Person)) as tconn:
        reveal_type(await tconn.cursor("c").fetchall())  # trio connect server
    async with psycopg3_trio.trio_connect(dsn) as tconn2:
        reveal_type(await tconn2.cursor().fetchone())  # trio default
"""

EXPECTED = {
    "tuple": "tuple[Any, ...] | None",
    "connection default": "tuple[Any, ...] | None",
    "connect": "psycopg3_sync.connection.Connection[dict[str, Any]]",
    "connect cursor": "dict[str, Any] | None",
    "connect with": "Person | None",
    "connect execute": "list[dict[str, Any]]",
    "dict": "dict[str, Any] | None",
    "dict list": "list[dict[str, Any]]",
    "namedtuple list": "list[NamedTuple]",
    "person": "Person | None",
    "str": "str | None",
    "user": "int | None",
    "execute": "psycopg3_sync.cursor.Cursor[dict[str, Any]]",
    "server": "psycopg3_sync.cursor.ServerCursor[dict[str, Any]]",
    "server rows": "list[dict[str, Any]]",
    "iteration": "Person",
    "asyncio": "dict[str, Any] | None",
    "asyncio server iteration": "Person",
    "trio": "list[NamedTuple]",
    "asyncio connect": "dict[str, Any] | None",
    "trio connect server": "list[Person]",
    "trio default": "tuple[Any, ...] | None",
}


def _normalise(revealed: str) -> str:
    revealed = revealed.replace("builtins.", "").replace("typing.", "")
    revealed = revealed.replace("snippet.", "")
    return re.sub(r"\s+", " ", revealed)


def test_row_types_inferred(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    labels = {
        number: line.rsplit("# ", 1)[1]
        for number, line in enumerate(SNIPPET.splitlines(), start=1)
        if "reveal_type(" in line
    }
    cache_provider = getattr(request.config, "cache", None)
    cache = cache_provider.mkdir("mypy-rows") if cache_provider else tmp_path
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--config-file=",
            f"--cache-dir={cache}",
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=55,
    )
    revealed: dict[str, str] = {}
    problems = []
    for line in proc.stdout.splitlines():
        match = re.match(r".*snippet\.py:(\d+): note: Revealed type is \"(.*)\"$", line)
        if match:
            revealed[labels[int(match.group(1))]] = _normalise(match.group(2))
        elif ": error:" in line:
            problems.append(line)
    assert problems == [], proc.stdout
    assert revealed == EXPECTED
