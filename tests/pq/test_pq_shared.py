"""Tests of the pieces the pq wrappers share: accessor factories, conninfo arrays, cancel objects.

The cancel objects are tested with fake pointers and recording release
functions: ``PGcancelConn`` needs libpq 17 to be made for real, and its
forked-child rule cannot be seen from the server.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Iterator

import pytest

from psycopg3 import errors, pq
from psycopg3.pq import _libpq, misc

# Never a valid address: the recording release functions below never pass it to libpq.
FAKE_PTR = 0xDEAD0


def test_every_public_accessor_keeps_its_docstring() -> None:
    for cls in (pq.PGconn, pq.PGresult, pq.PGcancel, pq.PGcancelConn):
        for name in dir(cls):
            if not name.startswith("_") and not isinstance(
                inspect.getattr_static(cls, name), types.MemberDescriptorType
            ):
                assert getattr(cls, name).__doc__, f"{cls.__name__}.{name}"


def test_accessors_raise_once_cleared(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    res = conn.exec_(b"select 1 as x")
    assert (res.nfields, res.ftype(0), res.fformat(0), res.binary_tuples) == (1, 23, 0, False)
    res.clear()
    for read in (lambda: res.nfields, lambda: res.ftype(0), lambda: res.error_message):
        with pytest.raises(errors.OperationalError, match="cleared"):
            read()
    with pytest.raises(errors.DataError):
        conn.exec_(b"select 1").ftype(-1)
    conn.finish()
    for read in (lambda: conn.status, lambda: conn.db, lambda: conn.server_version):
        with pytest.raises(errors.OperationalError, match="closed"):
            read()


def test_take_options_frees_the_array(monkeypatch: pytest.MonkeyPatch) -> None:
    freed = []
    real_free = _libpq.PQconninfoFree

    def free(array: object) -> None:
        freed.append(1)
        real_free(array)

    monkeypatch.setattr(_libpq, "PQconninfoFree", free)
    options = misc.take_options(_libpq.PQconndefaults(), "the defaults")
    assert freed == [1]
    assert "dbname" in {opt.keyword.decode() for opt in options if opt.keyword}
    with pytest.raises(MemoryError, match="could not allocate the defaults"):
        misc.take_options(None, "the defaults")


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    # Stands for PQfreeCancel and PQcancelFinish, so fake pointers are safe.
    calls: list[tuple[str, int]] = []
    for cls, what in ((pq.PGcancel, "free"), (pq.PGcancelConn, "finish")):
        assert cls._libpq_release in (_libpq.PQfreeCancel, _libpq.PQcancelFinish)
        record = staticmethod(lambda ptr, what=what: calls.append((what, ptr)))
        monkeypatch.setattr(cls, "_libpq_release", record)
    yield calls


def _counted() -> int:
    return pq.live_objects()["PGcancel"]


def test_cancel_handle_is_freed_once(released: list[tuple[str, int]]) -> None:
    before = _counted()
    handle = pq.PGcancel(FAKE_PTR)
    assert _counted() == before + 1
    handle.free()
    handle.free()
    assert released == [("free", FAKE_PTR)]
    assert _counted() == before
    assert "freed" in repr(handle)
    with pytest.raises(errors.OperationalError, match="freed"):
        handle.cancel()


def test_cancel_conn_is_finished_once(released: list[tuple[str, int]]) -> None:
    before = _counted()
    request = pq.PGcancelConn(FAKE_PTR)
    assert "open" in repr(request)
    request.finish()
    request.finish()
    assert released == [("finish", FAKE_PTR)]
    assert _counted() == before
    assert "finished" in repr(request)
    for read in (lambda: request.socket, lambda: request.error_message, request.poll):
        with pytest.raises(errors.OperationalError, match="finished"):
            read()


def test_in_a_forked_child_only_the_handle_is_freed(
    released: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _counted()
    handle = pq.PGcancel(FAKE_PTR)
    request = pq.PGcancelConn(FAKE_PTR + 1)
    # As seen from a forked child: another process id than the creator's.
    monkeypatch.setattr(os, "getpid", lambda: os.getppid())
    with pytest.raises(errors.InterfaceError, match="forked child"):
        request.socket  # noqa: B018
    handle.free()
    # The request's socket is the parent's: dropped, not finished, yet counted.
    request.finish()
    assert released == [("free", FAKE_PTR)]
    assert _counted() == before


def test_collected_cancel_objects_are_released(released: list[tuple[str, int]]) -> None:
    before = _counted()
    pq.PGcancel(FAKE_PTR)  # collected at once: no reference kept
    pq.PGcancelConn(FAKE_PTR + 1)
    assert released == [("free", FAKE_PTR), ("finish", FAKE_PTR + 1)]
    assert _counted() == before
