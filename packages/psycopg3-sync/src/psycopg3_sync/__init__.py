"""psycopg3 for blocking code: a DB-API 2.0 module on psycopg3's core.

The exceptions, type objects and constructors that PEP 249 asks of the
module come from ``psycopg3.dbapi20``, which lists them once.
"""

from __future__ import annotations

from psycopg3 import __version__, errors
from psycopg3.dbapi20 import *  # noqa: F403 - PEP 249's exceptions, type objects, constructors
from psycopg3.dbapi20 import __all__ as __all__  # the exports start with those
from psycopg3.errors import PoolClosed, PoolTimeout, TooManyRequests

from .connection import Connection, connect
from .cursor import Cursor, ServerCursor
from .pool import ConnectionPool, open_pool
from .waiting import wait_select

#: DB-API 2.0 module globals.
apilevel = "2.0"
#: Threads may share the module and connections (operations are serialised).
threadsafety = 2
paramstyle = "pyformat"

__all__ += (
    "__version__",
    "apilevel",
    "threadsafety",
    "paramstyle",
    "connect",
    "Connection",
    "Cursor",
    "ServerCursor",
    "ConnectionPool",
    "open_pool",
    "wait_select",
    "errors",
    "PoolTimeout",
    "PoolClosed",
    "TooManyRequests",
)
