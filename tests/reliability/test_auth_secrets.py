"""S2 channel binding and authentication, S3 secrets hygiene, B3 NUL in conninfo.

Against ``secure_cluster``: ``tls_user`` (scram, TLS only), ``md5_user``
(password stored as MD5), ``pw_user`` (cleartext ``password`` method),
``trust_user`` and ``marker_user`` (scram, with a password that starts with
a random marker and holds a space, a quote, a backslash, ``=`` and
non-ASCII). The marker is what the hygiene tests look for: any leak of the
password, raw, escaped or percent-encoded, contains it.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import psycopg3
import psycopg3_sync
from fix_flavours import Flavour, SyncFacade
from pgcluster import TEST_ROLE, Cluster
from psycopg3.conninfo import conninfo_to_dict, make_conninfo

pytestmark = pytest.mark.anyio

# libpq 15's reasons for refusing under channel_binding=require.
NOT_OFFERED = "channel binding required but not supported by server's authentication request"
NO_BINDING_USED = "channel binding required, but server authenticated client without"
NO_TLS = "channel binding required, but SSL not in use"
HBA_NO_ENCRYPTION = "no encryption"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 bound by this test and not listening: connects are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def default_role_params(secure_cluster: Cluster) -> dict[str, str]:
    """The suite's scram role on the secure cluster (``host all all ... scram-sha-256``)."""
    params = secure_cluster.role_params("tls_user")
    return {**params, "user": TEST_ROLE, "password": secure_cluster.password}


def marker_of(secure_cluster: Cluster) -> str:
    return secure_cluster.passwords["marker_user"].split()[0]


def exception_texts(error: BaseException) -> list[tuple[str, str]]:
    """Every text an exception and its chain can show, named by where it comes from."""
    texts: list[tuple[str, str]] = []
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = type(current).__name__
        texts += [
            (f"str({name})", str(current)),
            (f"repr({name})", repr(current)),
            (f"{name}.args", repr(current.args)),
            (f"{name}.__dict__", repr(getattr(current, "__dict__", {}))),
            (f"traceback of {name}", "".join(traceback.format_exception(current))),
        ]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return texts


def plain(conn: Any) -> Any:
    return conn.target if isinstance(conn, SyncFacade) else conn


# S2 ------------------------------------------------------------------------


async def refusal_of(flavour: Flavour, **params: Any) -> str | None:
    try:
        conn = await flavour.connect("", **params)
    except psycopg3.OperationalError as error:
        return str(error)
    try:
        cur = await conn.execute("select current_user")
        assert await cur.fetchone() == (params["user"],)
        assert conn.info.ssl_in_use == (params["sslmode"] != "disable")
    finally:
        await conn.close()
    return None


@pytest.mark.scenario("S2")
async def test_channel_binding_require_only_with_scram_plus_over_tls(
    flavour: Flavour,
    secure_cluster: Cluster,
    libpq_env: Path,
    authorized_count: Callable[[str], int],
    observe: Callable[[str], None],
) -> None:
    no_root = str(libpq_env)
    bound = {"channel_binding": "require", "sslrootcert": no_root}
    tls_user = secure_cluster.role_params("tls_user")
    assert await refusal_of(flavour, **tls_user, sslmode="require", **bound) is None

    before = {user: authorized_count(user) for user in ("md5_user", "pw_user")}
    cases = [
        (tls_user, "disable", HBA_NO_ENCRYPTION),
        (default_role_params(secure_cluster), "disable", NO_TLS),
        (secure_cluster.role_params("md5_user"), "require", NOT_OFFERED),
        (secure_cluster.role_params("md5_user"), "disable", NOT_OFFERED),
        (secure_cluster.role_params("pw_user"), "require", NOT_OFFERED),
        (secure_cluster.role_params("pw_user"), "disable", NOT_OFFERED),
        (secure_cluster.role_params("trust_user"), "require", NO_BINDING_USED),
        (secure_cluster.role_params("trust_user"), "disable", NO_BINDING_USED),
    ]
    wrong = []
    for params, sslmode, reason in cases:
        refusal = await refusal_of(flavour, **params, sslmode=sslmode, **bound)
        if refusal is None or reason not in refusal:
            wrong.append(f"{params['user']} sslmode={sslmode}: {refusal!r}")
    assert wrong == []
    # Neither the cleartext password nor the MD5 answer was sent: the server,
    # which would accept them, never authorized those roles.
    assert {user: authorized_count(user) for user in before} == before
    observe("channel_binding=require: only tls_user over TLS connected; 8/8 downgrades refused")


@pytest.mark.scenario("S2")
async def test_channel_binding_disable_lets_every_method_in(
    flavour: Flavour, secure_cluster: Cluster, libpq_env: Path
) -> None:
    unbound = {"channel_binding": "disable", "sslrootcert": str(libpq_env)}
    for user in ("tls_user", "md5_user", "pw_user", "trust_user", "marker_user"):
        params = secure_cluster.role_params(user)
        sslmodes = ["require"] if user == "tls_user" else ["require", "disable"]
        for sslmode in sslmodes:
            assert await refusal_of(flavour, **params, sslmode=sslmode, **unbound) is None


@pytest.mark.scenario("S2", flavour="sync")
def test_roles_store_the_expected_password_kinds(secure_cluster: Cluster) -> None:
    with psycopg3_sync.connect(secure_cluster.admin_dsn) as conn:
        rows = conn.execute(
            "select rolname, split_part(rolpassword, '$', 1) from pg_authid"
            " where rolname = any(%s) order by rolname",
            [list(secure_cluster.passwords)],
        ).fetchall()
        md5 = conn.execute(
            "select rolpassword like 'md5%%' from pg_authid where rolname = 'md5_user'"
        ).fetchone()
    assert md5 == (True,)
    kinds: dict[str, str] = dict(rows)
    assert kinds.pop("md5_user").startswith("md5")
    assert set(kinds.values()) == {"SCRAM-SHA-256"}
    assert set(kinds) == set(secure_cluster.passwords) - {"md5_user"}


@pytest.mark.scenario("S2")
@pytest.mark.parametrize("user", ["tls_user", "md5_user", "pw_user", "marker_user"])
async def test_wrong_password_is_a_clear_operational_error(
    flavour: Flavour, user: str, secure_cluster: Cluster, libpq_env: Path
) -> None:
    params = {**secure_cluster.role_params(user), "password": "not the password"}
    with pytest.raises(psycopg3.OperationalError) as caught:
        await flavour.connect("", **params, sslmode="require", sslrootcert=str(libpq_env))
    assert f'password authentication failed for user "{user}"' in str(caught.value)


# S3 ------------------------------------------------------------------------


def conninfo_forms(params: dict[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    """The same connection request as a keyword string, a URL and keywords."""
    url = (
        f"postgresql://{quote(params['user'], safe='')}:{quote(params['password'], safe='')}"
        f"@{params['host']}:{params['port']}/{quote(params['dbname'], safe='')}"
    )
    return {
        "string": (make_conninfo(**params), {}),
        "url": (url, {}),
        "keywords": ("", params),
    }


@pytest.mark.scenario("S3")
async def test_password_never_shown(
    flavour: Flavour,
    secure_cluster: Cluster,
    libpq_env: Path,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    observe: Callable[[str], None],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="psycopg3")
    password = secure_cluster.passwords["marker_user"]
    marker = marker_of(secure_cluster)
    good = {**secure_cluster.role_params("marker_user"), "sslrootcert": str(libpq_env)}
    failing = {
        "wrong db": {**good, "dbname": "no_such_database"},
        "wrong password": {**good, "password": password + " but wrong"},
        "unreachable host": {**good, "port": str(closed_port)},
    }
    places: list[tuple[str, str]] = []
    failures = 0
    for form, (conninfo, kwargs) in conninfo_forms(good).items():
        if form == "url":
            # sslrootcert is no part of the URL's authority: add it as a query.
            conninfo += f"?sslrootcert={quote(good['sslrootcert'], safe='')}"
        conn = await flavour.connect(conninfo, **kwargs)
        try:
            assert conn.info.password == password
            cur = await conn.execute("select current_user")
            assert await cur.fetchone() == ("marker_user",)
            places += [
                (f"{form}: repr(conn)", repr(plain(conn))),
                (f"{form}: repr(conn.info)", repr(conn.info)),
                (f"{form}: conn.info.dsn", conn.info.dsn),
                (f"{form}: get_parameters()", repr(conn.info.get_parameters())),
            ]
        finally:
            await conn.close()
        places.append((f"{form}: repr(closed conn)", repr(plain(conn))))
        for case, params in failing.items():
            bad_conninfo, bad_kwargs = conninfo_forms(params)[form]
            if form == "url":
                bad_conninfo += f"?sslrootcert={quote(good['sslrootcert'], safe='')}"
            with pytest.raises(psycopg3.OperationalError) as caught:
                await flavour.connect(bad_conninfo, **bad_kwargs)
            failures += 1
            places += [
                (f"{form}, {case}: {where}", text) for where, text in exception_texts(caught.value)
            ]
    places.append(("captured log text", caplog.text))
    places += [
        (f"log record {record.name}", f"{record.getMessage()} {record.args!r}")
        for record in caplog.records
    ]
    places.append(("server log", secure_cluster.log_path.read_text(errors="replace")))
    assert [where for where, text in places if marker in text] == []
    observe(
        f"password marker absent from {len(places)} texts: 3 successful and"
        f" {failures} failed connects (string, URL, keywords), logs, server log"
    )


AWKWARD_VALUES = [
    "with space",
    " leading and trailing ",
    "it's",
    "''",
    '"double"',
    "back\\slash",
    "trailing\\",
    "\\'",
    "a=b",
    "=",
    "x sslmode=disable",
    "x' sslmode='disable",
    "x\\' sslmode=disable",
    "ünïcødé € 😀",
    "",
    "tab\tnew\nline",
]


@pytest.mark.scenario("S3", flavour="any")
@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_awkward_values_round_trip(value: str) -> None:
    conninfo = make_conninfo("sslmode=verify-full", application_name=value, password=value)
    assert conninfo_to_dict(conninfo) == {
        "sslmode": "verify-full",
        "application_name": value,
        "password": value,
    }
    # Merged into a URL, the values come back the same.
    url = make_conninfo("postgresql://h/db?sslmode=verify-full", options=value)
    assert conninfo_to_dict(url) == {
        "host": "h",
        "dbname": "db",
        "sslmode": "verify-full",
        "options": value,
    }


@pytest.mark.scenario("S3")
async def test_value_cannot_inject_a_keyword(
    flavour: Flavour, secure_cluster: Cluster, libpq_env: Path
) -> None:
    # tls_user is refused without TLS, and no server listens in /nonexistent:
    # had either keyword got through, there would be no connection.
    sneaky = "x' sslmode=disable host=/nonexistent "
    params = {**secure_cluster.role_params("tls_user"), "sslrootcert": str(libpq_env)}
    conn = await flavour.connect("", **params, sslmode="require", application_name=sneaky)
    try:
        assert conn.info.ssl_in_use
        assert conn.info.host == "127.0.0.1"
        cur = await conn.execute("show application_name")
        assert await cur.fetchone() == (sneaky,)
    finally:
        await conn.close()


MALFORMED = [
    "host",
    "host='unterminated",
    "no_such_option=1",
    "=x",
    "host=h port",
    "postgresql://[::1",
    "postgresql://h/db?no_such_option=1",
    "postgresql://h/db?sslmode=%zz",
]


@pytest.mark.scenario("S3")
async def test_malformed_conninfo_is_a_programming_error(
    flavour: Flavour, secure_cluster: Cluster
) -> None:
    marker = marker_of(secure_cluster)
    secret = quote(f"{marker} x", safe="")
    # libpq quotes the token or the URI it chokes on: the password is masked.
    with_password = [
        f"postgresql://u:{secret}%zz@h/db",
        f"postgresql://u:{secret}@[h/db",
        f"postgresql://u@h/db?password={secret}%zz",
        f"password={marker} oops",
        f"host=h password='{marker}",
    ]
    for conninfo in MALFORMED + with_password:
        with pytest.raises(psycopg3.ProgrammingError) as caught:
            await flavour.connect(conninfo)
        assert "invalid connection string" in str(caught.value), conninfo
        leaks = [where for where, text in exception_texts(caught.value) if marker in text]
        assert leaks == [], conninfo


# B3, conninfo part -----------------------------------------------------------


@pytest.mark.scenario("B3")
async def test_nul_in_conninfo_refused_before_libpq(flavour: Flavour, closed_port: int) -> None:
    # Nothing listens on the port: an OperationalError would mean libpq tried.
    base = {"host": "127.0.0.1", "port": str(closed_port), "user": "u", "dbname": "d"}
    attempts: list[tuple[str, dict[str, str]]] = [
        ("", {**base, "application_name": "x\x00y"}),
        ("", {**base, "application\x00_name": "x"}),
        (make_conninfo(**base) + " application_name=x\x00y", {}),
        (make_conninfo(**base) + "\x00", {}),
        (make_conninfo(**base), {"password": "p\x00"}),
    ]
    for conninfo, kwargs in attempts:
        with pytest.raises(psycopg3.DataError, match="NUL"):
            await flavour.connect(conninfo, **kwargs)


@pytest.mark.scenario("B3", flavour="any")
def test_nul_in_conninfo_functions() -> None:
    with pytest.raises(psycopg3.DataError):
        make_conninfo("application_name=x\x00")
    with pytest.raises(psycopg3.DataError):
        make_conninfo(application_name="x\x00")
    with pytest.raises(psycopg3.DataError):
        conninfo_to_dict("", **{"host\x00": "h"})
