"""The flake gate (tools/flakes.py) names a test whose outcome changes between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flakes

ROOT = Path(__file__).parent.parent

#: A test that passes on odd runs and fails on even ones (it counts its runs in
#: a file), one that always passes, and one that is always skipped.
FLIP_FLOP = """
from pathlib import Path

import pytest

COUNTER = Path(__file__).with_name("runs")


def test_flip_flop():
    runs = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(runs))
    assert runs % 2 == 1


def test_steady():
    pass


def test_always_skipped():
    pytest.skip("never runs")
"""


def run_gate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -p no:cacheprovider: nothing written beside the test file; the rootdir is
    # tmp_path, so the suite's own conftest and cluster stay out of it.
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "flakes.py"),
            "--no-hog",
            *args,
            "--",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_a_test_changing_outcome_is_listed(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(FLIP_FLOP)
    result = run_gate(tmp_path, "--runs", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "flakes: 1 tests failed or changed outcome:" in result.stdout
    assert "test_sample::test_flip_flop: passed failed" in result.stdout
    assert "test_steady" not in result.stdout.split("changed outcome:")[1]


def test_steady_outcomes_pass_the_gate(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(FLIP_FLOP.replace("runs % 2 == 1", "runs > 0"))
    result = run_gate(tmp_path, "--runs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every test had the same outcome in every run, and none failed" in result.stdout


def test_a_test_failing_every_time_fails_the_gate() -> None:
    runs = [{"a::t": "failed", "a::u": "passed"}, {"a::t": "failed", "a::u": "passed"}]
    assert flakes.compare(runs) == [("a::t", ["failed", "failed"])]


def test_a_test_missing_from_a_run_is_listed() -> None:
    runs = [{"a::t": "passed", "a::u": "skipped"}, {"a::u": "skipped"}]
    assert flakes.compare(runs) == [("a::t", ["passed", "missing"])]


def test_no_test_collected_fails_the_gate(tmp_path: Path) -> None:
    result = run_gate(tmp_path, "--runs", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "exit codes [5]" in result.stdout
