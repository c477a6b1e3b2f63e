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
5. Passwords never reach the server log: role creation runs with
   ``log_statement = 'none'``, so a test can grep the log for a leaked secret.

A secure cluster, ``Cluster(secure=True)``, is the one the TLS and
authentication tests need (RELIABILITY.md S1-S3); the default cluster is
unchanged by it. On top of the default it:

* makes a throwaway CA with ``trustme`` and a server certificate whose only
  subject alternative name is ``DNS:localhost`` (no IP address: verify-full
  against ``127.0.0.1`` must fail), a second, unrelated CA (the "wrong CA"),
  and two CRLs signed by the right CA with ``cryptography``: one revoking the
  server certificate, one revoking nothing (the control). The client-side
  paths are in ``cluster.tls`` (`TlsFiles`); the server sees ``ssl = on``;
* writes a ``pg_hba.conf`` with one role per authentication method, in
  this order (the first matching line wins)::

      local     all all         trust
      hostssl   all tls_user    127.0.0.1/32 scram-sha-256
      hostnossl all tls_user    127.0.0.1/32 reject
      host      all md5_user    127.0.0.1/32 md5
      host      all pw_user     127.0.0.1/32 password
      host      all trust_user  127.0.0.1/32 trust
      host      all all         127.0.0.1/32 scram-sha-256

  and creates those roles with random passwords (``cluster.passwords``);
  ``md5_user``'s is created under ``password_encryption = 'md5'`` so that it
  is stored as an MD5 hash (stored as SCRAM, the server would silently use
  SCRAM on the md5 line). ``marker_user`` (scram, the last line) has a
  password made to be searched for and to be hard to quote: a random marker
  (`MARKER_USER_TOKEN` ``+ token``) followed by a space, quotes, a backslash,
  ``=`` and non-ASCII text;
* turns ``log_connections`` on, so a test can tell whether a role was ever
  authenticated.

``cluster.role_params(user)`` gives the keyword arguments to connect as one
of them over TCP. Certificates and keys are made in memory: ``trustme`` and
``cryptography`` are imported only for a secure cluster.
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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType

TEST_ROLE = "psycopg3_test"
TEST_DATABASE = "psycopg3_test"
ADMIN_ROLE = "postgres"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
DEBIAN_ROOT = Path("/usr/lib/postgresql")
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it

#: The roles of a secure cluster, one per line of its pg_hba.conf.
SECURE_ROLES = ("tls_user", "md5_user", "pw_user", "trust_user", "marker_user")
#: How the random marker inside ``marker_user``'s password starts.
MARKER_USER_TOKEN = "pgmarker"
SECURE_HBA = (
    "local all all trust\n"
    "hostssl all tls_user 127.0.0.1/32 scram-sha-256\n"
    "hostnossl all tls_user 127.0.0.1/32 reject\n"
    "host all md5_user 127.0.0.1/32 md5\n"
    "host all pw_user 127.0.0.1/32 password\n"
    "host all trust_user 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)


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


@dataclass(frozen=True)
class TlsFiles:
    """Where a secure cluster keeps its certificates (PEM files).

    Client-side files (the CAs, the CRLs) are readable by the test process;
    the server's certificate and key live in the data directory, owned by the
    server's user, the key with mode 0600 as the server demands.
    """

    #: The CA that signed the server certificate: the "right" ``sslrootcert``.
    ca_cert: Path
    #: A CA unrelated to the server: ``sslrootcert`` for the "wrong CA" case.
    wrong_ca_cert: Path
    #: A CRL by the right CA revoking the server certificate (``sslcrl``).
    crl: Path
    #: A CRL by the right CA revoking nothing: the control for ``crl``.
    empty_crl: Path
    server_cert: Path
    server_key: Path


def _sql_literal(text: str) -> str:
    # standard_conforming_strings is on (the default): only quotes need doubling.
    return "'" + text.replace("'", "''") + "'"


def _make_tls_files(client_dir: Path, server_dir: Path) -> TlsFiles:
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    client_dir.mkdir(mode=0o700)
    ca = trustme.CA()
    # Only DNS:localhost: verify-full must fail when the host is 127.0.0.1.
    server = ca.issue_cert("localhost")
    files = TlsFiles(
        ca_cert=client_dir / "ca.crt",
        wrong_ca_cert=client_dir / "wrong-ca.crt",
        crl=client_dir / "revoked.crl",
        empty_crl=client_dir / "empty.crl",
        server_cert=server_dir / "server.crt",
        server_key=server_dir / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca_cert))
    trustme.CA().cert_pem.write_to_path(str(files.wrong_ca_cert))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    files.server_key.chmod(0o600)

    # trustme makes no CRL: build them with the CA's key.
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    leaf = x509.load_pem_x509_certificate(server.cert_chain_pems[0].bytes())
    now = datetime.now(timezone.utc)
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(leaf.serial_number)
        .revocation_date(now - timedelta(minutes=5))
        .build()
    )
    for path, entries in ((files.crl, [revoked]), (files.empty_crl, [])):
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=1))
        )
        for entry in entries:
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return files


_live_clusters: set[Cluster] = set()

CLUSTER_PREFIX = "psycopg3-pg-"
#: In a cluster's directory: the identity of the process that made it.
OWNER_FILE = "owner"


def _process_identity(pid: int) -> str:
    """``"<pid> <start time>"``: a pid alone may be reused by a later process."""
    try:
        # Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces.
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "?"
    return f"{pid} {start}"


def remove_abandoned_clusters() -> list[Path]:
    """Stop and delete the clusters whose owner process is gone.

    A test run killed by a signal runs no ``atexit`` hook: its cluster would
    run forever. Each cluster directory names its owner (`OWNER_FILE`); one
    whose owner no longer runs is abandoned. Clusters of live processes (other
    test runs) and directories without an owner file are left alone.

    :return: the directories removed.
    """
    removed = []
    for tmpdir in Path(tempfile.gettempdir()).glob(CLUSTER_PREFIX + "*"):
        try:
            owner = (tmpdir / OWNER_FILE).read_text()
            pid = int(owner.split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if is_process_alive(pid) and _process_identity(pid) == owner:
            continue
        try:
            postmaster = int((tmpdir / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            postmaster = None
        if postmaster is not None and is_process_alive(postmaster):
            _kill_postmaster(postmaster)
        shutil.rmtree(tmpdir, ignore_errors=True)
        removed.append(tmpdir)
    return removed


def _kill_postmaster(pid: int) -> None:
    # SIGQUIT makes the postmaster take its children down with it (an
    # immediate shutdown); SIGKILL if it does not listen.
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
    :param secure: serve TLS and one role per authentication method (see the
        module's docstring); ``tls`` and ``passwords`` are then filled in.
    """

    def __init__(
        self,
        bindir: str | Path | None = None,
        *,
        use_psql: bool | None = None,
        secure: bool = False,
    ) -> None:
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
        self.secure = secure
        #: The certificate files, once a secure cluster is created.
        self.tls: TlsFiles | None = None
        #: The password of each role of a secure cluster (empty otherwise).
        self.passwords: dict[str, str] = {}
        if secure:
            for role in SECURE_ROLES:
                self.passwords[role] = secrets.token_urlsafe(18)
            marker = MARKER_USER_TOKEN + secrets.token_hex(8)
            self.passwords["marker_user"] = marker + " it's a \\ b=c ü€"

    @property
    def datadir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def log_path(self) -> Path:
        return self.tmpdir / "postgresql.log"

    def log_size(self) -> int:
        """Return how many bytes the server log holds now: a mark for `read_log()`."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_log(self, since: int = 0) -> str:
        """Return the server log from byte ``since`` (a `log_size()` taken earlier) on.

        The log of a cluster shared by a whole run grows to hundreds of MB
        (every statement is logged): a test reads only what it wrote.
        """
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

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

    def role_params(self, user: str) -> dict[str, str]:
        """The keyword arguments to connect as *user* (a secure cluster's role) over TCP.

        :raises KeyError: if the cluster has no such role.
        """
        return {
            "host": "127.0.0.1",
            "port": str(self.port),
            "user": user,
            "password": self.passwords[user],
            "dbname": TEST_DATABASE,
        }

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
        remove_abandoned_clusters()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
        (self.tmpdir / OWNER_FILE).write_text(_process_identity(os.getpid()))
        if self._run_as_postgres:
            shutil.chown(self.tmpdir, user=ADMIN_ROLE, group=None)
        self.version = self._run(["postgres", "--version"]).strip()
        self._run(
            ["initdb", "-D", str(self.datadir), "-E", "UTF8", "--locale=C", "--no-sync"]
            + ["--auth-local=trust", "--auth-host=scram-sha-256", "-U", ADMIN_ROLE]
        )
        self._initdb_conf = (self.datadir / "postgresql.conf").read_text()
        hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        if self.secure:
            hba = SECURE_HBA
            self.tls = _make_tls_files(self.tmpdir / "tls", self.datadir)
            if self._run_as_postgres:
                for path in (self.tls.server_cert, self.tls.server_key):
                    shutil.chown(path, user=ADMIN_ROLE, group=None)
        (self.datadir / "pg_hba.conf").write_text("# written by tools/pgcluster.py\n" + hba)
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
                _kill_postmaster(pid)
            if self.tmpdir.name:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

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
            # Tests grep the log; the huge-value tests would otherwise write
            # their gigabyte parameters into it, and a grep would read them.
            "log_parameter_max_length": "4096",
            "log_parameter_max_length_on_error": "4096",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "password_encryption": "'scram-sha-256'",
        }
        if self.tls is not None:
            settings["ssl"] = "on"
            settings["ssl_cert_file"] = f"'{self.tls.server_cert}'"
            settings["ssl_key_file"] = f"'{self.tls.server_key}'"
            settings["log_connections"] = "on"
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        # Later lines win: initdb's file plus our block, rewritten whole on a port retry.
        (self.datadir / "postgresql.conf").write_text(
            self._initdb_conf + "\n# written by tools/pgcluster.py\n" + lines
        )

    def _bootstrap_sql(self) -> str:
        # One statement per line: single-user mode reads them that way.
        lines = [
            "SET log_statement = 'none';",  # rule 5
            "SET password_encryption = 'scram-sha-256';",
            f"CREATE ROLE {TEST_ROLE} LOGIN SUPERUSER PASSWORD {_sql_literal(self.password)};",
            f"CREATE DATABASE {TEST_DATABASE} OWNER {TEST_ROLE};",
        ]
        for role, password in self.passwords.items():
            encryption = "md5" if role == "md5_user" else "scram-sha-256"
            lines.append(f"SET password_encryption = '{encryption}';")
            lines.append(f"CREATE ROLE {role} LOGIN PASSWORD {_sql_literal(password)};")
        return "".join(line + "\n" for line in lines)

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
        # UTF-8 whatever the locale: a secure cluster's passwords are not ASCII.
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            cwd=cwd,
            timeout=120,
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
