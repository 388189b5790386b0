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


def test_every_app_serve_command_takes_the_core_servers_security_options(
    monkeypatch, tmp_path, capsys
):
    """`lepton-support serve` and `lepton-finance serve` share one implementation: both take
    --api-key-file and --insecure, leave the host to the settings file when not given, and
    refuse an open address without keys as `lepton-nlp serve` does."""
    import lepton_nlp.serve
    from apps.finance import cli as finance_cli

    seen = []
    monkeypatch.setattr(lepton_nlp.serve, "run_server", lambda settings: seen.append(settings))
    keys = tmp_path / "keys.txt"
    keys.write_text("a-long-enough-secret-key-0123456789\n")
    config = tmp_path / "serve.yaml"
    config.write_text("host: 127.0.0.1\nport: 8200\n")
    for main, routes in ((cli.main, "apps.support.api:router"),
                         (finance_cli.main, "apps.finance.api:router")):  # fmt: skip
        assert main(["serve", "--config", str(config)]) == 0
        assert seen[-1].routes == [routes] and (seen[-1].host, seen[-1].port) == ("127.0.0.1", 8200)
        assert main(["serve", "--host", "0.0.0.0", "--api-key-file", str(keys)]) == 0
        assert seen[-1].host == "0.0.0.0" and seen[-1].api_keys
        assert main(["serve", "--host", "0.0.0.0", "--insecure"]) == 0
        assert seen[-1].open_to_anyone
        capsys.readouterr()
        started = len(seen)
        assert main(["serve", "--host", "0.0.0.0"]) != 0  # each CLI's error exit code
        assert "needs API keys" in capsys.readouterr().err and len(seen) == started
