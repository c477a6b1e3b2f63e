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

from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Buffer, Dumper, DumperKey, Loader, LoadFunction, PyFormat
from . import _datetime_binary as binary
from ._datetime_common import (
    DATE_OID,
    INTERVAL_OID,
    TIME_OID,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    TIMETZ_OID,
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


class DateDumper(Dumper):
    """Dump a date as date (text)."""

    oid = DATE_OID

    def dump(self, obj: Any) -> Buffer:
        return date.isoformat(obj).encode()


class TimeTzDumper(Dumper):
    """Dump an aware time as timetz (text)."""

    oid = TIMETZ_OID

    def dump(self, obj: Any) -> Buffer:
        offset = obj.utcoffset()
        if offset is None or not is_pg_offset(offset):
            raise dump_offset_error(obj)
        return time.isoformat(obj).encode()


class TimeDumper(Dumper):
    """Dump a naive time as time, an aware one as timetz (text)."""

    oid = TIME_OID

    def dump(self, obj: Any) -> Buffer:
        return time.isoformat(obj).encode()

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        return self.cls if obj.tzinfo is None else TimeTzDumper

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        return self if obj.tzinfo is None else TimeTzDumper(self.cls, self.context)


class DatetimeTzDumper(Dumper):
    """Dump an aware datetime as timestamptz (text)."""

    oid = TIMESTAMPTZ_OID

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


class DatetimeDumper(Dumper):
    """Dump a naive datetime as timestamp, an aware one as timestamptz (text)."""

    oid = TIMESTAMP_OID

    def dump(self, obj: Any) -> Buffer:
        return datetime.isoformat(obj, sep=" ").encode()

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        return self.cls if obj.tzinfo is None else DatetimeTzDumper

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        return self if obj.tzinfo is None else DatetimeTzDumper(self.cls, self.context)


class TimedeltaDumper(Dumper):
    """Dump a timedelta as interval (text)."""

    oid = INTERVAL_OID

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


class DateLoader(_TextLoader):
    """Load date in text format (DateStyle ISO)."""

    pgtype, pytype = "date", "datetime.date"

    def load_function(self) -> LoadFunction:
        fromisoformat = date.fromisoformat

        def load(data: bytes) -> Any:
            try:
                return fromisoformat(data.decode())
            except ValueError:
                raise self._error(data) from None

        return load


class TimeLoader(_TextLoader):
    """Load time in text format."""

    pgtype, pytype = "time", "datetime.time"

    def load_function(self) -> LoadFunction:
        fromisoformat = time.fromisoformat

        def load(data: bytes) -> Any:
            text = data.decode()
            try:
                return fromisoformat(text)
            except ValueError:
                value = parse_time(text)
                if value is None:
                    raise self._error(data) from None
                return value

        return load


class TimeTzLoader(TimeLoader):
    """Load timetz in text format as an aware time with a fixed offset."""

    pgtype = "timetz"


class TimestampLoader(_TextLoader):
    """Load timestamp in text format (DateStyle ISO) as a naive datetime."""

    pgtype, pytype = "timestamp", "datetime.datetime"

    def load_function(self) -> LoadFunction:
        fromisoformat = datetime.fromisoformat

        def load(data: bytes) -> Any:
            text = data.decode()
            try:
                return fromisoformat(text)
            except ValueError:
                value = parse_datetime(text)
                if value is None:
                    raise self._error(data) from None
                return value

        return load


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
    binary.register_binary_adapters(adapters)
    adapters.register_dumper(date, DateDumper)
    adapters.register_dumper(time, TimeDumper)
    adapters.register_dumper(datetime, DatetimeDumper)
    adapters.register_dumper(timedelta, TimedeltaDumper)
    adapters.register_loader(DATE_OID, DateLoader)
    adapters.register_loader(TIME_OID, TimeLoader)
    adapters.register_loader(TIMETZ_OID, TimeTzLoader)
    adapters.register_loader(TIMESTAMP_OID, TimestampLoader)
    adapters.register_loader(TIMESTAMPTZ_OID, TimestamptzLoader)
    adapters.register_loader(INTERVAL_OID, IntervalLoader)
