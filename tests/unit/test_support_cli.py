"""The ``lepton-support`` command on a stand-in bot."""

from __future__ import annotations

import json

import pytest

from apps.support import cli
from apps.support.dialogue import SupportBot
from tests.unit.support_standins import StandInAnswers, StandInNLU


@pytest.fixture()
def standin(monkeypatch):
    def build(args, store):
        return SupportBot(StandInNLU(), StandInAnswers(), store=store)

    monkeypatch.setattr(cli, "build_bot", build)


def test_say_keeps_the_conversation_in_the_database(standin, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert cli.main(["say", "alice", "I lost my card", "--db", db]) == 0
    [ask] = json.loads(capsys.readouterr().out)
    assert ask["recipient_id"] == "alice" and "last 4 digits" in ask["text"]
    assert cli.main(["say", "alice", "ending 1234", "--db", db]) == 0
    assert "When" in json.loads(capsys.readouterr().out)[0]["text"]


def test_chat_loop_with_buttons(standin, monkeypatch, capsys):
    lines = iter(["topup broke", "1", "quit"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(lines))
    assert cli.main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "[1] Top up failed" in out and "Answer to: topup broke" in out
    assert "source: policies/cards.md#x" in out


def test_serve_commands_mount_the_support_routes(monkeypatch):
    import lepton_nlp.serve
    from lepton_nlp.cli import main as core_main

    seen = []
    monkeypatch.setattr(lepton_nlp.serve, "run_server", lambda settings: seen.append(settings))
    assert core_main(["serve", "--routes", "apps.support.api:router", "--port", "8123"]) == 0
    assert seen[-1].routes == ["apps.support.api:router"] and seen[-1].port == 8123
    assert cli.main(["serve", "--port", "8124"]) == 0
    assert seen[-1].routes == ["apps.support.api:router"] and seen[-1].port == 8124
