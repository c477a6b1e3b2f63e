"""Splitting a multi-host conninfo into one attempt per host (``psycopg3._attempts``)."""

from __future__ import annotations

import pytest

from psycopg3 import ProgrammingError, pq
from psycopg3._attempts import split_attempts
from psycopg3.conninfo import conninfo_to_dict


def hosts_of(attempts: list[str]) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (p.get("host"), p.get("hostaddr"), p.get("port"))
        for p in (conninfo_to_dict(a) for a in attempts)
    ]


def test_single_host_is_one_attempt() -> None:
    attempts = split_attempts({"host": "db1", "port": "5433", "dbname": "x y"})
    assert len(attempts) == 1
    assert conninfo_to_dict(attempts[0]) == {"host": "db1", "port": "5433", "dbname": "x y"}


def test_hosts_pair_with_ports() -> None:
    params = {"host": "a,b,c", "port": "1,2,3", "user": "u"}
    assert hosts_of(split_attempts(params)) == [
        ("a", None, "1"),
        ("b", None, "2"),
        ("c", None, "3"),
    ]
    assert all(conninfo_to_dict(a)["user"] == "u" for a in split_attempts(params))


def test_one_port_serves_every_host() -> None:
    assert hosts_of(split_attempts({"host": "a,b", "port": "7"})) == [
        ("a", None, "7"),
        ("b", None, "7"),
    ]


def test_hostaddr_pairs_with_host() -> None:
    params = {"host": "h1,h2", "hostaddr": "127.0.0.1,127.0.0.2"}
    assert hosts_of(split_attempts(params)) == [
        ("h1", "127.0.0.1", None),
        ("h2", "127.0.0.2", None),
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"host": "a,b", "port": "1,2,3"}, "3 port values"),
        ({"host": "a,b,c", "hostaddr": "127.0.0.1,127.0.0.2"}, "2 hostaddr values"),
    ],
)
def test_lists_that_do_not_pair(params: dict[str, str], message: str) -> None:
    with pytest.raises(ProgrammingError, match=message):
        split_attempts(params)


def test_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "e1,e2")
    monkeypatch.setenv("PGPORT", "9")
    assert hosts_of(split_attempts({"dbname": "d"})) == [("e1", None, "9"), ("e2", None, "9")]


def test_load_balance_random_shuffles() -> None:
    params = {"host": ",".join(f"h{i}" for i in range(8)), "load_balance_hosts": "random"}
    if pq.version() < 160000:
        # The option is libpq 16's: an older one refuses the conninfo.
        with pytest.raises(ProgrammingError, match="load_balance_hosts"):
            split_attempts(params)
        return
    orders = {tuple(h for h, _, _ in hosts_of(split_attempts(params))) for _ in range(20)}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(f"h{i}" for i in range(8)) for order in orders)


def test_prefer_standby_tries_standbys_first_then_anything() -> None:
    attempts = [
        conninfo_to_dict(a)
        for a in split_attempts({"host": "a,b", "target_session_attrs": "prefer-standby"})
    ]
    assert [(p["host"], p["target_session_attrs"]) for p in attempts] == [
        ("a", "standby"),
        ("b", "standby"),
        ("a", "any"),
        ("b", "any"),
    ]
