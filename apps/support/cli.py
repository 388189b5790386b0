"""The ``lepton-support`` command: chat in the terminal, serve the bot over HTTP, or say one turn.

lepton-support chat
lepton-support say alice "I lost my card"        # one turn, JSON out; state kept in the DB
lepton-support serve --port 8000                 # lepton-nlp's server + apps.support.api
"""

from __future__ import annotations

import argparse
import json
import sys

from apps.support.dialogue import (
    INTENT_MODEL,
    SUMMARY_MODEL,
    ConversationStore,
    MemoryStore,
    SupportBot,
    build_support_bot,
)
from lepton_nlp.serve.launch import add_serve_arguments

__all__ = ["build_bot", "main"]

ROUTES = "apps.support.api:router"


def build_bot(args: argparse.Namespace, store: ConversationStore) -> SupportBot:
    """The real bot for the command's options (tests replace this function)."""
    return build_support_bot(
        args.intent_model, args.faq_folder, store=store, summary_model=args.summary_model
    )


def _store(args: argparse.Namespace, default_memory: bool) -> ConversationStore:
    if default_memory and not args.db:
        return MemoryStore()
    from apps.support.store import SupportStore

    return SupportStore(args.db)


def _cmd_chat(args: argparse.Namespace) -> int:
    bot = build_bot(args, _store(args, default_memory=True))
    print("Support bot. Type a message; a number picks a button; Ctrl-D or 'quit' ends.")
    buttons: list[dict[str, str]] = []
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text.lower() in ("quit", "exit"):
            return 0
        if not text:
            continue
        if text.isdigit() and 1 <= int(text) <= len(buttons):
            text = buttons[int(text) - 1]["payload"]
        buttons = []
        for message in bot.reply(args.sender, text):
            print(f"bot> {message.text}")
            for i, button in enumerate(message.buttons, 1):
                print(f"     [{i}] {button['title']}")
            buttons += message.buttons
            custom = message.custom or {}
            if "answer" in custom:
                answer = custom["answer"]
                print(f"     (source: {answer['source']}, score {answer['score']:.2f})")
            if "handoff" in custom and custom["handoff"].get("reason"):
                handoff = custom["handoff"]
                print(
                    f"     (handoff: {handoff['reason']}; {handoff['summary'] or handoff['note']})"
                )


def _cmd_say(args: argparse.Namespace) -> int:
    bot = build_bot(args, _store(args, default_memory=False))
    messages = bot.reply(args.sender, args.text, args.message_id)
    print(json.dumps([m.to_rasa(args.sender) for m in messages], indent=2, default=str))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from lepton_nlp.serve.launch import serve_routes

    return serve_routes(args, ROUTES, "lepton-support", "POST /webhooks/rest/webhook, /model/parse")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lepton-support", description=__doc__.split("\n")[0], epilog=__doc__
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)

    def models(p: argparse.ArgumentParser) -> None:
        p.add_argument("--intent-model", default=INTENT_MODEL, help="intent artifact folder")
        p.add_argument("--faq-folder", default="data/support", help="FAQ and policies folder")
        p.add_argument("--summary-model", default=SUMMARY_MODEL, help="handoff summarizer")
        p.add_argument(
            "--db", help="database URL (default: LEPTON_DB_URL or SQLite under LEPTON_HOME)"
        )

    p = sub.add_parser("chat", help="chat with the bot in the terminal (memory unless --db)")
    models(p)
    p.add_argument("--sender", default="terminal", help="conversation id")
    p.set_defaults(func=_cmd_chat)

    p = sub.add_parser("say", help="one customer turn; prints the replies as JSON")
    models(p)
    p.add_argument("sender", help="conversation id (state is kept in the database)")
    p.add_argument("text", help="the customer's message")
    p.add_argument("--message-id", help="client message id (a resend is answered once)")
    p.set_defaults(func=_cmd_say)

    p = sub.add_parser("serve", help="serve the bot's HTTP API (lepton-nlp serve + routes)")
    add_serve_arguments(p)
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError) as error:
        print(f"lepton-support: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
