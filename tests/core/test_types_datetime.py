"""Tests of the date/time adapters: date, time, timetz, timestamp, timestamptz, interval."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import PyFormat, Transformer
from psycopg3.pq import Format, PGconn
from psycopg3.types import _datetime_common as common

UTC = timezone.utc
ROME = ZoneInfo("Europe/Rome")
HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class NoOffset(tzinfo):
    """A tzinfo that knows no offset: its datetimes are naive for Python."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None


def tz(hours: int = 0, minutes: int = 0, seconds: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes, seconds=seconds))


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _reset_settings(conn: psycopg3_sync.Connection) -> Iterator[None]:
    conn.execute("reset all")
    conn.execute("set time zone 'Etc/UTC'")  # whatever the cluster's default
    yield
    conn.execute("reset all")


def one(conn: psycopg3_sync.Connection, query: str, params: Any = (), binary: bool = False) -> Any:
    cur = conn.execute(query, params, binary=binary)
    row = cur.fetchone()
    assert row is not None
    return row[0]


def dump(obj: Any, fmt: PyFormat = PyFormat.AUTO) -> tuple[bytes | None, int, Format]:
    tx = Transformer()
    tx.dump_sequence([obj], [fmt])
    return tx.values[0], tx.types[0], tx.formats[0]


# Dumpers' output, without a server

T, B = PyFormat.TEXT, PyFormat.BINARY


@pytest.mark.parametrize(
    "obj, fmt, expected",
    [
        (date(2020, 1, 2), T, (b"2020-01-02", 1082, Format.TEXT)),
        (date(99, 1, 2), T, (b"0099-01-02", 1082, Format.TEXT)),
        (date(2000, 1, 2), B, (struct.pack("!i", 1), 1082, Format.BINARY)),
        (date(1999, 12, 31), B, (struct.pack("!i", -1), 1082, Format.BINARY)),
        (time(1, 2, 3, 4), T, (b"01:02:03.000004", 1083, Format.TEXT)),
        (time(0, 0, 1), B, (struct.pack("!q", 1_000_000), 1083, Format.BINARY)),
        (time(1, 2, tzinfo=tz(5, 30)), T, (b"01:02:00+05:30", 1266, Format.TEXT)),
        # timetz's zone counts west of Greenwich as positive.
        (time(0, 0, tzinfo=tz(1)), B, (struct.pack("!qi", 0, -3600), 1266, Format.BINARY)),
        (datetime(2020, 1, 2, 3, 4, 5, 6), T, (b"2020-01-02 03:04:05.000006", 1114, Format.TEXT)),
        (datetime(2000, 1, 1, 0, 0, 1), B, (struct.pack("!q", 10**6), 1114, Format.BINARY)),
        (datetime(2020, 1, 2, tzinfo=tz(-8)), T, (b"2020-01-02 00:00:00-08:00", 1184, Format.TEXT)),
        (datetime(2000, 1, 1, 1, tzinfo=tz(1)), B, (struct.pack("!q", 0), 1184, Format.BINARY)),
        (
            timedelta(days=-1, seconds=5, microseconds=7),
            T,
            (b"-1 days +5.000007 seconds", 1186, Format.TEXT),
        ),
        (timedelta(days=2, microseconds=1), B, (struct.pack("!qii", 1, 2, 0), 1186, Format.BINARY)),
    ],
)
def test_dump(obj: Any, fmt: PyFormat, expected: tuple[bytes, int, Format]) -> None:
    assert dump(obj, fmt) == expected


def test_dump_auto_is_text_and_chooses_oid_by_value() -> None:
    assert dump(datetime(2020, 1, 1))[1:] == (1114, Format.TEXT)
    assert dump(datetime(2020, 1, 1, tzinfo=UTC))[1:] == (1184, Format.TEXT)
    # The same transformer keeps both dumpers apart.
    tx = Transformer()
    tx.dump_sequence([time(1), time(1, tzinfo=UTC), time(2)], [PyFormat.BINARY] * 3)
    assert tx.types == [1083, 1266, 1083]


def test_dump_datetime_offset_postgres_refuses_goes_as_utc() -> None:
    # 20 hours and sub-second offsets exist in Python only: the instant is kept.
    value = datetime(2020, 1, 1, 20, tzinfo=tz(20))
    assert dump(value, T)[0] == b"2020-01-01 00:00:00+00:00"
    odd = datetime(2020, 1, 1, tzinfo=timezone(timedelta(microseconds=1)))
    assert dump(odd, T)[0] == b"2019-12-31 23:59:59.999999+00:00"


@pytest.mark.parametrize("fmt", [T, B])
@pytest.mark.parametrize(
    "obj",
    [
        time(1, tzinfo=tz(20)),
        time(1, tzinfo=timezone(timedelta(seconds=1, microseconds=5))),
        time(1, tzinfo=ROME),  # a zone with no fixed offset: a time has no date
        datetime(
            2020, 1, 1, tzinfo=type("NoOffset", (tzinfo,), {"utcoffset": lambda s, d: None})()
        ),
    ],
)
def test_dump_offset_errors(obj: Any, fmt: PyFormat) -> None:
    with pytest.raises(errors.DataError, match="offset"):
        dump(obj, fmt)


# Parsing, without a server


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020-01-01 12:00:00.5+01", datetime(2020, 1, 1, 12, 0, 0, 500000, tz(1))),
        ("2020-01-01 12:00:00.123+05:30", datetime(2020, 1, 1, 12, 0, 0, 123000, tz(5, 30))),
        ("1850-01-01 00:49:56+00:49:56", datetime(1850, 1, 1, 0, 49, 56, 0, tz(0, 49, 56))),
        ("0099-01-01 00:00:00-08", datetime(99, 1, 1, tzinfo=tz(-8))),
        ("2020-01-01 12:00:00.000001", datetime(2020, 1, 1, 12, 0, 0, 1)),
    ],
)
def test_parse_datetime_fallback(text: str, expected: datetime) -> None:
    # The path taken where fromisoformat() refuses PostgreSQL's spelling (Python 3.10).
    parsed = common.parse_datetime(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == expected.utcoffset()
    assert datetime.fromisoformat(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12:00:00.25-08", time(12, 0, 0, 250000, tz(-8))),
        ("12:00:00+05:30:15", time(12, tzinfo=tz(5, 30, 15))),
        ("23:59:59.999999", time(23, 59, 59, 999999)),
    ],
)
def test_parse_time_fallback(text: str, expected: time) -> None:
    assert common.parse_time(text) == expected
    assert common.parse_time("24:00:00") is None


@pytest.mark.parametrize("name", ["11-25-2026", "25/11/2026 13:55:30 UTC", "infinity", "x"])
def test_parse_fallbacks_refuse(name: str) -> None:
    assert common.parse_datetime(name) is None


@pytest.mark.parametrize(
    "name, offset",
    [
        (b"<+05>-05", timedelta(hours=5)),
        (b"<-03:30>+03:30", timedelta(hours=-3, minutes=-30)),
        (b"UTC+3", timedelta(hours=-3)),  # POSIX: positive is west
        (None, timedelta(0)),
    ],
)
def test_fixed_posix_zones(name: bytes | None, offset: timedelta) -> None:
    class FakeReport:
        def parameter_status(self, param: bytes) -> bytes | None:
            assert param == b"TimeZone"
            return name

    zone = common.session_timezone(FakeReport() if name else None)
    assert zone.utcoffset(datetime(2020, 1, 1)) == offset


def test_zone_of_closed_connection(dsn: str) -> None:
    pgconn = PGconn.connect(dsn.encode())
    name = pgconn.parameter_status(b"TimeZone")
    assert name is not None
    assert common.session_timezone(pgconn, ROME) == ZoneInfo(name.decode())
    pgconn.finish()
    # Results outlive their connection: the last known zone stays.
    assert common.session_timezone(pgconn, ROME) is ROME


def test_unknown_zone_falls_back_to_utc(caplog: pytest.LogCaptureFixture) -> None:
    class FakeReport:
        def parameter_status(self, param: bytes) -> bytes:
            return b"Nowhere/Atlantis"

    with caplog.at_level(logging.WARNING, logger="psycopg3"):
        assert common.session_timezone(FakeReport()) is UTC
    assert "Nowhere/Atlantis" in caplog.text


# Round trips through the server, with the server's own reading checked

VALUES = [
    (date(2020, 2, 29), "date", "2020-02-29"),
    (date(1, 1, 1), "date", "0001-01-01"),
    (date(9999, 12, 31), "date", "9999-12-31"),
    (time(0, 0), "time", "00:00:00"),
    (time(23, 59, 59, 999999), "time", "23:59:59.999999"),
    (time(12, 30, 0, 500000, tz(-3, -30)), "timetz", "12:30:00.5-03:30"),
    (time(1, tzinfo=tz(15, 59, 59)), "timetz", "01:00:00+15:59:59"),
    (datetime(1, 1, 1), "timestamp", "0001-01-01 00:00:00"),
    (datetime(9999, 12, 31, 23, 59, 59, 999999), "timestamp", "9999-12-31 23:59:59.999999"),
    (datetime(2020, 1, 1, 12, 0, 0, 1), "timestamp", "2020-01-01 12:00:00.000001"),
    (datetime(2020, 6, 1, 12, tzinfo=tz(5, 30)), "timestamptz", "2020-06-01 06:30:00+00"),
    (datetime(1900, 1, 1, tzinfo=UTC), "timestamptz", "1900-01-01 00:00:00+00"),
    (datetime(1, 1, 1, tzinfo=UTC), "timestamptz", "0001-01-01 00:00:00+00"),
    (datetime.max.replace(tzinfo=UTC), "timestamptz", "9999-12-31 23:59:59.999999+00"),
    (timedelta(0), "interval", "00:00:00"),
    (timedelta(days=-1, seconds=86399, microseconds=1), "interval", "-1 days +23:59:59.000001"),
    (timedelta(microseconds=-1), "interval", "-1 days +23:59:59.999999"),
    (timedelta(days=999999999), "interval", "999999999 days"),
    (timedelta(days=3, hours=4), "interval", "3 days 04:00:00"),
]


PG_TYPE_NAMES = {
    "date": "date",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "interval": "interval",
}


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("placeholder", ["%s", "%t", "%b"])
@pytest.mark.parametrize("value, pgtype, text", VALUES)
def test_round_trip(
    conn: psycopg3_sync.Connection,
    value: Any,
    pgtype: str,
    text: str,
    placeholder: str,
    binary: bool,
) -> None:
    cur = conn.execute(
        f"select {placeholder}, {placeholder}::text, pg_typeof({placeholder})::text",
        (value, value, value),
        binary=binary,
    )
    loaded, as_text, typename = cur.fetchone() or ()
    assert loaded == value
    assert type(loaded) is type(value)
    assert as_text == text
    assert typename == PG_TYPE_NAMES[pgtype]
    if isinstance(value, (time, datetime)) and value.tzinfo is not None:
        assert loaded.utcoffset() == (value.utcoffset() if pgtype == "timetz" else timedelta(0))


@pytest.mark.parametrize(
    "query, param",
    [
        ("select %s = '2020-01-01 12:00'::timestamp", datetime(2020, 1, 1, 12)),
        ("select %s = '2020-01-01 12:00+02'::timestamptz", datetime(2020, 1, 1, 10, tzinfo=UTC)),
        ("select %s = '0099-01-01'::date", date(99, 1, 1)),
        ("select %s = '1 day -00:00:01'::interval", timedelta(seconds=86399)),
        ("select %s = '-1 days'::interval", timedelta(days=-1)),
        ("select %s = '12:00+01'::timetz", time(12, tzinfo=tz(1))),
        ("select %s + 1 = '2020-03-01'::date", date(2020, 2, 29)),
    ],
)
@pytest.mark.parametrize("placeholder", ["%t", "%b"])
def test_server_reading(
    conn: psycopg3_sync.Connection, query: str, param: Any, placeholder: str
) -> None:
    assert one(conn, query.replace("%s", placeholder), (param,)) is True


# Values Python cannot hold


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(
    "literal, text_shown, binary_shown",
    [
        ("'infinity'::date", "date 'infinity'", "date 'infinity'"),
        ("'-infinity'::date", "date '-infinity'", "date '-infinity'"),
        ("'infinity'::timestamp", "timestamp 'infinity'", "timestamp 'infinity'"),
        ("'-infinity'::timestamptz", "timestamptz '-infinity'", "timestamptz '-infinity'"),
        ("'0044-03-15 BC'::date", "date '0044-03-15 BC'", "(BC)"),
        ("'0001-12-31 23:00 BC'::timestamp", "'0001-12-31 23:00:00 BC'", "(BC)"),
        ("'10000-01-01'::date", "date '10000-01-01'", "(after year 9999)"),
        ("'10000-01-01'::timestamptz", "'10000-01-01 00:00:00+00'", "(after year 9999)"),
        ("'24:00:00'::time", "time '24:00:00'", "time '24:00:00'"),
        ("'24:00:00+01'::timetz", "timetz '24:00:00+01'", "time '24:00:00'"),
    ],
)
def test_unrepresentable(
    conn: psycopg3_sync.Connection,
    literal: str,
    text_shown: str,
    binary_shown: str,
    binary: bool,
) -> None:
    with pytest.raises(errors.DataError, match="cannot be represented by Python") as exc:
        one(conn, f"select {literal}", binary=binary)
    message = str(exc.value)
    assert "cast it to text" in message
    assert (binary_shown if binary else text_shown) in message
    # The connection goes on.
    assert one(conn, f"select {literal}::text") is not None


@pytest.mark.parametrize("binary", [False, True])
def test_timestamptz_beyond_python_in_session_zone(
    conn: psycopg3_sync.Connection, binary: bool
) -> None:
    conn.execute("set time zone 'Asia/Tokyo'")
    # The text result already shows year 10000; the binary one is converted here.
    shown = "Asia/Tokyo" if binary else "10000-01-01 08:00:00[+]09"
    with pytest.raises(errors.DataError, match=shown):
        one(conn, "select '9999-12-31 23:00+00'::timestamptz", binary=binary)


@pytest.mark.parametrize("binary", [False, True])
def test_interval_months_are_30_days(conn: psycopg3_sync.Connection, binary: bool) -> None:
    value = one(conn, "select '1 year 2 mons -3 days 04:05:06.7'::interval", binary=binary)
    assert value == timedelta(days=360 + 60 - 3, hours=4, minutes=5, seconds=6.7)
    # The server agrees: it compares intervals with 30-day months too.
    assert one(conn, "select %s = '1 year 2 mons -3 days 04:05:06.7'::interval", (value,)) is True
    negative = one(conn, "select '-1 mons -2 days -00:00:01'::interval", binary=binary)
    assert negative == -timedelta(days=32, seconds=1)
    big = one(conn, "select '2562047788:00:54.775807'::interval", binary=binary)
    assert big == timedelta(hours=2562047788, seconds=54, microseconds=775807)


@pytest.mark.parametrize("binary", [False, True])
def test_interval_beyond_timedelta(conn: psycopg3_sync.Connection, binary: bool) -> None:
    with pytest.raises(errors.DataError, match="timedelta"):
        one(conn, "select '178956970 years'::interval", binary=binary)


# Session settings: DateStyle, IntervalStyle, TimeZone


@pytest.mark.parametrize("style", ["German", "SQL, DMY", "Postgres, MDY"])
def test_datestyle_not_iso(conn: psycopg3_sync.Connection, style: str) -> None:
    conn.execute(f"set datestyle to '{style}'")
    for literal in ("'2020-01-02'::date", "'2020-01-02 10:00'::timestamp", "now()"):
        with pytest.raises(errors.DataError, match="SET DateStyle TO ISO"):
            one(conn, f"select {literal}")
    # Binary results do not depend on it.
    assert one(conn, "select '2020-01-02'::date", binary=True) == date(2020, 1, 2)
    # Parameters are read as ISO whatever the DateStyle's order.
    assert one(conn, "select %t = '2020-01-02'::date", (date(2020, 1, 2),)) is True
    conn.execute("set datestyle to 'ISO, DMY'")
    assert one(conn, "select '2020-01-02'::date") == date(2020, 1, 2)


def test_intervalstyle(conn: psycopg3_sync.Connection) -> None:
    conn.execute("set intervalstyle to iso_8601")
    with pytest.raises(errors.DataError, match="SET IntervalStyle TO postgres"):
        one(conn, "select '1 day'::interval")
    assert one(conn, "select '1 day'::interval", binary=True) == timedelta(days=1)
    # sql_standard applies a leading sign to every field that has none: ours have one.
    conn.execute("set intervalstyle to sql_standard")
    value = timedelta(days=-1, seconds=5)
    assert one(conn, "select %t = '-1 days +00:00:05'::interval", (value,)) is True
    conn.execute("set intervalstyle to postgres")
    assert one(conn, "select %t", (value,)) == value


@pytest.mark.parametrize("binary", [False, True])
def test_timezone_change_mid_session(conn: psycopg3_sync.Connection, binary: bool) -> None:
    cur = conn.cursor(binary=binary)
    query = "select '2020-07-01 12:00+00'::timestamptz, array['2020-07-01 12:00+00'::timestamptz]"
    cur.execute(query)
    first = cur.fetchone()
    assert first is not None and first[0].tzinfo == ZoneInfo("Etc/UTC")
    cur.execute("set time zone 'Europe/Rome'")
    cur.execute(query)
    second = cur.fetchone()
    assert second is not None
    assert second[0] == first[0]
    assert second[0].tzinfo is ROME
    assert (second[0].hour, second[0].utcoffset()) == (14, timedelta(hours=2))
    assert second[1][0].tzinfo is ROME  # array elements follow too
    cur.execute("set time zone 3")  # reported as '<+03>-03'
    cur.execute(query)
    third = cur.fetchone()
    assert third is not None and third[0].utcoffset() == timedelta(hours=3)
    assert third[0].hour == 15


@pytest.mark.parametrize("binary", [False, True])
def test_zone_unknown_to_python_keeps_the_instant(
    conn: psycopg3_sync.Connection, binary: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # A POSIX rule with daylight saving: the server knows it, zoneinfo does not.
    conn.execute("set time zone 'XYZ3ABC,M3.2.0,M11.1.0'")
    with caplog.at_level(logging.WARNING, logger="psycopg3"):
        value = one(conn, "select '2020-07-01 12:00+00'::timestamptz", binary=binary)
    assert value == datetime(2020, 7, 1, 12, tzinfo=UTC)
    assert value.tzinfo is UTC
    assert "XYZ3ABC" in caplog.text or common.session_timezone(conn.pgconn) is UTC


@pytest.mark.parametrize("binary", [False, True])
def test_dst_in_rome(conn: psycopg3_sync.Connection, binary: bool) -> None:
    conn.execute("set time zone 'Europe/Rome'")
    # Autumn: 02:30 local happens twice.
    first, second = (
        conn.execute(
            "select '2020-10-25 00:30+00'::timestamptz, '2020-10-25 01:30+00'::timestamptz",
            binary=binary,
        ).fetchone()
        or ()
    )
    assert (
        first.replace(tzinfo=None) == second.replace(tzinfo=None) == datetime(2020, 10, 25, 2, 30)
    )
    assert (first.fold, first.utcoffset()) == (0, timedelta(hours=2))
    assert (second.fold, second.utcoffset()) == (1, timedelta(hours=1))
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    # Spring: 02:30 local does not exist; 01:30 UTC is 03:30 local.
    spring = one(conn, "select '2020-03-29 01:30+00'::timestamptz", binary=binary)
    assert (spring.hour, spring.utcoffset()) == (3, timedelta(hours=2))
    # Dumped back, fold included, the server reads the same instants.
    for value, utc_text in ((first, "2020-10-25 00:30:00+00"), (second, "2020-10-25 01:30:00+00")):
        row = conn.execute(
            "select (%t at time zone 'UTC')::text || '+00', %b = %t", (value, value, value)
        ).fetchone()
        assert row == (utc_text, True)


# Properties, in both formats, against the server's own construction

dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
naive_times = st.times()
offsets = st.integers(min_value=-(16 * 3600 - 1), max_value=16 * 3600 - 1).map(
    lambda s: timezone(timedelta(seconds=s))
)
naive_datetimes = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)
timedeltas = st.timedeltas()  # all of them: their days fit in an interval
FORMATS = st.sampled_from(["t", "b"])


@HYPOTHESIS
@given(value=dates, fmt=FORMATS, binary=st.booleans())
def test_date_property(conn: psycopg3_sync.Connection, value: date, fmt: str, binary: bool) -> None:
    row = conn.execute(
        f"select %{fmt}, %{fmt} = make_date(%s, %s, %s)",
        (value, value, value.year, value.month, value.day),
        binary=binary,
    ).fetchone()
    assert row == (value, True)


@HYPOTHESIS
@given(value=naive_times, offset=st.none() | offsets, fmt=FORMATS, binary=st.booleans())
def test_time_property(
    conn: psycopg3_sync.Connection, value: time, offset: timezone | None, fmt: str, binary: bool
) -> None:
    value = value.replace(tzinfo=offset)
    usecs = value.second * 10**6 + value.microsecond
    built = "make_time(%s, %s, 0) + %s * interval '1 microsecond'"
    args: list[Any] = [value.hour, value.minute, usecs]
    if offset is not None:
        # The offset spelt by hand, east positive, as the server reads it.
        seconds = int(offset.utcoffset(None).total_seconds())
        sign = "-" if seconds < 0 else "+"
        hh, rest = divmod(abs(seconds), 3600)
        built = f"(({built})::text || %s)::timetz"
        args.append(f"{sign}{hh:02d}:{rest // 60:02d}:{rest % 60:02d}")
    row = conn.execute(
        f"select %{fmt}, %{fmt} = {built}", (value, value, *args), binary=binary
    ).fetchone()
    assert row is not None
    assert row[:2] == (value, True)
    assert row[0].utcoffset() == value.utcoffset()


@HYPOTHESIS
@given(value=naive_datetimes | aware_datetimes, fmt=FORMATS, binary=st.booleans())
def test_datetime_property(
    conn: psycopg3_sync.Connection, value: datetime, fmt: str, binary: bool
) -> None:
    offset = value.utcoffset()
    usecs = value.second * 10**6 + value.microsecond
    built = "make_timestamp(%s, %s, %s, %s, %s, 0) + %s * interval '1 microsecond'"
    args: list[Any] = [value.year, value.month, value.day, value.hour, value.minute, usecs]
    if offset is not None:
        # Wall time minus the offset is UTC.
        built = f"(({built}) - %s * interval '1 second') at time zone 'UTC'"
        args.append(offset.days * 86400 + offset.seconds)
    row = conn.execute(
        f"select %{fmt}, %{fmt} = {built}", (value, value, *args), binary=binary
    ).fetchone()
    assert row == (value, True)
    if offset is not None:
        assert row[0].utcoffset() == timedelta(0)  # in the session's zone, UTC


@HYPOTHESIS
@given(value=timedeltas, fmt=FORMATS, binary=st.booleans())
def test_timedelta_property(
    conn: psycopg3_sync.Connection, value: timedelta, fmt: str, binary: bool
) -> None:
    built = "make_interval(days => %s) + %s * interval '1 microsecond'"
    args = (value.days, value.seconds * 10**6 + value.microseconds)
    row = conn.execute(
        f"select %{fmt}, %{fmt} = {built}", (value, value, *args), binary=binary
    ).fetchone()
    assert row == (value, True)
