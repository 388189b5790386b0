"""Layering rules (DESIGN.md: apps and kg depend on the core, the core on neither), checked on
the import graph of the repository's own modules.

The graph holds every import statement, at module level and inside functions alike (a lazy
import is still a dependency): ``import a.b``, ``from a import b``, relative imports
resolved against the importing module's package. An import goes to the module it names,
``from pkg import submodule`` to the submodule, ``from pkg import name`` to ``pkg`` (its
``__init__``). The checker is :func:`import_graph` plus one function per rule; each rule
is tested on the repository and, on a small tree written to ``tmp_path``, on a deliberate
violation.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Top-level packages of this repository that the rules cover (``kg`` may not exist yet).
PACKAGES = ("lepton_nlp", "apps", "kg")
#: Streamlit belongs to the suite's entry point and its pages, never to logic modules.
STREAMLIT_ENTRY = ("apps.suite", "apps.navigation")


@dataclass(frozen=True)
class Import:
    """One imported module or name, as one import statement in one module has it."""

    importer: str
    """The importing module (``lepton_nlp.config``; a package is its ``__init__``)."""
    module: str
    """The module imported: a submodule where ``from pkg import submodule`` names one."""
    name: str | None
    """The name taken from ``module`` (``from module import name``), else None."""
    where: str
    """``path:line`` of the statement, for messages."""


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``packages`` under ``root``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _statement_imports(node: ast.AST, importer: str, is_package: bool, known: dict) -> list:
    """``(module, name)`` pairs of one import statement, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    pairs = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        pairs.append((submodule, None) if submodule in known else (base, alias.name))
    return pairs


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Every import of every module of ``packages`` under ``root``, function-level ones included."""
    modules = find_modules(root, packages)
    found = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            for module, name in _statement_imports(node, importer, is_package, modules):
                found.append(Import(importer, module, name, where))
    return found


def _known(module: str, modules: dict) -> str | None:
    """The module itself, or the nearest enclosing package of ours (``a.b.c`` -> ``a.b``)."""
    while module and module not in modules:
        module = module.rpartition(".")[0]
    return module or None


def _top(module: str) -> str:
    return module.split(".")[0]


def cycles(root: Path, package: str = "lepton_nlp") -> list[str]:
    """Import cycles among the modules of ``package``, one path per strongly connected group."""
    modules = find_modules(root, (package,))
    edges: dict[str, dict[str, str]] = {m: {} for m in modules}
    for imp in import_graph(root, (package,)):
        target = _known(imp.module, modules)
        if target and target != imp.importer:
            edges[imp.importer].setdefault(target, imp.where)

    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    reports = []
    for group in groups:
        # A shortest way from the group's first module back to itself, inside the group.
        first, members = group[0], set(group)
        paths = {first: [first]}
        frontier = [first]
        cycle = None
        while frontier and cycle is None:
            following = []
            for node in frontier:
                for target in sorted(edges[node]):
                    if target == first:
                        cycle = [*paths[node], first]
                        break
                    if target in members and target not in paths:
                        paths[target] = [*paths[node], target]
                        following.append(target)
                if cycle:
                    break
            frontier = following
        steps = [f"{a} -> {b} ({edges[a][b]})" for a, b in itertools.pairwise(cycle)]
        reports.append(f"cycle among {', '.join(group)}: " + "; ".join(steps))
    return reports


def private_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Imports of another module's ``_private`` name within ``packages``.

    ``from a.b import _x`` is private to ``a.b``; a private module ``a._m`` is private to its
    package ``a``, whose own modules may import it. Third-party libraries are not checked.
    """
    offenders = []
    for imp in import_graph(root, packages):
        if _top(imp.module) not in packages:
            continue
        parts = [*imp.module.split("."), *([imp.name] if imp.name else [])]
        for i, part in enumerate(parts):
            owner = ".".join(parts[:i])
            inside = imp.importer == owner or imp.importer.startswith(owner + ".")
            if part.startswith("_") and not part.startswith("__") and not inside:
                offenders.append(f"{imp.where}: {imp.importer} imports {'.'.join(parts)}")
                break
    return offenders


def forbidden_imports(
    root: Path, rules: dict[str, tuple[str, ...]], packages: tuple[str, ...] = PACKAGES
) -> list[str]:
    """Imports from a package of ``rules`` (key) of a top-level package it must not use (value)."""
    return [
        f"{imp.where}: {imp.importer} imports {imp.module}"
        for imp in import_graph(root, packages)
        if _top(imp.module) in rules.get(_top(imp.importer), ())
    ]


def is_page(module: str) -> bool:
    """A Streamlit page: a module inside a ``pages`` folder, or one named ``page``."""
    parts = module.split(".")
    return "pages" in parts[:-1] or parts[-1] == "page"


def streamlit_outside_pages(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Modules other than the suite's entry and its pages that import streamlit."""
    return [
        f"{imp.where}: {imp.importer} imports {imp.module}"
        for imp in import_graph(root, packages)
        if _top(imp.module) == "streamlit"
        and imp.importer not in STREAMLIT_ENTRY
        and not is_page(imp.importer)
    ]


#: What each package must never import (DESIGN.md: nothing imports apps; the core is a library).
FORBIDDEN = {"lepton_nlp": ("apps", "kg", "streamlit"), "kg": ("apps", "streamlit")}


# --- the repository ----------------------------------------------------------------------


def test_no_import_cycles_in_the_core():
    assert cycles(ROOT) == []


#: Private imports in apps/ that the apps restructure (issue 18's apps half, on another
#: branch) removes; this core branch leaves apps/ alone. Delete each entry once it is gone.
def test_no_module_imports_another_modules_private_names():
    found = private_imports(ROOT)
    assert found == []


def test_core_and_kg_import_neither_apps_nor_streamlit():
    assert forbidden_imports(ROOT, FORBIDDEN) == []


def test_streamlit_only_in_the_suite_entry_and_pages():
    assert streamlit_outside_pages(ROOT) == []


def test_the_graph_sees_the_core():
    """The walker finds the core's modules and its lazy imports (so the rules check something)."""
    graph = import_graph(ROOT)
    assert "lepton_nlp.config" in find_modules(ROOT)
    assert any(i.importer == "lepton_nlp.cli" and i.module == "lepton_nlp.config" for i in graph)


# --- the checker, on deliberate violations -----------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "lepton_nlp/__init__.py": '"""Core."""\n',
    "lepton_nlp/errors.py": "class DataError(ValueError):\n    pass\n",
    "lepton_nlp/config.py": "from lepton_nlp.errors import DataError\n",
    "lepton_nlp/data/__init__.py": "from .readers import read_csv\n",
    "lepton_nlp/data/readers.py": "from ..errors import DataError\n\ndef read_csv():\n    pass\n",
    "lepton_nlp/tasks/__init__.py": "from lepton_nlp.tasks import ner\n",
    "lepton_nlp/tasks/ner.py": "def load():\n    from lepton_nlp.data import read_csv\n",
    "kg/__init__.py": "",
    "kg/graph.py": "import lepton_nlp.config\n",
    "apps/__init__.py": "",
    "apps/suite.py": "import streamlit as st\nfrom apps.support import logic\n",
    "apps/support/__init__.py": "",
    "apps/support/logic.py": "from kg.graph import *\nfrom lepton_nlp.data import read_csv\n",
    "apps/support/page.py": "import streamlit as st\nfrom apps.support.logic import *\n",
    "apps/finance/pages/monitor.py": "from streamlit import columns\n",
}


def test_a_clean_tree_reports_nothing(tmp_path):
    root = _tree(tmp_path, CLEAN)
    assert cycles(root) == []
    assert private_imports(root) == []
    assert forbidden_imports(root, FORBIDDEN) == []
    assert streamlit_outside_pages(root) == []


def test_a_cycle_through_a_function_level_import_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            # config -> errors (module level) -> config (inside a function): a cycle.
            "lepton_nlp/errors.py": "def hint():\n    from lepton_nlp import config\n",
        },
    )
    (report,) = cycles(root)
    assert "lepton_nlp.config -> lepton_nlp.errors (lepton_nlp/config.py:1)" in report
    assert "lepton_nlp.errors -> lepton_nlp.config (lepton_nlp/errors.py:2)" in report


def test_a_cycle_through_a_relative_import_and_a_package_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        {**CLEAN, "lepton_nlp/data/readers.py": "from ..tasks.ner import load\n"},
    )
    (report,) = cycles(root)
    for module in ("lepton_nlp.data ", "lepton_nlp.data.readers", "lepton_nlp.tasks.ner"):
        assert module in report


def test_private_imports_are_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "lepton_nlp/config.py": "def f():\n    from lepton_nlp.data.readers import _read_text\n",
            # A private module is its package's: apps.support may use it, apps.finance not.
            "apps/support/logic.py": "from . import _store\n",
            "apps/support/_store.py": "",
            "apps/finance/pages/monitor.py": "from apps.support._store import save\n",
            "kg/graph.py": "import lepton_nlp._internal\nfrom os import _exit\n",
        },
    )
    assert private_imports(root) == [
        "lepton_nlp/config.py:2: lepton_nlp.config imports lepton_nlp.data.readers._read_text",
        "apps/finance/pages/monitor.py:1: apps.finance.pages.monitor imports "
        "apps.support._store.save",
        "kg/graph.py:1: kg.graph imports lepton_nlp._internal",
    ]


def test_core_importing_streamlit_or_apps_and_kg_importing_apps_are_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "lepton_nlp/config.py": "def show():\n    import streamlit\n",
            "lepton_nlp/data/readers.py": "from apps.support import logic\n",
            "kg/graph.py": "from apps.support.logic import answer\n",
        },
    )
    assert forbidden_imports(root, FORBIDDEN) == [
        "lepton_nlp/config.py:2: lepton_nlp.config imports streamlit",
        "lepton_nlp/data/readers.py:1: lepton_nlp.data.readers imports apps.support.logic",
        "kg/graph.py:1: kg.graph imports apps.support.logic",
    ]


def test_the_rules_hold_without_a_kg_package(tmp_path):
    root = _tree(tmp_path, {k: v for k, v in CLEAN.items() if not k.startswith("kg/")})
    root.joinpath("apps/support/logic.py").write_text("from lepton_nlp.data import read_csv\n")
    assert forbidden_imports(root, FORBIDDEN) == []
    assert cycles(root) == [] and private_imports(root) == []


def test_streamlit_in_a_logic_module_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "apps/home.py": "import streamlit as st\n",
            "apps/support/logic.py": "def draw():\n    from streamlit import write\n",
        },
    )
    assert streamlit_outside_pages(root) == [
        "apps/home.py:1: apps.home imports streamlit",
        "apps/support/logic.py:2: apps.support.logic imports streamlit",
    ]
