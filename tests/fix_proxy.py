"""Fixtures putting the fault-injection proxy (``faultproxy.FaultProxy``) before the server.

* ``proxy`` (function): a started `FaultProxy` relaying to the test server,
  in ``forward`` mode; stopped (thread joined, sockets closed) after the test.
* ``proxy_dsn`` (function): the test ``dsn`` rewritten to go through ``proxy``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faultproxy import FaultProxy
from psycopg3.conninfo import conninfo_to_dict


@pytest.fixture
def proxy(dsn: str) -> Iterator[FaultProxy]:
    params = conninfo_to_dict(dsn)
    host = params.get("hostaddr") or params.get("host") or "127.0.0.1"
    with FaultProxy(host, int(params.get("port", "5432"))) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def proxy_dsn(proxy: FaultProxy, dsn: str) -> str:
    return proxy.dsn(dsn)
