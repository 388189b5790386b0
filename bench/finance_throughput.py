"""Throughput of the whole finance monitor: ingest -> score -> store -> graph -> alerts.

    python bench/finance_throughput.py                    # >= 2,000 articles, batches of 64
    python bench/finance_throughput.py --articles 500 --pipeline-config my.yaml

The sample feed's generator (data/finance/make_sample_feed.py) is run with other seeds and id
prefixes until there are enough distinct articles; they are written as JSONL files, then one
``FinanceMonitor.run`` over the folder does everything ``lepton-finance score`` does, into a
fresh SQLite database. Figures: articles/s and sentences/s end to end (model loading
included) and in steady state (without it), seconds per stage of the run, and seconds per
stage inside the scoring pipeline (from each article's stored timings), and the CPU seconds
the process used (per stage too). The load average of the machine before and after is
recorded: on a busy machine the wall-clock figures fall while the CPU seconds hold.
Target: >= 20 articles/s (about 100 sentences/s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402

TARGET_ARTICLES_PER_S = 20.0
TARGET_SENTENCES_PER_S = 100.0


def _generator():
    path = ROOT / "data" / "finance" / "make_sample_feed.py"
    spec = importlib.util.spec_from_file_location("make_sample_feed", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_feed(folder: Path, wanted: int) -> int:
    """JSONL files of at least ``wanted`` distinct articles (one file per seed)."""
    make = _generator()
    seen, total, seed = set(), 0, 1000
    while total < wanted:
        rows = []
        for article in make.generate(seed=seed, prefix=f"bench{seed}"):
            key = (article["title"], article["body"])
            if key in seen:  # the same text again would be dropped as a duplicate
                continue
            seen.add(key)
            rows.append(dict(article, published=article["published"].isoformat()))
        with open(folder / f"feed_{seed}.jsonl", "w", encoding="utf-8") as stream:
            stream.writelines(json.dumps(row) + "\n" for row in rows)
        total += len(rows)
        seed += 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=2000, help="at least this many")
    parser.add_argument("--batch-size", type=int, default=64, help="articles per batch/commit")
    parser.add_argument("--pipeline-config", help="YAML of FinancePipelineConfig keys")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline setting over the config (YAML value), e.g. relation_model=null",
    )
    parser.add_argument("--name", default="finance_throughput", help="result file name")
    args = parser.parse_args()

    import yaml

    from apps.finance.monitor import FinanceMonitor, default_scorer
    from lepton_nlp.config import read_yaml_file

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="finance-bench-") as tmp:
        folder = Path(tmp) / "feed"
        folder.mkdir()
        written = write_feed(folder, args.articles)

        settings = {}
        if args.pipeline_config:
            tree = read_yaml_file(args.pipeline_config, "Pipeline config")
            settings = dict(tree.get("pipeline", tree))
        for item in args.set:
            key, _, value = item.partition("=")
            settings[key] = yaml.safe_load(value)

        def factory():
            return default_scorer(settings)

        monitor = FinanceMonitor(
            f"sqlite:///{Path(tmp) / 'bench.db'}",
            factory,
            aliases=ROOT / "data" / "finance" / "aliases.yaml",
        )
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = monitor.run([folder], batch_size=args.batch_size)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        pipeline_stages: dict[str, float] = defaultdict(float)
        for scored in monitor.store.scored():
            for stage, seconds in scored.timings.items():
                pipeline_stages[stage] += seconds
        pipeline_config = monitor.scorer.config.to_dict()
    load_after = os.getloadavg()
    stages = summary.stage_seconds
    steady = wall - stages.get("load", 0.0)
    figures = {
        "articles_written": written,
        "articles": summary.new,
        "sentences": summary.sentences,
        "mentions": summary.mentions,
        "relations": summary.relations,
        "entities": summary.entities,
        "alerts": summary.alerts,
        "skipped": summary.skipped,
        "duplicates": summary.duplicates,
        "batch_size": args.batch_size,
        "seconds": round(wall, 2),
        "articles_per_s": round(summary.new / wall, 2),
        "sentences_per_s": round(summary.sentences / wall, 2),
        "steady_seconds": round(steady, 2),
        "steady_articles_per_s": round(summary.new / steady, 2),
        "steady_sentences_per_s": round(summary.sentences / steady, 2),
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_article": round(cpu / summary.new, 4),
        "articles_per_cpu_second": round(summary.new / cpu, 2),
        "stage_seconds": stages,
        "stage_cpu_seconds": summary.stage_cpu_seconds,
        "stage_share": {k: round(v / wall, 3) for k, v in stages.items()},
        "pipeline_stage_seconds": {k: round(v, 2) for k, v in sorted(pipeline_stages.items())},
        "target_articles_per_s": TARGET_ARTICLES_PER_S,
        "target_sentences_per_s": TARGET_SENTENCES_PER_S,
        "target_met_steady": summary.new / steady >= TARGET_ARTICLES_PER_S,
        "model_versions": summary.model_versions,
        "pipeline_config": pipeline_config,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_count": os.cpu_count(),
    }
    write_result(args.name, figures)


if __name__ == "__main__":
    main()
