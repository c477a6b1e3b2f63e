"""The throwaway cluster helper: it serves, restarts, stops and leaves nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import pgcluster
from pgcluster import Cluster, ServerBinariesNotFound


def run_psql(
    cluster_bindir: Path | None, conninfo: str, sql: str
) -> subprocess.CompletedProcess[str]:
    candidate = cluster_bindir / "psql" if cluster_bindir else None
    psql = str(candidate) if candidate and candidate.exists() else shutil.which("psql")
    if psql is None:
        pytest.skip("no psql to talk to the server with")
    return subprocess.run(
        [psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )


def query(cluster: Cluster, conninfo: str, sql: str) -> str:
    result = run_psql(cluster.bindir, conninfo, sql)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dsn_fixture_reaches_a_server(dsn: str) -> None:
    result = run_psql(None, dsn, "select 40 + 2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_missing_bindir_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSYCOPG3_PG_BINDIR", str(tmp_path))
    with pytest.raises(ServerBinariesNotFound, match=re.escape(str(tmp_path))):
        Cluster()


@pytest.mark.slow
def test_cluster_serves_restarts_and_leaves_nothing() -> None:
    with Cluster() as cluster:
        assert query(cluster, cluster.admin_dsn, "select 1") == "1"
        assert query(cluster, cluster.dsn, "select current_user, current_database()") == (
            "psycopg3_test|psycopg3_test"
        )
        assert query(cluster, cluster.admin_dsn, "show listen_addresses") == "127.0.0.1"
        assert query(cluster, cluster.admin_dsn, "show max_prepared_transactions") == "10"

        wrong = cluster.dsn.replace(cluster.password, "not-the-password")
        refused = run_psql(cluster.bindir, wrong, "select 1")
        assert refused.returncode != 0
        assert "password authentication failed" in refused.stderr

        query(cluster, cluster.dsn, "select 'statement-to-find-in-the-log'")
        assert "statement-to-find-in-the-log" in cluster.log_path.read_text()

        first_pid = cluster.postmaster_pid
        assert first_pid is not None and pgcluster.is_process_alive(first_pid)
        cluster.restart()
        second_pid = cluster.postmaster_pid
        assert second_pid is not None and second_pid != first_pid
        assert not pgcluster.is_process_alive(first_pid)
        assert query(cluster, cluster.dsn, "select 2") == "2"

        cluster.restart(mode="immediate")
        third_pid = cluster.postmaster_pid
        assert third_pid is not None and not pgcluster.is_process_alive(second_pid)
        assert query(cluster, cluster.admin_dsn, "select 3") == "3"
        tmpdir = cluster.tmpdir

    assert not pgcluster.is_process_alive(third_pid)
    assert not tmpdir.exists()


@pytest.mark.slow
def test_script_runs_a_command_and_returns_its_exit_code(tmp_path: Path) -> None:
    seen = tmp_path / "seen-dsn"
    child = (
        "import os, pathlib, sys\n"
        "pathlib.Path(sys.argv[1]).write_text(os.environ['PSYCOPG3_TEST_DSN'])\n"
        "sys.exit(7)\n"
    )
    result = subprocess.run(
        [sys.executable, pgcluster.__file__, "--", sys.executable, "-c", child, str(seen)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 7, result.stderr
    assert seen.read_text().startswith("host=127.0.0.1 port=")
    log_line = re.search(r"^log: (.+)$", result.stderr, re.MULTILINE)
    assert log_line is not None, result.stderr
    assert not Path(log_line.group(1)).parent.exists()


@pytest.mark.slow
def test_cluster_of_a_killed_run_is_removed_by_the_next() -> None:
    # A test run killed by SIGKILL runs no atexit hook: the next cluster
    # created must find its cluster abandoned, stop it and delete it.
    tools = Path(pgcluster.__file__).parent
    child = subprocess.Popen(
        [sys.executable, str(tools / "pgcluster.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert "port=" in child.stdout.readline()  # the DSN: the cluster is up
        owned = [
            path
            for path in Path(tempfile.gettempdir()).glob(pgcluster.CLUSTER_PREFIX + "*")
            if (path / pgcluster.OWNER_FILE).is_file()
            and (path / pgcluster.OWNER_FILE).read_text().split()[0] == str(child.pid)
        ]
        assert len(owned) == 1
        tmpdir = owned[0]
        postmaster = int((tmpdir / "data" / "postmaster.pid").read_text().split()[0])
    finally:
        child.kill()
        child.communicate()  # reaps it and closes the pipe
    assert pgcluster.is_process_alive(postmaster)  # orphaned, still serving
    removed = pgcluster.remove_abandoned_clusters()
    assert tmpdir in removed
    assert not tmpdir.exists()
    assert not pgcluster.is_process_alive(postmaster)
