"""Property-based round trip of whole rows of mixed types through ``executemany``.

``tests/core/test_types_*.py`` check each type alone with ``select %s``; here
hypothesis builds rows of every supported type at once (values at and near
each type's limits, special floats and decimals, full Unicode, NULLs inside
arrays), inserts them with ``executemany`` into a table, in text and binary
parameter formats, reads them back in text and binary result formats and
compares. Values outside a column's range must raise a ``DataError``
subclass and leave nothing behind but a transaction to roll back.

Tolerances, the only places where equality is not ``==``:

* NaN (float and Decimal) equals NaN; the sign of a float zero must survive.
* float4: a Python float of 32-bit precision is stored; the text output is
  the shortest decimal that reads back to the same float4, which, read as a
  Python float (64 bits), differs from the 32-bit value widened. Values are
  compared as float4 (``struct.pack("f", ...)``).
* timestamptz: compared as instants (aware ``==``), read back in the
  session's zone (UTC).
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psycopg3_sync
from psycopg3 import errors
from psycopg3.types.json import Jsonb

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _ints(bits: int) -> st.SearchStrategy[int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    edges = st.sampled_from([low, low + 1, -1, 0, 1, high - 1, high])
    return edges | st.integers(min_value=low, max_value=high)


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
_offsets = st.integers(min_value=-(16 * 3600 - 1), max_value=16 * 3600 - 1).map(
    lambda s: timezone(timedelta(seconds=s))
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=10,
)
_int8_or_null = st.none() | _ints(64)
_arrays = st.lists(_int8_or_null, max_size=5) | st.integers(min_value=1, max_value=3).flatmap(
    lambda width: st.lists(
        st.lists(_int8_or_null, min_size=width, max_size=width), min_size=1, max_size=3
    )
)

#: Column name, its type, the strategy of its values (NULL included by the row strategy).
COLUMNS: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("i2", "int2", _ints(16)),
    ("i4", "int4", _ints(32)),
    ("i8", "int8", _ints(64)),
    (
        "num",
        "numeric",
        # numeric holds up to 131072 digits before the point and 16383 after.
        st.decimals(allow_nan=True, allow_infinity=True).filter(
            lambda d: not d.is_finite() or -16000 < d.adjusted() < 100000
        ),
    ),
    ("f8", "float8", st.floats() | st.sampled_from([-0.0, math.inf, -math.inf, math.nan, 5e-324])),
    ("f4", "float4", st.floats(width=32)),
    ("t", "text", _text),
    ("b", "bytea", st.binary()),
    ("d", "date", st.dates() | st.sampled_from([date.min, date.max])),
    ("ts", "timestamp", st.datetimes() | st.sampled_from([datetime.min, datetime.max])),
    (
        "tstz",
        "timestamptz",
        st.datetimes(
            min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_offsets
        ),
    ),
    ("iv", "interval", st.timedeltas() | st.sampled_from([timedelta.min, timedelta.max])),
    ("u", "uuid", st.uuids()),
    ("j", "jsonb", _json.map(Jsonb)),
    ("arr", "int8[]", _arrays),
    ("tarr", "text[]", st.lists(st.none() | _text, max_size=4)),
]

_rows = st.lists(
    st.tuples(*(st.none() | strategy for _, _, strategy in COLUMNS)), min_size=1, max_size=5
)


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    """A connection with a temporary table ``fuzz`` of every column type, in UTC."""
    with psycopg3_sync.connect(dsn) as conn:
        columns = ", ".join(f"{name} {pgtype}" for name, pgtype, _ in COLUMNS)
        conn.execute(f"create temporary table fuzz (id int primary key, {columns})")
        conn.execute("set time zone 'UTC'")
        conn.commit()
        yield conn


def _insert_query(fmt: str) -> str:
    placeholders = ", ".join([f"%{fmt}"] * (len(COLUMNS) + 1))
    return f"insert into fuzz values ({placeholders})"


def _same(pgtype: str, sent: Any, back: Any) -> bool:
    """Whether *back* is *sent* after a round trip, within the documented tolerances."""
    if pgtype == "jsonb" and sent is not None:
        return bool(back == json.loads(json.dumps(sent.obj)))
    if sent is None or back is None:
        return sent is back
    if pgtype == "float8":
        if math.isnan(sent):
            return math.isnan(back)
        return bool(back == sent and math.copysign(1, back) == math.copysign(1, sent))
    if pgtype == "float4":
        if math.isnan(sent):
            return math.isnan(back)
        return struct.pack("f", back) == struct.pack("f", sent)
    if pgtype == "numeric" and sent.is_nan():
        return bool(back.is_nan())
    return bool(back == sent and type(back) is type(sent))


@pytest.mark.scenario("B8", flavour="sync")
@pytest.mark.parametrize("binary", [False, True], ids=["text-results", "binary-results"])
@pytest.mark.parametrize("fmt", ["t", "b", "s"])
def test_rows_round_trip(
    conn: psycopg3_sync.Connection, fmt: str, binary: bool, observe: Any
) -> None:
    seen: Counter[str] = Counter()
    query = _insert_query(fmt)
    names = ", ".join(name for name, _, _ in COLUMNS)

    @SETTINGS
    @given(rows=_rows)
    def check(rows: list[tuple[Any, ...]]) -> None:
        try:
            cur = conn.cursor()
            cur.executemany(query, [(i, *row) for i, row in enumerate(rows)])
            back = cur.execute(f"select {names} from fuzz order by id", binary=binary).fetchall()
            assert len(back) == len(rows)
            for row, got in zip(rows, back):
                for (name, pgtype, _), sent, value in zip(COLUMNS, row, got):
                    assert _same(pgtype, sent, value), (
                        f"column {name} ({pgtype}): {sent!r} → {value!r}"
                    )
                    seen[pgtype] += sent is not None
        finally:
            conn.rollback()

    check()
    assert min(seen.values()) > 0
    observe(
        f"%{fmt} params, {'binary' if binary else 'text'} results, values round-tripped per"
        " type: " + ", ".join(f"{t} {n}" for t, n in seen.items())
    )


#: Values beyond each column's range, as (column, strategy).
_OUT_OF_RANGE: list[tuple[str, st.SearchStrategy[Any]]] = [
    (
        "i2",
        st.integers(min_value=2**15, max_value=10**20)
        | st.integers(max_value=-(2**15) - 1, min_value=-(10**20)),
    ),
    (
        "i4",
        st.integers(min_value=2**31, max_value=10**20)
        | st.integers(max_value=-(2**31) - 1, min_value=-(10**20)),
    ),
    (
        "i8",
        st.integers(min_value=2**63, max_value=10**40)
        | st.integers(max_value=-(2**63) - 1, min_value=-(10**40)),
    ),
    (
        "f4",
        st.floats(min_value=3.5e38, allow_infinity=False)
        | st.floats(max_value=-3.5e38, allow_infinity=False),
    ),
    ("num", st.integers(min_value=131073, max_value=200000).map(lambda e: Decimal(f"1E+{e}"))),
]


@pytest.mark.scenario("B8", flavour="sync")
@pytest.mark.parametrize("fmt", ["t", "b"])
def test_out_of_range_values_raise_data_error(
    conn: psycopg3_sync.Connection, fmt: str, observe: Any
) -> None:
    raised: Counter[str] = Counter()
    names = [name for name, _, _ in COLUMNS]

    @SETTINGS
    @given(data=st.data(), good=st.tuples(*(st.none() | s for _, _, s in COLUMNS)))
    def check(data: st.DataObject, good: tuple[Any, ...]) -> None:
        column, strategy = data.draw(st.sampled_from(_OUT_OF_RANGE))
        bad = list(good)
        bad[names.index(column)] = data.draw(strategy)
        try:
            with pytest.raises(errors.DataError) as info:
                conn.cursor().executemany(_insert_query(fmt), [(0, *good), (1, *bad)])
            raised[f"{column}:{type(info.value).__name__}"] += 1
        finally:
            conn.rollback()
        # Nothing of the failed executemany is left, and the connection works.
        assert conn.execute("select count(*) from fuzz").fetchone() == (0,)
        conn.rollback()

    check()
    observe(
        f"%{fmt} out-of-range values → " + ", ".join(f"{k} ×{n}" for k, n in sorted(raised.items()))
    )
    assert raised
