"""The Python values of PostgreSQL ranges and multiranges: ``Range`` and ``Multirange``.

Must not: know about adaptation, talk to libpq or import any concurrency
framework. These are plain value objects.

Rules:

1. A ``Range`` is immutable and hashable; a bound of None is infinite (its
   side's inclusivity is then meaningless and reported as False, as the
   server does).
2. ``Range`` does not normalise: ``Range(1, 3, "[]")`` and ``Range(1, 4)`` are
   different objects, even if int4range makes them the same value; what comes
   back from the server is already in its canonical form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence
from typing import Any, Generic, TypeVar, overload

__all__ = ["Range", "Multirange"]

T = TypeVar("T")

_BOUNDS = ("[)", "(]", "()", "[]")


class Range(Generic[T]):
    """A PostgreSQL range: the values between two bounds, or empty.

    :param lower: the lower bound, None for -infinity.
    :param upper: the upper bound, None for +infinity.
    :param bounds: ``[`` or ``(`` then ``]`` or ``)``: which bounds are included.
    :param empty: make the empty range (the other arguments must be left out).
    :raises ValueError: for bounds other than ``[)``, ``(]``, ``()``, ``[]``,
        or an empty range given bounds.
    """

    __slots__ = ("_lower", "_upper", "_bounds")

    def __init__(
        self,
        lower: T | None = None,
        upper: T | None = None,
        bounds: str = "[)",
        empty: bool = False,
    ):
        if bounds not in _BOUNDS:
            raise ValueError(f"range bounds must be one of {', '.join(_BOUNDS)}; got {bounds!r}")
        self._lower: T | None
        self._upper: T | None
        if empty:
            if lower is not None or upper is not None:
                raise ValueError("an empty range has no bounds")
            self._lower, self._upper, self._bounds = None, None, ""
            return
        # An infinite side is never inclusive: keep the flags as the server reports them.
        if lower is None and bounds[0] == "[":
            bounds = "(" + bounds[1]
        if upper is None and bounds[1] == "]":
            bounds = bounds[0] + ")"
        self._lower = lower
        self._upper = upper
        self._bounds = bounds

    @property
    def lower(self) -> T | None:
        """The lower bound, None if infinite or empty."""
        return self._lower

    @property
    def upper(self) -> T | None:
        """The upper bound, None if infinite or empty."""
        return self._upper

    @property
    def bounds(self) -> str:
        """The bounds' brackets (``[)``), ``""`` for the empty range."""
        return self._bounds

    @property
    def isempty(self) -> bool:
        """Whether this is the empty range."""
        return not self._bounds

    @property
    def lower_inf(self) -> bool:
        """Whether the lower bound is -infinity (False for the empty range)."""
        return bool(self._bounds) and self._lower is None

    @property
    def upper_inf(self) -> bool:
        """Whether the upper bound is +infinity (False for the empty range)."""
        return bool(self._bounds) and self._upper is None

    @property
    def lower_inc(self) -> bool:
        """Whether the lower bound is included."""
        return self._bounds[:1] == "["

    @property
    def upper_inc(self) -> bool:
        """Whether the upper bound is included."""
        return self._bounds[1:] == "]"

    def __contains__(self, value: Any) -> bool:
        if not self._bounds:
            return False
        lower, upper = self._lower, self._upper
        if lower is not None:
            if value < lower or (value == lower and self._bounds[0] == "("):
                return False
        if upper is not None:
            if value > upper or (value == upper and self._bounds[1] == ")"):
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self._bounds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return (self._lower, self._upper, self._bounds) == (
            other._lower,
            other._upper,
            other._bounds,
        )

    def __hash__(self) -> int:
        return hash((self._lower, self._upper, self._bounds))

    def __repr__(self) -> str:
        if not self._bounds:
            return f"{type(self).__name__}(empty=True)"
        return f"{type(self).__name__}({self._lower!r}, {self._upper!r}, {self._bounds!r})"

    def __str__(self) -> str:
        if not self._bounds:
            return "empty"
        lower = "" if self._lower is None else str(self._lower)
        upper = "" if self._upper is None else str(self._upper)
        return f"{self._bounds[0]}{lower}, {upper}{self._bounds[1]}"

    def __getstate__(self) -> dict[str, Any]:
        return {"lower": self._lower, "upper": self._upper, "bounds": self._bounds}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lower, self._upper, self._bounds = state["lower"], state["upper"], state["bounds"]


def _check_range(item: object) -> Range[Any]:
    if not isinstance(item, Range):
        raise TypeError(f"a Multirange holds Range objects, not {type(item).__name__}")
    return item


class Multirange(MutableSequence[Range[T]]):
    """A PostgreSQL multirange: a list of ranges.

    The server sorts and merges the ranges; what comes back is in that
    canonical form, without empty ranges.

    :param items: the ranges to start with.
    :raises TypeError: if an item is not a `Range`.
    """

    __slots__ = ("_ranges",)

    def __init__(self, items: Iterable[Range[T]] = ()):
        self._ranges: list[Range[T]] = [_check_range(item) for item in items]

    @overload
    def __getitem__(self, index: int) -> Range[T]: ...

    @overload
    def __getitem__(self, index: slice) -> Multirange[T]: ...

    def __getitem__(self, index: int | slice) -> Range[T] | Multirange[T]:
        if isinstance(index, slice):
            return Multirange(self._ranges[index])
        return self._ranges[index]

    @overload
    def __setitem__(self, index: int, value: Range[T]) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[Range[T]]) -> None: ...

    def __setitem__(self, index: int | slice, value: Any) -> None:
        if isinstance(index, slice):
            self._ranges[index] = [_check_range(item) for item in value]
        else:
            self._ranges[index] = _check_range(value)

    def __delitem__(self, index: int | slice) -> None:
        del self._ranges[index]

    def __len__(self) -> int:
        return len(self._ranges)

    def __iter__(self) -> Iterator[Range[T]]:
        return iter(self._ranges)

    def insert(self, index: int, value: Range[T]) -> None:
        """Insert a range before *index*."""
        self._ranges.insert(index, _check_range(value))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Multirange):
            return self._ranges == other._ranges
        if isinstance(other, list):
            return self._ranges == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._ranges!r})"

    def __str__(self) -> str:
        return "{" + ", ".join(map(str, self._ranges)) + "}"
