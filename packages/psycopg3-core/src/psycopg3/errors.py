"""The DB-API 2.0 exception hierarchy and the mapping from server errors to it.

Must not: import any concurrency framework, or talk to libpq beyond reading
the fields of a result it is handed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pq import PGresult

__all__ = [
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
    "Diagnostic",
    "error_from_result",
    "class_for_sqlstate",
]


class Warning(Exception):  # noqa: A001 - the DB-API name
    """An important warning, such as data truncation (DB-API)."""


class Error(Exception):
    """The base of every error psycopg3 raises (DB-API).

    ``sqlstate`` is the server's five-character code when the error came from
    the server, else None; ``diag`` gives every field the server sent.
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
    not come from the server at all).
    """

    __slots__ = ("_pgresult", "_encoding", "_cache")

    def __init__(self, pgresult: PGresult | None, encoding: str = "utf-8"):
        self._pgresult = pgresult
        self._encoding = encoding
        self._cache: dict[str, str | None] = {}

    def _field(self, name: str) -> str | None:
        if name in self._cache:
            return self._cache[name]
        value: str | None = None
        if self._pgresult is not None:
            raw = self._pgresult.error_field(_FIELDS[name])
            if raw is not None:
                value = raw.decode(self._encoding, "replace")
        self._cache[name] = value
        return value

    def __getattr__(self, name: str) -> str | None:
        if name in _FIELDS:
            return self._field(name)
        raise AttributeError(name)

    def __getstate__(self) -> dict[str, str | None]:
        # A PGresult cannot be pickled: keep the values, drop the result.
        return {name: self._field(name) for name in _FIELDS}

    def __setstate__(self, state: dict[str, str | None]) -> None:
        self._pgresult = None
        self._encoding = "utf-8"
        self._cache = dict(state)


# SQLSTATE classes (the first two characters) to DB-API classes. Codes not
# listed fall back to DatabaseError. Issue 4 refines this into one class per
# SQLSTATE, each a subclass of the class chosen here.
_CLASS_BY_SQLSTATE_CLASS: dict[str, type[Error]] = {
    "0A": NotSupportedError,  # feature not supported
    "08": OperationalError,  # connection exception
    "20": ProgrammingError,  # case not found
    "21": ProgrammingError,  # cardinality violation
    "22": DataError,  # data exception
    "23": IntegrityError,  # integrity constraint violation
    "24": InternalError,  # invalid cursor state
    "25": InternalError,  # invalid transaction state
    "26": InternalError,  # invalid SQL statement name
    "27": OperationalError,  # triggered data change violation
    "28": OperationalError,  # invalid authorization specification
    "2B": InternalError,  # dependent privilege descriptors still exist
    "2D": InternalError,  # invalid transaction termination
    "2F": InternalError,  # SQL routine exception
    "34": ProgrammingError,  # invalid cursor name
    "38": InternalError,  # external routine exception
    "39": InternalError,  # external routine invocation exception
    "3B": InternalError,  # savepoint exception
    "3D": ProgrammingError,  # invalid catalog name
    "3F": ProgrammingError,  # invalid schema name
    "40": OperationalError,  # transaction rollback
    "42": ProgrammingError,  # syntax error or access rule violation
    "44": ProgrammingError,  # WITH CHECK OPTION violation
    "53": OperationalError,  # insufficient resources
    "54": OperationalError,  # program limit exceeded
    "55": OperationalError,  # object not in prerequisite state
    "57": OperationalError,  # operator intervention
    "58": OperationalError,  # system error
    "72": OperationalError,  # snapshot failure
    "F0": InternalError,  # configuration file error
    "HV": OperationalError,  # foreign data wrapper error
    "P0": InternalError,  # PL/pgSQL error
    "XX": InternalError,  # internal error
}


def class_for_sqlstate(sqlstate: str | None) -> type[Error]:
    """Return the DB-API exception class for a SQLSTATE code."""
    if not sqlstate:
        return DatabaseError
    return _CLASS_BY_SQLSTATE_CLASS.get(sqlstate[:2], DatabaseError)


def error_from_result(pgresult: PGresult, encoding: str = "utf-8") -> Error:
    """Build (do not raise) the exception describing a failed result."""
    raw_state = pgresult.error_field(_FIELDS["sqlstate"])
    sqlstate = raw_state.decode("ascii", "replace") if raw_state else None
    message = pgresult.error_message.decode(encoding, "replace").strip()
    # libpq prefixes the severity ("ERROR:  "): the exception class says it.
    severity = pgresult.error_field(_FIELDS["severity"])
    if severity:
        prefix = severity.decode(encoding, "replace") + ":  "
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if not message:
        message = f"the server returned a result with status {pgresult.status!r} and no message"
    cls = class_for_sqlstate(sqlstate)
    return cls(message, pgresult=pgresult, encoding=encoding)
