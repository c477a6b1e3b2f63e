"""Dates, times and intervals through every adapter flavour, text and binary."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from psycopg3 import errors

pytestmark = pytest.mark.anyio

VALUES = (
    date(2024, 2, 29),
    time(23, 59, 59, 999999),
    time(8, 30, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1999, 12, 31, 23, 59, 59, 1),
    datetime(2020, 10, 25, 1, 30, tzinfo=timezone.utc),
    timedelta(days=-3, seconds=7, microseconds=11),
)


@pytest.mark.parametrize("binary", [False, True])
async def test_datetime_family(aconn: Any, binary: bool) -> None:
    cur = aconn.cursor(binary=binary)
    await cur.execute("select %s, %s, %s, %s, %s, %s", VALUES)
    assert await cur.fetchone() == VALUES
    # The session's TimeZone applies from the next query on, same cursor.
    await cur.execute("set time zone 'Europe/Rome'")
    await cur.execute("select %s::timestamptz", (VALUES[4],))
    (rome,) = await cur.fetchone()
    # (PEP 495: a datetime in a fold never equals one of another zone: compare in UTC.)
    assert rome.astimezone(timezone.utc) == VALUES[4]
    assert rome.tzinfo == ZoneInfo("Europe/Rome")
    assert (rome.hour, rome.fold) == (2, 1)  # the second 02:30 of that night
    with pytest.raises(errors.DataError, match="infinity"):
        await cur.execute("select 'infinity'::date")
        await cur.fetchone()
    await cur.execute("select %s - interval '1 day'", (VALUES[0],))
    assert await cur.fetchone() == (datetime(2024, 2, 28),)
