"""Fixtures giving tests a real PostgreSQL server, and the report line naming it.

* ``dsn`` (session): ``$PSYCOPG3_TEST_DSN`` when set, else the conninfo of a
  throwaway cluster started on first use and stopped when the session ends.
* ``session_cluster`` (session): that `pgcluster.Cluster`, or None when the
  server comes from ``$PSYCOPG3_TEST_DSN`` (tests needing the admin socket or
  the log file skip on None).
* ``private_cluster`` (function): a fresh cluster for this test alone, for
  tests that restart, crash or reconfigure the server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgcluster import Cluster, ServerBinariesNotFound, locate_server_binaries

DSN_ENV = "PSYCOPG3_TEST_DSN"


def _server_version(bindir: Path) -> str:
    result = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
    )
    return result.stdout.strip() or "version unknown"


def _external_version(dsn: str) -> str:
    # Asked through psql, when there is one: the pq binding may be the thing under test.
    psql = shutil.which("psql")
    if psql is None:
        return "version unknown: no psql on PATH"
    try:
        result = subprocess.run(
            [psql, "-X", "-A", "-t", "-d", dsn, "-c", "show server_version"],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
    except subprocess.TimeoutExpired:
        return "version unknown: psql timed out"
    if result.returncode != 0:
        return f"cannot connect: {result.stderr.strip()}"
    return f"PostgreSQL {result.stdout.strip()}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        return [f"postgres: external server from ${DSN_ENV} ({_external_version(dsn)})"]
    try:
        source, bindir = locate_server_binaries()
    except ServerBinariesNotFound as error:
        return [f"postgres: {error}"]
    return [f"postgres: throwaway cluster, {source} {bindir} ({_server_version(bindir)})"]


@pytest.fixture(scope="session")
def session_cluster() -> Iterator[Cluster | None]:
    if os.environ.get(DSN_ENV):
        yield None
        return
    with Cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def dsn(session_cluster: Cluster | None) -> str:
    if session_cluster is None:
        return os.environ[DSN_ENV]
    return session_cluster.dsn


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster()
    except ServerBinariesNotFound as error:
        pytest.skip(f"no server binaries for a private cluster: {error}")
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def hstore_extension(dsn: str) -> None:
    """The hstore extension in the test database (tests using it: ``-m hstore``).

    A contrib extension: a server build without it (the pgserver wheel) runs
    the suite with ``-m "not hstore"``.
    """
    import psycopg3_sync

    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists hstore")
