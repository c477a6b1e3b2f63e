"""PEP 249's module names, as the specification lists them: the tests' oracle.

Written here from the PEP, not imported from the code under test, so that a
name dropped from an ``__all__`` fails the tests that check the exports.
"""

from __future__ import annotations

#: PEP 249, "Exceptions", in the order of its hierarchy.
EXCEPTIONS = [
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
]

#: PEP 249, "Type Objects and Constructors".
TYPES = [
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
