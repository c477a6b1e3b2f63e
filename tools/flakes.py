"""The flake gate: run the test suite several times on a loaded machine, compare outcomes.

Usage: ``python tools/flakes.py [--runs 5] [--no-hog] [-- PYTEST ARGS]``
(``nox -s flakes`` runs it on the installed packages). While one busy-looping
process per core keeps every core busy, pytest runs the suite ``--runs`` times
(each with a JUnit XML report in a temporary folder); then every test whose
outcome was not the same in every run is listed, with its outcome in each run,
and so is every test that failed in all of them. The exit code is 0 only when
every test had the same outcome every time and none failed.

A test that fails only under load is a bug, in the test or in the driver,
until shown which: this is how it is found, never by running again until green.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The selection of ``nox -s tests``, given before the user's arguments so that theirs win.
DEFAULT_PYTEST_ARGS = ["-n", "auto", "-m", "not slow"]


@contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """Keep ``processes`` cores busy while the block runs."""
    # Each hog spins until its parent is gone: none outlives a killed run.
    spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def outcomes_of(report: Path) -> dict[str, str]:
    """Return each test's outcome (passed, failed, error, skipped) from a JUnit XML file."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                break
        # A test failing in its call and erroring in its teardown appears twice.
        if outcomes.get(test, "passed") == "passed":
            outcomes[test] = outcome
    return outcomes


def compare(runs: list[dict[str, str]]) -> list[tuple[str, list[str]]]:
    """Return the tests whose outcome differed between runs, or that never passed.

    A test missing from a run (not collected, or its worker crashed) counts as
    ``missing`` in that run.
    """
    tests = sorted(set().union(*runs))
    bad = []
    for test in tests:
        seen = [run.get(test, "missing") for run in runs]
        if len(set(seen)) > 1 or seen[0] in ("failed", "error", "missing"):
            bad.append((test, seen))
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="how many times (default 5)")
    parser.add_argument("--no-hog", action="store_true", help="leave the cores idle")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    hog = 0 if args.no_hog else os.cpu_count() or 1
    results: list[dict[str, str]] = []
    codes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="psycopg3-flakes-") as folder, cpu_hog(hog):
        for run in range(1, args.runs + 1):
            report = Path(folder) / f"run-{run}.xml"
            command = [
                sys.executable,
                "-m",
                "pytest",
                *DEFAULT_PYTEST_ARGS,
                f"--junitxml={report}",
                *args.pytest_args,
            ]
            print(f"flakes: run {run}/{args.runs}, {hog} busy processes: {' '.join(command)}")
            started = time.monotonic()
            code = subprocess.run(command, check=False).returncode
            codes.append(code)
            seconds = time.monotonic() - started
            print(f"flakes: run {run} ended with exit code {code} in {seconds:.0f} s")
            if not report.exists():
                print(f"flakes: run {run} wrote no report (pytest exit code {code})")
                return 1
            results.append(outcomes_of(report))

    bad = compare(results)
    total = len(set().union(*results))
    print()
    print(
        f"flakes: {args.runs} runs of {total} tests with {hog} busy processes; exit codes {codes}"
    )
    if not bad:
        if any(codes):
            print("flakes: same outcomes every run, but pytest did not exit with 0")
            return 1
        print("flakes: every test had the same outcome in every run, and none failed")
        return 0
    print(f"flakes: {len(bad)} tests failed or changed outcome:")
    for test, seen in bad:
        print(f"  {test}: {' '.join(seen)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
