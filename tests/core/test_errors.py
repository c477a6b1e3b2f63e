"""The SQLSTATE exception classes: generation, hierarchy, lookup, diagnostics, pickling."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import gen_errors
import psycopg3
import psycopg3_sync
from fix_wait import wait_until
from psycopg3 import _sqlstate, errors

DBAPI_CLASSES = [
    errors.Warning,
    errors.Error,
    errors.InterfaceError,
    errors.DatabaseError,
    errors.DataError,
    errors.OperationalError,
    errors.IntegrityError,
    errors.InternalError,
    errors.ProgrammingError,
    errors.NotSupportedError,
]

# -- the generator -------------------------------------------------------------


def _errcodes_candidates() -> list[Path]:
    """errcodes.txt files of the PostgreSQL installations on this machine."""
    found = [Path(_sqlstate.ERRCODES_SOURCE)]
    found += sorted(Path("/usr/share/postgresql").glob("*/errcodes.txt"), reverse=True)
    try:
        sharedir = subprocess.run(
            ["pg_config", "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        found.append(Path(sharedir) / "errcodes.txt")
    except (OSError, subprocess.CalledProcessError):
        pass
    bindir = os.environ.get("PSYCOPG3_PG_BINDIR")
    if bindir:
        found.append(Path(bindir).parent / "share" / "postgresql" / "errcodes.txt")
    return [path for path in found if path.exists()]


def _recorded_errcodes() -> str:
    path = _sqlstate.ERRCODES_SOURCE
    if not Path(path).exists():
        pytest.fail(
            f"_sqlstate.py was generated from {path}, which is missing on this machine: "
            "install PostgreSQL's server files (Debian: postgresql-15) to check it"
        )
    return path


def test_server_knows_every_generated_code() -> None:
    # Whatever PostgreSQL is installed here (the file the module was made
    # from, or a newer server's): every class we generated names a code that
    # server defines, under the same condition name.
    candidates = _errcodes_candidates()
    assert candidates, "no errcodes.txt found: install PostgreSQL's server files"
    codes = {c.sqlstate: c.condition for c in gen_errors.parse_errcodes(candidates[0].read_text())}
    for sqlstate, condition, _ in _sqlstate.SQLSTATE_TABLE:
        assert codes.get(sqlstate) == condition, (sqlstate, condition, candidates[0])


def test_committed_module_is_what_the_generator_writes() -> None:
    # Needs the very file the module records: Debian's postgresql-15 on the
    # machines of this project (CI included).
    committed = Path(_sqlstate.__file__).read_text(encoding="utf-8")
    assert gen_errors.generate(_recorded_errcodes()) == committed, (
        "psycopg3/_sqlstate.py is stale or edited by hand: run python tools/gen_errors.py"
    )


def test_generator_is_deterministic_and_check_mode_agrees() -> None:
    path = _recorded_errcodes()
    assert gen_errors.generate(path) == gen_errors.generate(path)
    assert gen_errors.main([path, "--check"]) == 0


def test_generator_check_mode_reports_a_stale_module(tmp_path: Path) -> None:
    stale = tmp_path / "_sqlstate.py"
    stale.write_text("# stale\n")
    assert gen_errors.main([_recorded_errcodes(), "--output", str(stale), "--check"]) == 1
    assert stale.read_text() == "# stale\n"


SAMPLE = """\
# a comment
Section: Class 00 - Successful Completion
00000    S    ERRCODE_SUCCESSFUL_COMPLETION          successful_completion
Section: Class 01 - Warning
01004    W    ERRCODE_WARNING_STRING_DATA_RIGHT_TRUNCATION    string_data_right_truncation
Section: Class 22 - Data Exception
22000    E    ERRCODE_DATA_EXCEPTION                 data_exception
2202E    E    ERRCODE_ARRAY_ELEMENT_ERROR
2202E    E    ERRCODE_ARRAY_SUBSCRIPT_ERROR          array_subscript_error
22001    E    ERRCODE_STRING_DATA_RIGHT_TRUNCATION   string_data_right_truncation
22004    E    ERRCODE_NULL_VALUE_NOT_ALLOWED         null_value_not_allowed
Section: Class 39 - External Routine Invocation Exception
39000    E    ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION    external_routine_invocation_exception
39004    E    ERRCODE_E_R_I_E_NULL_VALUE_NOT_ALLOWED           null_value_not_allowed
Section: Class XX - Internal Error
XX000    E    ERRCODE_INTERNAL_ERROR                 internal_error
XX001    E    ERRCODE_DATA_CORRUPTED                 data_corrupted
Section: Class ZZ - Made Up, With No Generic Code
ZZ001    E    ERRCODE_MADE_UP                        made_up_condition
"""


def test_parse_keeps_named_errors_only() -> None:
    codes = gen_errors.parse_errcodes(SAMPLE)
    assert [c.sqlstate for c in codes] == [
        "22000",
        "2202E",
        "22001",
        "22004",
        "39000",
        "39004",
        "XX000",
        "XX001",
        "ZZ001",
    ]
    assert codes[1].condition == "array_subscript_error"  # the unnamed alias is skipped
    assert codes[0].section == "Class 22 - Data Exception"


def test_parse_rejects_a_line_it_does_not_understand() -> None:
    with pytest.raises(ValueError, match="line 2"):
        gen_errors.parse_errcodes("# ok\n2200 E ERRCODE_TOO_SHORT too_short\n")


def test_plan_names_and_bases() -> None:
    codes = gen_errors.parse_errcodes(SAMPLE)
    mapping = {"22": "DataError", "39": "InternalError", "XX": "InternalError"}
    specs = {s.code.sqlstate: s for s in gen_errors.plan_classes(codes, mapping)}
    assert (specs["22000"].name, specs["22000"].base) == ("DataException", "DataError")
    assert (specs["22001"].name, specs["22001"].base) == (
        "StringDataRightTruncation",
        "DataException",
    )
    # A shared condition name: the first code keeps it, the next gets its class's prefix.
    assert specs["22004"].name == "NullValueNotAllowed"
    assert specs["39004"].name == "ExternalRoutineInvocationNullValueNotAllowed"
    assert specs["39004"].base == "ExternalRoutineInvocationException"
    # A DB-API name is never hidden.
    assert (specs["XX000"].name, specs["XX000"].base) == ("ServerInternalError", "InternalError")
    assert specs["XX001"].base == "ServerInternalError"
    # No generic code, no mapping: straight to DatabaseError.
    assert (specs["ZZ001"].name, specs["ZZ001"].base) == ("MadeUpCondition", "DatabaseError")


def test_generator_reads_the_mapping_of_errors_py() -> None:
    source = Path(errors.__file__).read_text(encoding="utf-8")
    mapping = gen_errors.read_dbapi_mapping(source)
    assert mapping == {k: v.__name__ for k, v in errors._CLASS_BY_SQLSTATE_CLASS.items()}
    with pytest.raises(ValueError, match="not found"):
        gen_errors.read_dbapi_mapping("x = 1\n")


# -- the generated classes ------------------------------------------------------


def test_every_code_has_a_public_class_under_its_dbapi_class() -> None:
    assert len(_sqlstate.SQLSTATE_TABLE) >= 240
    for code, condition, cls in _sqlstate.SQLSTATE_TABLE:
        assert getattr(errors, cls.__name__) is cls
        assert cls.__name__ in errors.__all__
        assert cls.__module__ == "psycopg3.errors"
        assert cls.sqlstate == code
        assert cls.__doc__ == f"SQLSTATE {code}: {condition}."
        dbapi = errors._CLASS_BY_SQLSTATE_CLASS.get(code[:2], errors.DatabaseError)
        assert issubclass(cls, dbapi), (code, cls)
        generic = errors._BY_SQLSTATE.get(code[:2] + "000")
        if generic is not None and generic is not cls:
            assert cls.__bases__ == (generic,)
        assert cls not in DBAPI_CLASSES


def test_class_names_are_unique() -> None:
    names = [cls.__name__ for _, _, cls in _sqlstate.SQLSTATE_TABLE]
    assert len(names) == len(set(names))
    assert not set(names) & {cls.__name__ for cls in DBAPI_CLASSES}


@pytest.mark.parametrize(
    "code, name, dbapi",
    [
        ("57014", "QueryCanceled", errors.OperationalError),
        ("25P02", "InFailedSqlTransaction", errors.InternalError),
        ("42P01", "UndefinedTable", errors.ProgrammingError),
        ("23505", "UniqueViolation", errors.IntegrityError),
        ("22012", "DivisionByZero", errors.DataError),
        ("40001", "SerializationFailure", errors.OperationalError),
        ("40P01", "DeadlockDetected", errors.OperationalError),
        ("55P03", "LockNotAvailable", errors.OperationalError),
        ("0A000", "FeatureNotSupported", errors.NotSupportedError),
        ("42601", "SyntaxError", errors.ProgrammingError),
        ("XX000", "ServerInternalError", errors.InternalError),
        ("58000", "SystemError", errors.OperationalError),
        ("P0001", "RaiseException", errors.InternalError),
    ],
)
def test_known_classes(code: str, name: str, dbapi: type[errors.Error]) -> None:
    cls = getattr(errors, name)
    assert errors.lookup(code) is cls
    assert errors.class_for_sqlstate(code) is cls
    assert issubclass(cls, dbapi)
    assert cls.sqlstate == code


def test_generic_classes_sit_between() -> None:
    assert errors.DivisionByZero.__mro__[1:3] == (errors.DataException, errors.DataError)
    assert issubclass(errors.UniqueViolation, errors.IntegrityConstraintViolation)
    assert issubclass(errors.SerializationFailure, errors.TransactionRollback)
    assert issubclass(errors.QueryCanceled, errors.OperatorIntervention)
    assert issubclass(errors.UndefinedTable, errors.SyntaxErrorOrAccessRuleViolation)


def test_warnings_and_success_are_not_error_classes() -> None:
    for key in ("00000", "01000", "01004", "02000", "warning", "no_data", "successful_completion"):
        with pytest.raises(KeyError):
            errors.lookup(key)
    # The condition name shared with a warning belongs to the error.
    assert errors.lookup("string_data_right_truncation").sqlstate == "22001"


def test_lookup_by_code_and_by_name() -> None:
    assert errors.lookup("23505") is errors.UniqueViolation
    assert errors.lookup("unique_violation") is errors.UniqueViolation
    assert errors.lookup("UNIQUE_VIOLATION") is errors.UniqueViolation
    assert errors.lookup("UniqueViolation") is errors.UniqueViolation
    assert errors.lookup("22p02") is errors.InvalidTextRepresentation
    # Shared names go to the first code; the others have their own class name.
    assert errors.lookup("null_value_not_allowed").sqlstate == "22004"
    assert errors.lookup("modifying_sql_data_not_permitted").sqlstate == "2F002"
    other = errors.lookup("ExternalRoutineModifyingSqlDataNotPermitted")
    assert other is errors.lookup("38002")
    assert errors.lookup("internal_error") is errors.ServerInternalError
    with pytest.raises(KeyError, match="no_such_condition"):
        errors.lookup("no_such_condition")
    with pytest.raises(KeyError):
        errors.lookup("99999")


def test_unknown_codes_fall_back_to_the_dbapi_class() -> None:
    assert errors.class_for_sqlstate("22ZZZ") is errors.DataError
    assert errors.class_for_sqlstate("57ZZZ") is errors.OperationalError
    assert errors.class_for_sqlstate("ZZ999") is errors.DatabaseError
    assert errors.class_for_sqlstate(None) is errors.DatabaseError
    assert errors.class_for_sqlstate("") is errors.DatabaseError


def test_dbapi_classes_are_exported_unchanged() -> None:
    for cls in DBAPI_CLASSES:
        assert getattr(psycopg3, cls.__name__) is cls
        assert getattr(psycopg3_sync, cls.__name__) is cls
        assert getattr(psycopg3_sync.Connection, cls.__name__) is cls
    assert psycopg3.errors is errors and psycopg3_sync.errors is errors


# -- errors made by hand -----------------------------------------------------------


def test_error_built_by_hand() -> None:
    err = errors.UniqueViolation("duplicate thing")
    assert str(err) == "duplicate thing"
    assert err.sqlstate == "23505"
    assert isinstance(err, errors.IntegrityError)
    assert err.pgerror is None
    assert all(value is None for value in err.diag.__getstate__().values())
    assert err.diag.constraint_name is None
    assert repr(err.diag) == "Diagnostic()"
    assert errors.ProgrammingError("x").sqlstate is None


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_error_built_by_hand_pickles(protocol: int) -> None:
    err = errors.DeadlockDetected("a", "b")
    copy = pickle.loads(pickle.dumps(err, protocol))
    assert type(copy) is errors.DeadlockDetected
    assert copy.args == ("a", "b")
    assert copy.sqlstate == "40P01"
    assert copy.diag.sqlstate is None


def test_diagnostic_without_result() -> None:
    diag = errors.Diagnostic()
    assert diag.severity is None and diag.source_function is None
    with pytest.raises(AttributeError):
        diag.no_such_field  # type: ignore[attr-defined]


# -- errors from the server ----------------------------------------------------------


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(dsn) as conn:
        yield conn


def _raise(conn: psycopg3_sync.Connection, query: str) -> errors.Error:
    with pytest.raises(errors.Error) as excinfo:
        conn.execute(query)
    conn.rollback()
    return excinfo.value


def test_server_error_fields(conn: psycopg3_sync.Connection) -> None:
    err = _raise(conn, "select * from no_such_table_for_diag")
    assert type(err) is errors.UndefinedTable
    assert str(err).startswith('relation "no_such_table_for_diag" does not exist')
    assert not str(err).startswith("ERROR")
    diag = err.diag
    assert (diag.severity, diag.severity_nonlocalized, diag.sqlstate) == ("ERROR", "ERROR", "42P01")
    assert diag.message_primary == err.pgerror
    assert diag.statement_position == "15"
    assert diag.source_file and diag.source_file.endswith(".c")
    assert diag.source_line and diag.source_line.isdigit()
    assert diag.source_function
    assert diag.message_hint is None and diag.context is None
    assert "sqlstate='42P01'" in repr(diag)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_server_error_pickles_with_its_fields(
    conn: psycopg3_sync.Connection, protocol: int
) -> None:
    err = _raise(conn, "select 1 / 0")
    copy = pickle.loads(pickle.dumps(err, protocol))
    assert type(copy) is errors.DivisionByZero
    assert str(copy) == str(err) == "division by zero"
    assert copy.sqlstate == "22012"
    assert copy.diag.__getstate__() == err.diag.__getstate__()
    assert copy.diag.source_function == err.diag.source_function is not None


def test_server_error_unpickles_in_another_process(conn: psycopg3_sync.Connection) -> None:
    err = _raise(conn, "select 'x'::int")
    code = (
        "import pickle, sys\n"
        "err = pickle.loads(sys.stdin.buffer.read())\n"
        "print(type(err).__module__, type(err).__name__, err.sqlstate, err.diag.severity)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(err),
        capture_output=True,
        timeout=30,
        check=True,
    )
    out = result.stdout.decode().split()
    assert out == ["psycopg3.errors", "InvalidTextRepresentation", "22P02", "ERROR"]


def test_non_ascii_fields(conn: psycopg3_sync.Connection) -> None:
    err = _raise(
        conn,
        "do $$ begin raise exception using message = 'café ☕', detail = 'naïve', "
        "errcode = 'check_violation'; end $$",
    )
    assert type(err) is errors.CheckViolation
    assert str(err).startswith("café ☕")
    assert err.diag.message_primary == "café ☕"
    assert err.diag.message_detail == "naïve"


def test_deadlock_detected(dsn: str, admin: psycopg3_sync.Connection) -> None:
    admin.execute("drop table if exists errors_deadlock")
    admin.execute("create table errors_deadlock (id int primary key, v int)")
    admin.execute("insert into errors_deadlock values (1, 0), (2, 0)")
    first = psycopg3_sync.connect(dsn)
    second = psycopg3_sync.connect(dsn)
    outcome: list[BaseException | None] = []
    try:
        # Only `second` looks for the deadlock, whenever it comes: it is the victim.
        first.execute("set deadlock_timeout = '1min'")
        first.execute("update errors_deadlock set v = 1 where id = 1")
        second.execute("set deadlock_timeout = '50ms'")
        second.execute("update errors_deadlock set v = 2 where id = 2")

        def first_waits() -> None:
            try:
                first.execute("update errors_deadlock set v = 1 where id = 2")
                outcome.append(None)
            except BaseException as ex:  # reported to the main thread
                outcome.append(ex)

        thread = threading.Thread(target=first_waits)
        thread.start()
        # `first` queued behind the lock on row 2:
        query = "select wait_event_type from pg_stat_activity where pid = %s"
        wait_until(
            lambda: admin.execute(query, (first.pgconn.backend_pid,)).fetchone() == ("Lock",),
            "the first update to wait for the lock",
        )
        with pytest.raises(errors.DeadlockDetected) as excinfo:
            second.execute("update errors_deadlock set v = 2 where id = 1")
        second.rollback()
        thread.join(10)
        assert outcome == [None]  # the victim's rollback let `first` through
        err = excinfo.value
        assert isinstance(err, errors.TransactionRollback)
        assert isinstance(err, errors.OperationalError)
        assert err.sqlstate == "40P01"
        assert err.diag.message_detail and "Process" in err.diag.message_detail
    finally:
        first.close()
        second.close()
        admin.execute("drop table if exists errors_deadlock")
