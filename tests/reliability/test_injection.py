"""B1 injection corpus, B2 ``%`` inside composed pieces, B3 NUL in queries and values.

Every hostile string goes through each way a value or a name can reach the
server: a ``%s`` / ``%(name)s`` parameter (bound by the server), a
``sql.Literal`` (quoted by the driver, run as text), a ``sql.Identifier``
(a table and a column of that name). Each must come back identical, and a
``canary`` temporary table — the target of every ``drop table canary`` in
the corpus — must still hold its row afterwards.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import psycopg3
from fix_flavours import Flavour, SyncFacade
from pgcluster import Cluster
from psycopg3 import errors, sql
from psycopg3.pq import TransactionStatus

pytestmark = pytest.mark.anyio

ONE_MIB = 1 << 20

CORPUS = [
    "'",
    "''",
    "' or '1'='1",
    "'; drop table canary; --",
    "'); drop table canary; --",
    "\\",
    "\\'",
    "'\\",
    "\\\\'",
    "x\\",
    "--",
    "-- comment\nselect 1",
    "/*",
    "*/",
    "/* drop table canary */",
    ";",
    "; drop table canary",
    "$$",
    "$$; drop table canary; $$",
    "$tag$",
    "$tag$ drop table canary; $tag$",
    "$a$'$a$",
    "E'",
    "E'\\x27'",
    "e'\\''; drop table canary; --",
    "U&'\\0027'",
    'U&"\\0022"',
    '"',
    '""',
    '"; drop table canary; --',
    "\u2019",  # right single quotation mark
    "\u02bc",  # modifier letter apostrophe
    "\uff07",  # fullwidth apostrophe
    "\u201c\u201d",  # double quotation marks
    "\uff02",  # fullwidth quotation mark
    "\u2032\u2033",  # primes
    "\uff1b",  # fullwidth semicolon
    "%s",
    "%(x)s",
    "%%",
    "{}",
    "{0}",
    "\r\n\t\x0b\x0c",
    "\u00a0\u200b\ufeff",
    "\x7f\x01",
    "select 1",
    "drop table canary",
    "",
    " ",
    "😀 ünïcødé",
    ("'\\\";--/*$$%s" * (ONE_MIB // 13 + 1))[:ONE_MIB],  # 1 MiB of the above
]
#: The corpus as names: PostgreSQL truncates a name past 63 bytes (NAMEDATALEN)
#: and refuses an empty one, so those are tested as values only.
NAMES = [text for text in CORPUS if 0 < len(text.encode()) <= 63]


def short(text: str) -> str:
    return repr(text) if len(text) < 40 else f"{text[:20]!r}... ({len(text)} chars)"


def context(conn: Any) -> Any:
    """The connection to render `sql` objects with (the real one under a facade)."""
    return conn.target if isinstance(conn, SyncFacade) else conn


@pytest.fixture
async def conn(flavour: Flavour, dsn: str) -> AsyncIterator[Any]:
    """An autocommit connection with a ``canary`` temporary table of one row."""
    conn = await flavour.connect(dsn, autocommit=True)
    try:
        await conn.execute("create temp table canary (v text)")
        await conn.execute("insert into canary values ('alive')")
        yield conn
        cur = await conn.execute("select v from canary")
        assert await cur.fetchall() == [("alive",)]
    finally:
        await conn.close()


async def fetchone(conn: Any, query: Any, params: Any = None) -> Any:
    cur = await conn.execute(query, params)
    return await cur.fetchone()


# B1 ------------------------------------------------------------------------


@pytest.mark.scenario("B1")
async def test_hostile_strings_as_parameters(conn: Any, observe: Callable[[str], None]) -> None:
    await conn.execute("create temp table store (id int, v text)")
    wrong = []
    for i, text in enumerate(CORPUS):
        row = await fetchone(conn, "insert into store values (%s, %s) returning v", [i, text])
        named = await fetchone(
            conn,
            "select %(v)s::text, %(v)s = %(w)s, %(t)t::text",
            {"v": text, "w": text, "t": text},
        )
        binary = await fetchone(conn, "select %b::text", [text])
        if row != (text,) or named != (text, True, text) or binary != (text,):
            wrong.append(short(text))
    cur = await conn.execute("select v from store order by id")
    stored = [value for (value,) in await cur.fetchall()]
    assert wrong == []
    assert stored == CORPUS
    observe(f"{len(CORPUS)} hostile strings (largest 1 MiB) round-tripped as %s/%(name)s/%b")


@pytest.mark.scenario("B1")
async def test_hostile_strings_through_literal(conn: Any, observe: Callable[[str], None]) -> None:
    query = sql.SQL("select {}::text, length({})")
    wrong = []
    for text in CORPUS:
        expected = (text, len(text))
        composed = query.format(sql.Literal(text), sql.Literal(text))
        # Quoted by libpq (the connection), by the driver alone, and executed as is.
        for rendering in (composed.as_string(context(conn)), composed.as_string(None), composed):
            if await fetchone(conn, rendering) != expected:
                wrong.append(short(text))
    assert wrong == []
    observe(f"{len(CORPUS)} hostile strings round-tripped through sql.Literal")


@pytest.mark.scenario("B1")
async def test_hostile_strings_as_identifiers(conn: Any, observe: Callable[[str], None]) -> None:
    wrong = []
    for text in NAMES:
        name = sql.Identifier(text)
        await conn.execute(sql.SQL("create temp table {} ({} text, other text)").format(name, name))
        await conn.execute(
            sql.SQL("insert into {} ({}) values ({})").format(name, name, sql.Literal(text))
        )
        value = await fetchone(conn, sql.SQL("select {} from {}").format(name, name))
        catalog = await fetchone(
            conn,
            "select c.relname::text, a.attname::text from pg_class c"
            " join pg_attribute a on a.attrelid = c.oid and a.attnum = 1"
            " where c.oid = %s::regclass",
            [name.as_string(context(conn))],
        )
        await conn.execute(sql.SQL("drop table {}").format(name))
        if value != (text,) or catalog != (text, text):
            wrong.append(short(text))
    assert wrong == []
    observe(f"{len(NAMES)} hostile names created, filled, read back and dropped")


@pytest.mark.scenario("B1")
async def test_several_statements_with_parameters_run_nothing(
    conn: Any, dsn: str, session_cluster: Cluster | None, observe: Callable[[str], None]
) -> None:
    for text in ["x", "'; drop table canary; --", "$$"]:
        for query in (
            "select %s; drop table canary",
            "select %s; insert into canary values ('dead')",
        ):
            with pytest.raises(errors.SyntaxError) as caught:
                await conn.execute(query, [text])
            assert isinstance(caught.value, psycopg3.ProgrammingError)
            assert caught.value.sqlstate == "42601"
    cur = await conn.execute("select v from canary")
    assert await cur.fetchall() == [("alive",)]
    if session_cluster is None:
        observe("multi-statement with parameters: SyntaxError 42601, canary intact")
        return
    # The value travels apart from the statement: the log shows $1 in the text.
    token = f"inlined-{secrets.token_hex(6)}"
    tag = f"probe-{secrets.token_hex(6)}"
    mark = session_cluster.log_size()
    assert await fetchone(conn, f"select %s::text /* {tag} */", [token]) == (token,)
    log = session_cluster.read_log(mark)
    statements = [line for line in log.splitlines() if tag in line]
    assert statements and all("$1" in line and token not in line for line in statements)
    assert re.search(rf"parameters: \$1 = '{token}'", log)
    observe("multi-statement with parameters: SyntaxError 42601, canary intact; log shows $1")


@pytest.mark.scenario("B2", flavour="any")
def test_percent_is_escaped_in_names_and_values_on_request() -> None:
    query = sql.SQL("select {}, {}, %s").format(sql.Identifier("100%"), sql.Literal("%s"))
    assert query.as_bytes(None) == b"""select "100%", '%s', %s"""
    assert query.as_bytes(None, escape_percent=True) == b"""select "100%%", '%%s', %s"""


@pytest.mark.scenario("B2")
async def test_percent_in_composed_pieces_with_parameters(conn: Any) -> None:
    # A name or value holding "%" must stay data when the query has parameters.
    for text in ["100%", "%s", "%(x)s", "%%", "%b %t"]:
        name = sql.Identifier(text)
        await conn.execute(sql.SQL("create temp table {} (v text)").format(name))
        insert = sql.SQL("insert into {} values ({}), (%s)").format(name, sql.Literal(text))
        await conn.execute(insert, [text])
        cur = await conn.execute(sql.SQL("select v from {} where v = %s").format(name), [text])
        assert await cur.fetchall() == [(text,), (text,)]
        await conn.execute(sql.SQL("drop table {}").format(name))


# B3 ------------------------------------------------------------------------


@pytest.mark.scenario("B3")
async def test_nul_in_text_parameter_refused_before_sending(
    flavour: Flavour, dsn: str, observe: Callable[[str], None]
) -> None:
    conn = await flavour.connect(dsn)
    try:
        for status in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
            if status == TransactionStatus.INTRANS:
                await conn.execute("select 1")
            for query, params in (
                ("select %s", ["a\x00b"]),
                ("select %t", ["a\x00b"]),
                ("select %b", ["a\x00b"]),
                ("select %(v)s", {"v": "\x00"}),
            ):
                with pytest.raises(psycopg3.DataError, match="NUL"):
                    await conn.execute(query, params)
                # Nothing was sent: no transaction opened, none aborted.
                assert conn.info.transaction_status == status, query
            assert await fetchone(conn, "select 1") == (1,)
        await conn.rollback()
    finally:
        await conn.close()
    observe("str with NUL: DataError, transaction status unchanged (IDLE and INTRANS)")


@pytest.mark.scenario("B3")
async def test_bytes_with_nul_round_trip_as_bytea(conn: Any) -> None:
    await conn.execute("create temp table blobs (id int, b bytea)")
    values = [b"\x00", b"a\x00b", bytes(range(256)) * 4, b"\x00" * 1000]
    for i, data in enumerate(values):
        for placeholder in ("%s", "%t", "%b"):
            assert await fetchone(conn, f"select {placeholder}::bytea", [data]) == (data,)
        await conn.execute("insert into blobs values (%s, %s)", [i, data])
    cur = await conn.execute("select b from blobs order by id")
    assert await cur.fetchall() == [(data,) for data in values]


@pytest.mark.scenario("B3")
async def test_nul_in_query_refused_before_libpq(flavour: Flavour, dsn: str) -> None:
    conn = await flavour.connect(dsn)
    try:
        for query, params in (
            ("select 1\x00", None),
            (b"select 1\x00; drop table x", None),
            ("select %s\x00", [1]),
            (sql.SQL("select 1\x00"), None),
            (sql.SQL("select {}, \x00").format(sql.Literal(1)), None),
        ):
            with pytest.raises((psycopg3.ProgrammingError, psycopg3.DataError), match="NUL"):
                await conn.execute(query, params)
            # Refused before any statement went out, not even BEGIN.
            assert conn.info.transaction_status == TransactionStatus.IDLE, repr(query)
        assert await fetchone(conn, "select 'still usable'") == ("still usable",)
    finally:
        await conn.close()


@pytest.mark.scenario("B3", flavour="any")
def test_nul_in_identifier_and_literal_refused() -> None:
    with pytest.raises(psycopg3.DataError):
        sql.Identifier("a\x00b")
    with pytest.raises(psycopg3.DataError):
        sql.Identifier("schema", "\x00")
    with pytest.raises(psycopg3.DataError):
        sql.Literal("a\x00b").as_string(None)
    # bytes are bytea: the NUL travels hex-encoded.
    assert sql.Literal(b"a\x00b").as_string(None).strip() == "E'\\\\x610062'::bytea"
