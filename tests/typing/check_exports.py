"""What mypy must see of the DB-API names re-exported by several modules (``nox -s typecheck``).

Never run: type-checked only. The DB-API exception names are listed once
(``psycopg3._dbapi_errors.__all__``) and re-exported by ``psycopg3``,
``psycopg3.errors``, ``psycopg3.dbapi20`` and ``psycopg3_sync``; the type
objects and constructors by ``psycopg3.dbapi20`` and ``psycopg3_sync``. A
re-export that mypy --strict did not see would fail here as "does not
explicitly export", "has no attribute" or (after the star import) "is not
defined".
"""

# ruff: noqa: F405 - bare names come from the star import below: seeing them is the point.

from __future__ import annotations

import datetime as dt

from typing_extensions import assert_type

import psycopg3
import psycopg3_sync
from psycopg3 import dbapi20, errors
from psycopg3.errors import OperationalError as CoreOperationalError

# What a star import of the DB-API module brings, as mypy sees it.
from psycopg3_sync import *  # noqa: F403


def exceptions() -> None:
    assert_type(OperationalError, type[errors.OperationalError])
    assert_type(CoreOperationalError, type[errors.OperationalError])
    assert_type(psycopg3.Warning, type[errors.Warning])
    assert_type(psycopg3.Error, type[errors.Error])
    assert_type(psycopg3.InterfaceError, type[errors.InterfaceError])
    assert_type(psycopg3.DatabaseError, type[DatabaseError])
    assert_type(psycopg3.DataError, type[errors.DataError])
    assert_type(psycopg3.OperationalError, type[OperationalError])
    assert_type(psycopg3.IntegrityError, type[errors.IntegrityError])
    assert_type(psycopg3.InternalError, type[errors.InternalError])
    assert_type(psycopg3.ProgrammingError, type[errors.ProgrammingError])
    assert_type(psycopg3.NotSupportedError, type[NotSupportedError])
    assert_type(psycopg3_sync.Warning, type[Warning])
    assert_type(psycopg3_sync.Error, type[errors.Error])
    assert_type(psycopg3_sync.InterfaceError, type[errors.InterfaceError])
    assert_type(psycopg3_sync.DataError, type[errors.DataError])
    assert_type(psycopg3_sync.IntegrityError, type[errors.IntegrityError])
    assert_type(psycopg3_sync.InternalError, type[errors.InternalError])
    assert_type(psycopg3_sync.ProgrammingError, type[errors.ProgrammingError])
    assert_type(psycopg3_sync.PoolTimeout, type[errors.PoolTimeout])
    assert_type(errors.Diagnostic(), errors.Diagnostic)


def type_objects_and_constructors() -> None:
    assert_type(psycopg3_sync.STRING, dbapi20.DBAPITypeObject)
    assert_type(psycopg3_sync.BINARY, dbapi20.DBAPITypeObject)
    assert_type(psycopg3_sync.NUMBER, dbapi20.DBAPITypeObject)
    assert_type(psycopg3_sync.DATETIME, dbapi20.DBAPITypeObject)
    assert_type(psycopg3_sync.ROWID, dbapi20.DBAPITypeObject)
    assert_type(psycopg3_sync.Date(2024, 1, 2), dt.date)
    assert_type(psycopg3_sync.Time(1, 2, 3), dt.time)
    assert_type(psycopg3_sync.Timestamp(2024, 1, 2), dt.datetime)
    assert_type(psycopg3_sync.DateFromTicks(0.0), dt.date)
    assert_type(psycopg3_sync.TimeFromTicks(0.0), dt.time)
    assert_type(psycopg3_sync.TimestampFromTicks(0.0), dt.datetime)
    assert_type(psycopg3_sync.Binary(b""), bytes)
    assert_type(dbapi20.OperationalError, type[OperationalError])
