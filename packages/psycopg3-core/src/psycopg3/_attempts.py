"""One connection attempt per host, each with its own ``connect_timeout``.

With several hosts in a conninfo (``host=a,b,c``), libpq's blocking
``PQconnectdb`` applies ``connect_timeout`` to each host in turn. Its
non-blocking API, which we must use, applies no timeout at all: the caller
bounds the wait, and it cannot tell libpq to give up on one host and move on
to the next. So the hosts are split here into single-host conninfos, tried
in order, each bounded by the timeout: a host that does not answer costs
``connect_timeout`` and no more.

Splitting keeps what libpq does with several hosts:

* ``port`` (and ``hostaddr``) lists pair with the hosts; one port serves all;
* ``load_balance_hosts=random`` shuffles the attempts;
* ``target_session_attrs`` is checked by libpq on each single host (a host
  that does not match fails its attempt, and the next is tried), except
  ``prefer-standby``: first every host is tried for a standby, then every
  host again for anything.

Must not: open anything. ``generators.connect_attempts`` does the trying.
"""

from __future__ import annotations

import os
import random

from . import errors
from .conninfo import make_conninfo

__all__ = ["split_attempts"]

_LIST_KEYS = ("host", "hostaddr", "port")
_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT"}


def _listed(params: dict[str, str], key: str) -> list[str]:
    value = params.get(key)
    if value is None:
        value = os.environ.get(_ENV[key], "")
    return value.split(",") if value else []


def split_attempts(params: dict[str, str]) -> list[str]:
    """Return the conninfos to try in turn, one host each.

    :param params: the connection parameters (``conninfo_to_dict()``).
    :raises ProgrammingError: if the host, hostaddr and port lists do not pair.
    """
    hosts = _listed(params, "host")
    addrs = _listed(params, "hostaddr")
    ports = _listed(params, "port")
    count = max(len(hosts), len(addrs))
    if count <= 1:
        return [make_conninfo(**params)]
    for name, values in (("host", hosts), ("hostaddr", addrs)):
        if values and len(values) != count:
            raise errors.ProgrammingError(
                f"the conninfo lists {count} hosts but {len(values)} {name} values"
            )
    if len(ports) not in (0, 1, count):
        raise errors.ProgrammingError(
            f"the conninfo lists {count} hosts but {len(ports)} port values"
        )

    attempts: list[dict[str, str]] = []
    for index in range(count):
        attempt = dict(params)
        for key, values in (("host", hosts), ("hostaddr", addrs)):
            if values:
                attempt[key] = values[index]
        if ports:
            attempt["port"] = ports[index] if len(ports) == count else ports[0]
        attempts.append(attempt)

    if params.get("load_balance_hosts") == "random":
        random.shuffle(attempts)
    if params.get("target_session_attrs") == "prefer-standby":
        first = [{**attempt, "target_session_attrs": "standby"} for attempt in attempts]
        then = [{**attempt, "target_session_attrs": "any"} for attempt in attempts]
        attempts = first + then
    return [make_conninfo(**attempt) for attempt in attempts]
