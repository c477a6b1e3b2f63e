"""Generate ``psycopg3/_sqlstate.py``: one exception class per SQLSTATE, from errcodes.txt.

PostgreSQL ships its list of error conditions as ``errcodes.txt`` (Debian puts it
in ``/usr/share/postgresql/<major>/``). This script turns it into a Python module
that is committed to the repository; rerun it when a new PostgreSQL adds codes::

    python tools/gen_errors.py [ERRCODES_TXT] [--output PATH] [--check]

The rules that shape the output (each is a decision a reviewer should see):

1. Only error lines (kind ``E``) that have a condition name become classes.
   Success (class 00), warnings (class 01) and "no data" (class 02) are never
   raised: the server reports them as notices, not errors. Lines without a
   condition name are aliases of a named code (``ERRCODE_UNDEFINED_CURSOR`` is
   34000) and are skipped.
2. The generic code of a SQLSTATE class (``xx000``, e.g. 22000
   ``data_exception``) becomes an intermediate class: it subclasses the DB-API
   class chosen for the SQLSTATE class by ``_CLASS_BY_SQLSTATE_CLASS`` in
   ``errors.py`` (read from that file, so the mapping has one home), and every
   other code of the class subclasses it.
3. A class is named after its condition in CamelCase (``unique_violation`` ->
   ``UniqueViolation``). When a condition name is shared by codes of several
   classes, the first in the file keeps the plain name and the others are
   prefixed with their class's generic condition, minus ``_exception``
   (38002 -> ``ExternalRoutineModifyingSqlDataNotPermitted``). A name that
   would hide a DB-API class is prefixed with ``Server`` (XX000 ->
   ``ServerInternalError``). Names equal to Python builtins are kept
   (``SyntaxError``, ``SystemError``): they are reached as
   ``errors.SyntaxError``, the name users of other drivers know.
4. Classes are written in the file's order; the same input always gives the
   same output, byte for byte (a test compares it with the committed module).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ERRCODES = "/usr/share/postgresql/15/errcodes.txt"
ROOT = Path(__file__).resolve().parent.parent
ERRORS_MODULE = ROOT / "packages/psycopg3-core/src/psycopg3/errors.py"
OUTPUT_MODULE = ROOT / "packages/psycopg3-core/src/psycopg3/_sqlstate.py"

_LINE = re.compile(r"^([0-9A-Z]{5})\s+([EWS])\s+(ERRCODE_\w+)(?:\s+(\w+))?\s*$")
_DBAPI_NAMES = frozenset(
    {
        "Warning",
        "Error",
        "InterfaceError",
        "DatabaseError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    }
)
_FALLBACK_BASE = "DatabaseError"
_LINE_LENGTH = 100  # ruff's, from pyproject.toml: the output must pass `ruff format --check`


@dataclass(frozen=True)
class ErrorCode:
    """One line of errcodes.txt describing an error condition."""

    sqlstate: str
    condition: str
    section: str

    @property
    def sqlstate_class(self) -> str:
        return self.sqlstate[:2]

    @property
    def is_generic(self) -> bool:
        return self.sqlstate.endswith("000")


@dataclass(frozen=True)
class ClassSpec:
    """One class of the generated module."""

    name: str
    base: str
    code: ErrorCode


def parse_errcodes(text: str) -> list[ErrorCode]:
    """Return the named error conditions of an errcodes.txt, in file order.

    :param text: the content of the file.
    :return: one entry per named ``E`` line; a repeated SQLSTATE keeps its first line.
    :raises ValueError: on a line that is neither a comment, a section, nor a code.
    """
    codes: list[ErrorCode] = []
    seen: set[str] = set()
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("Section:"):
            section = stripped.removeprefix("Section:").strip()
            continue
        match = _LINE.match(stripped)
        if match is None:
            raise ValueError(f"line {number} of errcodes.txt not understood: {line!r}")
        sqlstate, kind, _macro, condition = match.groups()
        if kind != "E" or condition is None or sqlstate in seen:
            continue
        seen.add(sqlstate)
        codes.append(ErrorCode(sqlstate, condition, section))
    return codes


def read_dbapi_mapping(errors_source: str) -> dict[str, str]:
    """Read ``_CLASS_BY_SQLSTATE_CLASS`` from errors.py: SQLSTATE class -> DB-API class name.

    :raises ValueError: if the assignment is missing or not a literal dict of names.
    """
    for node in ast.parse(errors_source).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "_CLASS_BY_SQLSTATE_CLASS"
            and isinstance(node.value, ast.Dict)
        ):
            mapping: dict[str, str] = {}
            for key, value in zip(node.value.keys, node.value.values):
                if not (
                    isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and isinstance(value, ast.Name)
                ):
                    raise ValueError("_CLASS_BY_SQLSTATE_CLASS must map strings to class names")
                mapping[key.value] = value.id
            return mapping
    raise ValueError("_CLASS_BY_SQLSTATE_CLASS not found in errors.py")


def camel_case(condition: str) -> str:
    return "".join(part.capitalize() for part in condition.split("_"))


def plan_classes(codes: list[ErrorCode], dbapi: dict[str, str]) -> list[ClassSpec]:
    """Name every class and choose its base (rules 2 and 3 of the module docstring)."""
    generic = {code.sqlstate_class: code for code in codes if code.is_generic}
    first_owner: dict[str, str] = {}
    for code in codes:
        first_owner.setdefault(code.condition, code.sqlstate)
    names: dict[str, str] = {}  # SQLSTATE -> class name
    for code in codes:
        name = camel_case(code.condition)
        if first_owner[code.condition] != code.sqlstate:
            owner = generic.get(code.sqlstate_class)
            prefix = owner.condition.removesuffix("_exception") if owner else code.sqlstate
            name = camel_case(prefix) + name
        if name in _DBAPI_NAMES:
            name = "Server" + name
        if name in names.values():
            raise ValueError(f"two SQLSTATEs would be named {name}, {code.sqlstate} is one")
        names[code.sqlstate] = name
    specs: list[ClassSpec] = []
    for code in codes:
        owner = generic.get(code.sqlstate_class)
        if owner is None or owner is code:
            base = dbapi.get(code.sqlstate_class, _FALLBACK_BASE)
        else:
            base = names[owner.sqlstate]
        specs.append(ClassSpec(names[code.sqlstate], base, code))
    return specs


def render(specs: list[ClassSpec], source: str) -> str:
    """Return the text of the generated module (already in ruff's format)."""
    # DatabaseError always: the table's annotation names it.
    bases = {s.base for s in specs if s.base in _DBAPI_NAMES} | {_FALLBACK_BASE}
    dbapi_used = sorted(bases, key=str.lower)
    out: list[str] = [
        '"""Exception classes for every SQLSTATE, generated by tools/gen_errors.py: do not edit.',
        "",
        "Import them from `psycopg3.errors`, which re-exports them all. Regenerate with",
        "``python tools/gen_errors.py [ERRCODES_TXT]``.",
        "",
        "Must not: hold anything but the generated classes and their table.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from ._dbapi_errors import (",
        *(f"    {name}," for name in dbapi_used),
        ")",
        "",
        "#: The errcodes.txt these classes were generated from.",
        f'ERRCODES_SOURCE = "{source}"',
        "",
        "__all__: list[str] = [",
        *(f'    "{spec.name}",' for spec in specs),
        "]",
    ]
    section = ""
    for spec in specs:
        if spec.code.section != section:
            section = spec.code.section
            out += ["", "", f"# {section}"]
        out += [
            "",
            "",
            f"class {spec.name}({spec.base}):",
            f'    """SQLSTATE {spec.code.sqlstate}: {spec.code.condition}."""',
            "",
            f'    sqlstate = "{spec.code.sqlstate}"',
        ]
    out += [
        "",
        "",
        "#: (SQLSTATE, PostgreSQL's condition name, class) for every class above.",
        "SQLSTATE_TABLE: tuple[tuple[str, str, type[DatabaseError]], ...] = (",
    ]
    for spec in specs:
        fields = [f'"{spec.code.sqlstate}"', f'"{spec.code.condition}"', spec.name]
        row = f"    ({', '.join(fields)}),"
        if len(row) <= _LINE_LENGTH:
            out.append(row)
        else:  # as ruff format splits it
            out += ["    (", *(f"        {field}," for field in fields), "    ),"]
    out.append(")")
    return "\n".join(out) + "\n"


def generate(errcodes_path: str) -> str:
    """Read errcodes.txt at ``errcodes_path`` and errors.py; return the module text.

    :param errcodes_path: the path, recorded as is in the generated module.
    :raises OSError: if a file cannot be read.
    """
    codes = parse_errcodes(Path(errcodes_path).read_text(encoding="utf-8"))
    dbapi = read_dbapi_mapping(ERRORS_MODULE.read_text(encoding="utf-8"))
    return render(plan_classes(codes, dbapi), errcodes_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("errcodes", nargs="?", default=DEFAULT_ERRCODES, help="errcodes.txt")
    parser.add_argument("--output", type=Path, default=OUTPUT_MODULE, help="module to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the module differs, write nothing"
    )
    args = parser.parse_args(argv)
    text = generate(args.errcodes)
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is not what {args.errcodes} generates", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
    count = text.count("\nclass ")
    print(f"{args.output}: {count} classes from {args.errcodes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
