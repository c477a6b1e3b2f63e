"""Progress a person can read: one line per test file instead of a dot per test.

Without ``-v``, pytest prints a character per test: thousands of them, which
tell nothing until the end. This plugin prints, as each test file finishes,
one line with the file, its outcomes, its time and how far the run is::

    [ 42%  2130/5061  1m52s] tests/adapters/test_copy.py: 139 passed (38.0 s)

and names a failing test on a line of its own the moment it fails. It works
the same in one process and under pytest-xdist (where files finish
interleaved: a file's line comes when its last test is done). With ``-v``,
pytest's own line per test is shown instead. ``-p no:fix_progress`` turns it
off.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator, Iterable

import pytest

#: The outcomes shown in a file's line, in this order.
_SHOWN = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


class _Progress:
    """What the run has collected and what it has reported so far, per file."""

    def __init__(self, terminal: pytest.TerminalReporter) -> None:
        self.terminal = terminal
        self.started = time.monotonic()
        self.expected: Counter[str] = Counter()
        self.done: set[str] = set()
        self.finished: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.seconds: Counter[str] = Counter()
        self.collected = False
        # Set while pytest's terminal reporter handles a report: only then is
        # the per-test character suppressed (the summary asks for it too).
        self.reporting = False

    def collect(self, nodeids: Iterable[str]) -> None:
        if self.collected:
            return  # every xdist worker collects the same tests
        self.collected = True
        for nodeid in nodeids:
            self.expected[_file_of(nodeid)] += 1

    def report(self, report: pytest.TestReport, category: str) -> None:
        path = _file_of(report.nodeid)
        self.seconds[path] += report.duration
        outcomes = self.outcomes.setdefault(path, Counter())
        if report.failed:
            what = "ERROR" if report.when != "call" else "FAILED"
            self.terminal.write_line(f"{what} {report.nodeid} ({report.when})", red=True)
        if report.when == "teardown" and report.failed:
            outcomes["error"] += 1
            return
        if report.when != "call" and (report.passed or report.when == "teardown"):
            return
        if report.nodeid in self.done:
            return
        self.done.add(report.nodeid)
        outcomes[category if category in _SHOWN else report.outcome] += 1
        self.finished[path] += 1
        if self.finished[path] == self.expected[path]:
            self.file_done(path)

    def file_done(self, path: str) -> None:
        total = sum(self.expected.values())
        ran = len(self.done)
        percent = ran * 100 // total if total else 100
        elapsed = int(time.monotonic() - self.started)
        counts = ", ".join(
            f"{self.outcomes[path][name]} {name}" for name in _SHOWN if self.outcomes[path][name]
        )
        bad = self.outcomes[path]["failed"] or self.outcomes[path]["error"]
        self.terminal.write_line(
            f"[{percent:3d}%  {ran}/{total}  {elapsed // 60}m{elapsed % 60:02d}s] "
            f"{path}: {counts} ({self.seconds[path]:.1f} s)",
            red=bool(bad),
        )


#: The run's progress, in the process that prints (not in xdist workers).
_current: _Progress | None = None


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    global _current
    _current = None
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its output is not shown, the controller reports
    if config.get_verbosity() > 0:
        return
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:
        return
    # Without a file name at the start of each file, the lines are ours alone.
    terminal.showfspath = False
    _current = _Progress(terminal)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _current is not None:
        _current.collect(item.nodeid for item in session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    if _current is not None:
        _current.collect(ids)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> Generator[None, None, None]:
    progress = _current
    if progress is None:
        return (yield)
    progress.reporting = True
    try:
        return (yield)
    finally:
        progress.reporting = False


@pytest.hookimpl(wrapper=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> Generator[None, tuple[str, str, str], tuple[str, str, str]]:
    category, letter, word = yield
    progress = _current
    if progress is None or not progress.reporting or not isinstance(report, pytest.TestReport):
        return category, letter, word
    progress.report(report, category)
    # The category still counts in pytest's final summary; the character is gone.
    return category, "", ""
