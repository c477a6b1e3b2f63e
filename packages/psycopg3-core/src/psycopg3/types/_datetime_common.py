"""What the date/time adapters share: epochs, time zones, parsing fallbacks, errors, a dumper base.

Must not: talk to libpq beyond reading a reported parameter
(``PQparameterStatus``), or import any concurrency framework.

Rules:

1. A value Python cannot hold (``infinity``, a BC date, a year past 9999, the
   time ``24:00:00``) raises `DataError` naming the value and the way out;
   never a wrong value, never a bare ValueError or OverflowError.
2. The session's ``TimeZone`` becomes a ``zoneinfo.ZoneInfo``; a fixed POSIX
   offset (``<+03>-03``, what ``SET TIME ZONE 3`` reports) becomes a fixed
   ``timezone``; a name Python does not know falls back to UTC with a logged
   warning. Loaders convert instants with ``astimezone``/``fromutc``, so the
   fallback changes the zone of the loaded values, never the instant.
3. Intervals: PostgreSQL keeps months apart from days; a ``timedelta`` cannot.
   A month is loaded as 30 days and a year as 12 months (360 days): the rule
   PostgreSQL itself uses to compare intervals (``interval '1 year' =
   interval '360 days'`` is true) and in ``justify_days``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from .. import errors
from .._adapt.base import Dumper, DumperKey, PyFormat
from ._bases import BuiltinDumper

logger = logging.getLogger("psycopg3")

DATE_OID, TIME_OID, TIMETZ_OID = 1082, 1083, 1266
TIMESTAMP_OID, TIMESTAMPTZ_OID, INTERVAL_OID = 1114, 1184, 1186

# PostgreSQL counts days and microseconds from 2000-01-01 (UTC for timestamptz).
PG_EPOCH_ORDINAL = date(2000, 1, 1).toordinal()
PG_EPOCH = datetime(2000, 1, 1)
PG_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=timezone.utc)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# PostgreSQL accepts zone offsets strictly within 16 hours (TZDISP_LIMIT).
MAX_PG_OFFSET = timedelta(hours=16)
DAYS_PER_MONTH, MONTHS_PER_YEAR = 30, 12
USEC_PER_DAY = 86_400_000_000

# Time zones


_zones: dict[bytes | None, tzinfo] = {}
_POSIX_FIXED = re.compile(r"(?:[A-Za-z]{3,}|<[^>]+>)([-+]?)(\d{1,2})(?::(\d\d))?(?::(\d\d))?")


def session_timezone(pgconn: Any, default: tzinfo = timezone.utc) -> tzinfo:
    """Return the tzinfo of a connection's ``TimeZone`` (UTC without a connection).

    :param default: what to return if the connection is closed (results
        outlive their connection).
    """
    name: bytes | None = None
    if pgconn is not None:
        try:
            name = pgconn.parameter_status(b"TimeZone")
        except errors.OperationalError:
            return default
    try:
        return _zones[name]
    except KeyError:
        zone = _zones[name] = _make_timezone(name)
        return zone


def _make_timezone(name: bytes | None) -> tzinfo:
    if name is None:
        return timezone.utc
    sname = name.decode("utf-8", "replace")
    try:
        return ZoneInfo(sname)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        pass
    m = _POSIX_FIXED.fullmatch(sname)
    if m is not None:
        sign, hh, mm, ss = m.groups()
        # POSIX offsets count west of Greenwich as positive: UTC+3 is "<+03>-03".
        west = timedelta(hours=int(hh), minutes=int(mm or 0), seconds=int(ss or 0))
        offset = west if sign == "-" else -west
        if abs(offset) < timedelta(hours=24):
            return timezone(offset)
    logger.warning(
        "the session TimeZone %r is unknown to Python: timestamptz values are loaded in UTC",
        sname,
    )
    return timezone.utc


# The names of UTC in the tz database: zones whose offset is always zero.
_UTC_NAMES = frozenset(
    "UTC UCT Universal Zulu GMT GMT0 GMT+0 GMT-0 Greenwich".split()
    + "Etc/UTC Etc/UCT Etc/Universal Etc/Zulu Etc/GMT Etc/GMT0 Etc/GMT+0 Etc/GMT-0".split()
    + ["Etc/Greenwich"]
)


def fixed_offset(zone: tzinfo) -> timedelta | None:
    """Return the offset of a zone that never changes it (UTC, fixed offsets), else None."""
    if isinstance(zone, timezone):
        return zone.utcoffset(None)
    if isinstance(zone, ZoneInfo) and zone.key in _UTC_NAMES:
        return timedelta(0)
    return None


_T = TypeVar("_T")

# Parsing PostgreSQL's ISO output where ``fromisoformat`` refuses it (Python 3.10
# wants 3 or 6 fraction digits and "+HH:MM" offsets), and diagnosing failures.

_TIME = r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
_OFFSET = r"(?:([-+])(\d\d)(?::(\d\d))?(?::(\d\d))?)?"
_DATETIME_RE = re.compile(rf"(\d{{4}})-(\d\d)-(\d\d)[ T]{_TIME}{_OFFSET}")
_TIME_RE = re.compile(rf"{_TIME}{_OFFSET}")


def _offset(groups: tuple[str | None, ...]) -> timezone | None:
    sign, hh, mm, ss = groups
    if sign is None:
        return None
    delta = timedelta(hours=int(hh or 0), minutes=int(mm or 0), seconds=int(ss or 0))
    return timezone(-delta if sign == "-" else delta)


def _usec(fraction: str | None) -> int:
    return int(fraction.ljust(6, "0")) if fraction else 0


def _parse(pattern: re.Pattern[str], text: str, make: Callable[..., _T]) -> _T | None:
    # The groups: integers, then the fraction of a second and the 4 of the offset.
    m = pattern.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    nints = len(g) - 5
    try:
        return make(*(int(x) for x in g[:nints]), _usec(g[nints]), _offset(g[nints + 1 :]))
    except ValueError:
        return None


def parse_datetime(text: str) -> datetime | None:
    """Parse an ISO timestamp the way PostgreSQL writes it; None if it is not one."""
    return _parse(_DATETIME_RE, text, datetime)


def parse_time(text: str) -> time | None:
    """Parse an ISO time or timetz the way PostgreSQL writes it; None if it is not one."""
    return _parse(_TIME_RE, text, time)


def load_error(pgtype: str, pytype: str, value: Any, pgconn: Any = None) -> errors.DataError:
    """Return the DataError of a value that cannot be loaded as *pytype*.

    :param pgtype: the PostgreSQL type name (``"timestamptz"``).
    :param pytype: the Python type name (``"datetime.datetime"``).
    :param value: the raw text (bytes), or a description of a binary value
        (quoted if it is PostgreSQL's spelling, e.g. ``"'infinity'"``).
    :param pgconn: the connection, to read the ``DateStyle`` when text is unreadable.
    """
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        shown = f"'{text}'"
    else:
        text = shown = str(value)
    way_out = "cast it to text in the query, or filter it out"
    cannot = f"{pgtype} {shown} cannot be represented by Python's {pytype}"
    if "infinity" in text or "BC" in text or "9999" in text or re.match(r"-?\d{5,}-", text):
        return errors.DataError(f"{cannot}: {way_out}")
    if "24:00:00" in text:
        return errors.DataError(f"{cannot} (hours 0..23): {way_out}")
    datestyle = pgconn.parameter_status(b"DateStyle") if pgconn is not None else None
    if datestyle is not None and not datestyle.startswith(b"ISO"):
        return errors.DataError(
            f"cannot parse {pgtype} {shown}: the session's DateStyle is"
            f" {datestyle.decode()!r}; run SET DateStyle TO ISO (or use binary results)"
        )
    return errors.DataError(f"{cannot}: {way_out}")


def dump_offset_error(obj: Any) -> errors.DataError:
    """Return the DataError of a zone offset PostgreSQL cannot hold."""
    return errors.DataError(
        f"the UTC offset of {obj!r} ({obj.utcoffset()}) cannot be represented by"
        " PostgreSQL: offsets must be whole seconds within 16 hours"
    )


def is_pg_offset(offset: timedelta) -> bool:
    """Tell if PostgreSQL accepts a zone offset as it is (whole seconds, within 16 hours)."""
    return not offset.microseconds and -MAX_PG_OFFSET < offset < MAX_PG_OFFSET


# Intervals (IntervalStyle ``postgres``, the default)

_INTERVAL_RE = re.compile(
    r"(?:([-+]?\d+) years? ?)?(?:([-+]?\d+) mons? ?)?(?:([-+]?\d+) days? ?)?"
    r"(?:([-+])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
)


def interval_to_timedelta(months: int, days: int, usecs: int, source: Any) -> timedelta:
    """Return the timedelta of an interval's three fields (a month is 30 days).

    :raises DataError: if the result is beyond ``timedelta``'s range.
    """
    total_days = days + DAYS_PER_MONTH * months
    try:
        return timedelta(days=total_days, microseconds=usecs)
    except OverflowError:
        raise errors.DataError(
            f"interval {source} cannot be represented by Python's datetime.timedelta"
            " (at most 999999999 days): cast it to text in the query, or filter it out"
        ) from None


def parse_interval(data: bytes, pgconn: Any = None) -> timedelta:
    """Return the timedelta of an interval in PostgreSQL's default text style.

    :raises DataError: if the text is not in that style, or is out of range.
    """
    text = data.decode()
    m = _INTERVAL_RE.fullmatch(text)
    if m is None or not text:
        style = pgconn.parameter_status(b"IntervalStyle") if pgconn is not None else None
        if text in ("infinity", "-infinity"):
            msg = "cannot be represented by Python's datetime.timedelta: cast it to text"
        elif style is not None and style != b"postgres":
            msg = (
                f"cannot be parsed: the session's IntervalStyle is {style.decode()!r};"
                " run SET IntervalStyle TO postgres (or use binary results)"
            )
        else:
            msg = "cannot be parsed as PostgreSQL's interval output"
        raise errors.DataError(f"interval '{text}' {msg}")
    years, months, days, sign, hh, mm, ss, frac = m.groups()
    usecs = ((int(hh or 0) * 60 + int(mm or 0)) * 60 + int(ss or 0)) * 1_000_000 + _usec(frac)
    if sign == "-":
        usecs = -usecs
    total_months = int(months or 0) + MONTHS_PER_YEAR * int(years or 0)
    return interval_to_timedelta(total_months, int(days or 0), usecs, f"'{text}'")


class NaiveOrAwareDumper(BuiltinDumper):
    """A dumper of naive times or datetimes handing aware ones to another (``aware=``)."""

    def __init_subclass__(cls, *, aware: type[Dumper] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if aware is None:
            return

        # Called for every value: the class is a default value, read as fast as
        # a global (a closure or a class attribute is slower). Never passed.
        def get_key(
            self: Dumper, obj: Any, format: PyFormat, _aware: type[Dumper] = aware
        ) -> DumperKey:
            return self.cls if obj.tzinfo is None else _aware

        def upgrade(self: Dumper, obj: Any, format: PyFormat) -> Dumper:
            return self if obj.tzinfo is None else aware(self.cls, self.context)

        # On the class itself, beside its own dump(): a dump() below the
        # class giving upgrade() reads as a user's override (_adapt.base, rule 5).
        cls.get_key = get_key  # type: ignore[method-assign]
        cls.upgrade = upgrade  # type: ignore[method-assign]
