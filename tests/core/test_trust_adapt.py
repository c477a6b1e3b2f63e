"""Issue 14, case 10: adaptation caches that go stale, overrides, edge values.

* A dumper, loader or type registered on a cursor after it already ran a
  query of that type is used by its next query (executemany and prepared
  statements included), in every flavour.
* A subclass of a built-in dumper or loader that overrides ``dump`` or
  ``load`` is called for every value: not bypassed by the base's fast path
  (``load_function``, a struct unpacking a whole column, a dumper chosen by
  value) nor by the element loader of an array or range.
* Values at the limits of Python's types round-trip exactly, text and
  binary, in far session time zones, or raise ``DataError``.
"""

from __future__ import annotations

import struct
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3
import psycopg3_sync
from psycopg3 import errors
from psycopg3.adapt import Dumper, Loader
from psycopg3.pq import Format
from psycopg3.types.composite import CompositeInfo, register_composite
from psycopg3.types.datetime import DatetimeDumper
from psycopg3.types.enum import EnumInfo, register_enum
from psycopg3.types.numeric import IntBinaryDumper, IntDumper

pytestmark = pytest.mark.anyio


class Tagged(Dumper):
    """Dumps anything as the text ``tagged:<str>``."""

    oid = 25  # text

    def dump(self, obj: Any) -> bytes:
        return f"tagged:{obj}".encode()


class Upper(Loader):
    def load(self, data: Any) -> Any:
        return bytes(data).decode().upper()


class UpperBinary(Upper):
    format = Format.BINARY


async def _one(cur: Any, query: str, params: Any = None, **kwargs: Any) -> Any:
    await cur.execute(query, params, **kwargs)
    return await cur.fetchone()


# -- registrations made after first use ----------------------------------------


@pytest.mark.parametrize("binary", [False, True])
async def test_cursor_loader_registered_after_use(aconn: Any, binary: bool) -> None:
    cur = aconn.cursor(binary=binary)
    assert await _one(cur, "select 'b'::text") == ("b",)
    cur.adapters.register_loader("text", UpperBinary if binary else Upper)
    assert await _one(cur, "select 'b'::text") == ("B",)
    # Also for a statement already prepared, its result shape cached.
    for _ in range(6):
        await _one(cur, "select 'n'::name", prepare=True)
    cur.adapters.register_loader("name", UpperBinary if binary else Upper)
    assert await _one(cur, "select 'n'::name", prepare=True) == ("N",)


async def test_cursor_dumper_registered_after_use(aconn: Any) -> None:
    cur = aconn.cursor()
    assert await _one(cur, "select %s::text", (2.5,)) == ("2.5",)
    for _ in range(6):
        await _one(cur, "select %s::text, 1", (2.5,), prepare=True)
    cur.adapters.register_dumper(float, Tagged)
    assert await _one(cur, "select %s::text", (2.5,)) == ("tagged:2.5",)
    assert await _one(cur, "select %s::text, 1", (2.5,), prepare=True) == ("tagged:2.5", 1)
    # An element dumper chosen for a list is chosen again.
    assert await _one(cur, "select %s::text[]", ([1.5],)) == (["tagged:1.5"],)


async def test_executemany_after_registration(aconn: Any) -> None:
    await aconn.execute("create temporary table trust_adapt (x text)")
    cur = aconn.cursor()
    await cur.executemany("insert into trust_adapt values (%s)", [(1.5,), (2.5,)])
    cur.adapters.register_dumper(float, Tagged)
    await cur.executemany("insert into trust_adapt values (%s)", [(3.5,)])
    await cur.execute("select x from trust_adapt order by x")
    assert await cur.fetchall() == [("1.5",), ("2.5",), ("tagged:3.5",)]


async def test_enum_and_composite_registered_after_use(flavour: Any, aconn: Any) -> None:
    await aconn.execute(
        "create type pg_temp.trust_mood as enum ('sad', 'ok');"
        " create type pg_temp.trust_pair as (k text, v int)"
    )
    for binary in (False, True):
        cur = aconn.cursor(binary=binary)
        query = "select 'ok'::trust_mood, array['sad'::trust_mood], ('a', 1)::trust_pair"
        mood, moods, pair = await _one(cur, query)
        assert mood in ("ok", b"ok") and not isinstance(pair, tuple)
        if flavour.is_sync:
            enum_info = EnumInfo.fetch(aconn.target, "trust_mood")
            pair_info = CompositeInfo.fetch(aconn.target, "trust_pair")
        else:
            enum_info = await EnumInfo.fetch(aconn, "trust_mood")
            pair_info = await CompositeInfo.fetch(aconn, "trust_pair")
        Mood = register_enum(enum_info, cur.target if flavour.is_sync else cur)
        Pair = register_composite(pair_info, cur.target if flavour.is_sync else cur)
        assert await _one(cur, query) == (Mood.ok, [Mood.sad], Pair("a", 1))
        assert await _one(cur, "select %s::text", (Mood.sad,)) == ("sad",)


# -- overrides of documented methods are honoured ------------------------------


def _loader_subclasses() -> list[tuple[str, str, type[Loader]]]:
    """Each built-in loader of a type with a sample value: (type, sample, class)."""
    samples = {
        "int2": "1", "int4": "1", "int8": "1", "oid": "1", "float4": "1", "float8": "1",
        "numeric": "1", "bool": "t", "text": "a", "varchar": "a", "bytea": "a",
        "date": "2020-01-01", "time": "12:00", "timetz": "12:00+02",
        "timestamp": "2020-01-01", "timestamptz": "2020-01-01Z", "interval": "1 day",
        "uuid": "00000000-0000-0000-0000-000000000001", "json": "1", "jsonb": "1",
        "inet": "127.0.0.1", "cidr": "10.0.0.0/8", "int4range": "[1,2)",
        "_int4": "{1}", "_text": "{a}",
    }  # fmt: skip
    found = []
    for name, sample in samples.items():
        oid = psycopg3.adapters.types.get_oid(name) if not name.startswith("_") else 0
        if not oid:
            oid = psycopg3.adapters.types.get_oid(name[1:] + "[]")
        for fmt in (Format.TEXT, Format.BINARY):
            base = psycopg3.adapters.get_loader(oid, fmt)
            if base is not None:
                found.append((name, sample, base))
    return found


@pytest.mark.parametrize(
    "pgtype, sample, base", _loader_subclasses(), ids=lambda v: getattr(v, "__name__", v)
)
def test_loader_load_override_is_called(dsn: str, pgtype: str, sample: str, base: type) -> None:
    overriding = type("Overriding", (base,), {"load": lambda self, data: ("overridden", pgtype)})
    with psycopg3_sync.connect(dsn) as conn:
        cur = conn.cursor(binary=base.format == Format.BINARY)
        cur.adapters.register_loader(
            pgtype.lstrip("_") + ("[]" if pgtype[0] == "_" else ""), overriding
        )
        expected = ("overridden", pgtype)
        query = f"select %s::{pgtype.lstrip('_')}{'[]' if pgtype[0] == '_' else ''}"
        assert cur.execute(query, (sample,)).fetchone() == (expected,)
        assert cur.execute(query, (sample,)).fetchall() == [(expected,)]


@pytest.mark.parametrize("binary", [False, True])
async def test_element_loader_override_is_called(aconn: Any, binary: bool) -> None:
    class Tenfold(psycopg3.adapters.get_loader(23, Format(binary))):  # type: ignore[misc]
        def load(self, data: Any) -> Any:
            return super().load(data) * 10

    cur = aconn.cursor(binary=binary)
    cur.adapters.register_loader("int4", Tenfold)
    row = await _one(cur, "select 1, array[1, null, 2], int4range(1, 5)")
    assert row[:2] == (10, [10, None, 20])
    assert (row[2].lower, row[2].upper) == (10, 50)


async def test_int_dumper_override_called_for_every_size(aconn: Any) -> None:
    class PlusOne(IntDumper):
        def dump(self, obj: Any) -> Any:
            return super().dump(obj + 1)

    cur = aconn.cursor()
    cur.adapters.register_dumper(int, PlusOne)
    # The base still chooses int4, int8 or numeric by size: self.oid tells which.
    row = await _one(cur, "select %s, %s, %s", (1, 2**40, 10**30))
    assert row == (2, 2**40 + 1, 10**30 + 1)
    assert [cur.pgresult.ftype(i) for i in range(3)] == [23, 20, 1700]


async def test_binary_int_dumper_override_reads_the_chosen_oid(aconn: Any) -> None:
    class PlusOne(IntBinaryDumper):
        def dump(self, obj: Any) -> Any:
            return struct.pack({23: "!i", 20: "!q"}[self.oid], obj + 1)

    cur = aconn.cursor()
    cur.adapters.register_dumper(int, PlusOne)
    assert await _one(cur, "select %s, %s", (1, 2**40)) == (2, 2**40 + 1)


async def test_failing_dumper_raises_data_error(aconn: Any) -> None:
    class Narrow(IntBinaryDumper):
        def dump(self, obj: Any) -> Any:
            return struct.pack("!i", obj)  # wrong for the int8 the base chose

    cur = aconn.cursor()
    cur.adapters.register_dumper(int, Narrow)
    with pytest.raises(
        errors.DataError, match=r"parameter \$2: Narrow cannot dump the int value: struct.error"
    ) as info:
        await cur.execute("select %s, %s", (1, 2**40))
    assert isinstance(info.value.__cause__, struct.error)
    assert await _one(aconn.cursor(), "select 1") == (1,)


async def test_datetime_dumper_override_called_naive_and_aware(aconn: Any) -> None:
    class Fixed(DatetimeDumper):
        def dump(self, obj: Any) -> Any:
            return b"2000-01-01 00:00:00+00" if obj.tzinfo else b"2000-01-01 00:00:00"

    cur = aconn.cursor()
    cur.adapters.register_dumper(datetime, Fixed)
    await aconn.execute("set time zone 'UTC'")
    naive, aware = datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert await _one(cur, "select %s, %s", (naive, aware)) == (
        datetime(2000, 1, 1),
        datetime(2000, 1, 1, tzinfo=timezone.utc),
    )


# -- edge values ----------------------------------------------------------------

SESSION_ZONES = ["UTC", "Pacific/Kiritimati", "America/Adak", "+14", "-14"]


def _round_trip(conn: psycopg3_sync.Connection, value: Any, cast: str = "") -> list[Any]:
    """The value back, or its DataError, for each parameter and result format."""
    out = []
    for fmt in "tb":
        for binary in (False, True):
            try:
                row = conn.execute(f"select %{fmt}{cast}", (value,), binary=binary).fetchone()
                out.append(row[0] if row else None)
            except errors.DataError as error:
                out.append(error)
            conn.rollback()
    return out


@pytest.fixture(scope="module")
def conn(dsn: str) -> Any:
    with psycopg3_sync.connect(dsn) as conn:
        yield conn


@pytest.mark.parametrize("zone", SESSION_ZONES)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
        timezones=st.integers(-16 * 60 + 1, 16 * 60 - 1).map(
            lambda m: timezone(timedelta(minutes=m))
        ),
    )
    | st.sampled_from(
        [
            datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))),
            datetime.min.replace(tzinfo=timezone.utc),
            datetime.max.replace(tzinfo=timezone.utc),
        ]
    )
)
def test_timestamptz_limits_in_any_session_zone(conn: Any, zone: str, value: datetime) -> None:
    conn.execute(f"set time zone '{zone}'")
    conn.commit()
    results = _round_trip(conn, value)
    loaded = [r for r in results if isinstance(r, datetime)]
    for got in loaded:
        assert got == value, f"{value!r} came back as {got!r} in the zone {zone}"
    # Text and binary agree: a value is either representable or not.
    failed = [r for r in results if isinstance(r, errors.DataError)]
    assert not (loaded and failed), f"{value!r} in {zone}: {results}"
    for error in failed:
        assert "cannot be represented" in str(error) and "timestamptz" in str(error)


def test_int_beyond_python_str_digits_limit(conn: Any) -> None:
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if not limit:
        pytest.skip("this Python has no limit on int to str conversion")
    value = 7 * 10 ** (limit + 10)
    for got in _round_trip(conn, value):
        assert got == Decimal(value)
    # Beyond numeric's 131072 digits: a DataError, never a bare ValueError,
    # refused before converting (quadratic for such ints).
    for got in _round_trip(conn, 10**140000):
        assert isinstance(got, errors.DataError)
        assert "more than the 131072 digits numeric holds" in str(got)


# -- per-parameter decisions do not leak between rows or parameters -----------

_any_int = st.integers(min_value=-(10**40), max_value=10**40) | st.sampled_from(
    [0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1]
)
_numeric_value = st.none() | _any_int | st.decimals(allow_nan=False, places=5, max_value=10**20)
_int8_value = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
_numberish_text = st.none() | st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{1,5})?", fullmatch=True)
_leak_rows = st.lists(
    st.tuples(
        _numeric_value,
        st.none() | st.lists(_int8_value, max_size=4),
        _numberish_text,
        st.none() | st.lists(st.none() | _any_int, max_size=3),
    ),
    min_size=2,
    max_size=6,
)


@pytest.fixture(scope="module")
def leak_table(conn: Any) -> None:
    conn.execute(
        "create temporary table trust_leak (id int, n numeric, a int8[], t text, na numeric[])"
    )
    conn.commit()


@pytest.mark.usefixtures("leak_table")
@pytest.mark.parametrize("fmt", ["s", "t", "b"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_leak_rows)
def test_executemany_rows_choose_their_own_types(conn: Any, fmt: str, rows: list[Any]) -> None:
    # Each row's values pick their own dumper (int4, int8 or numeric, array
    # element types, NULLs): what the previous row chose must not stick.
    try:
        cur = conn.cursor()
        cur.executemany(
            f"insert into trust_leak values (%{fmt}, %{fmt}, %{fmt}, %{fmt}, %{fmt})",
            [(i, *row) for i, row in enumerate(rows)],
        )
        back = cur.execute("select n, a, t, na from trust_leak order by id").fetchall()
        assert back == [tuple(row) for row in rows]
    finally:
        conn.rollback()
