"""Session parameters that change under the driver (issue 14, case 9), in every flavour.

The client encoding, above all: queries, parameters, column names, rows,
server-cursor fetches, notices and error messages always use the encoding the
server is using for them, whoever changed it (another cursor, ``set_config``,
a transaction rolled back). An encoding Python has no codec for still carries
ASCII. Then the other parameters the driver reads: DateStyle, IntervalStyle,
TimeZone, standard_conforming_strings.
"""

from __future__ import annotations

import codecs
import datetime as dt
from typing import Any

import pytest

from psycopg3 import errors, pq, sql
from psycopg3._encodings import _PG_TO_PY, py_encoding
from psycopg3._pipeline import PIPELINE_LIBPQ

pytestmark = pytest.mark.anyio


async def encoding_of(conn: Any) -> str:
    return conn.info.parameter_status("client_encoding")  # type: ignore[no-any-return]


async def test_description_keeps_the_encoding_of_its_result(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.execute("select 'é' as colé")
    await aconn.execute("set client_encoding to 'LATIN1'")  # another cursor
    assert cur.description[0].name == "colé"  # was 'colÃ©'
    assert await cur.fetchall() == [("é",)]
    await cur.execute("select 'é' as colé")
    assert cur.description[0].name == "colé"
    assert await cur.fetchall() == [("é",)]


@pytest.mark.parametrize("how", ["set", "set_config", "set names"])
async def test_every_way_to_change_it_is_followed(aconn: Any, how: str) -> None:
    cur = aconn.cursor()
    await cur.execute("select %s::text as colé", ("é",))
    change = {
        "set": "set client_encoding to 'WIN1252'",
        "set_config": "select set_config('client_encoding', 'WIN1252', false)",
        "set names": "set names 'WIN1252'",
    }[how]
    await cur.execute(change)
    assert await encoding_of(aconn) == "WIN1252"
    await cur.execute("select %s::text as colé, 'é€' as b, length(%s)", ("é€", "é€"))
    assert [c.name for c in cur.description] == ["colé", "b", "length"]
    assert await cur.fetchall() == [("é€", "é€", 2)]


async def test_set_local_reverted_by_rollback_and_commit(aconn: Any) -> None:
    for end in ("rollback", "commit"):
        await aconn.execute("select set_config('client_encoding', 'LATIN1', true)")
        assert await encoding_of(aconn) == "LATIN1"
        cur = await aconn.execute("select %s::text as colé", ("é",))
        assert (cur.description[0].name, await cur.fetchone()) == ("colé", ("é",))
        await getattr(aconn, end)()
        assert await encoding_of(aconn) == "UTF8"
        cur = await aconn.execute("select %s::text as colé, '€'", ("é",))
        assert (cur.description[0].name, await cur.fetchone()) == ("colé", ("é", "€"))


async def test_function_with_its_own_encoding(aconn: Any) -> None:
    # The SET clause applies inside the function only: its result is sent
    # after it returns, in the session's encoding.
    await aconn.execute(
        "create function pg_temp.f() returns text language sql"
        " set client_encoding = 'LATIN1' as $$ select 'é€'::text $$"
    )
    cur = await aconn.execute("select pg_temp.f() as colé")
    assert (cur.description[0].name, await cur.fetchone()) == ("colé", ("é€",))
    assert await encoding_of(aconn) == "UTF8"


async def test_changed_in_the_same_query_never_misread(aconn: Any) -> None:
    # PostgreSQL reports the change after the last result only: which results
    # followed it is unknown. Text that reads the same either way (ASCII) loads;
    # other text is a DataError naming the column, never mojibake.
    cur = aconn.cursor()
    await cur.execute("set client_encoding to 'LATIN1'; select 'é' as colé, 'ok' as b")
    assert cur.nextset()
    assert cur.description[1].name == "b"
    with pytest.raises(errors.DataError, match=r"column 'col.*UTF8 to LATIN1.*query of its own"):
        await cur.fetchone()
    await cur.execute("set client_encoding to 'UTF8'; select 'ascii' as b")
    assert cur.nextset()
    assert await cur.fetchall() == [("ascii",)]
    # Whatever was refused, the next command is in the new encoding.
    await cur.execute("set client_encoding to 'LATIN1'; select 1")
    await cur.execute("select 'é' as colé")
    assert (cur.description[0].name, await cur.fetchone()) == ("colé", ("é",))


async def test_server_cursor_fetch_follows_the_encoding(aconn: Any) -> None:
    async with aconn.cursor("enc_sc") as sc:
        await sc.execute("select 'é' || i as colé from generate_series(1, 3) i")
        assert await sc.fetchone() == ("é1",)
        await aconn.execute("set client_encoding to 'LATIN1'")
        assert await sc.fetchone() == ("é2",)  # was a bare UnicodeDecodeError
        assert sc.description[0].name == "colé"
        await aconn.execute("set client_encoding to 'UTF8'")
        assert await sc.fetchall() == [("é3",)]
    await aconn.rollback()


async def test_notices_and_errors_in_the_current_encoding(aconn: Any) -> None:
    notices: list[str] = []
    aconn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    await aconn.execute("set client_encoding to 'LATIN1'")
    await aconn.execute("do $$ begin raise notice 'hé'; end $$")
    assert notices == ["hé"]
    # The error is sent in LATIN1, then the failed transaction reverts the SET.
    with pytest.raises(errors.RaiseException, match="^hé"):
        await aconn.execute("do $$ begin raise exception 'hé'; end $$")
    assert await encoding_of(aconn) == "UTF8"
    await aconn.rollback()
    with pytest.raises(errors.RaiseException, match="^hé€"):
        await aconn.execute("do $$ begin raise exception 'hé€'; end $$")


@pytest.mark.parametrize("pgenc, codec", [("LATIN1", "latin1"), ("WIN1252", "cp1252")])
async def test_copy_in_the_current_encoding(aconn: Any, pgenc: str, codec: str) -> None:
    value = "é€" if pgenc == "WIN1252" else "é"
    await aconn.execute("create temp table enc_copy (t text)")
    cur = aconn.cursor()
    await cur.execute("select %s::text", ("é",))  # a transformer in UTF8 exists
    await cur.execute(f"set client_encoding to '{pgenc}'")
    async with cur.copy("copy enc_copy (t) from stdin") as copy:
        await copy.write_row((value,))
    async with cur.copy("copy enc_copy (t) from stdin") as copy:
        await copy.write(f"h{value}\n".encode(codec))
    expected = [(value,), (f"h{value}",)]
    async with cur.copy("copy (select t from enc_copy order by length(t)) to stdout") as copy:
        assert [row async for row in copy.rows()] == expected
    await cur.execute("set client_encoding to 'UTF8'")
    await cur.execute("select t from enc_copy order by length(t)")
    assert await cur.fetchall() == expected


async def test_undecodable_result_is_a_data_error_naming_the_column(aconn: Any) -> None:
    # EUC_TW has no Python codec: its non-ASCII text cannot be read.
    await aconn.execute("set client_encoding to 'EUC_TW'")
    with pytest.raises(errors.DataError, match=r"column 'zh'.*EUC_TW.*UTF8"):
        await (await aconn.execute("select 'a' as ok, chr(20013) as zh")).fetchall()
    cur = await aconn.execute("select chr(20013) as zh")
    with pytest.raises(errors.DataError, match="column 'zh'"):
        await cur.fetchone()
    assert (await (await aconn.execute("select 1")).fetchone()) == (1,)


async def test_encoding_without_python_codec_still_carries_ascii(aconn: Any) -> None:
    await aconn.execute("set client_encoding to 'EUC_TW'")
    assert aconn.info.parameter_status("client_encoding") == "EUC_TW"
    cur = await aconn.execute("select 'abc' as name, %s::text, %s::int", ("xyz", 42))
    assert (cur.description[0].name, await cur.fetchone()) == ("name", ("abc", "xyz", 42))
    for query, params in [("select 'é'", None), ("select %s::text", ("é",))]:
        with pytest.raises(errors.NotSupportedError, match=r"EUC_TW.*client_encoding TO 'UTF8'"):
            await aconn.execute(query, params)
    with pytest.raises(errors.NotSupportedError, match="EUC_TW"):
        await aconn.execute(sql.SQL("select {}").format(sql.Literal("é")))
    with pytest.raises(errors.DivisionByZero):
        await aconn.execute("select 1/0")
    await aconn.rollback()
    await aconn.execute("set client_encoding to 'UTF8'")  # the way out always works
    cur = await aconn.execute("select %s::text", ("é",))
    assert await cur.fetchone() == ("é",)


async def test_shift_jis_2004_keeps_backslash_and_tilde(aconn: Any) -> None:
    # Python's shift_jis_2004 writes them as two-byte characters and reads
    # 0x5C and 0x7E as YEN SIGN and OVERLINE; PostgreSQL reads them as ASCII.
    await aconn.execute("set client_encoding to 'SHIFT_JIS_2004'")
    text = "a\\b~c 日本"
    built = "'a' || chr(92) || 'b' || chr(126) || 'c 日本'"
    cur = await aconn.execute(f"select %s::text, %s::text = {built}, {built}", (text, text))
    assert await cur.fetchone() == (text, True, text)
    query = sql.SQL("select {} = " + built).format(sql.Literal(text))
    assert await (await aconn.execute(query)).fetchone() == (True,)


async def test_notifications_in_an_encoding_without_codec(aconn: Any) -> None:
    seen: list[str] = []
    aconn.add_notify_handler(lambda n: seen.append(n.payload))
    await aconn.execute("set client_encoding to 'EUC_TW'")
    await aconn.commit()
    await aconn.execute("listen enc_ch")
    await aconn.commit()
    # '一' is 0xC4 0xA1 in EUC_TW: valid UTF-8 too ('ġ'), so misreading shows.
    one = "convert_from('\\xc4a1'::bytea, 'EUC_TW')"
    await aconn.execute(f"select pg_notify('enc_ch', 'ascii'), pg_notify('enc_ch', 'zh' || {one})")
    await aconn.commit()  # delivered with the result of the commit
    # Non-ASCII cannot be read without a codec: replaced, never misread.
    assert seen[0] == "ascii" and seen[1][:2] == "zh" and set(seen[1][2:]) == {"\ufffd"}


def test_which_encodings_have_no_python_codec() -> None:
    missing = {name for name, codec in _PG_TO_PY.items() if codec is None}
    assert missing == {"EUC_TW", "MULE_INTERNAL"}
    for name, codec in _PG_TO_PY.items():
        if codec is not None:
            codecs.lookup(codec)
        # Rule 4 of _encodings: ASCII is ASCII in every client encoding.
        codec = py_encoding(name).python_codec
        ascii_text = "".join(map(chr, range(128)))
        assert ascii_text.encode(codec) == ascii_text.encode()
        assert ascii_text.encode().decode(codec) == ascii_text


# -- the other parameters the driver depends on -------------------------------

_VALUES = [
    dt.date(2024, 1, 2),
    dt.datetime(2024, 1, 2, 3, 4, 5, 500000),
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.timedelta(days=-1, seconds=7200),
    dt.timedelta(microseconds=-1),
    dt.time(3, 4, 5),
]


@pytest.mark.parametrize(
    "setting",
    [
        "datestyle to 'SQL, DMY'",
        "datestyle to 'German'",
        "datestyle to 'Postgres, MDY'",
        "intervalstyle to sql_standard",
        "intervalstyle to iso_8601",
        "intervalstyle to postgres_verbose",
    ],
)
async def test_date_styles_parameters_and_results(aconn: Any, setting: str) -> None:
    await aconn.execute(f"set {setting}")
    for value in _VALUES:
        # Text parameters mean the same as binary ones whatever the style.
        cur = await aconn.execute("select %t = %b, %s = %b", (value,) * 4)
        assert await cur.fetchone() == (True, True), value
        binary = aconn.cursor(binary=True)
        await binary.execute("select %s", (value,))
        assert await binary.fetchone() == (value,)
        # Text results in a style the loaders do not read: a DataError, never a wrong value.
        cur = await aconn.execute("select %b", (value,))
        try:
            assert await cur.fetchone() == (value,)
        except errors.DataError as ex:
            assert "ISO" in str(ex) or "postgres" in str(ex)


@pytest.mark.parametrize("scope", ["session", "local"])
@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_timezone_changes_are_followed(aconn: Any, scope: str, end: str) -> None:
    instant = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    cur = aconn.cursor()
    await cur.execute("select %s::timestamptz", (instant,))
    await aconn.execute(f"set {scope} timezone to 'Asia/Kolkata'")
    kolkata = dt.timedelta(hours=5, minutes=30)
    for binary in (False, True):
        await cur.execute("select %s::timestamptz", (instant,), binary=binary)
        (got,) = await cur.fetchone()
        assert got == instant and got.utcoffset() == kolkata
    await getattr(aconn, end)()
    kept = scope == "session" and end == "commit"
    for binary in (False, True):
        await cur.execute("select %s::timestamptz", (instant,), binary=binary)
        (got,) = await cur.fetchone()
        assert got == instant and got.utcoffset() == (kolkata if kept else dt.timedelta(0))


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_literals_follow_standard_conforming_strings(aconn: Any, conforming: str) -> None:
    await aconn.execute(f"set standard_conforming_strings to {conforming}")
    text = "a\\b'c\\\\"
    for value in (text, [text, 'q"'], text.encode()):
        query = sql.SQL("select {}, {} = %s").format(sql.Literal(value), sql.Literal(value))
        cur = await aconn.execute(query, (value,))
        assert await cur.fetchone() == (value, True)


async def test_reset_all_and_discard_follow(aconn: Any) -> None:
    await aconn.execute("set client_encoding to 'LATIN1'")
    await aconn.execute("set timezone to 'Asia/Kolkata'")
    await aconn.commit()
    await aconn.execute("reset all")
    assert await encoding_of(aconn) == "UTF8"
    cur = await aconn.execute("select %s::text as colé", ("é€",))
    assert (cur.description[0].name, await cur.fetchone()) == ("colé", ("é€",))


_PIPELINE_CHANGES = {
    "set": "set client_encoding to 'LATIN1'",
    "set session": "SET SESSION client_encoding = 'LATIN1'",
    "set names": "set names 'LATIN1'",
    "set_config": "select set_config('client_encoding', 'LATIN1', false)",
    "reset": "reset client_encoding",
    "reset all": "reset all",
}


@pytest.mark.skipif(pq.version() < PIPELINE_LIBPQ, reason="libpq < 14: no pipeline")
@pytest.mark.parametrize("how", list(_PIPELINE_CHANGES))
async def test_change_queued_in_a_pipeline_never_misencodes(
    aconn: Any, admin: Any, how: str
) -> None:
    # The server reads each queued command in the encoding of the moment it
    # runs it, but reports a change only at the next sync point: the commands
    # queued after the change must be sent (and read) in the new encoding.
    aconn.autocommit = True
    await aconn.execute("create temp table enc (s text)")
    resets = how.startswith("reset")
    if resets:
        await aconn.execute("set client_encoding to 'LATIN1'")
    before = await encoding_of(aconn)
    async with aconn.pipeline():
        await aconn.execute(_PIPELINE_CHANGES[how])
        await aconn.execute("insert into enc values (%s)", ("é",))
        cur = await aconn.execute("select %s::text as colé, 'ü', s from enc", ("ë",))
        assert await cur.fetchone() == ("ë", "ü", "é")
        assert cur.description[0].name == "colé"
    after = await encoding_of(aconn)
    assert after != before
    assert after == ("UTF8" if resets else "LATIN1")
    cur = await aconn.execute("select s, length(s) from enc")
    assert await cur.fetchall() == [("é", 1)]


@pytest.mark.skipif(pq.version() < PIPELINE_LIBPQ, reason="libpq < 14: no pipeline")
async def test_change_hidden_in_a_function_is_reported(aconn: Any) -> None:
    # A change the driver cannot see coming is reported at the sync point
    # that reveals it, not passed over in silence.
    await aconn.execute(
        "create function pg_temp.latin() returns text language sql"
        " as $$ select set_config('client_encoding', 'LATIN1', false) $$"
    )
    p = aconn.pipeline()
    with pytest.raises(errors.InterfaceError, match="from UTF8 to LATIN1 inside the pipeline"):
        async with p:
            await aconn.execute("select pg_temp.latin()")
            await aconn.execute("select %s::text", ("é",))
    assert await encoding_of(aconn) == "LATIN1"
    cur = await aconn.execute("select %s::text, 'ü'", ("é",))
    assert await cur.fetchone() == ("é", "ü")


@pytest.mark.skipif(pq.version() < PIPELINE_LIBPQ, reason="libpq < 14: no pipeline")
@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_transaction_end_reverting_a_change_in_a_pipeline(aconn: Any, end: str) -> None:
    # SET LOCAL ends with its transaction: what follows the COMMIT in the
    # same pipeline is sent in the encoding of the session again.
    async with aconn.pipeline():
        await aconn.execute("begin")
        await aconn.execute("set local client_encoding to 'LATIN1'")
        await aconn.execute(end)
        cur = await aconn.execute("select %s::text, 'ü'", ("é",))
        assert await cur.fetchone() == ("é", "ü")
    assert await encoding_of(aconn) == "UTF8"


@pytest.mark.parametrize("pipeline", [False, True])
async def test_executemany_refuses_a_statement_changing_the_encoding(
    aconn: Any, pipeline: bool
) -> None:
    if pipeline and pq.version() < PIPELINE_LIBPQ:
        pytest.skip("libpq < 14: no pipeline")
    query = "select set_config('client_encoding', %s, false), %s::text"
    cur = aconn.cursor()
    with pytest.raises(errors.NotSupportedError, match="executemany.*client encoding"):
        if pipeline:
            async with aconn.pipeline():
                await cur.executemany(query, [("LATIN1", "é"), ("UTF8", "é")])
        else:
            await cur.executemany(query, [("LATIN1", "é"), ("UTF8", "é")])
    assert await encoding_of(aconn) == "UTF8"
    await cur.executemany(query, [("LATIN1", "é")])  # one set: nothing to misencode
    assert await encoding_of(aconn) == "LATIN1"
    assert await (await aconn.execute("select %s::text", ("é",))).fetchone() == ("é",)
