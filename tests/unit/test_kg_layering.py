"""kg depends on the core at most, never on the apps or streamlit (DESIGN.md: layers)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

KG = Path(__file__).resolve().parents[2] / "kg"
ALLOWED = {"kg", "lepton_nlp", "networkx", "yaml"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_kg_imports_neither_apps_nor_streamlit_nor_anything_heavy():
    offenders = []
    for path in sorted(KG.rglob("*.py")):
        for name in sorted(_imports(path)):
            if name not in ALLOWED and name not in sys.stdlib_module_names:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
    assert len(list(KG.glob("*.py"))) > 1  # the walk found the package
