"""Where the suite keeps its data (``LEPTON_HOME``) and how the pages show a path."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ROOT", "data_home", "shown_path"]

ROOT = Path(__file__).resolve().parents[2]
"""The project folder (it holds ``apps/``, ``data/`` and ``configs/``)."""


def data_home() -> Path:
    """Where the suite keeps its database, uploads and run artifacts (``LEPTON_HOME``)."""
    home = os.environ.get("LEPTON_HOME") or Path.home() / ".local" / "share" / "lepton-nlp"
    path = Path(home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def shown_path(path: str | Path) -> str:
    """A path as the pages show it, without this machine's folders: relative inside the
    project (``data/models/finance-sentiment``), ``~/...`` under the home folder,
    ``$LEPTON_HOME/...`` under a LEPTON_HOME elsewhere; any other path as it is."""
    path = Path(path).expanduser()
    home, suite = Path.home(), data_home()
    for folder, shown in ((ROOT, ""), (home, "~"), (suite, "$LEPTON_HOME")):
        try:
            inside = path.resolve().relative_to(folder.resolve())
        except ValueError:
            continue
        if folder == ROOT and suite.resolve().is_relative_to(ROOT.resolve()):
            continue  # LEPTON_HOME inside the project: said below, as LEPTON_HOME
        if folder == suite and not inside.parts:
            break  # LEPTON_HOME itself: where it is
        return str(Path(shown, inside)) if shown else str(inside) or "."
    return str(path)
