"""Row factories: what a cursor returns for each row of a result.

A *row factory* is called once per result with the cursor (whose
``description`` then describes the result) and returns a *row maker*: a
callable turning the tuple of loaded values of one row into the row the user
gets. Whatever a factory needs to prepare (a namedtuple class, the list of
column names) is done once per result, not once per row.

The default, ``tuple_row``, is recognised by the cursors and skipped: the
loaded tuple is returned as it is, so the default fetch path pays nothing.

Must not: do I/O or import a concurrency framework.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from ._cursor_base import BaseCursor

__all__ = [
    "Row",
    "ConnectionRow",
    "RowMaker",
    "RowFactory",
    "TupleRow",
    "DictRow",
    "tuple_row",
    "dict_row",
    "namedtuple_row",
    "class_row",
    "args_row",
    "kwargs_row",
]

#: The type of the rows a cursor returns (cursors are generic in it).
Row = TypeVar("Row")
T = TypeVar("T", covariant=True)
_T = TypeVar("_T")

TupleRow = tuple[Any, ...]
DictRow = dict[str, Any]

if TYPE_CHECKING:
    from typing_extensions import TypeVar as TypeVarWithDefault

    #: The row type of a connection's cursors: tuples unless its row factory
    #: says otherwise (``connect(..., row_factory=dict_row)``).
    ConnectionRow = TypeVarWithDefault("ConnectionRow", default=TupleRow)
else:
    # A default for a type variable (PEP 696) exists at run time from Python 3.13.
    ConnectionRow = TypeVar("ConnectionRow")


class RowMaker(Protocol[T]):
    """Turn the values of one row, already loaded, into a row object."""

    def __call__(self, values: Sequence[Any], /) -> T: ...


class RowFactory(Protocol[T]):
    """Build the ``RowMaker`` for the current result of ``cursor``.

    Called once per result, after the result is current: ``cursor.description``
    describes its columns.
    """

    def __call__(self, cursor: BaseCursor[Any], /) -> RowMaker[T]: ...


def _column_names(cursor: BaseCursor[Any]) -> list[str]:
    description = cursor.description
    if description is None:
        # No columns (a command such as INSERT): fetching raises elsewhere.
        return []
    return [column.name for column in description]


def _tuple_maker(values: Sequence[Any]) -> TupleRow:
    return tuple(values)


def tuple_row(cursor: BaseCursor[Any]) -> RowMaker[TupleRow]:
    """Return rows as tuples: the default, returned as loaded at no cost."""
    return _tuple_maker


def dict_row(cursor: BaseCursor[Any]) -> RowMaker[DictRow]:
    """Return rows as dicts from column name to value.

    Of columns with the same name, the last one's value wins.
    """
    names = _column_names(cursor)

    def make_dict(values: Sequence[Any]) -> DictRow:
        return dict(zip(names, values))

    return make_dict


def namedtuple_row(cursor: BaseCursor[Any]) -> RowMaker[NamedTuple]:
    """Return rows as namedtuples whose fields are the column names.

    Names that are not valid Python identifiers are changed into valid ones
    (``?column?`` becomes ``f_column_``, a leading digit gets an ``f`` prefix);
    the class is built once per distinct list of names.
    """
    make_class = _namedtuple_class(tuple(_column_names(cursor)))
    return make_class._make  # type: ignore[no-any-return]


_NOT_IDENTIFIER_CHARS = re.compile(r"\W")


def _field_name(name: str) -> str:
    field = _NOT_IDENTIFIER_CHARS.sub("_", name)
    if not field or field[0].isdigit() or field[0] == "_":
        field = "f" + field
    return field


@functools.lru_cache(maxsize=512)
def _namedtuple_class(names: tuple[str, ...]) -> type[Any]:
    return namedtuple("Row", [_field_name(name) for name in names], rename=True)


def class_row(cls: type[_T]) -> RowFactory[_T]:
    """Return rows as instances of ``cls``, built with column names as keywords.

    :param cls: a class (a dataclass, for instance) whose constructor accepts
        every column name of the result as a keyword argument.
    """
    # A class is one more callable taking the columns as keyword arguments.
    return kwargs_row(cls)


def args_row(func: Callable[..., _T]) -> RowFactory[_T]:
    """Return rows as ``func(*values)``: the values as positional arguments."""

    def args_row_factory(cursor: BaseCursor[Any]) -> RowMaker[_T]:
        def make_row(values: Sequence[Any]) -> _T:
            return func(*values)

        return make_row

    return args_row_factory


def kwargs_row(func: Callable[..., _T]) -> RowFactory[_T]:
    """Return rows as ``func(**{name: value})``: the columns as keyword arguments."""

    def kwargs_row_factory(cursor: BaseCursor[Any]) -> RowMaker[_T]:
        names = _column_names(cursor)

        def make_row(values: Sequence[Any]) -> _T:
            return func(**dict(zip(names, values)))

        return make_row

    return kwargs_row_factory
