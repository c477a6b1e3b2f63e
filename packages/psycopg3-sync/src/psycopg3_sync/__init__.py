"""psycopg3 for blocking code: a DB-API 2.0 module on psycopg3's core."""

from __future__ import annotations

from psycopg3 import __version__, errors
from psycopg3.dbapi20 import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from psycopg3.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PoolClosed,
    PoolTimeout,
    ProgrammingError,
    TooManyRequests,
    Warning,
)

from .connection import Connection, connect
from .cursor import Cursor, ServerCursor
from .pool import ConnectionPool, open_pool
from .waiting import wait_select

#: DB-API 2.0 module globals.
apilevel = "2.0"
#: Threads may share the module and connections (operations are serialised).
threadsafety = 2
paramstyle = "pyformat"

__all__ = [
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
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "PoolTimeout",
    "PoolClosed",
    "TooManyRequests",
    "STRING",
    "BINARY",
    "NUMBER",
    "DATETIME",
    "ROWID",
    "Date",
    "Time",
    "Timestamp",
    "DateFromTicks",
    "TimeFromTicks",
    "TimestampFromTicks",
    "Binary",
]
