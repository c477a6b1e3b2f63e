"""The examples of docs/pipeline.md run, in order, against the test server.

They run in a fresh interpreter, as a reader would run them: sync, asyncio
and trio examples alike (the async ones start their own event loop).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent.parent / "docs" / "pipeline.md"

RUNNER = """
import json, sys
dsn, blocks = json.loads(sys.stdin.read())
namespace = {"dsn": dsn}
for number, block in enumerate(blocks, 1):
    try:
        exec(compile(block, f"pipeline.md, example {number}", "exec"), namespace)
    except Exception as ex:
        print(f"example {number} failed: {ex!r}", file=sys.stderr)
        raise
print(f"{len(blocks)} examples ran")
"""


def test_examples_run(dsn: str) -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    # Every flavour is shown.
    assert "psycopg3_sync" in text and "asyncio_connect" in text and "trio_connect" in text
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([dsn, blocks]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4 examples ran" in out
    assert "rows: 100" in out
    assert "1 ('item 1',) ('item 2',)" in out
    assert "failed: 23505" in out and "skipped" in out and "('working again',)" in out
    assert "after commit: (50,)" in out and "after rollback: (50,)" in out
