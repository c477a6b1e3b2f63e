"""The examples of the documentation pages run, in order, against the test server.

Each page's ``python`` blocks run in one fresh interpreter, as a reader would
run them: some register adapters globally, which must not leak into the other
tests, and the async examples start their own event loop. Each test then
checks what the examples printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parent.parent.parent / "docs"

RUNNER = """
import json, sys
page, dsn, blocks = json.loads(sys.stdin.read())
namespace = {"dsn": dsn}
for number, block in enumerate(blocks, 1):
    try:
        exec(compile(block, f"{page}, example {number}", "exec"), namespace)
    except Exception as ex:
        print(f"example {number} failed: {ex!r}", file=sys.stderr)
        raise
print(f"{len(blocks)} examples ran")
"""


def examples(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def run_examples(page: str, dsn: str) -> str:
    """Run every example of ``page``; return what they printed."""
    blocks = examples(page)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([page, dsn, blocks]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(blocks)} examples ran" in result.stdout
    return result.stdout


def test_adaptation(dsn: str) -> None:
    assert len(examples("adaptation.md")) >= 7
    out = run_examples("adaptation.md", dsn)
    # The bad-input example printed one clear message per mistake.
    assert "ProgrammingError: cannot adapt type 'object'" in out
    assert "DataError:" in out and "NUL" in out


def test_copy(dsn: str) -> None:
    assert len(examples("copy.md")) >= 7
    out = run_examples("copy.md", dsn)
    # The error example reached the server's unique violation.
    assert "refused: duplicate key value violates unique constraint" in out


def test_notifications(dsn: str) -> None:
    blocks = examples("notifications.md")
    assert len(blocks) == 5
    assert any("asyncio.run(" in block for block in blocks)
    assert any("trio.run(" in block for block in blocks)
    out = run_examples("notifications.md", dsn)
    # The notifications, in the order sent.
    assert "jobs build 42\njobs build 43\n" in out
    assert "from asyncio\n('still usable',)\n" in out


def test_pipeline(dsn: str) -> None:
    assert len(examples("pipeline.md")) == 4
    text = (DOCS / "pipeline.md").read_text()
    assert "psycopg3_sync" in text and "asyncio_connect" in text and "trio_connect" in text
    out = run_examples("pipeline.md", dsn)
    assert "rows: 100" in out
    assert "1 ('item 1',) ('item 2',)" in out
    assert "failed: 23505" in out and "skipped" in out and "('working again',)" in out
    assert "after commit: (50,)" in out and "after rollback: (50,)" in out


def test_pool(dsn: str) -> None:
    blocks = examples("pool.md")
    assert len(blocks) == 3
    assert "psycopg3_sync" in blocks[0]
    assert "asyncio.run(" in blocks[1] and "trio.run(" in blocks[2]
    out = run_examples("pool.md", dsn)
    assert "rows: 40\nnamed: pool-docs\neight threads, at most 4 connections: True\n" in out
    # The request that found the only connection busy, and the rolled back insert.
    assert "busy: PoolTimeout\ncounts: [0, 5, 5]\n" in out
    assert "sums: [10, 10, 10, 10, 10, 10, 10, 10]\nidle: 4 waiting: 0\nclosed: True\n" in out
