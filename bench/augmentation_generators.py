"""What the generative augmentations cost and make: LLM paraphrase of Financial PhraseBank sentences.

    nice -n 10 python bench/augmentation_generators.py [--sentences 24]

Paraphrases a fixed stratified sample of FPB training sentences (never test) with the
packaged SmolLM2-135M-Instruct through ``augment.methods=[paraphrase]``, greedy decoding,
and records the time per sentence, how many outputs were usable (not empty, not a copy of
the input), and the first few pairs to read. Back-translation needs two translation models,
and none ships offline (MODELS.md): the JSON says so rather than measuring a stand-in.
Writes bench/results/augmentation_generators.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, datasets_root, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    datasets_root()
    os.chdir(ROOT)
    from sklearn.model_selection import train_test_split

    from lepton_nlp.config import AugmentConfig, load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.errors import DataError
    from lepton_nlp.training.augment import augment_records, load_generator

    base = load_config(ROOT / "configs/classification_fpb.yaml", ["data.train_on_validation=false"])
    pool = load_splits(base.data, "text")["train"]
    sample, _ = train_test_split(
        pool,
        train_size=args.sentences,
        stratify=[r["label"] for r in pool],
        random_state=0,
    )
    config = AugmentConfig(methods=["paraphrase"], max_new_tokens=64, batch_size=8)
    started = time.perf_counter()
    generator = load_generator(config.llm_model, config, config.llm_prompt)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    try:
        records, report = augment_records(
            sample, "text", config, generators={"paraphrase": generator}
        )
    except DataError as exc:  # not one usable paraphrase: that is the finding
        records, report, error = sample, None, str(exc)
    else:
        error = None
    seconds = time.perf_counter() - started
    made = records[len(sample) :]
    figures = {
        "benchmark": "augmentation_generators",
        "model": config.llm_model,
        "prompt": config.llm_prompt,
        "decoding": "greedy, max_new_tokens 64",
        "sentences": len(sample),
        "load_seconds": round(load_seconds, 1),
        "paraphrase_seconds": round(seconds, 1),
        "seconds_per_sentence": round(seconds / len(sample), 2),
        "report": report.as_dict() if report else None,
        "error": error,
        "usable_share": round(report.added / len(sample), 3) if report else 0.0,
        "examples": [
            {"original": sample[index]["text"], "paraphrase": record["text"]}
            for record, (index, _) in list(zip(made, report.sources, strict=True))[:6]
        ]
        if report
        else [],
        "back_translation": "not measured: it needs two translation models "
        "(augment.translation_models) and no pretrained one ships offline (MODELS.md); the "
        "project's own en->de model (bench/results/translation_multi30k.json, BLEU 10.6 on "
        "image captions) is no basis for a round trip of financial news",
        "threads": args.threads,
    }
    write_result("augmentation_generators", figures)


if __name__ == "__main__":
    main()
