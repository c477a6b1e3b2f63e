"""Compose SQL queries from trusted text, quoted names and quoted values.

Must not: send anything, wait, or import any concurrency framework. A
connection is only read (its encoding, its adapters, libpq's escaping).

Rules:

1. Only `SQL` holds text that reaches the server as written: it is the
   programmer's text. Everything a user could supply goes through
   `Identifier` (quoted with ``"``, inner ``"`` doubled) or `Literal`
   (dumped by the adapters, then quoted as a string constant), so a value
   can never end a name or a string early: injection is impossible by
   construction, not by inspection.
2. `SQL.format()` accepts only `Composable` arguments: a plain ``str`` is
   refused (``TypeError``) rather than guessed to be a name, a value or SQL.
   Such a ``TypeError`` or ``ValueError`` is also a ``ProgrammingError``.
3. A `Literal` is quoted by libpq's ``PQescapeLiteral`` when the context has a
   live connection (it knows the client encoding and returns ``E'...'`` when
   backslashes need it). Without one it is quoted for UTF-8 in the form that
   means the same whatever ``standard_conforming_strings`` says: ``'...'``
   when the text has no backslash, else ``E'...'`` with backslashes doubled.
4. A `Literal` names its type when the dumper knows it: ``'2024-01-01'::date``,
   ``'1.5'::double precision`` (the name is the type's ``regtype`` spelling,
   which always parses back to the same type). Integers dumped as int2/4/8
   are written bare (``42``, ``(-42)``: parenthesised, so that ``{}::text``
   or ``1-{}`` cannot change their meaning); larger ones are ``::numeric``.
   Strings are left untyped (their dumper's OID is 0: the server infers it
   from the context, as it does for ``%s``). ``None`` is ``NULL``.
5. NUL characters cannot be represented in a PostgreSQL name or text:
   they raise ``DataError``.
6. A query that goes with parameters is parsed for ``%s`` placeholders
   after rendering, where ``%%`` stands for ``%``. Rendered for that parser
   (``as_bytes(..., escape_percent=True)``), `Identifier` and `Literal`
   double their ``%``, so a name ``100%`` or a value ``'%s'`` stays data
   instead of becoming a placeholder or losing a character. `SQL` and
   `Placeholder` are never escaped: their ``%`` is the programmer's.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from . import errors
from ._adapt.base import AdaptContext, PyFormat, context_encoding
from ._arguments import ArgumentTypeError, ArgumentValueError
from ._encodings import PyEncoding
from ._transformer import Transformer

__all__ = ["Composable", "Composed", "SQL", "Identifier", "Literal", "Placeholder", "NULL"]

_INTEGER_OIDS = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_FORMATTER = string.Formatter()


def _encode(text: str, encoding: PyEncoding, what: str) -> bytes:
    try:
        return text.encode(encoding.python_codec, encoding.errors)
    except UnicodeEncodeError as ex:
        raise errors.DataError(
            f"cannot encode {what} {text[ex.start : ex.end]!r} in the client encoding"
            f" {encoding.pgname}"
        ) from None


class Composable(ABC):
    """A piece of a query that knows how to render itself for a connection.

    Pieces concatenate with ``+`` (giving a `Composed`) and repeat with ``*``.
    A query built from them can be passed to ``cursor.execute()`` directly.
    """

    __slots__ = ("_obj",)

    def __init__(self, obj: Any):
        self._obj = obj

    @abstractmethod
    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        """Return the piece as query bytes in the context's client encoding.

        :param context: a connection, a cursor, a transformer, or None (UTF-8
            and the global adapters).
        :param escape_percent: double the ``%`` of names and values, for a
            query whose placeholders will be parsed (module rule 6).
        """

    def as_string(self, context: AdaptContext | None = None) -> str:
        """Return the piece as query text, as the server would receive it.

        :param context: a connection, a cursor, a transformer, or None.
        """
        encoding = context_encoding(context)
        return self.as_bytes(context).decode(encoding.python_codec, encoding.errors)

    def __add__(self, other: Composable) -> Composed:
        if isinstance(other, Composed):
            return Composed([self, *other])
        if isinstance(other, Composable):
            return Composed([self, other])
        return NotImplemented

    def __mul__(self, count: int) -> Composed:
        return Composed([self] * count)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._obj == other._obj

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._obj!r})"


class Composed(Composable):
    """A sequence of `Composable` pieces rendered one after the other.

    :param seq: the pieces.
    :raises TypeError: if a piece is not a `Composable`.
    """

    __slots__ = ()
    _obj: list[Composable]

    def __init__(self, seq: Iterable[Composable]):
        parts = list(seq)
        for part in parts:
            if not isinstance(part, Composable):
                raise ArgumentTypeError(
                    f"Composed takes Composable pieces, got {type(part).__name__}: {part!r}"
                )
        super().__init__(parts)

    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        if context is not None and not isinstance(context, Transformer):
            # Adapt every Literal with one transformer rather than one each.
            context = Transformer(context)
        return b"".join(part.as_bytes(context, escape_percent=escape_percent) for part in self._obj)

    def __iter__(self) -> Iterator[Composable]:
        return iter(self._obj)

    def __add__(self, other: Composable) -> Composed:
        if isinstance(other, Composed):
            return Composed([*self._obj, *other._obj])
        if isinstance(other, Composable):
            return Composed([*self._obj, other])
        return NotImplemented

    def join(self, joiner: SQL | str) -> Composed:
        """Return the pieces with *joiner* between each two.

        :param joiner: trusted SQL text (``", "``) or an `SQL` piece.
        """
        if isinstance(joiner, str):
            joiner = SQL(joiner)
        elif not isinstance(joiner, SQL):
            raise ArgumentTypeError(f"the joiner must be a str or SQL, not {type(joiner).__name__}")
        return joiner.join(self._obj)


class SQL(Composable):
    """Trusted query text, written by the programmer: rendered as it is.

    :param text: the text; may contain ``{}`` fields for `format()`.
    :raises TypeError: if *text* is not a ``str``.
    """

    __slots__ = ()
    _obj: str

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise ArgumentTypeError(f"SQL takes a str, not {type(text).__name__}")
        super().__init__(text)

    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        return _encode(self._obj, context_encoding(context), "the SQL text")

    def as_string(self, context: AdaptContext | None = None) -> str:
        return self._obj

    def format(self, *args: Composable, **kwargs: Composable) -> Composed:
        """Replace the ``{}`` fields of the text with the pieces given.

        Fields are ``{}`` (the next positional argument), ``{0}`` (by number)
        or ``{name}`` (by keyword); ``{{`` and ``}}`` stand for literal braces.

        :raises TypeError: if an argument is not a `Composable`.
        :raises ValueError: on a malformed field, a conversion or format spec,
            mixing ``{}`` with ``{0}``, or a missing argument.
        """
        parts: list[Composable] = []
        auto_index = 0
        numbering: str | None = None  # "auto" or "manual", never both
        try:
            pieces = list(_FORMATTER.parse(self._obj))
        except ValueError as ex:
            raise ArgumentValueError(f"malformed SQL.format() template: {ex}") from None
        for literal_text, field, spec, conversion in pieces:
            if literal_text:
                parts.append(SQL(literal_text))
            if field is None:
                continue
            if spec or conversion:
                raise ArgumentValueError(
                    f"format spec and conversion are not supported: {{{field}}}"
                )
            if field == "" or field.isdigit():
                kind = "auto" if field == "" else "manual"
                if numbering is not None and numbering != kind:
                    raise ArgumentValueError("cannot mix automatic {} and numbered {0} fields")
                numbering = kind
                if field == "":
                    index, auto_index = auto_index, auto_index + 1
                else:
                    index = int(field)
                if index >= len(args):
                    raise ArgumentValueError(f"no positional argument for field number {index}")
                arg: Any = args[index]
            elif field.isidentifier():
                if field not in kwargs:
                    raise ArgumentValueError(f"no keyword argument for field {{{field}}}")
                arg = kwargs[field]
            else:
                raise ArgumentValueError(
                    f"unsupported field {{{field}}}: use {{}}, {{0}} or {{name}}"
                )
            if not isinstance(arg, Composable):
                raise ArgumentTypeError(
                    f"SQL.format() takes Composable arguments, got {type(arg).__name__}:"
                    " wrap names in sql.Identifier and values in sql.Literal"
                )
            parts.append(arg)
        return Composed(parts)

    def join(self, seq: Iterable[Composable]) -> Composed:
        """Return the pieces of *seq* with this text between each two.

        :raises TypeError: if a piece is not a `Composable`.
        """
        parts: list[Composable] = []
        for i, part in enumerate(seq):
            if i:
                parts.append(self)
            parts.append(part)
        return Composed(parts)


class Identifier(Composable):
    """The name of a database object, always quoted: ``"name"``.

    Several parts make a qualified name: ``Identifier("schema", "table")``
    renders ``"schema"."table"``.

    :param names: the parts of the name, as they are in the catalog (case
        is kept: ``Identifier("Foo")`` is not ``foo``).
    :raises TypeError: with no part, or a part that is not a ``str``.
    :raises DataError: if a part contains a NUL character.
    """

    __slots__ = ()
    _obj: tuple[str, ...]

    def __init__(self, *names: str):
        if not names:
            raise ArgumentTypeError("Identifier needs at least one name")
        for name in names:
            if not isinstance(name, str):
                raise ArgumentTypeError(f"Identifier parts must be str, not {type(name).__name__}")
            if "\x00" in name:
                raise errors.DataError(f"an identifier cannot contain NUL characters: {name!r}")
        super().__init__(names)

    @property
    def names(self) -> tuple[str, ...]:
        """The parts of the name."""
        return self._obj

    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        quoted = ".".join('"' + name.replace('"', '""') + '"' for name in self._obj)
        data = _encode(quoted, context_encoding(context), "the identifier")
        return data.replace(b"%", b"%%") if escape_percent else data

    def __repr__(self) -> str:
        return f"Identifier({', '.join(map(repr, self._obj))})"


class Literal(Composable):
    """A Python value written into the query as an SQL constant.

    The value is dumped by the context's adapters in text format (as a
    ``%t`` parameter would be), then quoted; see the module's rules 3 and 4.

    :param obj: the value; None renders ``NULL``.
    """

    __slots__ = ()

    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        obj = self._obj
        if obj is None:
            return b"NULL"
        tx = context if isinstance(context, Transformer) else Transformer(context)
        dumper = tx.get_dumper(obj, PyFormat.TEXT)
        data = bytes(dumper.dump(obj))
        if dumper.oid in _INTEGER_OIDS and data.lstrip(b"-").isdigit():
            return b"(" + data + b")" if data.startswith(b"-") else data
        quoted = _quote(data, tx)
        if escape_percent:
            quoted = quoted.replace(b"%", b"%%")
        type_name = _type_name(tx, dumper.oid)
        if type_name is None:
            return quoted
        return quoted + b"::" + _encode(type_name, tx.encoding, "the type name")


def _quote(data: bytes, tx: Transformer) -> bytes:
    if b"\x00" in data:
        raise errors.DataError("a literal cannot contain NUL characters")
    pgconn = tx.pgconn
    if pgconn is not None and not pgconn.closed:
        return pgconn.escape_literal(data)
    # No connection: the client encoding is UTF-8, where neither byte below
    # can be part of a multi-byte character.
    quoted = data.replace(b"'", b"''")
    if b"\\" in data:
        return b" E'" + quoted.replace(b"\\", b"\\\\") + b"'"
    return b"'" + quoted + b"'"


def _type_name(tx: Transformer, oid: int) -> str | None:
    # 25 and 1043 are left untyped like 0: a string literal adapts to its context.
    if oid in (0, 25, 705, 1043):
        return None
    types = tx.adapters.types
    info = types.get(oid)
    if info is not None:
        return info.regtype
    for info in types:
        if info.array_oid == oid:
            return info.regtype + "[]"
    return None


class Placeholder(Composable):
    """A query parameter's placeholder: ``%s``, ``%(name)s``, ``%b``, ``%(name)t``.

    :param name: the parameter's name, or None for a positional placeholder.
    :param format: the parameter format (``PyFormat`` or ``"s"``, ``"t"``, ``"b"``).
    :raises ValueError: if the name contains ``)`` or the format is unknown.
    """

    __slots__ = ("_format",)
    _obj: str

    def __init__(self, name: str | None = None, format: PyFormat | str = PyFormat.AUTO):
        if name is not None:
            if not isinstance(name, str):
                raise ArgumentTypeError(
                    f"a placeholder name must be a str, not {type(name).__name__}"
                )
            if not name or ")" in name:
                raise ArgumentValueError(f"invalid placeholder name: {name!r}")
        super().__init__(name or "")
        self._format = PyFormat(format)

    @property
    def name(self) -> str | None:
        """The parameter's name, None for a positional placeholder."""
        return self._obj or None

    @property
    def format(self) -> PyFormat:
        """The parameter format the placeholder asks for."""
        return self._format

    def as_bytes(
        self, context: AdaptContext | None = None, *, escape_percent: bool = False
    ) -> bytes:
        code = self._format.value
        text = f"%({self._obj}){code}" if self._obj else f"%{code}"
        return _encode(text, context_encoding(context), "the placeholder name")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Placeholder)
            and self._obj == other._obj
            and self._format is other._format
        )

    __hash__ = None

    def __repr__(self) -> str:
        args = [repr(self._obj)] if self._obj else []
        if self._format is not PyFormat.AUTO:
            args.append(f"format={self._format.value!r}")
        return f"Placeholder({', '.join(args)})"


#: The SQL ``NULL`` constant.
NULL = SQL("NULL")
