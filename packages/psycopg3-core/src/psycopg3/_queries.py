"""Turn a query with ``%s``-style placeholders and its parameters into what libpq sends.

Must not: send anything, talk to libpq, or import any concurrency framework.

Rules:

1. Placeholders: ``%s`` (the dumper's choice of format), ``%t`` (text),
   ``%b`` (binary), their named forms ``%(name)s``, ``%(name)t``,
   ``%(name)b``, and ``%%`` for a literal ``%``. They become ``$1, $2...``;
   a name used twice is the same ``$n``. A query uses positional or named
   placeholders, not both.
2. With ``params=None`` the query is sent exactly as written: no placeholder
   and no ``%%`` is processed (as DB-API drivers do), so SQL with a literal
   ``%`` needs no escaping when it takes no parameters. With any other
   ``params``, even an empty tuple, ``%`` must be written ``%%``.
3. Parsing depends only on the query text and the encoding, so its result is
   cached (LRU): a query run again costs a dictionary lookup.
4. The query is parsed after encoding: ``%`` (0x25) is never the second byte
   of a multi-byte character in any client encoding PostgreSQL supports.
5. Every mistake is a ``ProgrammingError`` raised before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from . import errors
from ._adapt.base import PyFormat
from ._arguments import wrong_argument
from .sql import Composable

if TYPE_CHECKING:
    from ._transformer import Transformer
    from .pq import Format

__all__ = ["PostgresQuery", "Query", "Params"]


class _Composable(Protocol):
    def as_bytes(self, context: Any) -> bytes: ...


Query = str | bytes | _Composable
"""A query: text, bytes already encoded, or a composed ``psycopg3.sql`` object."""
Params = Sequence[Any] | Mapping[str, Any]
"""Query parameters: a sequence for ``%s``, a mapping for ``%(name)s``."""


class PostgresQuery:
    """A query converted for ``exec_params``: ``query``, ``params``, ``types``, ``formats``.

    :param transformer: the transformer that dumps the parameters (and gives
        the connection's encoding).
    """

    __slots__ = ("query", "params", "types", "formats", "_tx")

    def __init__(self, transformer: Transformer):
        self._tx = transformer
        self.query = b""
        self.params: list[bytes | None] | None = None
        self.types: list[int] = []
        self.formats: list[Format] = []

    def prepare_key(self) -> tuple[bytes, tuple[int, ...]]:
        """The key of the converted query in ``psycopg3._prepare``: its text and types."""
        return (self.query, tuple(self.types or ()))

    def convert(self, query: Query, params: Params | None) -> None:
        """Convert *query* and dump *params*, setting this object's attributes.

        :param query: the query, with placeholders if *params* is not None.
        :param params: the parameters, or None to send the query as it is.
        :raises ProgrammingError: on a malformed placeholder or parameters that
            do not match the placeholders.
        :raises DataError: if a parameter's value cannot be represented.
        """
        encoding = self._tx.encoding
        if not isinstance(query, (str, bytes)):
            if isinstance(query, Composable):
                # With parameters the composed text is parsed for placeholders:
                # a "%" inside a name or a literal must stay a "%".
                query = query.as_bytes(self._tx, escape_percent=params is not None)
            elif hasattr(query, "as_bytes"):
                query = query.as_bytes(self._tx)
            else:
                raise wrong_argument("the query", query, "a str, bytes or psycopg3.sql.Composable")
        if params is None:
            if isinstance(query, str):
                query = _encode_query(query, encoding.python_codec, encoding.errors)
            if b"\x00" in query:
                raise _nul_error()
            self.query = query
            self.params = None
            self.types = []
            self.formats = []
            return

        parsed = _parse_query(query, encoding.python_codec, encoding.errors)
        if parsed.names is None:
            values = _positional_values(parsed, params)
        else:
            values = _named_values(parsed, params)
        self._tx.dump_sequence(values, parsed.formats, names=parsed.param_names)
        self.query = parsed.query
        self.params = self._tx.values
        self.types = self._tx.types
        self.formats = self._tx.formats


#: The most parameters the protocol can carry (a 16-bit count).
MAX_PARAMS = 65535


def _nul_error() -> errors.DataError:
    # libpq would stop reading the query at the NUL: it is refused before
    # anything (an implicit BEGIN included) is sent.
    return errors.DataError("the query contains a NUL byte, which PostgreSQL cannot receive")


class _ParsedQuery(NamedTuple):
    query: bytes  # with $n
    formats: tuple[PyFormat, ...]  # one per $n
    names: tuple[str, ...] | None  # the name of each $n, None if positional
    param_names: tuple[str, ...] | None  # for error messages, None for $n


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _positional_values(parsed: _ParsedQuery, params: Params) -> Sequence[Any]:
    if type(params) is not tuple and type(params) is not list:
        _check_params_type(params)
        if isinstance(params, Mapping):
            if not parsed.formats and not params:
                return ()
            raise errors.ProgrammingError(
                "the query uses positional placeholders (%s) but the parameters are a"
                f" mapping ({type(params).__name__}): pass a sequence, or use %(name)s"
            )
    if len(params) != len(parsed.formats):
        nparams = len(params)
        raise errors.ProgrammingError(
            f"the query has {_plural(len(parsed.formats), 'placeholder')} but"
            f" {_plural(nparams, 'parameter')} {'was' if nparams == 1 else 'were'} passed"
        )
    return params


def _named_values(parsed: _ParsedQuery, params: Params) -> list[Any]:
    if not isinstance(params, Mapping):
        _check_params_type(params)
        raise errors.ProgrammingError(
            "the query uses named placeholders (%(name)s) but the parameters are a"
            f" sequence ({type(params).__name__}): pass a mapping, or use %s"
        )
    assert parsed.names is not None
    try:
        return [params[name] for name in parsed.names]
    except KeyError as ex:
        raise errors.ProgrammingError(f"query parameter missing: {ex.args[0]!r}") from None


def _check_params_type(params: Any) -> None:
    if isinstance(params, (str, bytes, bytearray)):
        raise errors.ProgrammingError(
            f"query parameters must be a sequence or a mapping, not {type(params).__name__}:"
            " to pass a single value, use a one-item tuple: (value,)"
        )
    if not isinstance(params, (Sequence, Mapping)):
        raise errors.ProgrammingError(
            f"query parameters must be a sequence or a mapping, not {type(params).__name__}"
        )


# %, then maybe "(name)", then the format character (maybe missing at the end).
_placeholder = re.compile(rb"%(\(([^)]*)\))?(.?)", re.DOTALL)
_HELP = "use %s, %t, %b, %(name)s, %(name)t, %(name)b, or %% for a literal %"


def _error_at(query: bytes, start: int, end: int, what: str, codec: str) -> errors.ProgrammingError:
    before = query[max(0, start - 25) : start].decode(codec, "replace")
    found = query[start:end].decode(codec, "replace")
    after = query[end : end + 10].decode(codec, "replace")
    return errors.ProgrammingError(
        f"{what} {found!r} at byte {start} of the query ({before}>>>{found}<<<{after}): {_HELP}"
    )


def _encode_query(query: str, codec: str, errors_handler: str) -> bytes:
    try:
        return query.encode(codec, errors_handler)
    except UnicodeEncodeError as ex:
        # A lone surrogate, or a character the session's encoding lacks.
        raise errors.DataError(
            f"cannot encode {query[ex.start : ex.end]!r} (character {ex.start} of the query)"
            f" in the client encoding {codec} ({ex.reason}): the query text must hold only"
            " characters that encoding can represent"
        ) from None


@lru_cache(maxsize=512)
def _parse_query(query: str | bytes, codec: str, errors_handler: str) -> _ParsedQuery:
    # Checked here, once per distinct query (the parse is cached), before
    # anything is sent.
    data = _encode_query(query, codec, errors_handler) if isinstance(query, str) else query
    if b"\x00" in data:
        raise _nul_error()
    chunks: list[bytes] = []
    formats: list[PyFormat] = []
    names: list[str] = []
    param_names: list[str] = []
    by_name: dict[str, int] = {}
    positional_at: int | None = None
    named_at: int | None = None
    last = 0
    for match in _placeholder.finditer(data):
        start, end = match.span()
        has_name, raw_name, fmt_char = match.group(1), match.group(2), match.group(3)
        chunks.append(data[last:start])
        last = end
        if fmt_char == b"%" and has_name is None:
            chunks.append(b"%")
            continue
        if fmt_char == b"(":
            raise _error_at(data, start, len(data), "unterminated placeholder", codec)
        if fmt_char == b"":
            raise _error_at(data, start, end, "incomplete placeholder", codec)
        if fmt_char not in (b"s", b"t", b"b"):
            raise _error_at(data, start, end, "unsupported placeholder", codec)
        fmt = PyFormat(fmt_char.decode("ascii"))

        if has_name is None:
            positional_at = start
            formats.append(fmt)
            chunks.append(b"$%d" % len(formats))
        else:
            name = raw_name.decode(codec, errors_handler)
            if not name:
                raise _error_at(data, start, end, "placeholder without a name", codec)
            named_at = start
            number = by_name.get(name)
            if number is None:
                formats.append(fmt)
                number = by_name[name] = len(formats)
                names.append(name)
                param_names.append(f"%({name}){fmt.value}")
            elif formats[number - 1] is not fmt:
                first = param_names[number - 1]
                raise _error_at(
                    data, start, end, f"the placeholder {first} is used again as", codec
                )
            chunks.append(b"$%d" % number)
        if positional_at is not None and named_at is not None:
            at = max(positional_at, named_at)
            raise _error_at(
                data, at, end, "the query mixes %s and %(name)s placeholders: found", codec
            )
    chunks.append(data[last:])
    if len(formats) > MAX_PARAMS:
        raise errors.ProgrammingError(
            f"the query has {len(formats)} placeholders: PostgreSQL accepts at most {MAX_PARAMS}"
        )
    return _ParsedQuery(
        b"".join(chunks),
        tuple(formats),
        tuple(names) if named_at is not None else None,
        tuple(param_names) if named_at is not None else None,
    )
