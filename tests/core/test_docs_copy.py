"""The examples of docs/copy.md run, in order, against the test server.

They run in a fresh interpreter, as those of the other documentation pages.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent.parent / "docs" / "copy.md"

RUNNER = """
import json, sys
dsn, blocks = json.loads(sys.stdin.read())
namespace = {"dsn": dsn}
for number, block in enumerate(blocks, 1):
    try:
        exec(compile(block, f"copy.md, example {number}", "exec"), namespace)
    except Exception as ex:
        print(f"example {number} failed: {ex!r}", file=sys.stderr)
        raise
print(f"{len(blocks)} examples ran")
"""


def test_examples_run(dsn: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 7
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([dsn, blocks]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(blocks)} examples ran" in result.stdout
    # The error example reached the server's unique violation.
    assert "refused: duplicate key value violates unique constraint" in result.stdout
