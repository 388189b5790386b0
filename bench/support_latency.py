"""Latency of the support bot over HTTP: one text turn through ``POST /webhooks/rest/webhook``.

Starts the server on loopback as a user would (``python -m lepton_nlp.cli serve --routes
apps.support.api:router``, a subprocess, with a throwaway ``LEPTON_HOME`` so the user's
database is not touched), waits for ``/readyz`` and for the bot's first load (a warm-up
message), then runs ``--senders`` concurrent conversations, each a keep-alive connection
sending a fixed script of banking messages (FAQ questions, a lost-card flow with its
details, an out-of-scope line) turn after turn; every pass through the script is a new
conversation. It stops after ``--seconds`` or ``--max-turns`` turns in all, whichever comes
first. Records p50/p95/p99 of one turn end to end, errors, turns/s, the server's CPU time
per turn (user + system, all its threads, from /proc), the load average before and after
(other work on the machine inflates the latencies: rerun when it is low) and the machine.
Writes bench/results/support_latency.json.

    python bench/support_latency.py --seconds 30 --senders 8

Traffic goes to 127.0.0.1 only. Target: p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, datasets_root, latency_figures, write_result
from serve_load import _Connection, _free_port, stop_server

WEBHOOK = "/webhooks/rest/webhook"
TARGET_P95_MS = 150.0

#: One conversation: FAQ questions, a lost-card flow (card digits, then when), one line out
#: of scope (once, so the conversation is not handed over for two failures in a row).
SCRIPT = [
    "Hi, how do I activate the new card that came in the post?",
    "How long does it take for a card to be delivered?",
    "What's the weather going to be like in Paris tomorrow?",
    "I think I lost my card",
    "It's the one ending 4821",
    "I last used it yesterday evening",
    "Can I top up my account with Apple Pay?",
    "Why is my transfer still pending?",
    "How do I change my PIN?",
    "What exchange rate do you use when I pay in euros?",
]


def start_server(port: int, home: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "lepton_nlp.cli", "serve", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--routes", "apps.support.api:router"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEPTON_HOME": home}
    for name in ("LEPTON_NLP_API_KEYS", "LEPTON_DB_URL"):  # loopback, no keys; throwaway DB
        env.pop(name, None)
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    sys.exit("server not ready after 300 s")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (all its threads); None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def warm_up(port: int) -> float:
    """The first message builds the bot (intent model, MiniLM, FAQ index); then one pass of
    the script so every path has run once. Returns the first message's seconds."""
    started = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        response = client.post(WEBHOOK, json={"sender": "warm-up", "message": SCRIPT[0]})
        if response.status_code != 200:
            sys.exit(f"warm-up message got {response.status_code}: {response.text[:500]}")
        first = time.perf_counter() - started
        for n, text in enumerate(SCRIPT[1:]):
            client.post(
                WEBHOOK, json={"sender": "warm-up-2", "message": text, "message_id": str(n)}
            )
    return first


async def load(port: int, senders: int, seconds: float, max_turns: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    handoffs = waiting = 0
    sent = 0

    async def one_sender(k: int) -> None:
        nonlocal handoffs, waiting, sent
        connection = _Connection("127.0.0.1", port)
        conversation = 0
        while True:
            sender = f"bench-{k}-{conversation}"
            for turn, text in enumerate(SCRIPT):
                if time.perf_counter() >= deadline or sent >= max_turns:
                    await connection.close()
                    return
                sent += 1
                body = json.dumps(
                    {"sender": sender, "message": text, "message_id": f"{sender}-{turn}"}
                ).encode("utf-8")
                start = time.perf_counter()
                try:
                    code, payload = await connection.post(WEBHOOK, body)
                    status = str(code) if code != 200 or b'"text"' in payload else "bad-body"
                except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - start)
                    handoffs += b"passing you to a colleague" in payload
                    waiting += b'"waiting"' in payload  # handed over: no NLU in the turn
                else:
                    errors[status] = errors.get(status, 0) + 1
            conversation += 1

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*[one_sender(k) for k in range(senders)])
    elapsed = time.perf_counter() - started
    return {
        "turns": len(latencies),
        "turns_per_s": round(len(latencies) / elapsed, 2),
        **latency_figures(latencies, errors),
        "max_ms": round(max(latencies, default=0.0) * 1000, 1),
        "handoffs": handoffs,
        "turns_while_handed_over": waiting,
        "seconds": round(elapsed, 1),
    }


def _concurrently(fn, items: list, threads: int) -> list:
    """``fn(item)`` for every item from ``threads`` threads at once (as the server's turns)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


def quality(threads: int) -> dict:
    """The served configuration against the plain one, on the figures the bot's quality rests on.

    Intent: BANKING77 test through ``SupportNLU`` as ``bench/support_intent.py`` reads it (the
    artifact's default backend, one ``understand_many`` call) and as the HTTP API serves it
    (:func:`apps.support.batched.batched_parts`: ONNX Runtime, messages from ``threads``
    threads sharing batched calls). FAQ: the shipped FAQ's paraphrases (each must match its
    own entry) and ``out_of_scope.txt`` through ``AnswerFinder`` with the plain and with the
    batched embedder.
    """
    import numpy as np
    from support_intent import shipped_splits

    from apps.support.answers import AnswerFinder, load_faq
    from apps.support.batched import batched_parts
    from apps.support.dialogue import INTENT_MODEL
    from apps.support.understanding import SupportNLU
    from lepton_nlp.embeddings import SentenceEmbedder

    datasets_root()
    test = shipped_splits()["test"]
    texts, gold = [r["text"] for r in test], [r["label"] for r in test]
    plain = SupportNLU.from_artifact(ROOT / INTENT_MODEL)
    served, embedder = batched_parts(ROOT / INTENT_MODEL)
    started = time.perf_counter()
    reference = plain.understand_many(texts)
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    got = _concurrently(served.understand, texts, threads)
    served_s = time.perf_counter() - started

    def accuracy(results: list) -> float:
        return round(
            float(np.mean([u.ranking[0].intent == g for u, g in zip(results, gold, strict=True)])),
            4,
        )

    pairs = list(zip(reference, got, strict=True))
    figures = {
        "quality_intent_data": f"BANKING77 test ({len(texts)} messages)",
        "quality_intent_plain_backend": plain.predictor.backend,
        "quality_intent_served_backend": served.predictor.backend,
        "quality_intent_plain_accuracy": accuracy(reference),
        "quality_intent_served_accuracy": accuracy(got),
        "quality_intent_same_top_intent": round(
            float(np.mean([a.ranking[0].intent == b.ranking[0].intent for a, b in pairs])), 4
        ),
        "quality_intent_same_out_of_scope": round(
            float(np.mean([a.out_of_scope == b.out_of_scope for a, b in pairs])), 4
        ),
        "quality_intent_same_ambiguous": round(
            float(np.mean([a.ambiguous == b.ambiguous for a, b in pairs])), 4
        ),
        "quality_intent_max_confidence_difference": float(
            max(abs(a.confidence - b.confidence) for a, b in pairs)
        ),
        "quality_intent_same_entities": round(
            float(
                np.mean(
                    [
                        [e.to_dict() for e in a.entities] == [e.to_dict() for e in b.entities]
                        for a, b in pairs
                    ]
                )
            ),
            4,
        ),
        "quality_intent_plain_seconds": round(plain_s, 1),
        "quality_intent_served_seconds": round(served_s, 1),
    }
    served.close()

    folder = ROOT / "data" / "support"
    faq = load_faq(folder / "faq.jsonl")
    queries = [(p, e.id) for e in faq for p in e.paraphrases]
    oos = [t.strip() for t in (folder / "out_of_scope.txt").read_text("utf-8").splitlines()]
    oos = [t for t in oos if t and not t.startswith("#")]
    asked = [q for q, _ in queries] + oos
    finders = {
        "plain": AnswerFinder.from_folder(folder, policy_qa=None, embedder=SentenceEmbedder()),
        "served": AnswerFinder.from_folder(folder, policy_qa=None, embedder=embedder),
    }
    answers = {
        "plain": finders["plain"].find_many(asked),
        "served": _concurrently(finders["served"].find, asked, threads),
    }
    figures["quality_faq_data"] = (
        f"data/support: {len(queries)} FAQ paraphrases (each must be answered by its own entry) "
        f"and {len(oos)} out_of_scope.txt lines (must be declined)"
    )
    for name, found in answers.items():
        right = [
            a is not None and a.source.endswith(f"#{own}")
            for a, (_, own) in zip(found[: len(queries)], queries, strict=True)
        ]
        declined = [a is None for a in found[len(queries) :]]
        figures[f"quality_faq_{name}_answered_right"] = round(float(np.mean(right)), 4)
        figures[f"quality_faq_{name}_out_of_scope_declined"] = round(float(np.mean(declined)), 4)
    figures["quality_faq_same_answer"] = round(
        float(
            np.mean(
                [
                    (a and a.source) == (b and b.source)
                    for a, b in zip(answers["plain"], answers["served"], strict=True)
                ]
            )
        ),
        4,
    )
    embedder.close()
    return figures


def components() -> dict:
    """What the serving choices save, one piece at a time (median of repeats; run niced after
    the load, so on busy cores the figures are inflated alike).

    - a SQLite commit (one small row) in rollback-journal mode and in WAL mode, wall time;
    - the intent model on one message of the script: eager torch against ONNX Runtime,
      CPU time of the calling thread, one thread each;
    - spaCy on the script's messages with and without the shared tok2vec, CPU time.
    """
    import sqlite3
    import statistics

    import spacy
    import torch

    from apps.support.dialogue import INTENT_MODEL
    from apps.support.entities import SPACY_MODEL, EntityExtractor
    from lepton_nlp.inference import Predictor

    def median_ms(fn, repeats: int, clock=time.perf_counter) -> float:
        times = []
        for _ in range(repeats):
            start = clock()
            fn()
            times.append(clock() - start)
        return round(statistics.median(times) * 1000, 3)

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="lepton-commit-") as folder:
        for mode in ("delete", "wal"):
            db = sqlite3.connect(f"{folder}/{mode}.db")
            db.execute(f"PRAGMA journal_mode={mode}")
            db.execute("PRAGMA synchronous=" + ("FULL" if mode == "delete" else "NORMAL"))
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
            db.commit()

            def commit(db=db) -> None:
                db.execute("INSERT INTO t (s) VALUES (?)", ("x" * 500,))
                db.commit()

            name = "journal" if mode == "delete" else "wal_normal"
            out[f"component_sqlite_commit_{name}_ms"] = median_ms(commit, 50)
            db.close()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    text = SCRIPT[0]
    for backend in ("torch", "onnx"):
        predictor = Predictor.from_artifact(ROOT / INTENT_MODEL, backend=backend, threads=1)
        predictor.predict([text])
        out[f"component_intent_{backend}_cpu_ms"] = median_ms(
            lambda predictor=predictor: predictor.predict([text]), 50, time.thread_time
        )
    torch.set_num_threads(threads)
    ours = EntityExtractor()._nlp
    shared = spacy.load(SPACY_MODEL, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])
    for name, nlp in (("with_tok2vec", shared), ("ner_only", ours)):
        list(nlp.pipe(SCRIPT))
        out[f"component_spacy_{name}_cpu_ms_per_message"] = round(
            median_ms(lambda nlp=nlp: list(nlp.pipe(SCRIPT)), 20, time.thread_time) / len(SCRIPT),
            3,
        )
    out["component_note"] = (
        "medians; spaCy per message of the script; "
        "measured after the load run, niced, on the same cores"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=8, help="concurrent conversations")
    parser.add_argument("--seconds", type=float, default=30, help="load duration (at most)")
    parser.add_argument("--max-turns", type=int, default=400, help="turns in all (at most)")
    parser.add_argument("--note", help="a note kept in the JSON (e.g. the machine was loaded)")
    parser.add_argument(
        "--skip-quality",
        action="store_true",
        help="skip the check of the served models against the plain ones (BANKING77 test, FAQ)",
    )
    parser.add_argument(
        "--result",
        default="support_latency",
        help="name of the JSON under bench/results/ (another name keeps a comparison run)",
    )
    args = parser.parse_args()
    if not 1 <= args.senders <= 64 or not 0 < args.seconds <= 600 or args.max_turns < 1:
        sys.exit("Keep the load bounded: 1-64 senders, at most 600 s, at least 1 turn.")

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lepton-support-bench-") as home:
        server = start_server(port, home)
        try:
            first_s = warm_up(port)
            load_before = load_average()
            cpu_before = cpu_seconds(server.pid)
            result = asyncio.run(load(port, args.senders, args.seconds, args.max_turns))
            cpu_after = cpu_seconds(server.pid)
            load_after = load_average()
        finally:
            stop_server(server)
    if cpu_before is not None and cpu_after is not None and result["turns"]:
        result["server_cpu_ms_per_turn"] = round(
            (cpu_after - cpu_before) / result["turns"] * 1000, 1
        )
    print(json.dumps({**result, "load_average": [load_before, load_after]}), flush=True)
    figures: dict = {
        "endpoint": f"POST {WEBHOOK} (one text turn, end to end)",
        "server": "python -m lepton_nlp.cli serve --routes apps.support.api:router",
        "senders": args.senders,
        "max_seconds": args.seconds,
        "max_turns": args.max_turns,
        "script_turns": len(SCRIPT),
        "first_message_s": round(first_s, 2),
        **result,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "load_average_note": "1, 5 and 15 minute load averages of the machine (uptime); "
        f"{os.cpu_count()} cores: anything near or above that means other work shared them",
        "target_p95_ms": TARGET_P95_MS,
        "target_met": result["errors"] == 0 and result["p95_ms"] <= TARGET_P95_MS,
    }
    if args.note:
        figures["note"] = args.note
    if not args.skip_quality:
        import torch

        threads = torch.get_num_threads()
        os.nice(10)  # not timed: leave the cores to whatever else runs
        figures.update(quality(args.senders))
        figures.update(components())
        torch.set_num_threads(threads)  # batched_parts set it; the JSON names the usual count
    write_result(args.result, figures)


if __name__ == "__main__":
    main()
