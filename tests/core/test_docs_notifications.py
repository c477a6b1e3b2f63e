"""The examples of docs/notifications.md run, in order, against the test server.

They run in a fresh interpreter, like those of docs/adaptation.md: the sync,
asyncio and trio examples each use their own flavour for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent.parent / "docs" / "notifications.md"

RUNNER = """
import json, sys
dsn, blocks = json.loads(sys.stdin.read())
namespace = {"dsn": dsn}
for number, block in enumerate(blocks, 1):
    try:
        exec(compile(block, f"notifications.md, example {number}", "exec"), namespace)
    except Exception as ex:
        print(f"example {number} failed: {ex!r}", file=sys.stderr)
        raise
print(f"{len(blocks)} examples ran")
"""


def test_examples_run(dsn: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 5
    assert any("asyncio.run(" in block for block in blocks)
    assert any("trio.run(" in block for block in blocks)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([dsn, blocks]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(blocks)} examples ran" in result.stdout
    # What the examples printed: the notifications, in the order sent.
    assert "jobs build 42\njobs build 43\n" in result.stdout
    assert "from asyncio\n('still usable',)\n" in result.stdout
