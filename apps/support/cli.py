"""The ``lepton-support`` command: chat in the terminal, serve the bot over HTTP, or say one turn.

lepton-support chat
lepton-support say alice "I lost my card"        # one turn, JSON out; state kept in the DB
lepton-support serve --port 8000                 # lepton-nlp's server + apps.support.api
lepton-support tune-faq --faq data/support/faq.jsonl --out runs/faq-encoder
lepton-support chat --faq-encoder runs/faq-encoder    # the FAQ searched with the tuned encoder
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
        args.intent_model,
        args.faq_folder,
        store=store,
        summary_model=args.summary_model,
        faq_encoder=args.faq_encoder,
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


def _cmd_tune_faq(args: argparse.Namespace) -> int:
    from apps.support.faq_tuning import FaqTuneSettings, tune_faq_encoder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    given = {
        "base_model": args.base_model,
        "pairs": args.pairs,
        "symmetric": args.symmetric,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "seed": args.seed,
    }
    settings = FaqTuneSettings.from_dict({k: v for k, v in given.items() if v is not None})
    print(f"Tuning {settings.base_model} on {args.faq} -> {args.out}", file=sys.stderr)
    result = tune_faq_encoder(
        args.faq, args.out, settings, overwrite=args.overwrite, progress=not args.quiet
    )
    print(json.dumps({"output": str(result.output), **result.record}, indent=2))
    print(
        f"Use it: lepton-support chat --faq-encoder {result.output} (or LEPTON_FAQ_ENCODER="
        f"{result.output}); the bot refits its FAQ threshold for it at start-up. To save that "
        f"threshold: python -m apps.support.answers fit --encoder {result.output} "
        "--qa-validation-documents DOC... (the documents that chose the QA threshold).",
        file=sys.stderr,
    )
    return 0


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
            "--faq-encoder",
            help="FAQ encoder: a `tune-faq` folder or a model name (default: "
            "LEPTON_FAQ_ENCODER, else the packaged MiniLM)",
        )
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

    p = sub.add_parser(
        "tune-faq",
        help="fine-tune the FAQ encoder on the FAQ's own question-answer pairs",
        description="Fine-tune the FAQ encoder (MultipleNegativesRankingLoss, in-batch "
        "negatives) on the FAQ's question->answer pairs (paraphrases are not used) and save "
        "it with faq_tuning.json. Unset options keep the settings chosen on validation "
        "(apps.support.faq_tuning.FaqTuneSettings).",
    )
    p.add_argument("--faq", default="data/support/faq.jsonl", help="FAQ JSONL file")
    p.add_argument("--out", required=True, help="folder to write the tuned encoder to")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it holds files")
    p.add_argument("--base-model", help="encoder to start from (default: the packaged MiniLM)")
    p.add_argument("--pairs", help="question-answer | question-answer+question-question")
    p.add_argument(
        "--symmetric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also rank each answer's question above the batch's other questions",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-seq-length", type=int, help="tokens kept of each text in training")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_tune_faq)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError, LookupError, FileNotFoundError) as error:
        print(f"lepton-support: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
