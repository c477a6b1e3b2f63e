"""Binary adapters of dates, times, timestamps and intervals.

Must not: talk to libpq (beyond reading the reported ``TimeZone``) or import
any concurrency framework.

The formats (``date_send``, ``time_send``, ``timetz_send``, ``timestamp_send``,
``interval_send``), all big-endian:

- date: int32 days since 2000-01-01; ``infinity``/``-infinity`` are the int32
  maximum/minimum;
- time: int64 microseconds since midnight (``24:00:00`` is allowed);
- timetz: the time's int64, then the int32 zone offset in seconds, counted
  west of Greenwich as positive (UTC+1 is -3600);
- timestamp and timestamptz: int64 microseconds since 2000-01-01 00:00 (UTC
  for timestamptz); the int64 maximum/minimum are ``±infinity``;
- interval: int64 microseconds, int32 days, int32 months.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from .. import errors
from .._adapt.base import Buffer, LoadFunction
from ..pq import Format
from ._bases import BuiltinDumper, BuiltinLoader
from ._datetime_common import (
    DATE_OID,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    INTERVAL_OID,
    PG_EPOCH,
    PG_EPOCH_ORDINAL,
    PG_EPOCH_UTC,
    TIME_OID,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    TIMETZ_OID,
    USEC_PER_DAY,
    NaiveOrAwareDumper,
    dump_offset_error,
    fixed_offset,
    interval_to_timedelta,
    is_pg_offset,
    load_error,
    session_timezone,
)

_int4 = struct.Struct("!i")
_int8 = struct.Struct("!q")
_timetz = struct.Struct("!qi")
_interval = struct.Struct("!qii")
_BINARY = Format.BINARY


def _time_usecs(obj: time) -> int:
    return ((obj.hour * 60 + obj.minute) * 60 + obj.second) * 1_000_000 + obj.microsecond


def _delta_usecs(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Dumpers


class DateBinaryDumper(BuiltinDumper, oid=DATE_OID, format=_BINARY):
    """Dump a date as date (binary)."""

    def dump(self, obj: Any) -> Buffer:
        return _int4.pack(obj.toordinal() - PG_EPOCH_ORDINAL)


class TimeTzBinaryDumper(BuiltinDumper, oid=TIMETZ_OID, format=_BINARY):
    """Dump an aware time as timetz (binary)."""

    def dump(self, obj: Any) -> Buffer:
        offset = obj.utcoffset()
        if offset is None or not is_pg_offset(offset):
            raise dump_offset_error(obj)
        return _timetz.pack(_time_usecs(obj), -(offset.days * 86_400 + offset.seconds))


class TimeBinaryDumper(NaiveOrAwareDumper, oid=TIME_OID, format=_BINARY, aware=TimeTzBinaryDumper):
    """Dump a naive time as time, an aware one as timetz (binary)."""

    def dump(self, obj: Any) -> Buffer:
        return _int8.pack(_time_usecs(obj))


class DatetimeTzBinaryDumper(BuiltinDumper, oid=TIMESTAMPTZ_OID, format=_BINARY):
    """Dump an aware datetime as timestamptz (binary)."""

    def dump(self, obj: Any) -> Buffer:
        if obj.utcoffset() is None:
            raise dump_offset_error(obj)
        return _int8.pack(_delta_usecs(obj - PG_EPOCH_UTC))


class DatetimeBinaryDumper(
    NaiveOrAwareDumper, oid=TIMESTAMP_OID, format=_BINARY, aware=DatetimeTzBinaryDumper
):
    """Dump a naive datetime as timestamp, an aware one as timestamptz (binary)."""

    def dump(self, obj: Any) -> Buffer:
        return _int8.pack(_delta_usecs(obj - PG_EPOCH))


class TimedeltaBinaryDumper(BuiltinDumper, oid=INTERVAL_OID, format=_BINARY):
    """Dump a timedelta as interval (binary; no months)."""

    def dump(self, obj: Any) -> Buffer:
        # Every timedelta fits: its days (at most 999999999) are within int32.
        return _interval.pack(obj.seconds * 1_000_000 + obj.microseconds, obj.days, 0)


# Loaders


def _out_of_range(value: int, maximum: int, minimum: int, unit: str) -> str:
    """Describe a binary value Python cannot hold, for `load_error()`."""
    if value == maximum:
        return "'infinity'"
    if value == minimum:
        return "'-infinity'"
    where = "BC" if value < 0 else "after year 9999"
    return f"{value} {unit} from 2000-01-01 ({where})"


class DateBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load date in binary format."""

    def load(self, data: Buffer) -> Any:
        days = _int4.unpack(data)[0]
        try:
            return date.fromordinal(days + PG_EPOCH_ORDINAL)
        except (ValueError, OverflowError):
            desc = _out_of_range(days, INT32_MAX, INT32_MIN, "days")
            raise load_error("date", "datetime.date", desc) from None


class TimeBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load time in binary format."""

    def load(self, data: Buffer) -> Any:
        return _usecs_to_time(_int8.unpack(data)[0], None)


def _usecs_to_time(usecs: int, tz: tzinfo | None) -> time:
    if not 0 <= usecs < USEC_PER_DAY:
        shown = "'24:00:00'" if usecs == USEC_PER_DAY else f"{usecs} microseconds"
        raise load_error("time", "datetime.time", shown)
    seconds, usec = divmod(usecs, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, usec, tz)


class TimeTzBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load timetz in binary format as an aware time with a fixed offset."""

    def load(self, data: Buffer) -> Any:
        usecs, west = _timetz.unpack(data)
        return _usecs_to_time(usecs, timezone(timedelta(seconds=-west)))


class TimestampBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load timestamp in binary format as a naive datetime."""

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))

    def load_function(self) -> LoadFunction:
        unpack, epoch = _int8.unpack, PG_EPOCH

        def load(data: bytes) -> Any:
            usecs = unpack(data)[0]
            try:
                return epoch + timedelta(0, 0, usecs)  # positional: faster
            except OverflowError:
                desc = _out_of_range(usecs, INT64_MAX, INT64_MIN, "microseconds")
                raise load_error("timestamp", "datetime.datetime", desc) from None

        return load


class TimestamptzBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load timestamptz in binary format as an aware datetime in the session's TimeZone."""

    def __init__(self, oid: int, context: Any = None):
        super().__init__(oid, context)
        self._pgconn = getattr(context, "pgconn", None)
        self.timezone: tzinfo = timezone.utc
        self.refresh()

    def refresh(self) -> None:
        """Read the session's TimeZone again (called for every result)."""
        self.timezone = tz = session_timezone(self._pgconn, self.timezone)
        offset = fixed_offset(tz)
        if offset is None:
            # 2000-01-01 00:00 *as UTC wall time*, labelled with the zone: what fromutc() wants.
            self._epoch = PG_EPOCH.replace(tzinfo=tz)
            self._fromutc: Callable[[datetime], datetime] | None = tz.fromutc
        else:
            # A zone that never changes its offset (UTC, by default): the local
            # epoch plus the microseconds is the answer, no conversion needed.
            self._epoch = (PG_EPOCH + offset).replace(tzinfo=tz)
            self._fromutc = None

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))

    def load_function(self) -> LoadFunction:
        unpack = _int8.unpack

        def load(data: bytes) -> Any:
            usecs = unpack(data)[0]
            try:
                value = self._epoch + timedelta(0, 0, usecs)
                fromutc = self._fromutc
                return value if fromutc is None else fromutc(value)
            except (OverflowError, ValueError):
                raise self._error(usecs) from None

        return load

    def _error(self, usecs: int) -> errors.DataError:
        try:
            utc = PG_EPOCH_UTC + timedelta(microseconds=usecs)
        except OverflowError:
            desc = _out_of_range(usecs, INT64_MAX, INT64_MIN, "microseconds")
            return load_error("timestamptz", "datetime.datetime", desc)
        return errors.DataError(
            f"timestamptz '{utc}' cannot be represented by Python's datetime.datetime"
            f" in the time zone {self.timezone}: cast it to text in the query,"
            " or filter it out"
        )


class IntervalBinaryLoader(BuiltinLoader, format=_BINARY):
    """Load interval in binary format as a timedelta (a month is 30 days)."""

    def load(self, data: Buffer) -> Any:
        usecs, days, months = _interval.unpack(data)
        if usecs in (INT64_MAX, INT64_MIN) and days in (INT32_MAX, INT32_MIN):
            # PostgreSQL 17's infinite intervals.
            value = "'infinity'" if usecs > 0 else "'-infinity'"
            raise load_error("interval", "datetime.timedelta", value)
        source = f"{months} months {days} days {usecs} microseconds"
        return interval_to_timedelta(months, days, usecs, source)
