"""Fixtures of the app tests: a studio home and database in a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture
def studio_home(tmp_path, monkeypatch):
    """LEPTON_HOME and LEPTON_DB_URL in a fresh temporary folder (workers inherit them)."""
    home = tmp_path / "lepton-home"
    monkeypatch.setenv("LEPTON_HOME", str(home))
    monkeypatch.setenv("LEPTON_DB_URL", f"sqlite:///{home / 'studio.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def store(studio_home):
    from apps.studio.store import RunStore

    return RunStore()
