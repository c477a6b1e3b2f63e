"""The DB-API names are exported by every module that promises them, as the same objects.

PEP 249's exceptions are listed once (``psycopg3._dbapi_errors.__all__``);
``psycopg3``, ``psycopg3.errors``, ``psycopg3.dbapi20`` and ``psycopg3_sync``
start their ``__all__`` from that list, and ``psycopg3_sync`` from
``psycopg3.dbapi20``'s, which adds the type objects and constructors. What
mypy sees of the same exports is checked in ``tests/typing/check_exports.py``.
"""

from __future__ import annotations

from types import ModuleType

import pytest

import psycopg3
import psycopg3_sync
from pep249 import EXCEPTIONS, TYPES
from psycopg3 import _dbapi_errors, dbapi20, errors


def test_the_one_list_is_the_pep_249_exceptions() -> None:
    # Exactly: a module re-exporting it with `+=` must not have grown it.
    assert list(_dbapi_errors.__all__) == EXCEPTIONS


@pytest.mark.parametrize("module", [psycopg3, errors, dbapi20, psycopg3_sync])
def test_exceptions_exported_as_the_errors_classes(module: ModuleType) -> None:
    exported = module.__all__
    assert len(exported) == len(set(exported)), exported
    for name in EXCEPTIONS:
        assert name in exported
        assert getattr(module, name) is getattr(errors, name)
        assert getattr(module, name).__module__ == "psycopg3.errors"


@pytest.mark.parametrize("module", [dbapi20, psycopg3_sync])
def test_type_objects_and_constructors_exported(module: ModuleType) -> None:
    exported = module.__all__
    for name in TYPES:
        assert name in exported
        assert getattr(module, name) is getattr(dbapi20, name)
    # The class of the type objects is public, but not a PEP 249 export.
    assert "DBAPITypeObject" not in exported


def test_diagnostic_keeps_its_public_name() -> None:
    assert "Diagnostic" in errors.__all__
    assert errors.Diagnostic.__module__ == "psycopg3.errors"
    assert "Diagnostic" not in psycopg3.__all__
