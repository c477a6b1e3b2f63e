"""Tests of ``_libpq``'s declarations: each module name is the libpq function it says."""

from __future__ import annotations

import ctypes

from psycopg3.pq import _libpq

#: Second declarations of a function, under a name of their own (see ``_libpq``).
ALIASES = {
    "PQgetvalue_text": "PQgetvalue",
    "PQgetvalue_ptr": "PQgetvalue",
    "PQgetCopyData_waiting": "PQgetCopyData",
}


def test_each_name_is_its_function() -> None:
    # Functions of one signature are declared by one call and unpacked into
    # names listed in the same order: a slip there would swap two functions.
    declared = {
        name: func
        for name, func in vars(_libpq).items()
        if name.startswith("PQ") and isinstance(func, ctypes._CFuncPtr)  # type: ignore[attr-defined]
    }
    assert len(declared) > 80
    for name, func in declared.items():
        assert func.__name__ == ALIASES.get(name, name)  # type: ignore[attr-defined]


def test_a_function_missing_from_this_libpq_is_none() -> None:
    names = "PQnoSuchFunction PQnoSuchFunctionEither"
    assert _libpq._declare_each(names, ctypes.c_int, [], if_present=True) == [None, None]
