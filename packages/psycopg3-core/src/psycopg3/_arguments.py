"""Checks of the arguments of public calls: a wrong one is a ``ProgrammingError`` naming it.

Must not: talk to libpq, wait, or import any concurrency framework.

Rules:

1. A call with a wrong signature (an unknown keyword, too many positional
   arguments) is Python's ``TypeError``, raised before any driver code runs.
   An argument of the wrong *type or value* for a documented parameter is
   a ``ProgrammingError``: it names the call, the parameter, what it got and
   what it accepts, and nothing was sent. It is also a ``TypeError`` (wrong
   type) or a ``ValueError`` (wrong value), as Python code expects of a bad
   argument: catching either works.
2. Checks run where the value is first stored or used, once per call, not
   per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import errors

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "check_bool",
    "check_int",
    "check_callable",
    "check_iterable",
    "check_str",
    "wrong_argument",
]


class ArgumentTypeError(errors.ProgrammingError, TypeError):
    """An argument of a public call has the wrong type."""


class ArgumentValueError(errors.ProgrammingError, ValueError):
    """An argument of a public call has the right type but a wrong value."""


def wrong_argument(
    where: str, value: Any, accepted: str, *, bad_value: bool = False
) -> errors.ProgrammingError:
    """Return the error for *value* given as *where* (``"fetchmany() size"``)."""
    shown = repr(value)
    if len(shown) > 60:
        shown = f"a {type(value).__name__}"
    cls = ArgumentValueError if bad_value else ArgumentTypeError
    return cls(f"{where} must be {accepted}, got {shown} ({type(value).__name__})")


def check_int(where: str, value: Any, *, minimum: int | None = None, none_ok: bool = False) -> None:
    """Raise unless *value* is an int (not a bool) of at least *minimum*, or None if allowed."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        accepted = "an int" + (" or None" if none_ok else "")
        raise wrong_argument(where, value, accepted)
    if minimum is not None and value < minimum:
        accepted = f"an int >= {minimum}" + (" or None" if none_ok else "")
        raise wrong_argument(where, value, accepted, bad_value=True)


def check_bool(where: str, value: Any, *, none_ok: bool = False) -> None:
    """Raise unless *value* is a bool, or None if allowed."""
    if not (isinstance(value, bool) or (value is None and none_ok)):
        raise wrong_argument(where, value, "True or False" + (" or None" if none_ok else ""))


def check_callable(where: str, value: Any) -> None:
    """Raise unless *value* is callable."""
    if not callable(value):
        raise wrong_argument(where, value, "a callable (see psycopg3.rows)")


def check_iterable(where: str, value: Any) -> None:
    """Raise unless *value* is an iterable other than a str or bytes."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise wrong_argument(where, value, "an iterable of parameter sequences or mappings")


def check_str(where: str, value: Any) -> None:
    """Raise unless *value* is a str."""
    if not isinstance(value, str):
        raise wrong_argument(where, value, "a str")
