"""psycopg3 for asyncio: async connections and cursors on psycopg3's core."""

from __future__ import annotations

from psycopg3 import __version__

from .connection import Connection, asyncio_connect, connect
from .cursor import Cursor, ServerCursor
from .waiting import wait_asyncio

__all__ = [
    "__version__",
    "Connection",
    "Cursor",
    "ServerCursor",
    "asyncio_connect",
    "connect",
    "wait_asyncio",
]
