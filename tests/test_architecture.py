"""Architecture rules, checked on the source with the AST (the package is not imported).

1. The import graph of ``mixedbayes/`` has no cycle. Every import counts: top level, inside
   functions and under ``if TYPE_CHECKING:``. ``import mixedbayes.x.y`` and
   ``from mixedbayes.x import y`` (``y`` a module) are edges to ``mixedbayes.x.y``;
   ``from mixedbayes.x import name`` is an edge to ``mixedbayes.x`` (the package's
   ``__init__`` when ``x`` is a package). Importing a submodule does not add edges to the
   packages above it, so ``mixedbayes/__init__.py`` re-exporting from submodules is fine,
   while a submodule that imports ``mixedbayes`` (the top package) or ``mixedbayes.api``
   from below the API closes a cycle.
2. No module outside ``mixedbayes/kinds/`` compares a model kind with a string
   (``spec.kind == "nonlinear"``, ``kind in ("lmm", "glmm")``, ``getattr(s, "kind") == ...``).
3. ``mixedbayes/spec/`` and ``mixedbayes/design/`` never import PyMC, PyTensor, nutpie or
   ArviZ, not even inside functions.
4. Layers: only the top package, ``workflows/`` and the CLI import ``mixedbayes.api`` or
   ``mixedbayes``; results, diagnostics and the report take a ``FitLike`` and never import
   ``results.fit``; ``_version`` and ``results/protocols`` are leaves.

The checkers are tested on synthetic inputs first, so that they can fail.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = "mixedbayes"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / ROOT

#: Directories (relative to the package) where comparing a kind with a string is allowed.
KIND_HOME = ("kinds",)
#: Strings a bare name ``kind`` may be compared with: the prediction types of
#: ``Fit.predict(kind=...)`` (``results/predict.py``), which are not model kinds.
PREDICTION_KINDS = frozenset({"link", "mean", "response"})
#: Heavy libraries that ``spec/`` and ``design/`` must not import.
FORBIDDEN_IN_SPEC_DESIGN = ("pymc", "pytensor", "nutpie", "arviz")
NO_HEAVY_IMPORTS = ("spec", "design")


# --- the import graph ------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One import of a package module by another."""

    source: str
    target: str
    path: str
    line: int
    where: str  # "top", "function" or "TYPE_CHECKING"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{self.line}, {self.where})"


def discover(package_dir: Path, root: str) -> dict[str, Path]:
    """Module name → file, for every ``.py`` file under ``package_dir``."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([root, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with where it sits: top level, function, TYPE_CHECKING."""

    def walk(node: ast.AST, where: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, where
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, "function" if where == "top" else where)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), "TYPE_CHECKING")
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), where)
            else:
                yield from walk(child, where)

    yield from walk(tree, "top")


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str, modules: Set[str]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def imported_modules(
    tree: ast.AST, module: str, is_package: bool, modules: Set[str]
) -> Iterator[tuple[str, int, str]]:
    """``(target module, line, where)`` for each import of a module in ``modules``."""
    for node, where in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target is not None:
                    yield target, node.lineno, where
            continue
        source = _absolute(module, is_package, node)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            target = sub if sub in modules else _known(source, modules)
            if target is not None:
                yield target, node.lineno, where


def import_graph(package_dir: Path, root: str) -> tuple[dict[str, set[str]], list[Edge]]:
    """The package's import graph (module → imported modules) and its edges."""
    files = discover(package_dir, root)
    graph: dict[str, set[str]] = {m: set() for m in files}
    edges: list[Edge] = []
    seen: set[Edge] = set()
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(package_dir.parent))
        for target, line, where in imported_modules(
            tree, module, path.name == "__init__.py", files.keys()
        ):
            edge = Edge(module, target, rel, line, where)
            if target != module and edge not in seen:  # not a package importing its own names
                seen.add(edge)
                graph[module].add(target)
                edges.append(edge)
    return graph, edges


def strongly_connected_components(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def find_cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components that contain a cycle (two or more modules, or one
    module that imports itself)."""
    return [
        c for c in strongly_connected_components(graph) if len(c) > 1 or c[0] in graph.get(c[0], ())
    ]


def describe_cycles(cycles: list[list[str]], edges: list[Edge]) -> str:
    """Each cycle's modules and the imports that close it (file:line), for the message."""
    lines = []
    for members in cycles:
        inside = set(members)
        lines.append(f"cycle of {len(members)} modules: {', '.join(members)}")
        lines.extend(
            f"    {e}"
            for e in sorted(edges, key=lambda e: (e.source, e.line))
            if e.source in inside and e.target in inside
        )
    return "\n".join(lines)


# --- kind comparisons and heavy imports --------------------------------------------------------


def _strings(node: ast.expr) -> list[str] | None:
    """The string(s) of a constant or a tuple/list/set of constants; None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
        values = [_strings(e) for e in node.elts]
        if all(v is not None and len(v) == 1 for v in values):
            return [v[0] for v in values if v]
    return None


def _kind_operand(node: ast.expr) -> str | None:
    """``"attribute"``, ``"name"`` or ``"getattr"`` when ``node`` reads a ``kind``."""
    if isinstance(node, ast.Attribute) and node.attr == "kind":
        return "attribute"
    if isinstance(node, ast.Name) and node.id == "kind":
        return "name"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and _strings(node.args[1]) == ["kind"]
    ):
        return "getattr"
    return None


KIND_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def kind_comparisons(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, source text)`` of each comparison of a kind with string constants."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if not isinstance(op, KIND_OPS):
                continue
            pair = (operands[i], operands[i + 1])
            for kind_side, other in (pair, pair[::-1]):
                what = _kind_operand(kind_side)
                strings = _strings(other)
                if what is None or strings is None:
                    continue
                if what == "name" and set(strings) <= PREDICTION_KINDS:
                    continue
                found.append((node.lineno, ast.unparse(node)))
                break
    return sorted(set(found))


def heavy_imports(tree: ast.AST, forbidden: tuple[str, ...]) -> list[tuple[int, str]]:
    """``(line, module)`` of each import (any level) of a forbidden top-level package or of
    one of its siblings named ``<package>_...`` (``arviz_base``)."""

    def bad(name: str) -> bool:
        top = name.split(".")[0]
        return any(top == f or top.startswith(f"{f}_") for f in forbidden)

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if bad(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and bad(node.module or ""):
            found.append((node.lineno, node.module or ""))
    return found


# --- the checkers on synthetic inputs -----------------------------------------------------------


def test_cycle_finder_on_a_synthetic_graph() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"e"},
        "f": {"a", "g"},
        "g": {"f"},
    }
    assert sorted(find_cycles(graph)) == [["a", "b", "c"], ["e"], ["f", "g"]]
    dag = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert find_cycles(dag) == []
    chain = {str(i): {str(i + 1)} for i in range(3000)} | {"3000": {"0"}}
    assert [len(c) for c in find_cycles(chain)] == [3001]  # iterative: no recursion limit


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_import_graph_on_a_synthetic_package(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from pkg.api import run\nfrom pkg import low\n",
            "api.py": "from . import low\nfrom .sub import helper\n",
            "low.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.sub.helper import Thing
                def f():
                    import pkg.sub.deep as deep
                    from .. import outside
            """,
            "sub/__init__.py": "from .helper import Thing\n",
            "sub/helper.py": "import numpy\nfrom pkg.sub import deep\n",
            "sub/deep.py": "def g():\n    import pkg\n",
        },
    )
    graph, edges = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": {"pkg.api", "pkg.low"},
        "pkg.api": {"pkg.low", "pkg.sub.helper"},
        "pkg.low": {"pkg.sub.helper", "pkg.sub.deep"},
        "pkg.sub": {"pkg.sub.helper"},
        "pkg.sub.helper": {"pkg.sub.deep"},
        "pkg.sub.deep": {"pkg"},
    }
    where = {(e.source, e.target): e.where for e in edges}
    assert where["pkg.low", "pkg.sub.helper"] == "TYPE_CHECKING"
    assert where["pkg.low", "pkg.sub.deep"] == "function"
    assert where["pkg.api", "pkg.low"] == "top"
    # the function-level `import pkg` in deep closes a cycle through the top package
    (cycle,) = find_cycles(graph)
    assert cycle == ["pkg", "pkg.api", "pkg.low", "pkg.sub.deep", "pkg.sub.helper"]
    assert "pkg/sub/deep.py:2, function" in describe_cycles([cycle], edges)
    # without it, re-exporting from the top package is not a cycle
    (pkg / "sub" / "deep.py").write_text("X = 1\n", encoding="utf-8")
    assert find_cycles(import_graph(pkg, "pkg")[0]) == []


def test_kind_and_heavy_import_checkers_on_snippets() -> None:
    code = textwrap.dedent(
        """
        if spec.kind == "nonlinear": pass
        if "lmm" != fit.spec.kind: pass
        if kind in ("lmm", "glmm"): pass
        if getattr(design.spec, "kind", "") == "nonlinear": pass
        if kind == "response": pass
        if kind not in BUILDERS: pass
        if spec.family == "gaussian": pass
        if 0 < spec.kind: pass
        def f():
            import pymc as pm
            from arviz_base import rcParams
            from pytensor.tensor import exp
            import numpy
        """
    )
    tree = ast.parse(code)
    assert [line for line, _ in kind_comparisons(tree)] == [2, 3, 4, 5]
    assert heavy_imports(tree, FORBIDDEN_IN_SPEC_DESIGN) == [
        (11, "pymc"),
        (12, "arviz_base"),
        (13, "pytensor.tensor"),
    ]


# --- the rules on the package -------------------------------------------------------------------


def _package_files() -> dict[str, Path]:
    return discover(PACKAGE_DIR, ROOT)


@functools.cache
def _package_graph() -> tuple[dict[str, set[str]], list[Edge]]:
    graph, edges = import_graph(PACKAGE_DIR, ROOT)
    assert len(graph) > 50, f"the package was not found at {PACKAGE_DIR}"
    return graph, edges


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def test_no_import_cycles() -> None:
    graph, edges = _package_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (all imports count):\n" + describe_cycles(cycles, edges)


def test_api_is_not_imported_from_below() -> None:
    """Only the top package, ``workflows/`` and the CLI import the API or the top package."""
    _, edges = _package_graph()
    above = ("mixedbayes.api", "mixedbayes.cli", "mixedbayes.workflows")
    bad = [
        str(e)
        for e in edges
        if e.target in ("mixedbayes", "mixedbayes.api")
        and e.source != "mixedbayes"
        and not _under(e.source, *above)
    ]
    assert not bad, "imports of the API or the top package from below the API:\n" + "\n".join(bad)


def test_implementations_take_a_fitlike_not_the_fit() -> None:
    """``Fit`` sits on top of results, diagnostics and the report: it imports them, and
    they type their argument with ``FitLike`` instead of importing ``results.fit`` (or the
    ``results`` package, which imports it)."""
    _, edges = _package_graph()
    below = ("mixedbayes.results", "mixedbayes.diagnostics", "mixedbayes.report")
    bad = [
        str(e)
        for e in edges
        if e.target in ("mixedbayes.results.fit", "mixedbayes.results")
        and _under(e.source, *below)
        and e.source not in ("mixedbayes.results.fit", "mixedbayes.results")
    ]
    assert not bad, "imports of Fit below it:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["mixedbayes._version", "mixedbayes.results.protocols"])
def test_leaf_modules_import_nothing_of_the_package_at_run_time(module: str) -> None:
    graph, edges = _package_graph()
    assert module in graph
    bad = [str(e) for e in edges if e.source == module and e.where != "TYPE_CHECKING"]
    assert not bad, f"{module} must be a leaf:\n" + "\n".join(bad)


def test_no_kind_string_comparisons_outside_kinds() -> None:
    found = []
    for path in _package_files().values():
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] in KIND_HOME:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{ROOT}/{rel}:{line}: {text}" for line, text in kind_comparisons(tree)]
    assert not found, "kind compared with a string outside kinds/:\n" + "\n".join(found)


@pytest.mark.parametrize("subpackage", NO_HEAVY_IMPORTS)
def test_spec_and_design_import_no_modelling_library(subpackage: str) -> None:
    found = []
    for path in sorted((PACKAGE_DIR / subpackage).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(PACKAGE_DIR)
        found += [
            f"{ROOT}/{rel}:{line}: {name}"
            for line, name in heavy_imports(tree, FORBIDDEN_IN_SPEC_DESIGN)
        ]
    assert not found, f"{subpackage}/ imports a modelling library:\n" + "\n".join(found)
