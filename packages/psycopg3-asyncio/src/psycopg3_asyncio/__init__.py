"""psycopg3 for asyncio: async connections and cursors on psycopg3's core."""

from __future__ import annotations

from psycopg3 import __version__
from psycopg3.errors import PoolClosed, PoolTimeout, TooManyRequests

from .connection import Connection, asyncio_connect, connect
from .cursor import Cursor, ServerCursor
from .pool import ConnectionPool, open_pool
from .waiting import wait_asyncio

__all__ = [
    "__version__",
    "Connection",
    "ConnectionPool",
    "PoolClosed",
    "PoolTimeout",
    "TooManyRequests",
    "Cursor",
    "ServerCursor",
    "asyncio_connect",
    "connect",
    "open_pool",
    "wait_asyncio",
]
