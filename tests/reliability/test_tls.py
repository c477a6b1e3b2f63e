"""S1: the sslmode matrix, CRLs and ``conn.info.ssl_in_use``, in every flavour.

The server (``secure_cluster``) has a certificate for ``DNS:localhost`` only
and lets ``tls_user`` in over TLS only (``hostnossl ... reject``), so every
connection that succeeds is a TLS one and every refusal names its reason.
The expectations are libpq's documented ones (PostgreSQL manual, "SSL
Support", table of sslmode descriptions):

* ``disable`` never encrypts: refused by the hostnossl line;
* ``allow``, ``prefer``, ``require`` encrypt (``allow`` after its plain
  attempt is refused) without checking the certificate when no root
  certificate exists, but check the chain as soon as one is configured —
  the documented "``require`` behaves like ``verify-ca`` when a root CA file
  exists", which libpq applies whenever it encrypts; so a wrong CA fails;
* ``verify-ca`` needs the right CA (a missing root file is an error, never
  a silent downgrade); ``verify-full`` also needs the host name to be in the
  certificate: ``127.0.0.1`` is not.

``sslrootcert`` is always given (the "none" case is a path where no file
exists) and ``libpq_env`` empties HOME and the ``PGSSL*`` variables, so no
file of the machine's user can change an outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import psycopg3
from fix_flavours import Flavour
from pgcluster import Cluster, TlsFiles

pytestmark = pytest.mark.anyio

SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
HOSTS = ["localhost", "127.0.0.1"]
ROOTS = ["right", "wrong", "none"]

# Fragments of libpq's messages (libpq 15) naming each reason for a refusal.
NO_ENCRYPTION = "no encryption"
BAD_CHAIN = "certificate verify failed"
NO_ROOT_FILE = "does not exist"
HOST_MISMATCH = 'does not match host name "127.0.0.1"'


def expected_refusal(sslmode: str, host: str, root: str) -> str | None:
    """The reason libpq must refuse this combination for, or None if it must connect."""
    if sslmode == "disable":
        return NO_ENCRYPTION
    if root == "wrong":
        return BAD_CHAIN
    if sslmode.startswith("verify-") and root == "none":
        return NO_ROOT_FILE
    if sslmode == "verify-full" and host != "localhost":
        return HOST_MISMATCH
    return None


def root_path(tls: TlsFiles, root: str, missing: Path) -> str:
    paths = {"right": tls.ca_cert, "wrong": tls.wrong_ca_cert, "none": missing}
    return str(paths[root])


async def tls_facts(conn: Any) -> tuple[bool, bool, str, str]:
    """What the client and the server say about the connection's encryption."""
    cur = await conn.execute(
        "select ssl, version, current_user from pg_stat_ssl where pid = pg_backend_pid()"
    )
    server_ssl, version, user = await cur.fetchone()
    return conn.info.ssl_in_use, server_ssl, version, user


async def attempt(flavour: Flavour, **params: Any) -> tuple[str | None, str]:
    """Connect and disconnect; return (refusal message or None, TLS version)."""
    try:
        conn = await flavour.connect("", **params)
    except psycopg3.OperationalError as error:
        return str(error), ""
    try:
        client_ssl, server_ssl, version, user = await tls_facts(conn)
        assert (client_ssl, server_ssl, user) == (True, True, params["user"])
    finally:
        await conn.close()
    return None, version


@pytest.mark.scenario("S1")
@pytest.mark.parametrize("sslmode", SSLMODES)
async def test_sslmode_matrix(
    flavour: Flavour,
    sslmode: str,
    secure_cluster: Cluster,
    libpq_env: Path,
    authorized_count: Callable[[str], int],
    observe: Callable[[str], None],
) -> None:
    tls = secure_cluster.tls
    assert tls is not None
    sessions_before = authorized_count("tls_user")
    wrong: list[str] = []
    connected = 0
    versions: set[str] = set()
    for host in HOSTS:
        for root in ROOTS:
            params = {**secure_cluster.role_params("tls_user"), "host": host}
            refusal, version = await attempt(
                flavour, **params, sslmode=sslmode, sslrootcert=root_path(tls, root, libpq_env)
            )
            expected = expected_refusal(sslmode, host, root)
            if refusal is None:
                connected += 1
                versions.add(version)
            if (refusal is None) != (expected is None) or (
                refusal is not None and expected is not None and expected not in refusal
            ):
                wrong.append(f"{host} root={root}: expected {expected!r}, got {refusal!r}")
    assert wrong == []
    # A refused attempt never became a session on the server.
    assert authorized_count("tls_user") - sessions_before == connected
    over = f" over {', '.join(sorted(versions))}" if versions else ""
    observe(
        f"sslmode={sslmode}: {connected}/6 host×root combinations connected{over},"
        " the rest refused for the documented reason"
    )


@pytest.mark.scenario("S1")
async def test_revoked_server_certificate_is_refused(
    flavour: Flavour,
    secure_cluster: Cluster,
    libpq_env: Path,
    observe: Callable[[str], None],
) -> None:
    tls = secure_cluster.tls
    assert tls is not None
    params = {**secure_cluster.role_params("tls_user"), "host": "localhost"}
    for sslmode in ("require", "verify-ca", "verify-full"):
        verified = {**params, "sslmode": sslmode, "sslrootcert": str(tls.ca_cert)}
        refusal, _ = await attempt(flavour, **verified, sslcrl=str(tls.crl))
        assert refusal is not None and BAD_CHAIN in refusal, sslmode
        # The control: the same CA's CRL without the server's serial lets it in.
        refusal, _ = await attempt(flavour, **verified, sslcrl=str(tls.empty_crl))
        assert refusal is None, sslmode
    # Without a root certificate nothing is verified, so the CRL is not read.
    unverified = {**params, "sslmode": "require", "sslrootcert": str(libpq_env)}
    refusal, _ = await attempt(flavour, **unverified, sslcrl=str(tls.crl))
    assert refusal is None
    observe("revoked server cert refused under require/verify-ca/verify-full with a root cert")


@pytest.mark.scenario("S1")
async def test_info_reports_tls_in_use(
    flavour: Flavour, secure_cluster: Cluster, libpq_env: Path
) -> None:
    # md5_user may come in either way: the flag must follow what was made.
    for sslmode, encrypted in (("require", True), ("disable", False)):
        params = secure_cluster.role_params("md5_user")
        conn = await flavour.connect("", **params, sslmode=sslmode, sslrootcert=str(libpq_env))
        try:
            client_ssl, server_ssl, version, user = await tls_facts(conn)
            assert (client_ssl, server_ssl, user) == (encrypted, encrypted, "md5_user")
            assert (version or "").startswith("TLSv1.") == encrypted
        finally:
            await conn.close()
        with pytest.raises(psycopg3.OperationalError):
            conn.info.ssl_in_use
