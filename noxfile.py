"""Developer tasks, the single entry point: ``nox -s tests|reliability|lint|typecheck|demo|...``.

Sessions run in a fresh virtualenv of the interpreter running nox; pass ``-r``
to reuse the previous one. ``nox`` alone runs tests, lint and typecheck, which
is what CI does (``.ci/run``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# Install order follows the dependencies: every adapter pins the core exactly.
PACKAGES = [
    "packages/psycopg3-core",
    "packages/psycopg3-sync",
    "packages/psycopg3-asyncio",
    "packages/psycopg3-trio",
]
LINTED = ["packages", "tests", "tools", "noxfile.py"]
# hatchling: tests/test_packaging.py builds the wheels offline (--no-build-isolation).
TEST_TOOLS = [
    "pytest",
    "pytest-trio",
    "anyio",
    "pytest-timeout",
    "hypothesis",
    "hatchling",
    # tests/core/test_rows_typing.py checks the row types mypy infers.
    "mypy",
    # The TLS tests' throwaway CA and certificates (tools/pgcluster.py): made
    # for exactly this, by the trio project; brings `cryptography` for the CRLs.
    "trustme",
    # The suite in parallel, one worker per core (each starts its own
    # throwaway cluster): measured 10-12 min instead of 21 on 2 cores.
    "pytest-xdist",
    # The gevent adapter of docs/adapters.md runs as the flavour `gevent`
    # (tests/fix_flavours.py) and in tests/adapters/test_gevent_doc.py.
    "gevent",
]
#: pytest's arguments for the suites: parallel, and the slowest tests named at
#: the end. Given first, so that arguments after ``--`` (``-n 0``) win.
PARALLEL = ["-n", "auto", "--durations=10"]
#: The default selection: everything but the expensive soak, restart,
#: frozen-network and huge-value scenarios (marked ``slow``), which
#: ``nox -s reliability`` runs. Between them the two sessions run every test.
DEFAULT_SELECTION = ["-m", "not slow"]

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_venv = "no"
nox.options.error_on_external_run = True


def install_packages(session: nox.Session) -> None:
    # Plain, non-editable installs, one at a time: this is what a user's pip does,
    # and the adapters' exact pin finds the core already installed.
    for package in PACKAGES:
        session.install(package)


def needs_wheel_server() -> bool:
    """Tell if neither an external server nor local server binaries are available."""
    if os.environ.get("PSYCOPG3_TEST_DSN"):
        return False
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from pgcluster import ServerBinariesNotFound, locate_server_binaries
    finally:
        sys.path.pop(0)
    try:
        locate_server_binaries()
    except ServerBinariesNotFound:
        return True
    return False


def install_server_if_missing(session: nox.Session) -> None:
    if needs_wheel_server():
        session.log("no PostgreSQL binaries on this machine: installing the pgserver wheel")
        session.install("pgserver")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against the installed packages; arguments go to pytest."""
    install_packages(session)
    session.install(*TEST_TOOLS)
    install_server_if_missing(session)
    # pytest's exit code 5 (nothing collected) fails the session like any non-zero.
    session.run("pytest", *PARALLEL, *DEFAULT_SELECTION, *session.posargs)


@nox.session
def tests_pgserver(session: nox.Session) -> None:
    """Run the test suite on the PostgreSQL 16 of the pgserver wheel (a second server version).

    Not run by default: the wheel's build has no SSL, so TLS tests need the system server.
    """
    install_packages(session)
    session.install(*TEST_TOOLS, "pgserver")
    bindir = session.run(
        "python",
        "-c",
        "import importlib.util, pathlib;"
        "spec = importlib.util.find_spec('pgserver');"
        "print(pathlib.Path(spec.submodule_search_locations[0]) / 'pginstall' / 'bin')",
        silent=True,
    )
    assert isinstance(bindir, str)
    env = {"PSYCOPG3_PG_BINDIR": bindir.strip(), "PSYCOPG3_TEST_DSN": None}
    # The wheel's build has no contrib extensions and no SSL: hstore and TLS
    # tests need the system server. The slow soak and fault tests (thousands
    # of connections, restarts, frozen networks) test the driver, not the
    # server version: once, in `reliability`, is enough.
    session.run(
        "pytest",
        *PARALLEL,
        "-m",
        "not hstore and not tls and not slow",
        *session.posargs,
        env=env,
    )


#: The tests that exercise what differs with libpq 17+: the cancel request.
LIBPQ_NEW_TESTS = [
    "tests/core/test_pq_conn.py",
    "tests/core/test_generators.py",
    "tests/core/test_attempts.py",
    "tests/adapters/test_interrupt.py",
    "tests/reliability/test_cancellation.py",
    # Pipeline mode, COPY and notifications lean on libpq's own state machine,
    # which changed between versions: run them on the new library too.
    "tests/adapters/test_pipeline.py",
    "tests/adapters/test_prepare.py",
    "tests/adapters/test_copy.py",
    "tests/adapters/test_notify.py",
]


@nox.session
def tests_libpq_new(session: nox.Session) -> None:
    """Run the cancellation, pipeline, COPY and notification tests on a libpq >= 17.

    The machines have libpq 15. The psycopg-binary wheel carries a recent
    libpq of its own: only that library file is used (``PSYCOPG3_LIBPQ``),
    none of psycopg's code.
    """
    install_packages(session)
    session.install(*TEST_TOOLS, "psycopg-binary")
    libpq = session.run(
        "python",
        "-c",
        "import importlib.util, pathlib;"
        "spec = importlib.util.find_spec('psycopg_binary');"
        "libs = pathlib.Path(spec.submodule_search_locations[0]).parent / 'psycopg_binary.libs';"
        "print(sorted(libs.glob('libpq-*.so.5*'))[-1])",
        silent=True,
    )
    assert isinstance(libpq, str)
    env = {"PSYCOPG3_LIBPQ": libpq.strip()}
    session.run(
        "python",
        "-c",
        "from psycopg3 import pq; assert pq.version() >= 170000, pq.version()",
        env=env,
    )
    session.run("pytest", *PARALLEL, *LIBPQ_NEW_TESTS, *session.posargs, env=env)


@nox.session
def reliability(session: nox.Session) -> None:
    """Run the slow scenarios and every test of a RELIABILITY.md scenario; write the report.

    The slow ones (soaks, restarts, frozen networks, huge values) run only
    here; the other scenario tests run in `tests` too, and again here so that
    docs/reliability.md shows every scenario.
    """
    install_packages(session)
    session.install(*TEST_TOOLS)
    install_server_if_missing(session)
    session.run(
        "pytest",
        *PARALLEL,
        "-m",
        "slow or scenario",
        "--reliability-report=docs/reliability.md",
        *session.posargs,
    )


@nox.session
def flakes(session: nox.Session) -> None:
    """Run the default suite 5 times with every core busy; list the tests whose outcome changed.

    ``nox -s flakes -- --runs 10``; arguments after the options go to pytest
    (``nox -s flakes -- --runs 3 -- tests/adapters``). See tools/flakes.py.
    """
    install_packages(session)
    session.install(*TEST_TOOLS)
    install_server_if_missing(session)
    session.run("python", "tools/flakes.py", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Run the model-based tests (tests/model) on fresh random programs for a while.

    ``nox -s fuzz`` runs for 10 minutes, ``nox -s fuzz -- --minutes 30`` for
    30; other arguments go to pytest. Each round prints its seed; a failure
    stops the run with the minimal program found (replay it with
    ``PSYCOPG3_MODEL_SEED=<seed>``).
    """
    args = list(session.posargs)
    minutes = "10"
    if "--minutes" in args:
        at = args.index("--minutes")
        minutes = args[at + 1]
        del args[at : at + 2]
    install_packages(session)
    session.install(*TEST_TOOLS)
    install_server_if_missing(session)
    env = {"PSYCOPG3_MODEL_PROFILE": "fuzz", "PSYCOPG3_MODEL_MINUTES": minutes}
    session.run("pytest", "tests/model", "-x", "-s", *args, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Check the code with ruff, both the rules and the formatting."""
    session.install("ruff")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the packages with mypy --strict (configured in pyproject.toml)."""
    install_packages(session)
    # trustme: tools/pgcluster.py makes the secure cluster's certificates with it.
    # typing_extensions: assert_type for tests/typing on Python 3.10.
    session.install("mypy", "trio", "trustme", "typing_extensions")
    session.run("mypy")
    session.run("mypy", "--strict", "tools/pgcluster.py", "tools/flakes.py")


@nox.session
def demo(session: nox.Session) -> None:
    """Run tools/demo.py on $PSYCOPG3_TEST_DSN or on a cluster it starts itself."""
    install_packages(session)
    install_server_if_missing(session)
    session.run("python", "tools/demo.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run tools/bench.py, comparing with psycopg, asyncpg and psycopg2; arguments go to it."""
    install_packages(session)
    session.install("psycopg[binary]", "psycopg_pool", "asyncpg", "psycopg2-binary")
    install_server_if_missing(session)
    session.run("python", "tools/bench.py", *session.posargs)
