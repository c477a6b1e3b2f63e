"""The suite's own rules, checked on its source: a sleep or a timed assertion says why.

A test waits for a condition, never for time (issue 15). Where time itself
is the subject (a timeout under test, a task kept busy while another is
cancelled) or a bound is the promise (a cancel returns, a connect times out),
a comment on the line or just above it says so, or the bound is a named
constant of the file whose ``#:`` comment does. These tests list every sleep
and every assertion on elapsed time that has no such comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

#: A sleep of the client's: the server's pg_sleep() is how tests keep a query running.
SLEEP = re.compile(r"\b(?:time|trio|asyncio|anyio)\.sleep\(")
#: An assertion on a duration measured with a clock.
TIMED_ASSERT = re.compile(
    r"^\s*assert\b.*(?:\belapsed\b|monotonic\(\)|perf_counter\(\)|\bseconds\b|\btook\b|\bwall\b)"
    r".*[<>]"
)


#: A module constant, such as a bound: ``CANCEL_BOUND``.
CONSTANT = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")


def _documented_constants(lines: list[str]) -> set[str]:
    """The constants of a file defined just below a ``#:`` comment."""
    return {
        match.group(0)
        for before, line in zip(lines, lines[1:])
        if before.startswith("#:") and (match := re.match(r"[A-Z][A-Z0-9_]{2,}(?= *[:=])", line))
    }


def _unexplained(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        lines = path.read_text().splitlines()
        documented = _documented_constants(lines)
        for number, line in enumerate(lines):
            if not pattern.search(line) or "#" in line:
                continue
            if pattern is TIMED_ASSERT and set(CONSTANT.findall(line)) & documented:
                continue
            above = number - 1
            while above >= 0 and not lines[above].strip():
                above -= 1
            # A comment just above, or the statement continues one that has one.
            if above >= 0 and lines[above].strip().startswith("#"):
                continue
            found.append(f"{path.relative_to(TESTS.parent)}:{number + 1}: {line.strip()}")
    return found


@pytest.mark.parametrize("pattern", [SLEEP, TIMED_ASSERT], ids=["sleeps", "timed-assertions"])
def test_every_sleep_and_timed_assertion_says_why(pattern: re.Pattern[str]) -> None:
    unexplained = _unexplained(pattern)
    assert unexplained == [], "\n".join(unexplained)


def test_the_patterns_match_sleeps_and_timed_assertions() -> None:
    # The patterns match what they are meant to, and a comment is what clears a line.
    assert SLEEP.search("        await anyio.sleep(0.5)")
    assert not SLEEP.search('    await conn.execute("select pg_sleep(1)")')
    assert TIMED_ASSERT.search("    assert elapsed < 10 * BOUND, elapsed")
    assert TIMED_ASSERT.search("    assert time.monotonic() - start < 5")
    assert not TIMED_ASSERT.search("    assert rows == [(1,)]")
