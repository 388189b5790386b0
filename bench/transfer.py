"""Cross-domain transfer benchmark: few labels on a target, starting from the base model, from
a source-task model (``model.init_from``), or from an encoder adapted to unlabelled target
text (``lepton-nlp adapt``, unsupervised SimCSE).

    nice -n 10 python bench/transfer.py [--quick] [--threads 1]

Pairs (source -> target), both from ../shared/datasets:

- ``banking77->bank_faqs``: the shipped BANKING77 intent model (data/models/banking77-intent,
  77 intents, LoRA) -> the 7 Bank FAQs classes (questions, duplicates dropped).
- ``fpb_allagree->fpb_lowagree``: a model trained here on Financial PhraseBank's AllAgree
  sentences (one epoch, LoRA) -> the sentences on which only 50-74% of annotators agreed
  (in Sentences_50Agree, not in Sentences_75Agree; disjoint from AllAgree). The source
  model is trained here, one epoch on 600 AllAgree sentences (a seeded sample).

Each target's sentences are split once (seed 0, stratified) into a fixed test set and a pool;
a label budget of k per class draws k pool examples of every class (all of a class when it
has fewer), nested across budgets, per seed. The unlabelled text for adaptation is the whole
pool, labels dropped (never the test set; at most 256 texts, a seeded sample). Every variant trains with the same fixed settings
(LoRA r=16, 6 epochs, batch 4, learning rate 5e-4, warm-up 10%), chosen before any run: no
validation split, no checkpoint choice (the last step is kept), nothing chosen on test. The
test score comes from the trained model's Predictor (``TrainResult.predictor``). Results are
written after every run, so a run cut short leaves what it measured (``complete``: false).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, datasets_root, write_result

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
VARIANTS = ("base", "transfer", "adapt")
SEEDS = (0, 1, 2)
BUDGETS = (4, 8, 16)
#: The fixed fine-tuning settings of every few-label run (chosen before any run).
TRAINING = {
    "peft.method": "lora",
    "peft.r": 16,
    "peft.alpha": 32,
    "training.epochs": 6,
    "training.batch_size": 4,
    "training.learning_rate": 5.0e-4,
    "training.warmup_ratio": 0.1,
    "training.eval_strategy": "no",
    "training.early_stopping_patience": None,
}
#: TSDAE on the target pool (the `lepton-nlp adapt` defaults, written out).
ADAPT = {
    "adapt.method": "tsdae",
    "adapt.epochs": 1.0,
    "adapt.batch_size": 8,
    "adapt.learning_rate": 3.0e-5,
    "adapt.deletion_ratio": 0.6,
    "adapt.max_samples": 256,
    "adapt.seed": 42,
}
#: SimCSE's loss on all-MiniLM-L6-v2 (why TSDAE is the default): a short check.
SIMCSE_CHECK = {"adapt.method": "simcse", "adapt.max_samples": 128, "adapt.seed": 42}
#: The FPB source model, trained here: one epoch on a seeded sample of AllAgree sentences.
FPB_SOURCE_SENTENCES = 600
FPB_SOURCE = {
    "training.epochs": 1,
    "training.batch_size": 16,
    "training.learning_rate": 5.0e-4,
    "training.eval_strategy": "no",
    "training.early_stopping_patience": None,
}


def _stratified_split(records: list[dict], fraction: float, seed: int):
    by_label = defaultdict(list)
    for r in records:
        by_label[r["label"]].append(r)
    test, pool = [], []
    rng = random.Random(seed)
    for label in sorted(by_label):
        items = sorted(by_label[label], key=lambda r: r["text"])
        rng.shuffle(items)
        n = max(1, round(len(items) * fraction))
        test += items[:n]
        pool += items[n:]
    return test, pool


def _bank_faqs(root: Path, quick: bool):
    path = root / "bank_faqs" / "BankFAQs.csv"
    seen: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            text = " ".join(row["Question"].split())
            if text:
                seen.setdefault(text, row["Class"].strip())
    records = [{"text": t, "label": c} for t, c in seen.items()]
    test, pool = _stratified_split(records, 0.2, seed=0)
    return {"test": test[::6] if quick else test, "pool": pool, "file": str(path)}


def _fpb(root: Path, quick: bool):
    from lepton_nlp.data.readers import read_fpb

    folder = root / "financial_phrasebank"
    strong = {r["text"] for r in read_fpb(folder / "Sentences_75Agree.txt")}
    low, seen = [], set()
    for r in read_fpb(folder / "Sentences_50Agree.txt"):
        if r["text"] not in strong and r["text"] not in seen:
            seen.add(r["text"])
            low.append(r)
    fraction = 240 / len(low)  # a fixed test set of about 240 sentences
    test, pool = _stratified_split(low, fraction, seed=0)
    allagree = read_fpb(folder / "Sentences_AllAgree.latin1.txt")
    overlap = {r["text"] for r in allagree} & {r["text"] for r in low}
    assert not overlap, f"{len(overlap)} AllAgree sentences in the low-agreement target"
    return {
        "test": test[::5] if quick else test,
        "pool": pool,
        "source_records": random.Random(0).sample(
            allagree, 96 if quick else min(FPB_SOURCE_SENTENCES, len(allagree))
        ),
        "file": str(folder / "Sentences_50Agree.txt minus Sentences_75Agree.txt"),
    }


def _budget(pool: list[dict], per_class: int, seed: int) -> list[dict]:
    """``per_class`` examples of every label (all of it when fewer), nested across budgets."""
    by_label = defaultdict(list)
    for r in pool:
        by_label[r["label"]].append(r)
    chosen = []
    for label in sorted(by_label):
        items = sorted(by_label[label], key=lambda r: r["text"])
        random.Random(f"{seed}-{label}").shuffle(items)
        chosen += items[:per_class]
    return chosen


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _overrides(values: dict) -> list[str]:
    return [f"{k}={'null' if v is None else v}" for k, v in values.items()]


def _common(threads: int, max_length: int) -> list[str]:
    return [
        "task=classification",
        "data.format=jsonl",
        f"model.name={MODEL}",
        f"model.max_length={max_length}",
        f"training.threads={threads}",
        "training.progress=false",
        "training.report_to=[none]",
        "training.overwrite=true",
        "evaluation.backend_check=false",
        "evaluation.score_test=false",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sets, 1 seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    root = datasets_root()
    import torch

    torch.set_num_threads(args.threads)
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train
    from lepton_nlp.training.transfer import adapt_encoder

    work = Path(args.work or tempfile.mkdtemp(prefix="lepton-transfer-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[:1] if args.quick else SEEDS
    budgets = BUDGETS[:2] if args.quick else BUDGETS
    training = {**TRAINING, **({"training.epochs": 1} if args.quick else {})}
    started = time.perf_counter()
    state: dict = {"runs": [], "sources": {}, "adapted": {}}

    bank, fpb = _bank_faqs(root, args.quick), _fpb(root, args.quick)
    pairs = {
        "banking77->bank_faqs": {
            "target": bank,
            "max_length": 64,
            "source": str(ROOT / "data" / "models" / "banking77-intent"),
            "source_note": "shipped artifact data/models/banking77-intent (BANKING77 train, "
            "77 intents, LoRA r=32 on all-MiniLM-L6-v2; not retrained here)",
        },
        "fpb_allagree->fpb_lowagree": {"target": fpb, "max_length": 96},
    }

    def report(complete: bool) -> None:
        write_result(
            "transfer_quick" if args.quick else "transfer",
            {
                "benchmark": "transfer",
                "complete": complete,
                "quick": args.quick,
                "model": MODEL,
                "pairs": {
                    name: {
                        "source": pair.get("source_note") or state["sources"].get(name),
                        "target_file": pair["target"]["file"],
                        "test_examples": len(pair["target"]["test"]),
                        "pool_examples": len(pair["target"]["pool"]),
                        "labels": sorted({r["label"] for r in pair["target"]["pool"]}),
                        "max_length": pair["max_length"],
                    }
                    for name, pair in pairs.items()
                },
                "protocol": "fixed stratified test split per target (seed 0); label budget k "
                "per class drawn from the pool per seed (nested across k); unlabelled "
                "adaptation text = the whole pool without labels; same fixed settings for "
                "every variant, no validation, last step kept, nothing chosen on test",
                "variants": {
                    "base": f"LoRA fine-tuning from {MODEL}",
                    "transfer": "model.init_from = the source model (its LoRA merged into the "
                    "encoder; bank FAQs: a new head, the label sets differ; FPB: the source's "
                    "head kept, same task, labels and options)",
                    "adapt": "model.init_from = the base encoder after `lepton-nlp adapt` "
                    "(TSDAE) on the target pool's texts",
                },
                "training": {k: v for k, v in training.items()},
                "adapt_settings": ADAPT,
                "seeds": list(seeds),
                "budgets_per_class": list(budgets),
                "adapted": state["adapted"],
                "simcse_check": state.get("simcse_check"),
                "summary": _summary(state["runs"]),
                "runs": state["runs"],
                "total_seconds": round(time.perf_counter() - started, 1),
                "cpu_seconds": round(time.process_time(), 1),
            },
        )

    try:
        # The FPB source model: trained once, on AllAgree only.
        name = "fpb_allagree->fpb_lowagree"
        began = time.perf_counter()
        source_dir = work / "fpb-allagree-source"
        source_train = _jsonl(work / "fpb-allagree.jsonl", fpb["source_records"])
        result = train(
            load_config(
                None,
                [
                    *_common(args.threads, 96),
                    f"data.train={source_train}",
                    f"training.output_dir={source_dir}",
                    *_overrides(FPB_SOURCE),
                ],
            )
        )
        pairs[name]["source"] = str(source_dir)
        state["sources"][name] = {
            "trained_here": "Financial PhraseBank Sentences_AllAgree (a seeded random "
            "sample, seed 0), LoRA r=16",
            "examples": len(fpb["source_records"]),
            **{k: v for k, v in FPB_SOURCE.items()},
            "train_seconds": result.metrics["train"]["train_seconds"],
            "wall_seconds": round(time.perf_counter() - began, 1),
        }
        print(f"FPB source trained: {state['sources'][name]}", flush=True)

        for name, pair in pairs.items():
            target = pair["target"]
            unlabelled = _jsonl(work / f"{_slug(name)}-pool.jsonl", target["pool"])
            began = time.perf_counter()
            adapted = adapt_encoder(
                load_config(
                    None,
                    [
                        *_common(args.threads, pair["max_length"]),
                        f"training.output_dir={work / _slug(name)}",
                        f"adapt.output_dir={work / (_slug(name) + '-adapted')}",
                        "adapt.overwrite=true",
                        *_overrides(ADAPT),
                        *(["adapt.max_samples=64"] if args.quick else []),
                    ],
                ),
                unlabelled,
            )
            pair["adapted"] = str(adapted.output)
            state["adapted"][name] = {
                **adapted.summary,
                "unlabelled": "the target pool's texts",
                "wall_seconds": round(time.perf_counter() - began, 1),
            }
            print(f"{name}: adapted {state['adapted'][name]}", flush=True)

        # SimCSE on the bank pool: how much signal its loss gives on this encoder.
        check = adapt_encoder(
            load_config(
                None,
                [
                    *_common(args.threads, 64),
                    f"training.output_dir={work / 'simcse-check'}",
                    "adapt.overwrite=true",
                    *_overrides(SIMCSE_CHECK),
                ],
            ),
            work / f"{_slug('banking77->bank_faqs')}-pool.jsonl",
        )
        state["simcse_check"] = {**check.summary, "unlabelled": "the bank FAQs pool's texts"}
        shutil.rmtree(check.output, ignore_errors=True)
        print(f"SimCSE check: {state['simcse_check']}", flush=True)

        for seed in seeds:
            for name, pair in pairs.items():
                target = pair["target"]
                test_file = _jsonl(work / f"{_slug(name)}-test.jsonl", target["test"])
                for per_class in budgets:
                    records = _budget(target["pool"], per_class, seed)
                    train_file = _jsonl(work / f"{_slug(name)}-train.jsonl", records)
                    for variant in VARIANTS:
                        init = {"base": None, "transfer": pair["source"], "adapt": pair["adapted"]}[
                            variant
                        ]
                        out = work / "runs" / f"{_slug(name)}-{per_class}-{seed}-{variant}"
                        began = time.perf_counter()
                        config = load_config(
                            None,
                            [
                                *_common(args.threads, pair["max_length"]),
                                f"data.train={train_file}",
                                f"data.test={test_file}",
                                f"training.output_dir={out}",
                                f"training.seed={seed}",
                                *_overrides(training),
                                *([f"model.init_from={init}"] if init else []),
                            ],
                        )
                        result = train(config)
                        scores = result.predictor.evaluate(target["test"])
                        run = {
                            "pair": name,
                            "variant": variant,
                            "per_class": per_class,
                            "seed": seed,
                            "train_examples": len(records),
                            "test_accuracy": round(scores["accuracy"], 6),
                            "test_macro_f1": round(scores["macro_f1"], 6),
                            "train_seconds": result.metrics["train"]["train_seconds"],
                            "wall_seconds": round(time.perf_counter() - began, 1),
                        }
                        state["runs"].append(run)
                        print(json.dumps(run), flush=True)
                        shutil.rmtree(out, ignore_errors=True)
                        report(complete=False)
        report(complete=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def _slug(name: str) -> str:
    return name.replace("->", "-to-").replace("_", "-")


def _summary(runs: list[dict]) -> dict:
    """Mean and spread over seeds per (pair, budget, variant), and the paired difference of
    each variant against base (same seed, same labelled examples)."""
    cells = defaultdict(dict)
    for r in runs:
        cells[(r["pair"], r["per_class"], r["variant"])][r["seed"]] = r
    out: dict = {}
    for (pair, k, variant), by_seed in sorted(cells.items()):
        acc = [r["test_accuracy"] for r in by_seed.values()]
        f1 = [r["test_macro_f1"] for r in by_seed.values()]
        entry = {
            "seeds": len(by_seed),
            "train_examples": next(iter(by_seed.values()))["train_examples"],
            "accuracy_mean": round(statistics.mean(acc), 4),
            "accuracy_std": round(statistics.stdev(acc), 4) if len(acc) > 1 else None,
            "macro_f1_mean": round(statistics.mean(f1), 4),
            "macro_f1_std": round(statistics.stdev(f1), 4) if len(f1) > 1 else None,
        }
        base = cells.get((pair, k, "base"), {})
        paired = [s for s in by_seed if s in base]
        if variant != "base" and paired:
            diffs = [by_seed[s]["test_accuracy"] - base[s]["test_accuracy"] for s in paired]
            f1_diffs = [by_seed[s]["test_macro_f1"] - base[s]["test_macro_f1"] for s in paired]
            entry["accuracy_minus_base"] = round(statistics.mean(diffs), 4)
            entry["macro_f1_minus_base"] = round(statistics.mean(f1_diffs), 4)
            entry["seeds_above_base_accuracy"] = f"{sum(d > 0 for d in diffs)}/{len(diffs)}"
        out.setdefault(pair, {}).setdefault(f"{k}_per_class", {})[variant] = entry
    return out


if __name__ == "__main__":
    main()
