"""psycopg3 for trio: native, cancellation-safe connections on psycopg3's core."""

from __future__ import annotations

from psycopg3 import __version__

from .connection import Connection, connect, trio_connect
from .cursor import Cursor, ServerCursor
from .waiting import wait_trio

__all__ = [
    "__version__",
    "Connection",
    "Cursor",
    "ServerCursor",
    "connect",
    "trio_connect",
    "wait_trio",
]
