"""The enumerations of libpq, with the values its header gives them.

Must not: import anything of psycopg3, or hold anything but constants.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

__all__ = [
    "ConnStatus",
    "PollingStatus",
    "TransactionStatus",
    "ExecStatus",
    "PipelineStatus",
    "Ping",
    "Format",
    "DiagnosticField",
]


class ConnStatus(IntEnum):
    """The state of a connection (libpq's ``ConnStatusType``)."""

    OK = 0
    BAD = 1
    STARTED = 2
    MADE = 3
    AWAITING_RESPONSE = 4
    AUTH_OK = 5
    SETENV = 6
    SSL_STARTUP = 7
    NEEDED = 8
    CHECK_WRITABLE = 9
    CONSUME = 10
    GSS_STARTUP = 11
    CHECK_TARGET = 12
    CHECK_STANDBY = 13
    # Added by libpq 17 (for cancel connections not yet started); listed so
    # that a newer libpq never produces a value this enum cannot convert.
    ALLOCATED = 14


class PollingStatus(IntEnum):
    """What ``PQconnectPoll`` asks for next (``PostgresPollingStatusType``)."""

    FAILED = 0
    READING = 1
    WRITING = 2
    OK = 3
    ACTIVE = 4


class TransactionStatus(IntEnum):
    """The transaction state of the session (``PGTransactionStatusType``)."""

    IDLE = 0
    ACTIVE = 1
    INTRANS = 2
    INERROR = 3
    UNKNOWN = 4


class ExecStatus(IntEnum):
    """The status of a result (libpq's ``ExecStatusType``)."""

    EMPTY_QUERY = 0
    COMMAND_OK = 1
    TUPLES_OK = 2
    COPY_OUT = 3
    COPY_IN = 4
    BAD_RESPONSE = 5
    NONFATAL_ERROR = 6
    FATAL_ERROR = 7
    COPY_BOTH = 8
    SINGLE_TUPLE = 9
    PIPELINE_SYNC = 10
    PIPELINE_ABORTED = 11
    # Added by libpq 17 (chunked rows mode); never produced by libpq 15.
    TUPLES_CHUNK = 12


class PipelineStatus(IntEnum):
    """Whether the connection is in pipeline mode (``PGpipelineStatus``)."""

    OFF = 0
    ON = 1
    ABORTED = 2


class Ping(IntEnum):
    """The answer of ``PQping`` (``PGPing``)."""

    OK = 0
    REJECT = 1
    NO_RESPONSE = 2
    NO_ATTEMPT = 3


class Format(IntEnum):
    """The format of a parameter or of a result column."""

    TEXT = 0
    BINARY = 1


class DiagnosticField(IntEnum):
    """The field codes accepted by ``PQresultErrorField``."""

    SEVERITY = ord("S")
    SEVERITY_NONLOCALIZED = ord("V")
    SQLSTATE = ord("C")
    MESSAGE_PRIMARY = ord("M")
    MESSAGE_DETAIL = ord("D")
    MESSAGE_HINT = ord("H")
    STATEMENT_POSITION = ord("P")
    INTERNAL_POSITION = ord("p")
    INTERNAL_QUERY = ord("q")
    CONTEXT = ord("W")
    SCHEMA_NAME = ord("s")
    TABLE_NAME = ord("t")
    COLUMN_NAME = ord("c")
    DATATYPE_NAME = ord("d")
    CONSTRAINT_NAME = ord("n")
    SOURCE_FILE = ord("F")
    SOURCE_LINE = ord("L")
    SOURCE_FUNCTION = ord("R")


E = TypeVar("E", bound=IntEnum)


def member_lookup(enum: type[E]) -> Callable[[int], E]:
    """Return a fast ``int -> member`` conversion for ``enum``.

    ``Enum.__call__`` costs microseconds; the status of every connection and
    result is read several times per query, so the hot paths use a dict.
    """
    members: dict[int, E] = dict(enum._value2member_map_)

    def lookup(value: int) -> E:
        try:
            return members[value]
        except KeyError:
            return enum(value)

    return lookup


conn_status = member_lookup(ConnStatus)
transaction_status = member_lookup(TransactionStatus)
polling_status = member_lookup(PollingStatus)
exec_status = member_lookup(ExecStatus)
pipeline_status = member_lookup(PipelineStatus)
format_lookup = member_lookup(Format)
