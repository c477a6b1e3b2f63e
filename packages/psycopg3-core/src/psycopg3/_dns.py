"""Host names resolved before libpq sees them, so connecting never blocks on DNS.

libpq resolves host names inside ``PQconnectStart``/``PQconnectPoll`` with a
blocking ``getaddrinfo``. An async adapter (or a blocking one whose
framework must not block there, such as gevent) resolves them first with
its framework's resolver and hands libpq numeric addresses in ``hostaddr``,
keeping ``host`` for what libpq still uses it for (TLS host name checks, the
password file, messages).

The procedure is written once, as a generator that yields each ``(host,
port)`` to look up and is sent its addresses (or the ``OSError``);
``resolve_conninfo`` drives it with an async resolver,
``resolve_conninfo_blocking`` with a blocking one.

Must not: resolve anything itself, or import a concurrency framework. The
adapter passes its resolver in.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable, Generator

from . import errors
from .conninfo import make_conninfo

#: ``await resolve(host, port)``: the numeric addresses of a host name.
Resolver = Callable[[str, str], Awaitable[list[str]]]
#: ``resolve(host, port)``: the same, blocking the calling thread or greenlet.
BlockingResolver = Callable[[str, str], list[str]]
#: What the procedure yields (a lookup), is sent (its outcome) and returns.
_Lookups = Generator[tuple[str, str], "list[str] | OSError", str]

_DEFAULT_PORT = "5432"


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _needs_lookup(host: str) -> bool:
    # Empty: libpq's default (a Unix socket); a leading "/" or "@": a socket
    # directory or an abstract socket; a numeric address needs no lookup.
    return bool(host) and not host.startswith(("/", "@")) and not _is_numeric(host)


def _split(value: str, count: int, what: str) -> list[str]:
    items = value.split(",")
    if len(items) == 1:
        return items * count
    if len(items) != count:
        raise errors.ProgrammingError(
            f"the conninfo has {count} hosts but {len(items)} {what} values"
        )
    return items


async def resolve_conninfo(params: dict[str, str], resolve: Resolver) -> str:
    """Return a conninfo equivalent to ``params`` whose hosts need no DNS lookup.

    :param params: the connection parameters (``conninfo_to_dict()``).
    :param resolve: the framework's resolver.
    :raises OperationalError: if no host is left to try.
    """
    lookups = _resolved(params)
    try:
        host, port = next(lookups)
        while True:
            try:
                outcome: list[str] | OSError = await resolve(host, port)
            except OSError as ex:
                outcome = ex
            host, port = lookups.send(outcome)
    except StopIteration as ex:
        return str(ex.value)


def resolve_conninfo_blocking(params: dict[str, str], resolve: BlockingResolver) -> str:
    """``resolve_conninfo()`` with a resolver that blocks the calling thread or greenlet."""
    lookups = _resolved(params)
    try:
        host, port = next(lookups)
        while True:
            try:
                outcome: list[str] | OSError = resolve(host, port)
            except OSError as ex:
                outcome = ex
            host, port = lookups.send(outcome)
    except StopIteration as ex:
        return str(ex.value)


def _resolved(params: dict[str, str]) -> _Lookups:
    """The conninfo equivalent to ``params`` whose hosts need no lookup, asking for each.

    Each host name becomes as many entries as it has addresses (``host``
    repeated, ``hostaddr`` numeric), so libpq tries them all in turn. Names
    that do not resolve are dropped, as libpq would skip them. It yields
    ``(host, port)`` for each lookup and is sent the addresses, or the
    ``OSError`` the lookup raised.

    :raises OperationalError: if no host is left to try.
    """
    if params.get("hostaddr") or os.environ.get("PGHOSTADDR"):
        return make_conninfo(**params)
    host_value = params.get("host", os.environ.get("PGHOST", ""))
    hosts = host_value.split(",")
    if not any(_needs_lookup(h) for h in hosts):
        return make_conninfo(**params)
    ports = _split(params.get("port", os.environ.get("PGPORT", "")), len(hosts), "port")

    new_hosts: list[str] = []
    new_addrs: list[str] = []
    new_ports: list[str] = []
    failures: list[str] = []
    for host, port in zip(hosts, ports):
        if not _needs_lookup(host):
            new_hosts.append(host)
            new_addrs.append("")
            new_ports.append(port)
            continue
        addresses = yield host, port or _DEFAULT_PORT
        if isinstance(addresses, OSError):
            failures.append(f"could not resolve host {host!r}: {addresses}")
            continue
        for address in addresses:
            new_hosts.append(host)
            new_addrs.append(address)
            new_ports.append(port)
    if not new_hosts:
        raise errors.OperationalError("connection failed: " + "; ".join(failures))
    resolved = dict(params)
    resolved["host"] = ",".join(new_hosts)
    resolved["hostaddr"] = ",".join(new_addrs)
    if any(new_ports):
        resolved["port"] = ",".join(new_ports)
    return make_conninfo(**resolved)
