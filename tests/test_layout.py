"""The package layout of DESIGN.md ("Where the line between packages runs") holds in the code:
no import cycle between modules, nothing at runtime imports the tooling (`ops`), and every
import between packages goes in a direction the table below allows.

Every import counts, also one inside a function (a cycle hidden in a function is still a
cycle); only imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ops.config import REPO_ROOT

CONTRACT, TELEMETRY, SERVICES = "booking_rush.contract", "booking_rush.telemetry", "booking_rush.services"
RUNTIME_SHARED = {"waiting_room", CONTRACT, TELEMETRY, SERVICES, "lua"}

# package -> the packages it may import (besides itself). `ops` may import anything.
MAY_IMPORT: dict[str, set[str] | None] = {
    "gateway": RUNTIME_SHARED,
    "workers": RUNTIME_SHARED,
    "waiting_room": {CONTRACT, TELEMETRY, SERVICES, "lua"},
    "lua": {CONTRACT},
    SERVICES: {CONTRACT, TELEMETRY},
    TELEMETRY: {CONTRACT},
    CONTRACT: set(),
    "booking_rush": set(),  # the grouping package itself: a docstring, nothing else
    "ops": None,
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: list[str]) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name."""
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package.replace(".", "/")).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes_of(child))
            continue
        yield from _import_nodes_of(node)


def _import_nodes_of(node: ast.AST):
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _import_nodes(node)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that module `name` imports (a name imported from a package is the
    submodule when there is one, else the package)."""

    def ours(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        found.update(t for t in map(ours, targets) if t is not None and t != name)
    return found


def import_graph(root: Path, packages: list[str]) -> dict[str, set[str]]:
    modules = find_modules(root, packages)
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def package_of(module: str, table: dict) -> str | None:
    """The most specific package of the table that holds `module`."""
    holders = [p for p in table if module == p or module.startswith(p + ".")]
    return max(holders, key=len) if holders else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def wrong_way_imports(graph: dict[str, set[str]], table: dict[str, set[str] | None]) -> list[str]:
    """ "importer -> imported" for every import between packages the table does not allow."""
    wrong = []
    for importer, imported in sorted(graph.items()):
        source = package_of(importer, table)
        allowed = table.get(source) if source else set()
        for target in sorted(imported):
            dest = package_of(target, table)
            if dest == source or allowed is None:
                continue
            if dest not in allowed:
                wrong.append(f"{importer} ({source}) -> {target} ({dest})")
    return wrong


def top_level_packages(root: Path) -> set[str]:
    return {p.parent.name for p in root.glob("*/__init__.py")} - {"tests"}


def test_every_package_has_a_row_in_the_table():
    placed = {p.split(".")[0] for p in MAY_IMPORT}
    assert top_level_packages(REPO_ROOT) <= placed
    shared = {module_name(p.parent, REPO_ROOT) for p in (REPO_ROOT / "booking_rush").glob("*/__init__.py")}
    assert shared <= set(MAY_IMPORT), "a package under booking_rush/ needs its own row"


def test_no_module_imports_in_a_circle():
    graph = import_graph(REPO_ROOT, sorted(top_level_packages(REPO_ROOT)))
    assert cycles(graph) == []


def test_imports_go_only_the_allowed_way():
    graph = import_graph(REPO_ROOT, sorted(top_level_packages(REPO_ROOT)))
    assert wrong_way_imports(graph, MAY_IMPORT) == []


# The checks themselves, on a small tree written for them: they must see what they look for.


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


SMALL_TREE = {
    "app/__init__.py": "",
    "app/keys.py": "from app import view\n",
    "app/view.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import keys\n",
    "app/late.py": "def f():\n    from . import keys\n",
    "lib/__init__.py": "",
    "lib/core.py": "import os\n",
    "tools/__init__.py": "",
    "tools/run.py": "from app.keys import X\nfrom lib import core\n",
}
SMALL_TABLE = {"app": {"lib"}, "lib": set(), "tools": None}


def test_the_checker_sees_a_cycle_and_ignores_type_checking_imports(tmp_path):
    _write(tmp_path, SMALL_TREE)
    graph = import_graph(tmp_path, ["app", "lib", "tools"])
    assert graph["app.late"] == {"app.keys"}  # relative, inside a function: counted
    assert cycles(graph) == []  # view's import runs only for type checkers
    _write(tmp_path, {"app/view.py": "from app.keys import K\n"})
    assert cycles(import_graph(tmp_path, ["app", "lib", "tools"])) == [["app.keys", "app.view"]]


def test_the_checker_sees_an_upward_import(tmp_path):
    _write(tmp_path, SMALL_TREE)
    assert wrong_way_imports(import_graph(tmp_path, ["app", "lib", "tools"]), SMALL_TABLE) == []
    _write(tmp_path, {"lib/core.py": "from app import keys\nimport tools.run\n"})
    assert wrong_way_imports(import_graph(tmp_path, ["app", "lib", "tools"]), SMALL_TABLE) == [
        "lib.core (lib) -> app.keys (app)",
        "lib.core (lib) -> tools.run (tools)",
    ]
