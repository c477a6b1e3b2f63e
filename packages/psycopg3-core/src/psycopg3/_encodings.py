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
3. An encoding without a Python codec (``EUC_TW``, ``MULE_INTERNAL``) raises
   ``NotSupportedError`` when text must actually be converted.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .pq import PGconn

__all__ = ["PyEncoding", "py_encoding", "pgconn_py_encoding", "pgconn_encoding", "DEFAULT_ENCODING"]

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
    "SHIFT_JIS_2004": "shift_jis_2004",
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
        """The Python codec name; raise ``NotSupportedError`` if there is none."""
        if self.codec is None:
            raise errors.NotSupportedError(
                f"the PostgreSQL client encoding {self.pgname!r} has no Python codec:"
                " use a different client_encoding"
            )
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
_cache: dict[str, PyEncoding] = {}


def py_encoding(pgname: str | bytes) -> PyEncoding:
    """Return the Python codec to use for a PostgreSQL encoding name.

    :param pgname: an encoding name as PostgreSQL spells it (any alias).
    :raises NotSupportedError: if PostgreSQL has no encoding of that name.
    """
    if isinstance(pgname, bytes):
        pgname = pgname.decode("ascii", "replace")
    try:
        return _cache[pgname]
    except KeyError:
        pass
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

    For messages (decoded with ``errors="replace"``): an encoding without a
    Python codec gives ``"utf-8"`` here instead of an error.

    :param pgconn: the connection whose ``client_encoding`` to read, or None.
    """
    return pgconn_py_encoding(pgconn).codec or "utf-8"
