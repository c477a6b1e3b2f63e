"""The shapes of adaptation: formats, the dumper and loader base classes and protocols.

Must not: know any concrete type (they live in ``psycopg3.types``), talk to
libpq, or import any concurrency framework.

Rules:

1. A *dumper* turns one Python object into the bytes of one query parameter;
   a *loader* turns the bytes of one result value into a Python object.
2. Dumper and loader classes are registered in an ``AdaptersMap``; instances
   are created by a ``Transformer`` (at most one per Python type, or per OID
   and format) and reused for every value of the same query or result.
3. A dumper may pick a different dumper by value (``get_key``/``upgrade``):
   a Python ``int`` becomes int4, int8 or numeric depending on its size.
4. A loader exposes the function that the row loop calls for every value of a
   column (``load_function``): a builtin such as ``int`` is the fastest choice
   when it accepts the raw bytes directly.
5. An override wins over an inherited fast path: a subclass overriding
   ``load`` (``dump``) below the class that gives ``load_function``
   (``upgrade``) gets its method called for every value. Whoever asks a
   loader for its function does it through `row_load_function()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from .._encodings import PyEncoding, pgconn_py_encoding
from ..pq import Format

if TYPE_CHECKING:
    from .adapters_map import AdaptersMap

__all__ = [
    "Buffer",
    "PyFormat",
    "AdaptContext",
    "Dumper",
    "Loader",
    "DumperProtocol",
    "LoaderProtocol",
    "DumperKey",
    "LoadFunction",
    "context_encoding",
    "context_codec",
    "row_load_function",
    "overrides_below",
]

Buffer = bytes | bytearray | memoryview
"""What a dumper may return and a loader may receive."""

DumperKey = type | tuple[Any, ...]
"""What identifies a dumper chosen by value: a class, or a tuple of classes."""

LoadFunction = Callable[[bytes], Any]
"""The per-value function of a result column: raw bytes in, Python object out."""


class PyFormat(str, Enum):
    """How the user wants a parameter passed, as written in its placeholder.

    ``AUTO`` (``%s``) lets the dumper registered last for the type decide;
    ``TEXT`` (``%t``) and ``BINARY`` (``%b``) force a format.
    """

    AUTO = "s"
    TEXT = "t"
    BINARY = "b"

    @classmethod
    def from_pq(cls, fmt: Format) -> PyFormat:
        """Return the PyFormat forcing a libpq format."""
        return cls.BINARY if fmt == Format.BINARY else cls.TEXT

    @classmethod
    def as_pq(cls, fmt: PyFormat) -> Format:
        """Return the libpq format of a TEXT or BINARY PyFormat.

        :raises ValueError: for AUTO, which is no libpq format.
        """
        if fmt is cls.TEXT:
            return Format.TEXT
        if fmt is cls.BINARY:
            return Format.BINARY
        raise ValueError("PyFormat.AUTO has no libpq format")


class AdaptContext(Protocol):
    """What dumpers, loaders and transformers take their configuration from.

    A connection, a cursor or a transformer. It may also have a ``pgconn``
    attribute (a ``PGconn`` or None), read to find the client encoding.
    """

    @property
    def adapters(self) -> AdaptersMap: ...


def context_encoding(context: AdaptContext | None) -> PyEncoding:
    """Return the text encoding of a context (UTF-8 without a connection)."""
    if context is None:
        return pgconn_py_encoding(None)
    # A transformer has already read it: don't ask libpq again.
    encoding = getattr(context, "encoding", None)
    if isinstance(encoding, PyEncoding):
        return encoding
    return pgconn_py_encoding(getattr(context, "pgconn", None))


def context_codec(context: AdaptContext | None) -> tuple[str, str]:
    """Return the Python codec and the error handler of a context's text encoding."""
    encoding = context_encoding(context)
    return encoding.python_codec, encoding.errors


class DumperProtocol(Protocol):
    """What a transformer needs of a dumper."""

    oid: int
    format: Format

    def dump(self, obj: Any) -> Buffer: ...

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey: ...

    def upgrade(self, obj: Any, format: PyFormat) -> DumperProtocol: ...


class LoaderProtocol(Protocol):
    """What a transformer needs of a loader."""

    format: Format

    def load(self, data: Buffer) -> Any: ...

    def load_function(self) -> LoadFunction: ...


def overrides_below(cls: type, method: str, fast_path: str) -> bool:
    """Whether *cls* overrides *method* in a subclass of the class giving *fast_path*."""
    method_owner: type = object
    fast_owner: type = object
    for base in cls.__mro__:
        if method_owner is object and method in base.__dict__:
            method_owner = base
        if fast_owner is object and fast_path in base.__dict__:
            fast_owner = base
    return method_owner is not fast_owner and issubclass(method_owner, fast_owner)


def row_load_function(loader: LoaderProtocol) -> LoadFunction:
    """Return the function to call for each value of *loader* (rule 5).

    The loader's ``load_function()``, unless its class overrides ``load``
    below the class that gives ``load_function``: then the bound ``load``.
    """
    if overrides_below(type(loader), "load", "load_function"):
        return loader.load
    return loader.load_function()


class Dumper(ABC):
    """Convert Python objects of one type to PostgreSQL parameters.

    Subclasses set ``oid`` (0 lets the server infer the type from the query)
    and ``format``, and implement `dump()`.

    :param cls: the Python type this instance dumps.
    :param context: where to read the configuration (encoding, adapters).
    """

    oid: int = 0
    format: Format = Format.TEXT

    def __init__(self, cls: type, context: AdaptContext | None = None):
        self.cls = cls
        self.context = context

    @abstractmethod
    def dump(self, obj: Any) -> Buffer:
        """Return the parameter bytes of *obj* in this dumper's format.

        :raises DataError: if the value cannot be represented in PostgreSQL.
        """

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        """Return what identifies the dumper fit for *obj*.

        The default, ``self.cls``, means "this dumper". A dumper that chooses
        by value returns another key; the transformer then calls `upgrade()`
        once per key and caches the result.
        """
        return self.cls

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        """Return a dumper fit for *obj* (the one `get_key()` identified)."""
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cls.__name__} oid={self.oid} {self.format.name}>"


class Loader(ABC):
    """Convert PostgreSQL values of one type and format to Python objects.

    :param oid: the OID of the type of the values.
    :param context: where to read the configuration (encoding, adapters).
    """

    format: Format = Format.TEXT

    def __init__(self, oid: int, context: AdaptContext | None = None):
        self.oid = oid
        self.context = context

    @abstractmethod
    def load(self, data: Buffer) -> Any:
        """Return the Python object of one non-NULL value."""

    def load_function(self) -> LoadFunction:
        """Return the function the row loop calls for each non-NULL value.

        By default the bound `load()`; override it to return a builtin that
        does the same job on ``bytes`` without a Python-level call.
        """
        return self.load

    def __repr__(self) -> str:
        return f"<{type(self).__name__} oid={self.oid} {self.format.name}>"
