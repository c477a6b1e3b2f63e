"""Adapters of dates, times, timestamps and intervals (text format; binary in ``_datetime_binary``).

Must not: talk to libpq (beyond reading reported parameters such as
``TimeZone``) or import any concurrency framework.

Rules:

1. Types by value: ``date`` is date; a naive ``time`` is time, an aware one
   timetz; a naive ``datetime`` is timestamp, an aware one timestamptz;
   ``timedelta`` is interval. A ``time`` or ``datetime`` whose tzinfo gives
   no fixed offset (``utcoffset()`` is None) raises DataError rather than
   losing its zone.
2. Text results are parsed as PostgreSQL's ``DateStyle`` ISO writes them
   (the default): ``fromisoformat`` first, a regular expression where it
   refuses (older Pythons), then a DataError that says what is wrong (a value
   out of Python's range, or another DateStyle: ``SET DateStyle TO ISO``).
3. timestamptz values load as aware datetimes in the session's ``TimeZone``;
   the zone is read again for every result (``refresh()``, called by the
   transformer), so ``SET TIME ZONE`` applies to the next query.
4. Intervals: a month counts 30 days (see ``_datetime_common``); interval
   text is read in the default IntervalStyle ``postgres`` only. A timedelta
   is written as ``<days> days +<seconds>.<micro> seconds``: the explicit
   second sign keeps IntervalStyle ``sql_standard`` from applying a leading
   minus to every field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Buffer, Loader, LoadFunction
from . import _datetime_binary as binary
from ._bases import BuiltinDumper, register_dumpers, register_loaders
from ._datetime_common import (
    DATE_OID,
    INTERVAL_OID,
    TIME_OID,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    TIMETZ_OID,
    NaiveOrAwareDumper,
    dump_offset_error,
    is_pg_offset,
    load_error,
    parse_datetime,
    parse_interval,
    parse_time,
    session_timezone,
)

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

_UTC = timezone.utc

# Dumpers


class DateDumper(BuiltinDumper, oid=DATE_OID):
    """Dump a date as date (text)."""

    def dump(self, obj: Any) -> Buffer:
        return date.isoformat(obj).encode()


class TimeTzDumper(BuiltinDumper, oid=TIMETZ_OID):
    """Dump an aware time as timetz (text)."""

    def dump(self, obj: Any) -> Buffer:
        offset = obj.utcoffset()
        if offset is None or not is_pg_offset(offset):
            raise dump_offset_error(obj)
        return time.isoformat(obj).encode()


class TimeDumper(NaiveOrAwareDumper, oid=TIME_OID, aware=TimeTzDumper):
    """Dump a naive time as time, an aware one as timetz (text)."""

    def dump(self, obj: Any) -> Buffer:
        return time.isoformat(obj).encode()


class DatetimeTzDumper(BuiltinDumper, oid=TIMESTAMPTZ_OID):
    """Dump an aware datetime as timestamptz (text)."""

    def dump(self, obj: Any) -> Buffer:
        offset = obj.utcoffset()
        if offset is None:
            raise dump_offset_error(obj)
        if not is_pg_offset(offset):
            # PostgreSQL would refuse the offset: the same instant in UTC is fine.
            try:
                obj = obj.astimezone(_UTC)
            except OverflowError:
                raise dump_offset_error(obj) from None
        return datetime.isoformat(obj, sep=" ").encode()


class DatetimeDumper(NaiveOrAwareDumper, oid=TIMESTAMP_OID, aware=DatetimeTzDumper):
    """Dump a naive datetime as timestamp, an aware one as timestamptz (text)."""

    def dump(self, obj: Any) -> Buffer:
        return datetime.isoformat(obj, sep=" ").encode()


class TimedeltaDumper(BuiltinDumper, oid=INTERVAL_OID):
    """Dump a timedelta as interval (text)."""

    def dump(self, obj: Any) -> Buffer:
        # Every timedelta fits: its days (at most 999999999) are within int32.
        return f"{obj.days} days +{obj.seconds}.{obj.microseconds:06d} seconds".encode()


# Loaders


class _TextLoader(Loader):
    """Base of the text loaders: `load_function()` builds the per-value function."""

    pgtype = ""
    pytype = ""

    def __init__(self, oid: int, context: Any = None):
        super().__init__(oid, context)
        self._pgconn = getattr(context, "pgconn", None)

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))

    def _error(self, data: bytes) -> errors.DataError:
        return load_error(self.pgtype, self.pytype, data, self._pgconn)


class _IsoLoader(_TextLoader):
    # Tries fromisoformat(), then a parser of PostgreSQL's ISO output for what
    # it refuses (None: neither can read the value).
    fromisoformat: Callable[[str], Any]
    parse: Callable[[str], Any] | None = None

    def load_function(self) -> LoadFunction:
        fromisoformat = self.fromisoformat

        def load(data: bytes) -> Any:
            try:
                return fromisoformat(data.decode())
            except ValueError:
                parse = self.parse  # read here: one closure variable fewer per call
                value = None if parse is None else parse(data.decode())
                if value is None:
                    raise self._error(data) from None
                return value

        return load


class DateLoader(_IsoLoader):
    """Load date in text format (DateStyle ISO)."""

    pgtype, pytype = "date", "datetime.date"
    fromisoformat = staticmethod(date.fromisoformat)


class TimeLoader(_IsoLoader):
    """Load time in text format."""

    pgtype, pytype = "time", "datetime.time"
    fromisoformat, parse = staticmethod(time.fromisoformat), staticmethod(parse_time)


class TimeTzLoader(TimeLoader):
    """Load timetz in text format as an aware time with a fixed offset."""

    pgtype = "timetz"


class TimestampLoader(_IsoLoader):
    """Load timestamp in text format (DateStyle ISO) as a naive datetime."""

    pgtype, pytype = "timestamp", "datetime.datetime"
    fromisoformat, parse = staticmethod(datetime.fromisoformat), staticmethod(parse_datetime)


class TimestamptzLoader(_TextLoader):
    """Load timestamptz in text format as an aware datetime in the session's TimeZone."""

    pgtype, pytype = "timestamptz", "datetime.datetime"

    def __init__(self, oid: int, context: Any = None):
        super().__init__(oid, context)
        self.timezone = session_timezone(self._pgconn)

    def refresh(self) -> None:
        """Read the session's TimeZone again (called for every result)."""
        self.timezone = session_timezone(self._pgconn, self.timezone)

    def load_function(self) -> LoadFunction:
        fromisoformat = datetime.fromisoformat

        def load(data: bytes) -> Any:
            try:
                return fromisoformat(data.decode()).astimezone(self.timezone)
            except (ValueError, OverflowError):
                return self._load_slowly(data)

        return load

    def _load_slowly(self, data: bytes) -> datetime:
        value = parse_datetime(data.decode())
        if value is None or value.tzinfo is None:
            raise self._error(data)
        try:
            return value.astimezone(self.timezone)
        except OverflowError:
            # astimezone() goes through UTC, which may be out of range near
            # year 1 or 9999 even when the value already is in the session's zone.
            local = value.replace(tzinfo=self.timezone)
            if local.utcoffset() == value.utcoffset():
                return local
            raise errors.DataError(
                f"timestamptz '{data.decode()}' cannot be represented by Python's"
                f" datetime.datetime in the time zone {self.timezone}: cast it to text"
                " in the query, or filter it out"
            ) from None


class IntervalLoader(_TextLoader):
    """Load interval in text format (IntervalStyle postgres) as a timedelta."""

    pgtype, pytype = "interval", "datetime.timedelta"

    def load_function(self) -> LoadFunction:
        pgconn = self._pgconn

        def load(data: bytes) -> Any:
            return parse_interval(data, pgconn)

        return load


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install the date/time dumpers and loaders on *adapters* (text is the ``%s`` choice)."""
    register_dumpers(
        adapters,
        [
            (date, binary.DateBinaryDumper, DateDumper),
            (time, binary.TimeBinaryDumper, TimeDumper),
            (datetime, binary.DatetimeBinaryDumper, DatetimeDumper),
            (timedelta, binary.TimedeltaBinaryDumper, TimedeltaDumper),
        ],
    )
    register_loaders(
        adapters,
        [
            (DATE_OID, DateLoader, binary.DateBinaryLoader),
            (TIME_OID, TimeLoader, binary.TimeBinaryLoader),
            (TIMETZ_OID, TimeTzLoader, binary.TimeTzBinaryLoader),
            (TIMESTAMP_OID, TimestampLoader, binary.TimestampBinaryLoader),
            (TIMESTAMPTZ_OID, TimestamptzLoader, binary.TimestamptzBinaryLoader),
            (INTERVAL_OID, IntervalLoader, binary.IntervalBinaryLoader),
        ],
    )
