"""The examples of docs/adaptation.md run, in order, against the test server.

They run in a fresh interpreter: some register adapters globally, which must
not leak into the other tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent.parent / "docs" / "adaptation.md"

RUNNER = """
import json, sys
dsn, blocks = json.loads(sys.stdin.read())
namespace = {"dsn": dsn}
for number, block in enumerate(blocks, 1):
    try:
        exec(compile(block, f"adaptation.md, example {number}", "exec"), namespace)
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
    # The bad-input example printed one clear message per mistake.
    assert "ProgrammingError: cannot adapt type 'object'" in result.stdout
    assert "DataError:" in result.stdout and "NUL" in result.stdout
