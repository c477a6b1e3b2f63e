"""The type objects, constructors and exceptions that PEP 249 asks a driver module to export.

Must not: do I/O or import any concurrency framework; it only names types.

Rules:

1. A type object compares equal to the ``type_code`` (the OID) of every
   column of its family, from either side (``NUMBER == 23``,
   ``description[0].type_code == NUMBER``): the OIDs are PostgreSQL's
   built-in ones, looked up by name in the built-in types registry so that
   this module holds names, not magic numbers.
2. The families: ``STRING`` (text, varchar, bpchar, name, "char"),
   ``BINARY`` (bytea), ``NUMBER`` (the integers, floats, numeric, money and
   oid), ``DATETIME`` (date, time, timetz, timestamp, timestamptz, interval),
   ``ROWID`` (oid, and tid: the type of the ``ctid`` row address).
   ``oid`` is both a NUMBER and a ROWID, as it is both in PostgreSQL.
3. The ``*FromTicks`` constructors read seconds since the epoch in the local
   time zone and return naive values, as PEP 249's reference
   implementation does (``time.localtime``); pass an aware ``datetime`` to
   `Timestamp`'s caller instead when the zone matters.
4. The constructors return the plain ``datetime`` and ``bytes`` objects that
   the adapters already dump: there is no wrapper type to learn.
5. The exceptions are the DB-API classes of ``psycopg3.errors`` (the same
   objects). ``DBAPITypeObject``, the class of the type objects, is public
   but not in ``__all__``: PEP 249 asks for the type objects, not their class.
"""

from __future__ import annotations

import datetime as _dt

from ._adapt.base import Buffer
from ._adapt.typeinfo import builtin_types
from ._dbapi_errors import *  # noqa: F403 - the exceptions, named in its __all__
from ._dbapi_errors import __all__ as __all__  # the exports start with their names

# With the exceptions, what PEP 249 asks a driver module to export besides
# ``connect`` and the module globals: ``psycopg3_sync`` re-exports it all.
__all__ += (
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
)


class DBAPITypeObject:
    """A family of PostgreSQL types, equal to the OID of any of its members.

    :param name: the family's name (``"NUMBER"``).
    :param type_names: the PostgreSQL names of its types (``"int4"``).
    """

    __slots__ = ("name", "values")

    def __init__(self, name: str, type_names: str):
        types = builtin_types()
        self.name = name
        #: The OIDs of the family's types.
        self.values: frozenset[int] = frozenset(types[t].oid for t in type_names.split())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return other in self.values
        if isinstance(other, DBAPITypeObject):
            return self.values == other.values
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"<DBAPITypeObject {self.name} {sorted(self.values)}>"


STRING = DBAPITypeObject("STRING", "text varchar bpchar name char")
BINARY = DBAPITypeObject("BINARY", "bytea")
NUMBER = DBAPITypeObject("NUMBER", "int2 int4 int8 float4 float8 numeric money oid")
DATETIME = DBAPITypeObject("DATETIME", "date time timetz timestamp timestamptz interval")
ROWID = DBAPITypeObject("ROWID", "oid tid")

#: ``Date(year, month, day)``: a date value.
Date = _dt.date
#: ``Time(hour, minute, second)``: a time of day value.
Time = _dt.time
#: ``Timestamp(year, month, day, hour, minute, second)``: a timestamp value.
Timestamp = _dt.datetime


def DateFromTicks(ticks: float) -> _dt.date:
    """Return the local date of a time given in seconds since the epoch.

    :param ticks: seconds since 1970-01-01 UTC (``time.time()``).
    """
    return _dt.datetime.fromtimestamp(ticks).date()


def TimeFromTicks(ticks: float) -> _dt.time:
    """Return the local time of day of a time given in seconds since the epoch.

    :param ticks: seconds since 1970-01-01 UTC (``time.time()``).
    """
    return _dt.datetime.fromtimestamp(ticks).time()


def TimestampFromTicks(ticks: float) -> _dt.datetime:
    """Return the local (naive) timestamp of a time given in seconds since the epoch.

    :param ticks: seconds since 1970-01-01 UTC (``time.time()``).
    """
    return _dt.datetime.fromtimestamp(ticks)


def Binary(data: Buffer) -> bytes:
    """Return binary data as ``bytes``, which the adapters send as ``bytea``.

    :param data: a bytes-like object (``bytes``, ``bytearray``, ``memoryview``).
    :raises TypeError: if *data* is not bytes-like (a ``str`` must be encoded
        first: its encoding is the caller's choice).
    """
    if isinstance(data, str):
        raise TypeError("Binary() takes bytes-like data, not str: encode the string first")
    return bytes(data)
