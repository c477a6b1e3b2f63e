"""Host names resolved by the adapter's resolver before libpq sees them."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from psycopg3 import errors
from psycopg3._dns import resolve_conninfo, resolve_conninfo_blocking
from psycopg3.conninfo import conninfo_to_dict

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    # The resolvers below never suspend: no event loop needed.
    try:
        coro.send(None)
    except StopIteration as ex:
        return ex.value  # type: ignore[no-any-return]
    raise AssertionError("the coroutine suspended")


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, host: str, port: str) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


def test_numeric_hosts_untouched() -> None:
    resolver = FakeResolver({})
    out = run(resolve_conninfo({"host": "127.0.0.1,/tmp,::1", "dbname": "x"}, resolver))
    assert resolver.calls == []
    assert conninfo_to_dict(out) == {"host": "127.0.0.1,/tmp,::1", "dbname": "x"}


def test_name_expanded_to_addresses() -> None:
    resolver = FakeResolver({"db.example": ["10.0.0.1", "10.0.0.2"]})
    out = conninfo_to_dict(run(resolve_conninfo({"host": "db.example", "port": "6543"}, resolver)))
    assert resolver.calls == [("db.example", "6543")]
    assert out["host"] == "db.example,db.example"
    assert out["hostaddr"] == "10.0.0.1,10.0.0.2"
    assert out["port"] == "6543,6543"


def test_multi_host_ports_and_failures() -> None:
    resolver = FakeResolver({"b": ["10.0.0.2"]})
    params = {"host": "a,b,127.0.0.1", "port": "1,2,3", "user": "me"}
    out = conninfo_to_dict(run(resolve_conninfo(params, resolver)))
    # "a" does not resolve: dropped, as libpq would move on to the next host.
    assert out["host"] == "b,127.0.0.1"
    assert out["hostaddr"] == "10.0.0.2,"
    assert out["port"] == "2,3"
    assert out["user"] == "me"
    assert resolver.calls == [("a", "1"), ("b", "2")]


def test_default_port_for_lookup() -> None:
    resolver = FakeResolver({"h": ["10.1.1.1"]})
    run(resolve_conninfo({"host": "h"}, resolver))
    assert resolver.calls == [("h", "5432")]


def test_nothing_resolves() -> None:
    with pytest.raises(errors.OperationalError, match="could not resolve host 'nowhere'"):
        run(resolve_conninfo({"host": "nowhere"}, FakeResolver({})))


def test_hostaddr_given_means_no_lookup() -> None:
    resolver = FakeResolver({})
    params = {"host": "name.example", "hostaddr": "10.0.0.9"}
    assert conninfo_to_dict(run(resolve_conninfo(params, resolver))) == params
    assert resolver.calls == []


def test_port_count_mismatch() -> None:
    with pytest.raises(errors.ProgrammingError, match="2 hosts but 3 port"):
        run(resolve_conninfo({"host": "a,b", "port": "1,2,3"}, FakeResolver({})))


def test_blocking_resolver_same_procedure() -> None:
    # A blocking framework (gevent) resolves with a resolver that blocks the
    # greenlet: the same procedure, the same result, the same failures.
    table = {"b": ["10.0.0.2"]}
    params = {"host": "a,b,127.0.0.1", "port": "1,2,3"}
    blocking_calls: list[tuple[str, str]] = []

    def resolve(host: str, port: str) -> list[str]:
        blocking_calls.append((host, port))
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    resolver = FakeResolver(table)
    assert resolve_conninfo_blocking(params, resolve) == run(resolve_conninfo(params, resolver))
    assert blocking_calls == resolver.calls == [("a", "1"), ("b", "2")]
    with pytest.raises(errors.OperationalError, match="could not resolve host 'a'"):
        resolve_conninfo_blocking({"host": "a"}, resolve)
