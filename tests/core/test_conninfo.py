"""Tests of psycopg3.conninfo: merging, quoting, parsing, timeouts."""

from __future__ import annotations

import pytest

from psycopg3 import errors, pq
from psycopg3.conninfo import conninfo_to_dict, make_conninfo, timeout_from_conninfo

AWKWARD = [
    "with space",
    "it's",
    "back\\slash",
    "trailing\\",
    "a=b",
    "x sslmode=disable",
    "' sslmode=disable '",
    "ünïcødé €",
    "",
    "  ",
    "tab\there",
    "new\nline",
    "\\'",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_round_trip(value: str) -> None:
    conninfo = make_conninfo(host="h", application_name=value)
    assert conninfo_to_dict(conninfo) == {"host": "h", "application_name": value}


def test_injection_attempt() -> None:
    conninfo = make_conninfo("sslmode=require", application_name="x sslmode=disable")
    params = conninfo_to_dict(conninfo)
    assert params["sslmode"] == "require"
    assert params["application_name"] == "x sslmode=disable"
    conninfo = make_conninfo(dbname="db' sslmode='disable", sslmode="verify-full")
    assert conninfo_to_dict(conninfo)["sslmode"] == "verify-full"


def test_keywords_win_and_none_dropped() -> None:
    conninfo = make_conninfo("host=a port=1 dbname=x", port=2, dbname=None, user="u")
    assert conninfo_to_dict(conninfo) == {"host": "a", "port": "2", "dbname": "x", "user": "u"}


def test_uri_merge() -> None:
    conninfo = make_conninfo("postgresql://u@h:5433/db?application_name=app", port="6000")
    assert conninfo_to_dict(conninfo) == {
        "user": "u",
        "host": "h",
        "port": "6000",
        "dbname": "db",
        "application_name": "app",
    }


def test_unchanged_without_kwargs() -> None:
    assert make_conninfo() == ""
    assert make_conninfo("postgresql://h/db") == "postgresql://h/db"
    assert make_conninfo("host=x", user=None) == "host=x"


def test_conninfo_to_dict() -> None:
    assert conninfo_to_dict() == {}
    assert conninfo_to_dict("host=a password='p w'", user="me") == {
        "host": "a",
        "password": "p w",
        "user": "me",
    }


@pytest.mark.parametrize(
    "conninfo, kwargs, match",
    [
        ("host='a", {}, "unterminated quoted string"),
        ("nosuch=1", {}, 'invalid connection option "nosuch"'),
        ("", {"nosuch": "1"}, 'invalid connection option "nosuch"'),
        ("", {"host x": "1"}, "invalid connection option name"),
        ("", {"host=": "1"}, "invalid connection option name"),
        ("postgresql://h/db?nosuch=1", {}, 'invalid URI query parameter: "nosuch"'),
    ],
)
def test_bad_input(conninfo: str, kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(errors.ProgrammingError, match=match):
        make_conninfo(conninfo, **kwargs)


def test_nul_rejected() -> None:
    with pytest.raises(errors.DataError, match="NUL"):
        make_conninfo("host=a\x00 sslmode=disable")
    with pytest.raises(errors.DataError, match="NUL"):
        make_conninfo(application_name="a\x00b")
    with pytest.raises(errors.DataError, match="NUL"):
        make_conninfo(**{"host\x00": "a"})
    with pytest.raises(errors.DataError, match="NUL"):
        conninfo_to_dict("host=a\x00")


def test_connect_with_awkward_value(dsn: str) -> None:
    # The server keeps only printable ASCII in application_name.
    name = "it's a \\ 'test' x=1"
    conn = pq.PGconn.connect(make_conninfo(dsn, application_name=name).encode())
    try:
        assert conn.parameter_status(b"application_name") == name.encode()
    finally:
        conn.finish()


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("0", None),
        ("-5", None),
        ("1", 2.0),
        ("2", 2.0),
        ("10", 10.0),
        (" 7 ", 7.0),
        ("+3", 3.0),
    ],
)
def test_timeout(
    value: str | None, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    params = {} if value is None else {"connect_timeout": value}
    assert timeout_from_conninfo(params) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "", "1_0", "99999999999"])
def test_timeout_garbage(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    with pytest.raises(errors.ProgrammingError, match="connect_timeout"):
        timeout_from_conninfo({"connect_timeout": value})


def test_timeout_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "5")
    assert timeout_from_conninfo({}) == 5.0
    assert timeout_from_conninfo({"connect_timeout": "8"}) == 8.0  # keyword wins
    assert timeout_from_conninfo({"connect_timeout": "0"}) is None
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "soon")
    with pytest.raises(errors.ProgrammingError, match="PGCONNECT_TIMEOUT"):
        timeout_from_conninfo({})
