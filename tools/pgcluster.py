"""Start a throwaway PostgreSQL cluster in a temporary directory, for tests and tools.

Used by the test suite (``tests/fix_db.py``), ``tools/demo.py`` and ``tools/bench.py``::

    with Cluster() as cluster:
        connect(cluster.dsn)

As a script: ``python tools/pgcluster.py`` prints the DSN and serves until Ctrl-C;
``python tools/pgcluster.py -- CMD ARGS...`` runs CMD with ``PSYCOPG3_TEST_DSN`` set
and exits with its exit code.

Rules this module keeps:

1. The server listens on 127.0.0.1 and on a private unix socket only, never on
   another address: it is a superuser playground with a known password.
2. Nothing outlives the cluster: ``close()`` stops the postmaster (killing it by
   pid as a last resort) and removes the directory; an ``atexit`` hook closes
   any cluster a crashing caller forgot.
3. As root, every server program runs as the ``postgres`` user through
   ``runuser``: PostgreSQL refuses to run as root.
4. It does not import psycopg3: role and database are created with ``psql`` from
   the same bindir or, without it, in single-user mode before the first start.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

TEST_ROLE = "psycopg3_test"
TEST_DATABASE = "psycopg3_test"
ADMIN_ROLE = "postgres"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
DEBIAN_ROOT = Path("/usr/lib/postgresql")
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


class ClusterError(RuntimeError):
    """A server program failed; the message carries its output and the log tail."""


class ServerBinariesNotFound(ClusterError):
    """No directory holding initdb, pg_ctl and postgres was found."""


def _has_server_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in SERVER_PROGRAMS)


def _debian_bindirs() -> list[Path]:
    def version_key(path: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in path.parent.name.split("."))
        except ValueError:
            return (-1,)

    return sorted(DEBIAN_ROOT.glob("*/bin"), key=version_key, reverse=True)


def _pgserver_bindir() -> Path | None:
    # find_spec locates the wheel without importing (and running) it.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def locate_server_binaries() -> tuple[str, Path]:
    """Find the PostgreSQL server programs to run.

    Looks, in order, at ``$PSYCOPG3_PG_BINDIR``, ``pg_config --bindir``, Debian's
    ``/usr/lib/postgresql/<highest version>/bin`` and the ``pgserver`` wheel.

    :return: a short name of the source (for reports) and the bin directory.
    :raises ServerBinariesNotFound: naming every place looked in.
    """
    looked: list[str] = []
    from_env = os.environ.get("PSYCOPG3_PG_BINDIR")
    if from_env:
        if _has_server_programs(Path(from_env)):
            return "PSYCOPG3_PG_BINDIR", Path(from_env)
        raise ServerBinariesNotFound(
            f"PSYCOPG3_PG_BINDIR={from_env} does not hold {', '.join(SERVER_PROGRAMS)}"
        )
    looked.append("$PSYCOPG3_PG_BINDIR (not set)")

    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and _has_server_programs(bindir):
            return "pg_config", bindir
        looked.append(f"pg_config --bindir ({bindir}: no server programs)")
    else:
        looked.append("pg_config --bindir (no pg_config on PATH)")

    for bindir in _debian_bindirs():
        if _has_server_programs(bindir):
            return "debian", bindir
    looked.append(f"{DEBIAN_ROOT}/<version>/bin")

    wheel_bindir = _pgserver_bindir()
    if wheel_bindir is not None and _has_server_programs(wheel_bindir):
        return "pgserver", wheel_bindir
    looked.append(
        "the pgserver wheel (not installed)" if wheel_bindir is None else str(wheel_bindir)
    )
    raise ServerBinariesNotFound(
        "no PostgreSQL server binaries found; looked in: "
        + "; ".join(looked)
        + ". Install PostgreSQL, `pip install pgserver`, or set PSYCOPG3_PG_BINDIR."
    )


def pick_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_process_alive(pid: int) -> bool:
    """Tell if *pid* runs; a zombie nobody reaped (common in containers) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status


_live_clusters: set[Cluster] = set()


@atexit.register
def _close_forgotten_clusters() -> None:
    for cluster in list(_live_clusters):
        cluster.close()


class Cluster:
    """A PostgreSQL cluster living in a temporary directory for the lifetime of the object.

    Use it as a context manager: entering creates and starts the cluster, leaving
    stops it and deletes its files.

    :param bindir: directory of initdb/pg_ctl/postgres; default: `locate_server_binaries()`.
    :param use_psql: create the test role with psql (True) or in single-user mode
        (False); default: psql when the bindir has it.
    """

    def __init__(self, bindir: str | Path | None = None, *, use_psql: bool | None = None) -> None:
        if bindir is None:
            self.source, self.bindir = locate_server_binaries()
        else:
            self.source, self.bindir = "argument", Path(bindir)
        self._use_psql = use_psql
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.version = ""
        self.tmpdir = Path()
        self.running = False
        self._initdb_conf = ""
        self._run_as_postgres = os.geteuid() == 0

    @property
    def datadir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def log_path(self) -> Path:
        return self.tmpdir / "postgresql.log"

    @property
    def socket_dir(self) -> Path:
        return self.tmpdir

    @property
    def dsn(self) -> str:
        """The conninfo of the test role: TCP on loopback, scram-sha-256 password."""
        return (
            f"host=127.0.0.1 port={self.port} user={TEST_ROLE}"
            f" password={self.password} dbname={TEST_DATABASE}"
        )

    @property
    def admin_dsn(self) -> str:
        """The conninfo of the ``postgres`` superuser over the unix socket (trust)."""
        return f"host={self.socket_dir} port={self.port} user={ADMIN_ROLE} dbname=postgres"

    @property
    def postmaster_pid(self) -> int | None:
        """The pid in ``postmaster.pid``, or None when the file is absent."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def __enter__(self) -> Cluster:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create(self) -> None:
        """Run initdb, configure, start the server and create the test role and database.

        :raises ClusterError: if a step fails; everything done so far is undone.
        """
        _live_clusters.add(self)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="psycopg3-pg-"))
        if self._run_as_postgres:
            shutil.chown(self.tmpdir, user=ADMIN_ROLE, group=None)
        self.version = self._run(["postgres", "--version"]).strip()
        self._run(
            ["initdb", "-D", str(self.datadir), "-E", "UTF8", "--locale=C", "--no-sync"]
            + ["--auth-local=trust", "--auth-host=scram-sha-256", "-U", ADMIN_ROLE]
        )
        self._initdb_conf = (self.datadir / "postgresql.conf").read_text()
        (self.datadir / "pg_hba.conf").write_text(
            "# written by tools/pgcluster.py\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        use_psql = self._use_psql
        if use_psql is None:
            use_psql = os.access(self.bindir / "psql", os.X_OK)
        if not use_psql:
            self._bootstrap_single_user()
        for attempt in range(START_ATTEMPTS):
            self.port = pick_free_port()
            self._write_settings()
            try:
                self.start()
                break
            except ClusterError:
                if attempt == START_ATTEMPTS - 1 or "could not bind" not in self._log_tail():
                    raise
        if use_psql:
            self._run_psql(self._bootstrap_sql())

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(["pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-w", "start"])
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and wait for it to exit.

        :param mode: pg_ctl's shutdown mode: ``smart``, ``fast`` or ``immediate``
            (a crash: the next start runs recovery).
        """
        self._run(["pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop"])
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop the server with *mode* and start it again on the same port."""
        self.stop(mode)
        self.start()

    def close(self) -> None:
        """Stop the server if it runs and delete the cluster's directory. Idempotent."""
        _live_clusters.discard(self)
        pid = self.postmaster_pid
        try:
            if self.running:
                self.stop("fast")
        except ClusterError:
            pass
        finally:
            self.running = False
            if pid is not None and is_process_alive(pid):
                self._kill_postmaster(pid)
            if self.tmpdir.name:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _kill_postmaster(self, pid: int) -> None:
        # Last resort after a failed stop: SIGQUIT makes the postmaster take its
        # children down with it; SIGKILL if it does not listen.
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if not is_process_alive(pid):
                    return
                time.sleep(0.05)

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",  # loopback only, see rule 1
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "max_prepared_transactions": "10",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_statement": "'all'",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "password_encryption": "'scram-sha-256'",
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        # Later lines win: initdb's file plus our block, rewritten whole on a port retry.
        (self.datadir / "postgresql.conf").write_text(
            self._initdb_conf + "\n# written by tools/pgcluster.py\n" + lines
        )

    def _bootstrap_sql(self) -> str:
        # The password is URL-safe base64: it needs no quoting inside a literal.
        return (
            "SET password_encryption = 'scram-sha-256';\n"
            f"CREATE ROLE {TEST_ROLE} LOGIN SUPERUSER PASSWORD '{self.password}';\n"
            f"CREATE DATABASE {TEST_DATABASE} OWNER {TEST_ROLE};\n"
        )

    def _run_psql(self, sql: str) -> None:
        psql = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        self._check([*psql, "-d", self.admin_dsn, "-f", "-"], input=sql)

    def _bootstrap_single_user(self) -> None:
        # Single-user mode reads one statement per line from stdin.
        self._run(
            ["postgres", "--single", "-D", str(self.datadir), "postgres"],
            input=self._bootstrap_sql(),
        )

    def _run(self, argv: Sequence[str], input: str | None = None) -> str:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._run_as_postgres:
            command = ["runuser", "-u", ADMIN_ROLE, "--", *command]
        return self._check(command, input=input)

    def _check(self, command: Sequence[str], input: str | None = None) -> str:
        cwd = self.tmpdir if self.tmpdir.name else None
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, cwd=cwd, timeout=120
        )
        if result.returncode != 0:
            raise ClusterError(
                f"{' '.join(command)} exited with {result.returncode}\n"
                f"{result.stdout}{result.stderr}\nserver log tail:\n{self._log_tail()}"
            )
        return result.stdout

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script: serve until interrupted, or run a command against the cluster."""
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(
        description="Run a throwaway PostgreSQL cluster.",
        usage="%(prog)s [--bindir DIR] [-- CMD ARGS...]",
    )
    parser.add_argument("--bindir", help="directory of initdb, pg_ctl and postgres")
    options = parser.parse_args(args)

    # SIGTERM takes the same way out as Ctrl-C, so the cluster is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with Cluster(options.bindir) as cluster:
            print(f"PostgreSQL: {cluster.version} from {cluster.bindir}", file=sys.stderr)
            print(f"admin: {cluster.admin_dsn}", file=sys.stderr)
            print(f"log: {cluster.log_path}", file=sys.stderr)
            if not command:
                print(cluster.dsn, flush=True)
                while True:
                    time.sleep(3600)
            env = {**os.environ, "PSYCOPG3_TEST_DSN": cluster.dsn}
            returncode = subprocess.run(command, env=env).returncode
            return returncode if returncode >= 0 else 128 - returncode
    except KeyboardInterrupt:
        return 130
    except ClusterError as error:
        print(f"pgcluster: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
