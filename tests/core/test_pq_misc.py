"""Tests of the pq façade, the C-string checks, Conninfo and the enums."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import threading
from ctypes import c_char_p, c_int, c_uint

import pytest

from psycopg3 import errors, pq
from psycopg3.pq import _cstrings, _libpq


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_version() -> None:
    assert pq.version() >= 140000
    major, minor = pq.version_string().split(".")
    assert int(major) == pq.version() // 10000
    assert pq.version_string(150004) == "15.4"


def test_facade() -> None:
    assert pq.__impl__ == "ctypes"
    for name in pq.__all__:
        assert getattr(pq, name) is not None, name


def test_bad_impl_env_var() -> None:
    proc = run_python("import psycopg3.pq", PSYCOPG3_IMPL="cython")
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "PSYCOPG3_IMPL='cython'" in proc.stderr


def test_explicit_impl_and_libpq_path() -> None:
    code = "from psycopg3 import pq; print(pq.__impl__, pq.libpq_path, pq.version())"
    proc = run_python(code, PSYCOPG3_IMPL="ctypes", PSYCOPG3_LIBPQ=pq.libpq_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ctypes", pq.libpq_path, str(pq.version())]


def test_bad_libpq_path() -> None:
    proc = run_python("import psycopg3.pq", PSYCOPG3_LIBPQ="/nonexistent/libpq.so")
    assert proc.returncode != 0
    assert "cannot load libpq" in proc.stderr


def test_enum_values() -> None:
    assert pq.ConnStatus.CHECK_STANDBY.value == 13
    assert pq.PollingStatus.OK.value == 3
    assert pq.TransactionStatus.UNKNOWN.value == 4
    assert pq.ExecStatus.SINGLE_TUPLE.value == 9
    assert pq.ExecStatus.PIPELINE_ABORTED.value == 11
    assert pq.PipelineStatus.ABORTED.value == 2
    assert pq.Ping.NO_ATTEMPT.value == 3
    assert pq.Format.BINARY.value == 1
    assert pq.DiagnosticField.SQLSTATE.value == ord("C")
    assert pq.DiagnosticField.SOURCE_FUNCTION.value == ord("R")


def test_conninfo_defaults() -> None:
    options = pq.Conninfo.defaults()
    keywords = {opt.keyword for opt in options}
    assert {b"host", b"port", b"dbname", b"user", b"sslmode"} <= keywords
    port = next(opt for opt in options if opt.keyword == b"port")
    assert port.envvar == b"PGPORT"
    assert isinstance(port.dispsize, int)
    password = next(opt for opt in options if opt.keyword == b"password")
    assert password.dispchar == b"*"


def test_conninfo_parse() -> None:
    options = pq.Conninfo.parse(b"host=h1 port=5433 application_name='a b'")
    given = {opt.keyword: opt.val for opt in options if opt.val is not None}
    assert given == {b"host": b"h1", b"port": b"5433", b"application_name": b"a b"}
    uri = pq.Conninfo.parse(b"postgresql://u@h/db?sslmode=disable")
    given = {opt.keyword: opt.val for opt in uri if opt.val is not None}
    assert given == {b"user": b"u", b"host": b"h", b"dbname": b"db", b"sslmode": b"disable"}


def test_conninfo_parse_errors() -> None:
    with pytest.raises(errors.ProgrammingError, match='invalid connection option "nosuch"'):
        pq.Conninfo.parse(b"nosuch=1")
    with pytest.raises(errors.ProgrammingError, match="unterminated quoted string"):
        pq.Conninfo.parse(b"host='oops")
    with pytest.raises(errors.DataError, match="conninfo contains a NUL byte at position 6"):
        pq.Conninfo.parse(b"host=a\x00 sslmode=disable")


def test_unescape_bytea() -> None:
    assert pq.unescape_bytea(b"\\x00ff41") == b"\x00\xffA"
    assert pq.unescape_bytea(b"abc\\000") == b"abc\x00"
    assert pq.unescape_bytea(b"") == b""
    with pytest.raises(errors.DataError):
        pq.unescape_bytea(b"\\x00\x00")


def test_pgnotify_fields() -> None:
    notify = pq.PGnotify(b"chan", 42, b"hi")
    assert notify._fields == ("relname", "be_pid", "extra")


# --- the C-string and C-int checks ---


def test_check_nul() -> None:
    assert _cstrings.check_nul(b"ok", "query") == b"ok"
    with pytest.raises(errors.DataError, match="^query contains a NUL byte at position 12$"):
        _cstrings.check_nul(b"select 1 -- \x00x", "query")


def test_check_length() -> None:
    assert _cstrings.check_length(2**31 - 1, "parameter $2") == 2**31 - 1
    msg = "^parameter \\$2 is 3000000000 bytes long: the most libpq can send is 2147483647$"
    with pytest.raises(errors.DataError, match=msg):
        _cstrings.check_length(3_000_000_000, "parameter $2")
    with pytest.raises(errors.DataError):
        _cstrings.check_length(2**31, "x")


def test_check_index() -> None:
    assert _cstrings.check_index(0, "row") == 0
    for bad in (-1, 2**31, 2**32):
        with pytest.raises(errors.DataError, match="row"):
            _cstrings.check_index(bad, "row")


class Huge(bytes):
    def __len__(self) -> int:
        return 2**32 + 5  # would wrap to 5 in a C int


def test_build_params_text_only() -> None:
    n, oids, values, lengths, formats = _cstrings.build_params([b"a", None, b""], None, None)
    assert n == 3 and oids is None and lengths is None and formats is None
    assert values is not None
    assert list(values) == [b"a", None, b""]
    n, _, _, lengths, formats = _cstrings.build_params([b"a"], None, [0])
    assert lengths is None and formats is None  # all text: NULL arrays


def test_build_params_mixed() -> None:
    n, oids, values, lengths, formats = _cstrings.build_params(
        [b"a\x00b", None, b"xyz"], [17, 0, 25], [1, 1, 0]
    )
    assert n == 3
    assert oids is not None and lengths is not None and formats is not None
    assert oids._type_ is c_uint and list(oids) == [17, 0, 25]
    assert lengths._type_ is c_int and list(lengths) == [3, 0, 3]
    assert list(formats) == [1, 1, 0]
    assert values is not None and values._type_ is c_char_p


def test_build_params_empty() -> None:
    assert _cstrings.build_params([], None, None) == (0, None, None, None, None)


def test_build_params_rejects() -> None:
    with pytest.raises(errors.DataError, match=r"parameter \$2 contains a NUL byte at position 1"):
        _cstrings.build_params([b"a", b"b\x00"], None, None)
    with pytest.raises(errors.DataError, match=r"parameter \$1 contains a NUL"):
        _cstrings.build_params([b"\x00", b"b"], None, [0, 1])
    with pytest.raises(errors.DataError, match=r"parameter \$1 is 4294967301 bytes long"):
        _cstrings.build_params([Huge(b"x")], None, None)
    with pytest.raises(errors.DataError, match=r"parameter \$2 is 4294967301 bytes long"):
        _cstrings.build_params([b"x", Huge(b"x")], None, [1, 1])
    with pytest.raises(errors.DataError, match=r"parameter \$1 has format 2"):
        _cstrings.build_params([b"x"], None, [2])
    with pytest.raises(errors.ProgrammingError, match="2 parameter formats for 1 parameters"):
        _cstrings.build_params([b"x"], None, [1, 1])
    with pytest.raises(errors.ProgrammingError, match="1 parameter types for 2 parameters"):
        _cstrings.build_params([b"x", b"y"], [25], None)
    with pytest.raises(errors.DataError, match="OIDs"):
        _cstrings.build_params([b"x"], [2**32], None)
    with pytest.raises(errors.DataError, match="OIDs"):
        _cstrings.build_params([b"x"], [-1], None)


def test_check_result_format() -> None:
    assert _cstrings.check_result_format(1) == 1
    with pytest.raises(errors.DataError, match="result format 2"):
        _cstrings.check_result_format(2)


def test_error_message_helper(dsn: str) -> None:
    conn = pq.PGconn.connect(dsn.encode())
    res = conn.exec_(b"select 1/0")
    assert "division by zero" in pq.error_message(res)
    assert pq.error_message(conn).startswith("ERROR:")
    conn.finish()
    assert pq.error_message(conn) == "the connection is closed"


# The functions that may wait release the GIL; the others keep it (rule 4 of
# pq/_libpq.py). Changing this list is a decision: say why in _libpq.py.
WAITING = {
    "PQconnectdb",
    "PQconnectStart",
    "PQconnectPoll",
    "PQconndefaults",
    "PQfinish",
    "PQping",
    "PQexec",
    "PQexecParams",
    "PQprepare",
    "PQexecPrepared",
    "PQdescribePrepared",
    "PQdescribePortal",
    "PQclosePrepared",
    "PQclosePortal",
    "PQgetResult",
    "PQsetnonblocking",
    "PQcancel",
    "PQcancelStart",
    "PQcancelBlocking",
    "PQcancelPoll",
    "PQcancelFinish",
    "PQencryptPasswordConn",
    "PQgetCopyData_waiting",
}


def test_which_functions_release_the_gil() -> None:
    declared = {
        name: func
        for name, func in vars(_libpq).items()
        if name.startswith("PQ") and isinstance(func, ctypes._CFuncPtr)
    }
    # Not declared: only functions newer than this libpq (then None).
    for name in WAITING - set(declared):
        assert name in vars(_libpq) and vars(_libpq)[name] is None, name
    for name, func in declared.items():
        keeps_gil = bool(func._flags_ & ctypes._FUNCFLAG_PYTHONAPI)
        assert keeps_gil == (name not in WAITING), name


def test_a_waiting_call_lets_other_threads_run() -> None:
    # A server that accepts and never answers: PQconnectdb waits in libpq for
    # connect_timeout. Holding the GIL meanwhile would freeze this thread too.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        conninfo = (
            f"host=127.0.0.1 port={port} connect_timeout=30 sslmode=disable gssencmode=disable"
        )

        def connect() -> None:
            _libpq.PQfinish(_libpq.PQconnectdb(conninfo.encode()))

        thread = threading.Thread(target=connect)
        thread.start()
        peer, _ = listener.accept()
        with peer:
            # The startup packet: PQconnectdb now waits for an answer, and this
            # thread runs meanwhile (accept and recv need the GIL to return).
            assert peer.recv(8)
            assert thread.is_alive()
        # Our end closed: the connect fails at once.
        thread.join(10)
        assert not thread.is_alive()
