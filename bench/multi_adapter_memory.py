"""Peak resident memory: three tasks from one base model versus three separate models.

Each case runs in its own process (peak RSS is per process), loads the shipped adapters
(finance-sentiment, banking77-intent, conll2003-ner, all LoRA on MiniLM) and predicts the
same 64 sentences with each:

- ``one_model``: the sentiment model alone (the yardstick);
- ``three_models``: three ``Predictor.from_artifact`` (three copies of MiniLM);
- ``one_base_three_adapters``: ``MultiAdapterPredictor`` (one MiniLM, three adapters and heads).

Target: one base with three adapters at most 1.3x the peak memory of one model. Peak RSS
includes the libraries (torch, transformers, peft: most of it); ``models_peak_mb`` is the
peak above the RSS right after importing them, i.e. what the models themselves cost.

    python bench/multi_adapter_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from common import ROOT, write_result

ARTIFACTS = {
    "sentiment": "data/models/finance-sentiment",
    "intent": "data/models/banking77-intent",
    "ner": "data/models/conll2003-ner",
}
TEXTS = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period.",
    "I still have not received my new card, can you check where it is?",
    "Nokia will open a new plant in Oulu, Finland, next spring.",
    "The company expects net sales to decrease by 10 percent.",
] * 16


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(case: str) -> dict:
    import peft  # noqa: F401  (imported before the baseline, as the loaders would)
    import transformers  # noqa: F401

    from lepton_nlp.inference import Predictor
    from lepton_nlp.inference.multi import MultiAdapterPredictor

    baseline = _rss_now_mb()
    start = time.perf_counter()
    if case == "one_model":
        predictors = {"sentiment": Predictor.from_artifact(ROOT / ARTIFACTS["sentiment"])}
    elif case == "three_models":
        predictors = {n: Predictor.from_artifact(ROOT / p) for n, p in ARTIFACTS.items()}
    else:
        multi = MultiAdapterPredictor.from_artifacts({n: ROOT / p for n, p in ARTIFACTS.items()})
        predictors = multi.predictors
    loaded = time.perf_counter() - start
    outputs = {name: p.predict(TEXTS) for name, p in predictors.items()}
    summary = {
        name: [o.get("label") or [e["text"] for e in o.get("entities", [])] for o in out[:4]]
        for name, out in outputs.items()
    }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_rss_mb": round(peak, 1),
        "libraries_rss_mb": round(baseline, 1),
        "models_peak_mb": round(peak - baseline, 1),
        "load_seconds": round(loaded, 2),
        "outputs": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print("RESULT " + json.dumps(run_case(args.case)))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {}
    for case in ("one_model", "three_models", "one_base_three_adapters"):
        proc = subprocess.run(
            [sys.executable, __file__, "--case", case],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        results[case] = json.loads(line[len("RESULT ") :])
        print(case, results[case]["peak_rss_mb"], "MB", file=sys.stderr)
    same = results["three_models"]["outputs"] == results["one_base_three_adapters"]["outputs"]
    one = results["one_model"]["peak_rss_mb"]
    figures = {
        f"{case}_{key}": value
        for case, r in results.items()
        for key, value in r.items()
        if key != "outputs"
    }
    figures.update(
        {
            "three_models_vs_one": round(results["three_models"]["peak_rss_mb"] / one, 3),
            "one_base_three_adapters_vs_one": round(
                results["one_base_three_adapters"]["peak_rss_mb"] / one, 3
            ),
            "models_only_three_models_vs_one": round(
                results["three_models"]["models_peak_mb"] / results["one_model"]["models_peak_mb"],
                3,
            ),
            "models_only_one_base_three_adapters_vs_one": round(
                results["one_base_three_adapters"]["models_peak_mb"]
                / results["one_model"]["models_peak_mb"],
                3,
            ),
            "same_outputs_as_separate_models": same,
            "target_vs_one": 1.3,
        }
    )
    write_result("multi_adapter_memory", figures)


if __name__ == "__main__":
    main()
