"""The per-query adaptation state: ``Transformer``.

Must not: send or receive anything (it reads a result it is handed and
prepares parameters for someone else to send), wait, or import any
concurrency framework.

Rules:

1. One transformer serves one cursor's query or result at a time; make a new
   one when the connection's configuration may have changed (its encoding is
   read once, when it is made).
2. Dumpers are instantiated once per (Python type, placeholder format) and
   cached; dumpers that choose by value (``get_key``) cache one dumper per key.
3. Loaders are instantiated once per (OID, format) and cached; the functions
   of a result's columns are chosen once, in `set_pgresult()`, so the row loop
   does no per-value dispatch. Two optional loader attributes let it do less
   still (binary columns only): ``fixed_struct``, a ``struct.Struct`` of one
   value, to unpack a whole column in one call, and ``nul_free``, true when
   values never contain NUL (text), to read them with one libpq call.
4. ``None`` is a NULL parameter: no dumper is called, its OID is 0.
5. A loader whose values depend on session state that may change between
   two queries (timestamptz and the ``TimeZone``) opts in with a ``refresh()``
   method: the transformer calls it once per result, before any row loads;
   loaders without one cost nothing.
6. The cached dumpers and loaders are dropped when the adapters map has
   changed since they were chosen (its ``generation``): a dumper, loader or
   type registered after a query already ran is used by the next one.
7. Text that cannot be decoded in the encoding of the result is a
   ``DataError`` naming the column, never a bare ``UnicodeDecodeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from struct import Struct
from typing import TYPE_CHECKING, Any

from . import errors
from ._adapt.base import (
    AdaptContext,
    Buffer,
    Dumper,
    DumperKey,
    Loader,
    LoadFunction,
    PyFormat,
    context_encoding,
    overrides_below,
    row_load_function,
)
from ._adapt.global_map import adapters as global_adapters
from ._encodings import PyEncoding
from .pq import Format

if TYPE_CHECKING:
    from ._adapt.adapters_map import AdaptersMap
    from .pq import PGconn, PGresult
    from .pq.pgresult import ColumnLoader

# A result's column loaders: per value (load_row), per column (load_rows), and
# the binary columns read as C strings (see Transformer._plan_columns()).
_ColumnPlan = tuple[list["LoadFunction | None"], list["ColumnLoader"], frozenset[int]]

__all__ = ["Transformer", "transformer_of"]

_TEXT = Format.TEXT
_FORMATS = (Format.TEXT, Format.BINARY)
# Column layouts whose loaders a transformer remembers (see set_pgresult()).
_MAX_COLUMN_SETS = 32
# Iterating an Enum is slow: spell the members out where a transformer is made.
_AUTO, _TEXT_FMT, _BINARY_FMT = PyFormat.AUTO, PyFormat.TEXT, PyFormat.BINARY


def _overridden_upgrade(dumper: Dumper, upgraded: Dumper) -> Dumper:
    # The base class of *dumper* chose another class for this value, which
    # would bypass the dump() that *dumper*'s class overrides: keep that
    # dump(), with the type the base chose (the override reads ``self.oid``).
    if upgraded.format != dumper.format:
        return dumper
    kept = copy(dumper)
    kept.oid = upgraded.oid
    return kept


class Transformer:
    """Convert a query's parameters and a result's values using a context's adapters.

    :param context: a connection, cursor or transformer (anything with an
        ``adapters`` map and maybe a ``pgconn``), or None to use the global
        adapters and UTF-8.

    After `dump_sequence()`, ``values``, ``types`` and ``formats`` hold what to
    pass to libpq's ``exec_params``.
    """

    __slots__ = (
        "adapters",
        "pgconn",
        "encoding",
        "values",
        "types",
        "formats",
        "_dumpers",
        "_upgraded",
        "_loaders",
        "_pgresult",
        "_ntuples",
        "_row_loaders",
        "_column_loaders",
        "_nul_free",
        "_loaders_by_columns",
        "_refreshing_loaders",
        "_generation",
    )

    def __init__(self, context: AdaptContext | None = None):
        if context is None:
            self.adapters: AdaptersMap = global_adapters
        else:
            self.adapters = context.adapters
        self.pgconn: PGconn | None = getattr(context, "pgconn", None)
        self.encoding: PyEncoding = context_encoding(context)
        self._generation = self.adapters.generation
        self.values: list[bytes | None] = []
        self.types: list[int] = []
        self.formats: list[Format] = []
        # Python type -> (dumper, does it choose by value?), one table per PyFormat.
        self._dumpers: dict[PyFormat, dict[type, tuple[Dumper, bool]]] = {
            _AUTO: {},
            _TEXT_FMT: {},
            _BINARY_FMT: {},
        }
        self._upgraded: dict[tuple[PyFormat, DumperKey], Dumper] = {}
        self._loaders: list[dict[int, Loader | None]] = [{}, {}]
        self._pgresult: PGresult | None = None
        self._ntuples = 0
        self._row_loaders: list[LoadFunction | None] = []
        self._column_loaders: Sequence[ColumnLoader] = []
        self._nul_free: frozenset[int] = frozenset()
        self._loaders_by_columns: dict[tuple[tuple[int, ...], tuple[int, ...]], _ColumnPlan] = {}
        # Loaders with a refresh() method (rule 5).
        self._refreshing_loaders: list[Any] = []

    def _forget_stale_adapters(self) -> None:
        # Rule 6: called where a command starts using the caches.
        if self._generation == self.adapters.generation:
            return
        self._generation = self.adapters.generation
        for table in self._dumpers.values():
            table.clear()
        self._upgraded.clear()
        self._loaders = [{}, {}]
        self._loaders_by_columns.clear()
        self._refreshing_loaders = []

    def __repr__(self) -> str:
        return f"<Transformer {self.encoding.pgname} at 0x{id(self):x}>"

    # Parameters

    def dump_sequence(
        self,
        params: Sequence[Any],
        formats: Sequence[PyFormat],
        *,
        names: Sequence[str] | None = None,
    ) -> None:
        """Dump query parameters; set ``values``, ``types`` and ``formats``.

        :param params: the parameters, in ``$1, $2...`` order.
        :param formats: the format of each parameter's placeholder.
        :param names: how to call each parameter in error messages
            (``%(name)s``); by default ``$1, $2...``.
        :raises ProgrammingError: if a parameter's type has no dumper.
        :raises DataError: if a value cannot be represented in PostgreSQL.
        """
        self._forget_stale_adapters()
        values: list[bytes | None] = []
        types: list[int] = []
        pqformats: list[Format] = []
        for i, obj in enumerate(params):
            if obj is None:
                values.append(None)
                types.append(0)
                pqformats.append(_TEXT)
                continue
            dumper = None
            try:
                # A dumper choosing by value may already refuse it (get_key()).
                dumper = self._get_dumper(obj, formats[i], i, names)
                data: Buffer = dumper.dump(obj)
                values.append(data if type(data) is bytes else bytes(data))
            except errors.DataError as ex:
                name = names[i] if names is not None else f"${i + 1}"
                raise type(ex)(f"parameter {name}: {ex}") from ex
            except errors.Error:
                raise
            except Exception as ex:
                # A dumper's own failure (struct.error, RecursionError, a
                # user dumper's bug): a DB-API error naming who failed on what.
                name = names[i] if names is not None else f"${i + 1}"
                kind = type(ex).__qualname__
                if type(ex).__module__ != "builtins":
                    kind = f"{type(ex).__module__}.{kind}"
                who = type(dumper).__name__ if dumper is not None else "the dumper"
                raise errors.DataError(
                    f"parameter {name}: {who} cannot dump the"
                    f" {type(obj).__name__} value: {kind}: {ex}"
                ) from ex
            types.append(dumper.oid)
            pqformats.append(dumper.format)
        self.values = values
        self.types = types
        self.formats = pqformats

    def get_dumper(self, obj: Any, format: PyFormat) -> Dumper:
        """Return the (cached) dumper fit for *obj* in a placeholder format.

        :raises ProgrammingError: if the object's type has no dumper.
        """
        return self._get_dumper(obj, format, None, None)

    def get_dumper_for_type(self, obj: Any, format: PyFormat) -> tuple[Dumper, bool]:
        """Like ``get_dumper()``; also tell if every value of that type gets the same dumper.

        A caller dumping many values (COPY) may then keep the dumper by type.
        """
        dumper = self._get_dumper(obj, format, None, None)
        return dumper, not self._dumpers[format][type(obj)][1]

    def _get_dumper(
        self, obj: Any, fmt: PyFormat, index: int | None, names: Sequence[str] | None
    ) -> Dumper:
        cls = type(obj)
        table = self._dumpers[fmt]
        try:
            dumper, chooses_by_value = table[cls]
        except KeyError:
            dumper_cls = self.adapters.find_dumper(cls, fmt)
            if dumper_cls is None:
                name = None
                if index is not None:
                    name = names[index] if names is not None else f"${index + 1}"
                msg = self.adapters.cannot_adapt_message(cls, fmt, name)
                raise errors.ProgrammingError(msg) from None
            dumper = dumper_cls(cls, self)
            chooses_by_value = type(dumper).get_key is not Dumper.get_key
            table[cls] = (dumper, chooses_by_value)
        if not chooses_by_value:
            return dumper
        key = dumper.get_key(obj, fmt)
        if key is cls:
            return dumper
        try:
            return self._upgraded[fmt, key]
        except KeyError:
            upgraded = dumper.upgrade(obj, fmt)
            if not isinstance(upgraded, type(dumper)) and overrides_below(
                type(dumper), "dump", "upgrade"
            ):
                upgraded = _overridden_upgrade(dumper, upgraded)
            self._upgraded[fmt, key] = upgraded
            return upgraded

    # Results

    def set_pgresult(
        self,
        pgresult: PGresult | None,
        *,
        set_loaders: bool = True,
        format: Format | None = None,
    ) -> None:
        """Make *pgresult* the result that `load_rows()` reads.

        :param set_loaders: choose each column's loader now; pass False to keep
            the loaders of the previous result (one with the same columns).
        :param format: load every column as if in this format, instead of the
            format the result declares (COPY data comes without one).
        """
        self._pgresult = pgresult
        if pgresult is None:
            self._ntuples = 0
            if set_loaders:
                self._row_loaders = []
                self._column_loaders = []
                self._nul_free = frozenset()
            return
        self._ntuples = pgresult.ntuples
        if not set_loaders:
            return
        self._forget_stale_adapters()
        for loader in self._refreshing_loaders:
            loader.refresh()
        types, formats = pgresult.columns()
        if format is not None:
            # Formats the result does not declare: no hints on how to read it.
            plan_as = self._plan_columns(types, (format,) * len(types), hints=False)
            self._row_loaders, self._column_loaders, self._nul_free = plan_as
            return
        # Consecutive results usually have the same columns (the same query
        # run again): their loaders are kept per (types, formats).
        key = (types, formats)
        plan = self._loaders_by_columns.get(key)
        if plan is None:
            plan = self._plan_columns(types, formats, hints=True)
            if len(self._loaders_by_columns) >= _MAX_COLUMN_SETS:
                self._loaders_by_columns.clear()
            self._loaders_by_columns[key] = plan
        self._row_loaders, self._column_loaders, self._nul_free = plan

    def _plan_columns(
        self, types: Sequence[int], formats: Sequence[int], *, hints: bool
    ) -> _ColumnPlan:
        # The loaders of a result's columns: the functions that load_row()
        # calls per value, and what load_rows() uses per column: a binary
        # loader may name the struct.Struct of its fixed-size values
        # (``fixed_struct``: the column is unpacked in one call) or say its
        # values never contain NUL (``nul_free``: read as C strings).
        row_loaders: list[LoadFunction | None] = []
        column_loaders: list[ColumnLoader] = []
        nul_free: list[int] = []
        for col, (oid, fmt) in enumerate(zip(types, formats)):
            loader = self.get_loader(oid, _FORMATS[fmt])
            function = row_load_function(loader) if loader is not None else None
            row_loaders.append(function)
            column_loaders.append(function)
            if hints and fmt and loader is not None:
                fixed_struct = getattr(loader, "fixed_struct", None)
                if isinstance(fixed_struct, Struct):
                    column_loaders[col] = fixed_struct
                elif getattr(loader, "nul_free", False):
                    nul_free.append(col)
        return row_loaders, column_loaders, frozenset(nul_free)

    @property
    def pgresult(self) -> PGresult | None:
        """The result set by `set_pgresult()`."""
        return self._pgresult

    def set_loader_types(self, types: Sequence[int], format: Format) -> None:
        """Choose the column loaders from a list of OIDs (for data without a result)."""
        self._forget_stale_adapters()
        for loader in self._refreshing_loaders:
            loader.refresh()
        row_loaders: list[LoadFunction | None] = []
        for oid in types:
            loader = self.get_loader(oid, format)
            row_loaders.append(row_load_function(loader) if loader is not None else None)
        self._row_loaders = self._column_loaders = row_loaders
        self._nul_free = frozenset()

    def get_loader(self, oid: int, format: Format) -> Loader | None:
        """Return the (cached) loader of a type OID and format.

        Unknown OIDs use the loader registered for OID 0 (by default text as
        ``str``, binary as ``bytes``); None means "keep the raw bytes".
        """
        table = self._loaders[format]
        try:
            return table[oid]
        except KeyError:
            pass
        loader_cls = self.adapters.get_loader(oid, format) or self.adapters.get_loader(0, format)
        loader = table[oid] = loader_cls(oid, self) if loader_cls is not None else None
        if hasattr(loader, "refresh"):
            self._refreshing_loaders.append(loader)
        return loader

    def load_rows(self, row0: int, row1: int) -> list[tuple[Any, ...]]:
        """Return rows ``row0`` up to ``row1`` (excluded) of the current result.

        :raises InterfaceError: if there is no result.
        :raises IndexError: if the range is outside the result.
        """
        if self._pgresult is None:
            raise errors.InterfaceError("there is no result to load rows from")
        try:
            return self._pgresult.load_rows(
                row0, row1, self._column_loaders, nul_free=self._nul_free
            )
        except UnicodeDecodeError as ex:
            raise self._decode_error(ex, row0, row1) from ex

    def load_row(self, row: int) -> tuple[Any, ...] | None:
        """Return one row of the current result, or None past its end."""
        if self._pgresult is None or not 0 <= row < self._ntuples:
            return None
        try:
            return self._pgresult.load_row(row, self._row_loaders)
        except UnicodeDecodeError as ex:
            raise self._decode_error(ex, row, row + 1) from ex

    def _decode_error(self, ex: UnicodeDecodeError, row0: int, row1: int) -> errors.DataError:
        # Rule 6: find the failing value again, one by one (errors only).
        where = ""
        found = self._find_undecodable(row0, row1)
        if found is not None and self._pgresult is not None:
            row, col = found
            raw_name = self._pgresult.fname(col) or b""
            name = raw_name.decode(self.encoding.python_codec, "replace")
            where = f" of column {name!r} (row {row})"
        return errors.DataError(
            f"cannot decode the text{where} in the client encoding {self.encoding.pgname}: {ex}"
        )

    def _find_undecodable(self, row0: int, row1: int) -> tuple[int, int] | None:
        result = self._pgresult
        if result is None:
            return None
        for row in range(row0, row1):
            for col, load in enumerate(self._row_loaders):
                value = result.get_value(row, col)
                if load is None or value is None:
                    continue
                try:
                    load(value)
                except UnicodeDecodeError:
                    return row, col
        return None

    def load_sequence(self, record: Sequence[bytes | None]) -> tuple[Any, ...]:
        """Load one record of raw values with the current column loaders."""
        loaders = self._row_loaders
        if len(record) != len(loaders):
            raise errors.ProgrammingError(
                f"cannot load {len(record)} values with {len(loaders)} column loaders"
            )
        # A list comprehension: a generator expression costs a frame per row.
        try:
            return tuple(
                [
                    None if value is None else value if load is None else load(value)
                    for value, load in zip(record, loaders)
                ]
            )
        except UnicodeDecodeError as ex:
            raise errors.DataError(
                f"cannot decode the text in the client encoding {self.encoding.pgname}: {ex}"
            ) from ex


def transformer_of(context: AdaptContext | None) -> Transformer:
    """Return *context* if it is a transformer, else a new one made from it."""
    return context if isinstance(context, Transformer) else Transformer(context)
