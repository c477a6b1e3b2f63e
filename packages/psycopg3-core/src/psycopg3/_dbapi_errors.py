"""The DB-API exception classes and the server's ``Diagnostic``: the bottom of ``errors``.

Layer: base. Users import these names from ``psycopg3.errors``, which
re-exports them under its own name (their ``__module__`` says
``psycopg3.errors``, for tracebacks and pickles). They live here so that the
generated ``_sqlstate.py`` can subclass them without importing ``errors``,
which imports it: neither module imports the other back.

Must not: import any concurrency framework, or talk to libpq beyond reading
the fields of a result it is handed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pq import PGresult

#: The exceptions PEP 249 asks of a driver: the one list of their names.
#: ``psycopg3``, ``psycopg3.errors`` and ``psycopg3.dbapi20`` (hence
#: ``psycopg3_sync``) start their ``__all__`` from it: ``from ._dbapi_errors
#: import *`` and ``from ._dbapi_errors import __all__ as __all__`` (the form
#: from which mypy, too, learns the names), then ``__all__ += (...)`` for
#: their own names. A tuple, so that ``+=`` makes a new one instead of
#: growing this. ``Diagnostic`` is imported by name where it is re-exported.
__all__: tuple[str, ...] = (
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
)


class Warning(Exception):  # noqa: A001 - the DB-API name
    """An important warning, such as data truncation (DB-API)."""


class Error(Exception):
    """The base of every error psycopg3 raises (DB-API).

    ``sqlstate`` is the server's five-character code when the error came from
    the server; a class generated for one SQLSTATE also carries its code as a
    class attribute, so an instance built by hand has it too; else None.
    ``diag`` gives every field the server sent (all None for an error built
    by hand). Errors pickle with their message and diagnostic fields.
    """

    sqlstate: str | None = None

    def __init__(self, *args: Any, pgresult: PGresult | None = None, encoding: str = "utf-8"):
        super().__init__(*args)
        self.diag = Diagnostic(pgresult, encoding)
        if pgresult is not None:
            self.sqlstate = self.diag.sqlstate

    @property
    def pgerror(self) -> str | None:
        """The server's primary message, as psycopg2 users know it."""
        return self.diag.message_primary


class InterfaceError(Error):
    """An error of the driver itself or of how it was used (DB-API)."""


class DatabaseError(Error):
    """An error related to the database (DB-API)."""


class DataError(DatabaseError):
    """A problem with the data: division by zero, value out of range (DB-API)."""


class OperationalError(DatabaseError):
    """The database's operation failed, often not by the programmer's fault (DB-API)."""


class IntegrityError(DatabaseError):
    """The relational integrity of the database is affected (DB-API)."""


class InternalError(DatabaseError):
    """The database hit an internal error (DB-API)."""


class ProgrammingError(DatabaseError):
    """A programming error: bad SQL, missing table, wrong parameters (DB-API)."""


class NotSupportedError(DatabaseError):
    """A method or database API not supported by the database (DB-API)."""


# The diagnostic fields of libpq's PQresultErrorField, by their one-letter code.
_FIELDS = {
    "severity": ord("S"),
    "severity_nonlocalized": ord("V"),
    "sqlstate": ord("C"),
    "message_primary": ord("M"),
    "message_detail": ord("D"),
    "message_hint": ord("H"),
    "statement_position": ord("P"),
    "internal_position": ord("p"),
    "internal_query": ord("q"),
    "context": ord("W"),
    "schema_name": ord("s"),
    "table_name": ord("t"),
    "column_name": ord("c"),
    "datatype_name": ord("d"),
    "constraint_name": ord("n"),
    "source_file": ord("F"),
    "source_line": ord("L"),
    "source_function": ord("R"),
}


class Diagnostic:
    """The fields of an error or notice reported by the server, as strings.

    Each field is None when the server did not send it (or when the error did
    not come from the server at all). The fields are read when the object is
    built: it keeps no reference to the result, and pickles with its values.
    """

    __slots__ = tuple(_FIELDS)

    severity: str | None
    severity_nonlocalized: str | None
    sqlstate: str | None
    message_primary: str | None
    message_detail: str | None
    message_hint: str | None
    statement_position: str | None
    internal_position: str | None
    internal_query: str | None
    context: str | None
    schema_name: str | None
    table_name: str | None
    column_name: str | None
    datatype_name: str | None
    constraint_name: str | None
    source_file: str | None
    source_line: str | None
    source_function: str | None

    def __init__(self, pgresult: PGresult | None = None, encoding: str = "utf-8"):
        """
        :param pgresult: the failed result (or notice) to read; None for no fields.
        :param encoding: the Python codec of the connection's client encoding.
        """
        for name, code in _FIELDS.items():
            raw = pgresult.error_field(code) if pgresult is not None else None
            setattr(self, name, None if raw is None else raw.decode(encoding, "replace"))

    def __getstate__(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in _FIELDS}

    def __setstate__(self, state: dict[str, str | None]) -> None:
        for name in _FIELDS:
            setattr(self, name, state.get(name))

    def __repr__(self) -> str:
        present = ", ".join(f"{k}={v!r}" for k, v in self.__getstate__().items() if v is not None)
        return f"{type(self).__name__}({present})"
