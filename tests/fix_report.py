"""The reliability report: which test covers which scenario, and what it saw.

A test names the scenario of ``shared/RELIABILITY.md`` it provokes with the
``scenario`` marker, and records what it measured with the ``observe``
fixture::

    @pytest.mark.scenario("L1")
    async def test_terminate_mid_query(flavour, observe, ...):
        ...
        observe(f"AdminShutdown after {latency * 1000:.0f} ms, broken=True")

The flavour is read from the test's ``flavour`` parameter, or given to the
marker (``scenario("C1", flavour="sync")``) for tests written for one
flavour. ``pytest --reliability-report=docs/reliability.md`` writes the table
of every scenario, flavour, outcome and observation at the end of the run
(``nox -s reliability`` does that); a scenario no test covers shows as such.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Every scenario of RELIABILITY.md, with a short title, in its order.
SCENARIOS = {
    "C1": "Ctrl-C during a blocking query",
    "C2": "asyncio task cancellation during a query",
    "C3": "asyncio timeouts",
    "C4": "trio cancel scope",
    "C5": "cancel() / close() from another thread or task",
    "C6": "interruption storm and stale cancels",
    "C7": "interruption and exceptions during COPY",
    "C8": "cancellation against a frozen server is bounded",
    "C9": "interruption during connect",
    "L1": "pg_terminate_backend during a query",
    "L2": "server kills an idle connection",
    "L3": "fast restart mid-query",
    "L4": "crash of another backend",
    "L5": "peer closes (FIN) mid-operation",
    "L6": "RST in the middle of a result stream",
    "L7": "blackhole mid-query and client-side deadlines",
    "L8": "connect to a listener that never accepts",
    "L9": "commit acknowledgement lost",
    "L10": "protocol robustness: trickle and corruption",
    "L11": "pool hygiene on return and on checkout",
    "L12": "pool under total outage, recovery, cancelled waiters",
    "B1": "injection corpus through parameters",
    "B2": "client-side interpolation traps",
    "B3": "NUL bytes everywhere",
    "B4": "encodings",
    "B5": "parameter shape and type errors",
    "B6": "length and integer overflow guards",
    "B7": "huge values and server limits",
    "B8": "property-based round-trip fuzz",
    "R1": "no file-descriptor leaks on any path",
    "R2": "no C-heap or Python-object leaks",
    "R3": "GC, unclosed objects, interpreter exit, fork",
    "R4": "large fd numbers and no busy waiting",
    "R5": "sharing one connection between threads or tasks",
    "S1": "TLS sslmode matrix",
    "S2": "channel binding and authentication downgrade",
    "S3": "secrets hygiene and conninfo escaping",
    "D1": "DB-API 2.0 suite",
    "P1": "pool spike and abrupt loss under load",
    "P2": "soak with fault injection",
}

#: DESIGN.md's "What a trusted driver promises", each with the tests that hold it
#: as an invariant (model, every yield) and those that pin the cases found.
PROMISES = [
    (
        "A write reported as done is durable once its transaction commits; a write"
        " reported as failed is not; nothing is reported done that the server did not"
        " do (executemany, COPY and pipelines included).",
        "`tests/model/` (after every step of random programs, rows visible from a"
        " second session = rows reported done and committed; none reported failed or"
        " rolled back), `tests/interrupt/` (after an interruption at each yield the"
        " table holds what was reported done, nothing half-written);"
        " `tests/adapters/test_trust_executemany.py`, `test_trust_prepare.py`,"
        " `test_trust_transaction.py` (savepoints, Rollback targets),"
        " `test_trust_close.py` (COPY on a connection closed meanwhile),"
        " `test_trust_encoding.py`, `tests/core/test_trust_adapt.py` (values stored"
        " as given, or refused)",
    ),
    (
        "No caller ever receives another caller's result or error.",
        "`tests/model/` (tagged selects, several tasks sharing the connection),"
        " `tests/interrupt/` (the next query after an interruption gets its own tag),"
        " `tests/adapters/test_trust_sharing.py` (a block owns the connection for its"
        " task or thread), `test_trust_ownership.py`, scenarios C6 and R5 below",
    ),
    (
        "After any interruption, at any yield of any generator, the connection is"
        " either usable, with the server in the state the user believes (transaction"
        " status, open blocks, autocommit), or closed. Never wedged.",
        "`tests/interrupt/` (every command at every yield, every flavour: the count"
        " is at the end of this page), `tests/model/` (cancel scopes, `cancel()`,"
        " close from another task), `tests/adapters/test_trust_transaction.py`"
        " (entering and leaving blocks interrupted), `test_trust_close.py`,"
        " scenarios C1-C9 below",
    ),
    (
        "A connection inherited through `fork()` never sends anything from the child.",
        "`tests/adapters/test_trust_fork.py` (close, `with`, garbage collection and"
        " every use in the child; the parent's session checked in `pg_stat_activity`"
        " and the server log), scenario R3 below",
    ),
    (
        "Every error a user can provoke is a DB-API exception whose message says what to do.",
        "`tests/adapters/test_trust_errors.py` (every public entry point fed bad"
        " arguments, every flavour), `tests/core/test_trust_adapt.py` (values at the"
        " limits of Python's and PostgreSQL's types), `test_trust_encoding.py`,"
        " `test_trust_ownership.py`, scenarios B1-B8 below",
    ),
]

#: Scenarios that belong to a later issue's feature, and where they are covered.
DEFERRED: dict[str, str] = {}

FLAVOUR_ORDER = ["sync", "asyncio", "trio", "anyio-asyncio", "anyio-trio", "any"]


@dataclass
class _Record:
    outcomes: list[str] = field(default_factory=list)
    #: (test id, line): shown in the order of the tests' ids, whatever order they ran in.
    observations: list[tuple[str, str]] = field(default_factory=list)
    tests: int = 0


_records: dict[tuple[str, str], _Record] = defaultdict(_Record)
_observations_key = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        help="write the table of reliability scenarios covered by this run to PATH",
    )
    _addoption_every_yield(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scenario(id, flavour=None): the RELIABILITY.md scenario this test provokes",
    )


def _scenario_of(item: pytest.Item) -> tuple[str, str] | None:
    marker = item.get_closest_marker("scenario")
    if marker is None:
        return None
    (scenario,) = marker.args
    if scenario not in SCENARIOS:
        raise pytest.UsageError(f"{item.nodeid}: unknown scenario {scenario!r}")
    flavour = marker.kwargs.get("flavour")
    if flavour is None:
        callspec = getattr(item, "callspec", None)
        flavour = callspec.params.get("flavour", "any") if callspec else "any"
    return scenario, str(flavour)


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line of what the test observed, for the reliability report."""
    lines = request.node.stash.setdefault(_observations_key, [])
    return lines.append


#: The name under which a report carries what the reliability report needs.
#: Test reports travel from pytest-xdist's workers to the process that writes
#: the page with their ``user_properties``, so everything goes through them.
_PROPERTY = "psycopg3-reliability"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    key = _scenario_of(item)
    counted = report.when == "call" or (report.when == "setup" and not report.passed)
    if key is not None and counted:
        observations = list(item.stash.get(_observations_key, []))
        report.user_properties.append((_PROPERTY, ("scenario", *key, observations)))
    if _pending_cases and report.when in ("call", "teardown"):
        report.user_properties.append((_PROPERTY, ("cases", list(_pending_cases))))
        _pending_cases.clear()
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # In one process, or in xdist's controller: gather what the reports carry.
    for name, value in report.user_properties:
        if name != _PROPERTY:
            continue
        if value[0] == "scenario":
            _, scenario, flavour, observations = value
            record = _records[scenario, flavour]
            record.tests += 1
            record.outcomes.append(report.outcome)
            record.observations.extend((report.nodeid, line) for line in observations)
        else:
            for command, flavour, mode, cases, failed in value[1]:
                _yield_cases[command, flavour, mode] = cases
                _yield_failures[command, flavour, mode] = failed


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--reliability-report")
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller writes the page
    if not path or not (_records or _yield_cases):
        return
    Path(path).write_text(render_report())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report() -> str:
    """Return the markdown page of the scenarios seen in this run."""
    lines = [
        "# Reliability report",
        "",
        "Written by `nox -s reliability` (`pytest --reliability-report=docs/reliability.md`)",
        "from the tests marked with the scenario they provoke; the scenarios are those of",
        "`shared/RELIABILITY.md`. *Observed* is what the tests recorded on the run that",
        "wrote this page; timings are from that run, on that machine.",
        "",
        "## What psycopg3 promises",
        "",
        "Each promise is held as an invariant (random programs checked against the",
        "server's truth after every step; an interruption at every yield), and each",
        "case found so far is pinned by an example test:",
        "",
        "| # | promise | held by |",
        "|--:|---|---|",
        *(
            f"| {n} | {_cell(promise)} | {_cell(tests)} |"
            for n, (promise, tests) in enumerate(PROMISES, 1)
        ),
        "",
        "`nox -s fuzz` runs the model-based tests on fresh random programs for as long",
        "as asked (10 minutes by default).",
        "",
        "## Scenarios",
        "",
        "| scenario | flavour | tests | outcome | observed |",
        "|---|---|--:|---|---|",
    ]
    for scenario, title in SCENARIOS.items():
        flavours = sorted(
            (f for s, f in _records if s == scenario),
            key=lambda f: FLAVOUR_ORDER.index(f) if f in FLAVOUR_ORDER else len(FLAVOUR_ORDER),
        )
        if not flavours:
            why = DEFERRED.get(scenario, "not covered by this run")
            lines.append(f"| {scenario} {_cell(title)} | – | 0 | – | {_cell(why)} |")
            continue
        for flavour in flavours:
            record = _records[scenario, flavour]
            passed = record.outcomes.count("passed")
            outcome = (
                "passed"
                if passed == len(record.outcomes)
                else (f"{passed}/{len(record.outcomes)} passed")
            )
            lines_seen = (line for _, line in sorted(record.observations, key=lambda o: o[0]))
            observed = "; ".join(dict.fromkeys(lines_seen)) or "(no figure recorded)"
            lines.append(
                f"| {scenario} {_cell(title)} | {flavour} | {record.tests} | {outcome}"
                f" | {_cell(observed)} |"
            )
    lines += _render_yield_cases()
    lines.append("")
    return "\n".join(lines)


# -- interruption at every yield (tests/interrupt) ------------------------------

#: (command, flavour, mode) -> the number of yields interrupted (one case
#: each), and how many of those cases found a problem.
_yield_cases: dict[tuple[str, str, str], int] = {}
_yield_failures: dict[tuple[str, str, str], int] = {}


def _addoption_every_yield(parser: pytest.Parser) -> None:
    parser.addoption(
        "--every-yield-modes",
        default="interrupt,timeout,twice,close",
        help="tests/interrupt: the ways to interrupt at every yield, comma-separated "
        "(interrupt: the flavour's own interruption; timeout: asyncio.timeout() expiring; "
        "twice: the flavour's interruption, and again at the next "
        "yield; close: close from another thread or task)",
    )


#: Cases counted by the running test, sent with its report.
_pending_cases: list[tuple[str, str, str, int, int]] = []


def count_cases(command: str, flavour: str, mode: str, cases: int, failed: int) -> None:
    """Record that ``cases`` yields of ``command`` were interrupted in ``flavour``, ``mode``.

    :param failed: how many of them (or of the uninterrupted run) found a problem.
    """
    _pending_cases.append((command, flavour, mode, cases, failed))


def _render_yield_cases() -> list[str]:
    if not _yield_cases:
        return []
    total = sum(_yield_cases.values())
    failed = sum(_yield_failures.values())
    flavours = sorted({f for _, f, _ in _yield_cases}, key=FLAVOUR_ORDER.index)
    lines = [
        "",
        "## Interruption at every yield",
        "",
        f"**{total} (command, yield, flavour) cases** ran: each command was interrupted at",
        "each of its yields in turn, in each mode: the flavour's own interruption (Ctrl-C,",
        "task cancellation, cancel scope), an `asyncio.timeout()` expiring, the same",
        "interruption twice in a row (sync, asyncio), and a",
        "close from another thread or task. After each case the connection had to be",
        "usable, its transaction status the server's and the one the user expects, or",
        "closed with a DB-API error; the table had to hold what was reported done, and",
        "nothing half-written (`tests/interrupt/`). Cases per command and flavour, all",
        f"modes together. Cases (or uninterrupted runs) that found a problem: {failed}.",
        "",
        "| command | " + " | ".join(flavours) + " |",
        "|---|" + "--:|" * len(flavours),
    ]
    commands = list(dict.fromkeys(c for c, _, _ in _yield_cases))
    for command in commands:
        cells = []
        for flavour in flavours:
            keys = [key for key in _yield_cases if key[0] == command and key[1] == flavour]
            if not keys:
                cells.append("–")
                continue
            cell = str(sum(_yield_cases[key] for key in keys))
            if bad := sum(_yield_failures[key] for key in keys):
                cell += f" ({bad} failed)"
            cells.append(cell)
        lines.append(f"| {command} | " + " | ".join(cells) + " |")
    return lines
