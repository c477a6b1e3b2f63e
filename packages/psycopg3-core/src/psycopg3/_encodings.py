"""Map PostgreSQL client encoding names to Python codecs.

Must not: talk to libpq beyond reading the ``client_encoding`` parameter of a
connection it is handed, or import any concurrency framework.

Rules:

1. The server reports the client encoding by its canonical name (``UTF8``,
   ``LATIN1``, ``WIN1252``...); the lookup also accepts the aliases that
   PostgreSQL itself accepts in ``SET client_encoding`` (``UNICODE``,
   ``ISO88591``...), ignoring case, dashes and underscores.
2. ``SQL_ASCII`` means "no conversion": the server stores and returns bytes as
   the client sent them. We decode those bytes as UTF-8 with the
   ``surrogateescape`` error handler, so that text which really is UTF-8 (the
   common case) reads naturally and any other byte survives a round trip
   unchanged (a string loaded from the server dumps back to the same bytes).
3. An encoding without a Python codec (``EUC_TW``, ``MULE_INTERNAL``) gets
   an "ASCII only" codec: ASCII text converts exactly (so ``SET
   client_encoding TO 'UTF8'`` always works); encoding anything else raises
   ``NotSupportedError`` naming the encoding and the fix, and decoding a
   non-ASCII byte raises ``UnicodeDecodeError`` (the transformer reports it as
   a ``DataError`` naming the column).
4. Every PostgreSQL client encoding writes the characters U+0000..U+007F as
   the single bytes 0x00..0x7F (checked in tests for every codec here).
   Python's ``shift_jis_2004`` does not: it reads 0x5C and 0x7E as YEN SIGN
   and OVERLINE, and writes backslash and tilde as two-byte characters, where
   PostgreSQL reads 0x5C and 0x7E as backslash and tilde (and writes YEN SIGN
   and OVERLINE as 0x5C and 0x7E too). ``psycopg3_shift_jis_2004`` is that
   codec corrected to PostgreSQL's mapping.
   Only EUC_TW and MULE_INTERNAL also promise that a byte below 0x80 is never
   part of a multibyte character (their multibyte characters use bytes >= 0x80
   only), which is what makes rule 3 exact for them; SJIS, BIG5, GBK, UHC,
   GB18030 and JOHAB use 0x40..0x7E as trailing bytes, so they need their real
   codec to be split into characters (PostgreSQL allows them as client
   encodings only for that reason).
5. PostgreSQL (14 and later) reports a changed parameter only when the
   server is ready for the next query: a query of several statements that
   changes the client encoding tells only after all its results, so which
   results came before the change is unknown. Their text is decoded with
   `changed_encoding()`: accepted only where the old and the new encoding
   read the bytes alike (ASCII text, typically), a ``DataError`` otherwise.
   An error, though, is read in the encoding the command was sent in: a
   failed transaction reverts a ``SET client_encoding`` made in it *after*
   sending the error. (A command that changes the encoding and then fails
   reverts its change without a word: its error, sent in the changed
   encoding, is read in the old one, with "replace".)
   Beyond reach: a query that changes the encoding and changes it back
   reports nothing.
   Commands whose parameters are encoded before an earlier one has run
   cannot follow a change: ``may_change_encoding()`` tells which query texts
   may make one. A pipeline syncs after such a command (``_pipeline``, rule
   7); ``executemany()`` refuses it.
6. ``py_encoding`` and ``pgconn_py_encoding`` are called for every command:
   their answers are cached per name.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .pq import PGconn

__all__ = [
    "PyEncoding",
    "changed_encoding",
    "may_change_encoding",
    "py_encoding",
    "pgconn_py_encoding",
    "pgconn_encoding",
    "DEFAULT_ENCODING",
]

# Canonical PostgreSQL name -> Python codec name. None: no Python codec exists.
_PG_TO_PY: dict[str, str | None] = {
    "BIG5": "big5",
    "EUC_CN": "gb2312",
    "EUC_JP": "euc_jp",
    "EUC_JIS_2004": "euc_jis_2004",
    "EUC_KR": "euc_kr",
    "EUC_TW": None,
    "GB18030": "gb18030",
    "GBK": "gbk",
    "ISO_8859_5": "iso8859_5",
    "ISO_8859_6": "iso8859_6",
    "ISO_8859_7": "iso8859_7",
    "ISO_8859_8": "iso8859_8",
    "JOHAB": "johab",
    "KOI8R": "koi8_r",
    "KOI8U": "koi8_u",
    "LATIN1": "iso8859_1",
    "LATIN2": "iso8859_2",
    "LATIN3": "iso8859_3",
    "LATIN4": "iso8859_4",
    "LATIN5": "iso8859_9",
    "LATIN6": "iso8859_10",
    "LATIN7": "iso8859_13",
    "LATIN8": "iso8859_14",
    "LATIN9": "iso8859_15",
    "LATIN10": "iso8859_16",
    "MULE_INTERNAL": None,
    "SJIS": "shift_jis",
    "SHIFT_JIS_2004": "psycopg3_shift_jis_2004",  # see rule 4
    "SQL_ASCII": "utf-8",  # see rule 2: paired with surrogateescape
    "UHC": "cp949",
    "UTF8": "utf-8",
    "WIN866": "cp866",
    "WIN874": "cp874",
    "WIN1250": "cp1250",
    "WIN1251": "cp1251",
    "WIN1252": "cp1252",
    "WIN1253": "cp1253",
    "WIN1254": "cp1254",
    "WIN1255": "cp1255",
    "WIN1256": "cp1256",
    "WIN1257": "cp1257",
    "WIN1258": "cp1258",
}

# Aliases accepted by the server (normalised: upper case, no '-' or '_').
_ALIASES = {
    "UNICODE": "UTF8",
    "ISO88591": "LATIN1",
    "ISO88592": "LATIN2",
    "ISO88593": "LATIN3",
    "ISO88594": "LATIN4",
    "ISO88599": "LATIN5",
    "ISO885910": "LATIN6",
    "ISO885913": "LATIN7",
    "ISO885914": "LATIN8",
    "ISO885915": "LATIN9",
    "ISO885916": "LATIN10",
    "WIN": "WIN1251",
    "ALT": "WIN866",
    "SHIFTJIS": "SJIS",
    "KOI8": "KOI8R",
    "TCVN": "WIN1258",
    "TCVN5712": "WIN1258",
    "VSCII": "WIN1258",
    "ABC": "WIN1258",
}
_BY_NORMAL_NAME = {name.replace("_", ""): name for name in _PG_TO_PY}


# The codecs of rules 3, 4 and 5, by name; registered once with `codecs.register`.
_ASCII_ONLY_PREFIX = "psycopg3_ascii_only_"
_own_codecs: dict[str, codecs.CodecInfo] = {}
codecs.register(_own_codecs.get)

_TO_PYTHON_SJIS2004 = {0x5C: "\xa5", 0x7E: "\u203e"}
_FROM_PYTHON_SJIS2004 = {0xA5: "\\", 0x203E: "~"}


def _encode_sjis2004(text: str, errors_handler: str = "strict") -> tuple[bytes, int]:
    return codecs.encode(
        text.translate(_TO_PYTHON_SJIS2004), "shift_jis_2004", errors_handler
    ), len(text)


def _decode_sjis2004(data: bytes, errors_handler: str = "strict") -> tuple[str, int]:
    text = codecs.decode(bytes(data), "shift_jis_2004", errors_handler)
    return text.translate(_FROM_PYTHON_SJIS2004), len(data)


_own_codecs["psycopg3_shift_jis_2004"] = codecs.CodecInfo(
    _encode_sjis2004,
    _decode_sjis2004,  # type: ignore[arg-type]
    name="psycopg3_shift_jis_2004",
)


def _ascii_only_codec(pgname: str) -> str:
    """Return the name of the "ASCII only" codec for a codec-less encoding (rule 3)."""
    name = _ASCII_ONLY_PREFIX + pgname.lower()
    if name in _own_codecs:
        return name
    fix = (
        f"Python has no codec for the client encoding {pgname}, so only ASCII text"
        " can be converted; run \"SET client_encoding TO 'UTF8'\" (or connect with"
        " client_encoding=UTF8)"
    )

    def encode(text: str, errors_handler: str = "strict") -> tuple[bytes, int]:
        try:
            return codecs.ascii_encode(text, errors_handler)
        except UnicodeEncodeError as ex:
            raise errors.NotSupportedError(
                f"cannot send {text[ex.start : ex.end]!r}: {fix}"
            ) from None

    def decode(data: bytes, errors_handler: str = "strict") -> tuple[str, int]:
        try:
            return codecs.ascii_decode(data, errors_handler)
        except UnicodeDecodeError as ex:
            raise UnicodeDecodeError(pgname, ex.object, ex.start, ex.end, fix) from None

    _own_codecs[name] = codecs.CodecInfo(encode, decode, name=name)  # type: ignore[arg-type]
    return name


def _either_codec(old: PyEncoding, new: PyEncoding) -> str:
    """Return the name of a codec reading bytes alike in two encodings (rule 5)."""
    name = f"psycopg3_either_{old.pgname.lower()}_or_{new.pgname.lower()}"
    if name in _own_codecs:
        return name
    old_codec, new_codec = old.python_codec, new.python_codec
    why = (
        f"the client encoding changed from {old.pgname} to {new.pgname} during the"
        " query, so which of them its results are in is unknown; change"
        " client_encoding in a query of its own"
    )

    def encode(text: str, errors_handler: str = "strict") -> tuple[bytes, int]:
        return codecs.encode(text, new_codec, errors_handler), len(text)

    def decode(data: bytes, errors_handler: str = "strict") -> tuple[str, int]:
        data = bytes(data)
        try:
            text = data.decode(old_codec, old.errors)
            if text == data.decode(new_codec, new.errors):
                return text, len(data)
        except UnicodeDecodeError:
            pass
        if errors_handler != "strict":  # messages and names: keep the ASCII
            return codecs.ascii_decode(data, errors_handler)
        start = next((i for i, byte in enumerate(data) if byte >= 0x80), 0)
        raise UnicodeDecodeError(name, data, start, start + 1, why)

    _own_codecs[name] = codecs.CodecInfo(encode, decode, name=name)  # type: ignore[arg-type]
    return name


def changed_encoding(old: PyEncoding, new: PyEncoding) -> PyEncoding:
    """Return the encoding to read the results of a query that changed it (rule 5).

    :param old: the client encoding when the query was sent.
    :param new: the client encoding reported after its results.
    """
    return PyEncoding(f"{old.pgname} or {new.pgname}", _either_codec(old, new))


class PyEncoding:
    """A Python codec and error handler to convert a connection's text.

    :param pgname: the PostgreSQL name it was derived from.
    :param codec: the Python codec name, or None if Python has none.
    :param errors: the error handler to use in both directions.
    """

    __slots__ = ("pgname", "codec", "errors")

    def __init__(self, pgname: str, codec: str | None, errors: str = "strict"):
        self.pgname = pgname
        self.codec = codec
        self.errors = errors

    @property
    def python_codec(self) -> str:
        """The Python codec name: without a real one, the "ASCII only" codec (rule 3)."""
        if self.codec is None:
            return _ascii_only_codec(self.pgname)
        return self.codec

    def __repr__(self) -> str:
        return f"PyEncoding({self.pgname!r}, {self.codec!r}, {self.errors!r})"

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, PyEncoding):
            return NotImplemented
        return (self.pgname, self.codec, self.errors) == (other.pgname, other.codec, other.errors)

    def __hash__(self) -> int:
        return hash((self.pgname, self.codec, self.errors))


DEFAULT_ENCODING = PyEncoding("UTF8", "utf-8")
_cache: dict[str | bytes, PyEncoding] = {}


# Query texts that may change the client encoding (rule 5). A false match
# costs a sync point in a pipeline.
_MAY_CHANGE_ENCODING = re.compile(
    rb"client_encoding|\bset\s+(?:session\s+|local\s+)?names\b|\b(?:reset|discard)\s+all\b",
    re.IGNORECASE,
)


def may_change_encoding(query: bytes) -> bool:
    """Whether running ``query`` may change the client encoding, by its text.

    True for ``SET [SESSION|LOCAL] client_encoding``/``NAMES``,
    ``set_config('client_encoding', …)``, ``RESET client_encoding``,
    ``RESET ALL``, ``DISCARD ALL``; a function that changes it from inside
    is beyond what the text shows.
    """
    return _MAY_CHANGE_ENCODING.search(query) is not None


def py_encoding(pgname: str | bytes) -> PyEncoding:
    """Return the Python codec to use for a PostgreSQL encoding name.

    :param pgname: an encoding name as PostgreSQL spells it (any alias).
    :raises NotSupportedError: if PostgreSQL has no encoding of that name.
    """
    try:
        return _cache[pgname]
    except KeyError:
        pass
    if isinstance(pgname, bytes):
        result = _cache[pgname] = py_encoding(pgname.decode("ascii", "replace"))
        return result
    normal = pgname.upper().replace("-", "").replace("_", "")
    canonical = _ALIASES.get(normal) or _BY_NORMAL_NAME.get(normal)
    if canonical is None:
        raise errors.NotSupportedError(f"unknown PostgreSQL encoding: {pgname!r}")
    codec = _PG_TO_PY[canonical]
    if codec is not None:
        codec = codecs.lookup(codec).name  # normalise, fail early if missing
    handler = "surrogateescape" if canonical == "SQL_ASCII" else "strict"
    result = _cache[pgname] = PyEncoding(canonical, codec, handler)
    return result


def pgconn_py_encoding(pgconn: PGconn | None) -> PyEncoding:
    """Return the encoding of a connection's text (UTF-8 with no connection).

    :param pgconn: the connection whose ``client_encoding`` to read, or None.
    """
    if pgconn is None:
        return DEFAULT_ENCODING
    name = pgconn.parameter_status(b"client_encoding")
    if not name:
        return DEFAULT_ENCODING
    return py_encoding(name)


def pgconn_encoding(pgconn: PGconn | None) -> str:
    """Return the Python codec name of a connection's client encoding.

    For messages (decoded with ``errors="replace"``) and names: an encoding
    without a Python codec gives its "ASCII only" codec (rule 3).

    :param pgconn: the connection whose ``client_encoding`` to read, or None.
    """
    return pgconn_py_encoding(pgconn).python_codec
