"""The packages import downward only, and no module imports itself back.

Every module of the core (``psycopg3``) and of the adapters is parsed; every
``import`` statement is collected, wherever it is written: at module level,
inside a function (a "late" import still runs, and still ties the two modules
together), inside ``try``. Imports under ``if TYPE_CHECKING:`` are not run:
they serve the type checker only, so they may point anywhere (a lower layer
naming the class that will call it, for its annotations). Every other import
is a runtime import, and the rules below hold for all of them.

Rules:

1. Every module belongs to exactly one layer of ``LAYERS``. A new module
   fails this test until its author adds it to the table: where a module sits
   is a decision, not an accident.
2. A module imports only from its own layer or from the layers below it.
3. The adapters import only the core's public modules (no ``_name`` module):
   what they need is exported by ``psycopg3.abc``, ``psycopg3.waiting`` and
   the other public modules.
4. The runtime imports form no cycle, within a layer or across layers: the
   modules can be imported one by one, bottom to top.

The layers, bottom to top (names relative to ``psycopg3``):

0. base: ``pq``, ``errors`` (with ``_dbapi_errors`` and the generated
   ``_sqlstate`` under it), ``waiting`` (the generator types), ``_encodings``,
   ``_arguments``, ``_version``.
1. protocol: ``generators`` (with ``_exec_gen``, ``_copy_gen``, ``_pipeline_gen``,
   ``_drain_gen`` under it), ``conninfo``, ``_cancel``, ``_dns``, ``_attempts``.
2. adaptation: ``_adapt``, ``adapt``, ``types``, ``sql``, ``rows``,
   ``_transformer``, ``_queries``, ``_column``, ``dbapi20``.
3. bases: the connection and cursor bases and what they are made of
   (``_connection_base``, ``_interruption``, ``_server_messages``,
   ``_cursor_base``, ``_cursor_fetch``, ``_cursor_many``, ``_server_cursor``,
   ``_copy``, ``_copy_format``, ``_pipeline``, ``_pipeline_queue``,
   ``_transaction``, ``_transaction_control``, ``_tpc``, ``_prepare``,
   ``_notify``, ``_block_lock``, ``_conn_info``, and ``_link``, through which
   the cursors and blocks reach their connection's internals).
4. drivers: the blocking and async drivers and the pool (``_async_*``,
   ``_framework``, ``_blocking_*``, ``_pool*``), and ``abc``, their public face.
   The blocks (transaction, pipeline, COPY) of each flavour are here too
   (``_blocking_blocks``, ``_async_blocks``), over their bases' generators.
5. package: ``psycopg3`` itself, the public facade, which also registers the
   built-in adapters on the global map by importing ``_adapt.defaults``.
6. adapters: ``psycopg3_sync``, ``psycopg3_asyncio``, ``psycopg3_trio``.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGES = Path(__file__).parent.parent.parent / "packages"
CORE = "psycopg3"
ADAPTERS = ["psycopg3_sync", "psycopg3_asyncio", "psycopg3_trio"]

# Layer name -> module-name patterns (fnmatch, full dotted names), bottom to top.
LAYERS: dict[str, list[str]] = {
    "base": [
        "psycopg3.pq",
        "psycopg3.pq.*",
        "psycopg3.errors",
        "psycopg3._dbapi_errors",
        "psycopg3._sqlstate",
        "psycopg3.waiting",
        "psycopg3._encodings",
        "psycopg3._arguments",
        "psycopg3._version",
    ],
    "protocol": [
        "psycopg3.generators",
        "psycopg3._exec_gen",
        "psycopg3._copy_gen",
        "psycopg3._pipeline_gen",
        "psycopg3._drain_gen",
        "psycopg3.conninfo",
        "psycopg3._cancel",
        "psycopg3._dns",
        "psycopg3._attempts",
    ],
    "adaptation": [
        "psycopg3._adapt",
        "psycopg3._adapt.*",
        "psycopg3.adapt",
        "psycopg3.types",
        "psycopg3.types.*",
        "psycopg3.sql",
        "psycopg3.rows",
        "psycopg3._transformer",
        "psycopg3._queries",
        "psycopg3._column",
        "psycopg3.dbapi20",
    ],
    "bases": [
        "psycopg3._connection_base",
        "psycopg3._interruption",
        "psycopg3._server_messages",
        "psycopg3._cursor_base",
        "psycopg3._cursor_fetch",
        "psycopg3._cursor_many",
        "psycopg3._server_cursor",
        "psycopg3._copy",
        "psycopg3._copy_format",
        "psycopg3._pipeline",
        "psycopg3._pipeline_queue",
        "psycopg3._transaction",
        "psycopg3._transaction_control",
        "psycopg3._tpc",
        "psycopg3._prepare",
        "psycopg3._notify",
        "psycopg3._block_lock",
        "psycopg3._conn_info",
        "psycopg3._link",
    ],
    "drivers": [
        "psycopg3._async_*",
        "psycopg3._async_blocks",
        "psycopg3._framework",
        "psycopg3._blocking_*",
        "psycopg3._blocking_blocks",
        "psycopg3._pool",
        "psycopg3._pool_*",
        "psycopg3.abc",
    ],
    "package": ["psycopg3"],
    "adapters": [f"{name}{suffix}" for name in ADAPTERS for suffix in ("", ".*")],
}
RANK = {name: rank for rank, name in enumerate(LAYERS)}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    runtime: bool  # False for an import under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        kind = "" if self.runtime else " (TYPE_CHECKING)"
        return f"{self.importer}:{self.line} imports {self.imported}{kind}"


def find_modules() -> dict[str, Path]:
    """Map the dotted name of every module of the packages to its file."""
    modules = {}
    for name in [CORE, *ADAPTERS]:
        src = next(PACKAGES.glob(f"*/src/{name}"))
        for path in sorted(src.rglob("*.py")):
            parts = list(path.relative_to(src.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Collector(ast.NodeVisitor):
    """Collect the imports of one module, whatever their depth in its code."""

    def __init__(self, module: str, is_package: bool, known: Iterable[str]):
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = set(known)
        self.imports: list[Import] = []
        self.hidden: list[int] = []  # lines importing by a computed name
        self._runtime = True

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        saved, self._runtime = self._runtime, False
        for child in node.body:
            self.visit(child)
        self._runtime = saved
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            # `from package import module` imports the module; `from module
            # import name` only the module.
            self._add(submodule if submodule in self.known else source, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__"):
            self.hidden.append(node.lineno)
        self.generic_visit(node)

    def _add(self, target: str, line: int) -> None:
        # Importing a.b.c runs the packages a and a.b first: count those the
        # importer is not already inside (its own packages have begun running).
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            inside = self.module == name or self.module.startswith(name + ".")
            if name in self.known and not inside:
                self.imports.append(Import(self.module, name, line, self._runtime))


def collect_imports(modules: dict[str, Path]) -> tuple[list[Import], list[str]]:
    """Return every import between the modules, and the imports this cannot see."""
    imports: list[Import] = []
    hidden: list[str] = []
    for module, path in modules.items():
        collector = _Collector(module, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(), str(path)))
        imports.extend(collector.imports)
        hidden.extend(f"{module}:{line}" for line in collector.hidden)
    return imports, hidden


def layer_of(module: str) -> list[str]:
    """Return the layers whose patterns match a module (exactly one when classified)."""
    return [
        layer
        for layer, patterns in LAYERS.items()
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)
    ]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """Return a path a -> ... -> a through a component, to show in a failure."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = min(n for n in graph[path[-1]] if n in members)
        if nxt in seen:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
        seen.add(nxt)


def runtime_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.runtime:
            graph.setdefault(imp.importer, set()).add(imp.imported)
    return graph


def _all_imports() -> list[Import]:
    imports, _ = collect_imports(find_modules())
    return imports


def test_every_module_is_in_one_layer() -> None:
    problems = []
    for module in find_modules():
        layers = layer_of(module)
        if not layers:
            problems.append(
                f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
                " (and to 'The layers' in docs/adapters.md)"
            )
        elif len(layers) > 1:
            problems.append(f"{module} matches several layers: {layers}")
    assert problems == [], "\n".join(problems)


def test_imports_go_downward() -> None:
    upward = []
    for imp in _all_imports():
        importer, imported = layer_of(imp.importer), layer_of(imp.imported)
        if not imp.runtime or len(importer) != 1 or len(imported) != 1:
            continue  # unclassified modules fail test_every_module_is_in_one_layer
        (low,), (high,) = importer, imported
        if RANK[high] > RANK[low]:
            upward.append(f"{imp}: layer {low} imports layer {high}")
    assert upward == [], "\n".join(upward)


def test_adapters_import_public_core_modules_only() -> None:
    private = [
        str(imp)
        for imp in _all_imports()
        if imp.importer.partition(".")[0] in ADAPTERS
        and imp.imported.partition(".")[0] == CORE
        and any(part.startswith("_") for part in imp.imported.split("."))
    ]
    assert private == [], "\n".join(private)


def test_no_import_cycle() -> None:
    graph = runtime_graph(_all_imports())
    cycles = [
        f"{' -> '.join(one_cycle(graph, c))} (one cycle of {len(c)} modules tied: {', '.join(c)})"
        for c in find_cycles(graph)
    ]
    assert cycles == [], "\n".join(cycles)


def test_every_import_is_visible() -> None:
    # importlib.import_module("psycopg3." + name) would escape the checks above.
    _, hidden = collect_imports(find_modules())
    assert hidden == [], "\n".join(hidden)


def test_one_module_registers_the_default_adapters() -> None:
    # The global map is filled in one place, imported by the facade: the
    # modules below it neither fill it nor need to know who does.
    modules = find_modules()
    callers = {
        module
        for module, path in modules.items()
        if not module.startswith("psycopg3.types")
        and "register_default_adapters" in path.read_text()
    }
    assert callers == {"psycopg3._adapt.defaults"}
    facade = {imp.imported for imp in _all_imports() if imp.importer == CORE and imp.runtime}
    assert "psycopg3._adapt.defaults" in facade


def test_docs_list_every_layer() -> None:
    text = (PACKAGES.parent / "docs" / "adapters.md").read_text()
    section = text.split("\n## The layers\n", 1)[1].split("\n## ", 1)[0]
    listed = [line[4:].split("**")[0] for line in section.splitlines() if line.startswith("- **")]
    assert listed == list(LAYERS)


# The checker checked: each rule can fail.


def _collect(source: str, module: str = "psycopg3.lower", is_package: bool = False) -> list[Import]:
    known = ["psycopg3", "psycopg3.lower", "psycopg3.upper", "psycopg3.pkg", "psycopg3.pkg.mod"]
    collector = _Collector(module, is_package, known)
    collector.visit(ast.parse(source))
    return collector.imports


def test_checker_sees_function_local_and_type_checking_imports() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from .upper import Thing
else:
    from . import pkg
def late():
    from .upper import other
    import psycopg3.pkg.mod
"""
    found = {(i.imported, i.line, i.runtime) for i in _collect(source)}
    assert found == {
        ("psycopg3.upper", 4, False),
        ("psycopg3.pkg", 6, True),
        ("psycopg3.upper", 8, True),
        ("psycopg3.pkg", 9, True),
        ("psycopg3.pkg.mod", 9, True),
    }


def test_checker_resolves_relative_imports_from_a_package() -> None:
    # Inside psycopg3.pkg, `..upper` is psycopg3.upper and `.mod` a submodule;
    # the package itself is not counted (it is already running).
    source = "from ..upper import x\nfrom . import mod\nfrom .mod import y\n"
    found = {i.imported for i in _collect(source, "psycopg3.pkg.other")}
    assert found == {"psycopg3.upper", "psycopg3.pkg.mod"}


def test_checker_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert one_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_checker_classifies_modules() -> None:
    assert layer_of("psycopg3.pq.pgconn") == ["base"]
    assert layer_of("psycopg3._blocking_connection") == ["drivers"]
    assert layer_of("psycopg3._pool_thread") == ["drivers"]
    assert layer_of("psycopg3._nowhere") == []
