"""Fixtures for the TLS and authentication tests (RELIABILITY.md S1-S3).

* ``secure_cluster`` (session): a `pgcluster.Cluster` made with
  ``secure=True``: TLS on, a certificate for ``DNS:localhost`` only, a wrong
  CA and CRLs in ``.tls``, one role per authentication method with its
  password in ``.passwords`` (see ``tools/pgcluster.py``). A second server
  beside the session's: the suite's default cluster stays plain.
* ``libpq_env`` (function): the environment libpq reads, made neutral. HOME
  points at an empty temporary directory (no ``~/.postgresql/root.crt``,
  ``root.crl`` or ``~/.pgpass`` can decide an outcome), the ``PGSSL*``,
  channel-binding and password variables are removed, and the value is a
  path in that directory where no file exists: ``sslrootcert`` for "no root
  certificate", given explicitly so that libpq looks nowhere else.
* ``authorized_count`` (function): how many times the secure server logged
  ``connection authorized`` for a role, to prove a refused connection never
  got a session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgcluster import Cluster, ServerBinariesNotFound

#: Variables through which libpq could pick TLS files, modes or passwords.
LIBPQ_SECURITY_VARIABLES = (
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLSNI",
    "PGCHANNELBINDING",
    "PGPASSWORD",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
)


@pytest.fixture(scope="session")
def secure_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster(secure=True)
    except ServerBinariesNotFound as error:
        pytest.skip(f"no server binaries for the secure cluster: {error}")
    with cluster:
        yield cluster


@pytest.fixture
def libpq_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in LIBPQ_SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(home / "no-pgpass"))
    return home / "no-root.crt"


@pytest.fixture
def authorized_count(secure_cluster: Cluster) -> Callable[[str], int]:
    def count(user: str) -> int:
        needle = f"connection authorized: user={user} "
        return secure_cluster.log_path.read_text(errors="replace").count(needle)

    return count


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test on the secure cluster needs a server built with SSL: mark
    # them, so that a run on a server without it deselects them by marker.
    for item in items:
        if "secure_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tls)
