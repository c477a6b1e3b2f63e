"""psycopg3 for trio: native, cancellation-safe connections on psycopg3's core."""

from __future__ import annotations

from psycopg3 import __version__
from psycopg3.errors import PoolClosed, PoolTimeout, TooManyRequests

from .connection import Connection, connect, trio_connect
from .cursor import Cursor, ServerCursor
from .pool import ConnectionPool, open_pool
from .waiting import wait_trio

__all__ = [
    "__version__",
    "Connection",
    "ConnectionPool",
    "PoolClosed",
    "PoolTimeout",
    "TooManyRequests",
    "Cursor",
    "ServerCursor",
    "connect",
    "open_pool",
    "trio_connect",
    "wait_trio",
]
