"""The ``lepton-nlp`` command: train, augment, hpo, continual, adapt, fewshot, eval,
check-backends, predict, serve, export, models, tasks, methods, transcribe."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from lepton_nlp.errors import (
    ArtifactError,
    BatchError,
    ConfigError,
    DataError,
    ModelNotFoundError,
)

__all__ = ["main"]

EXAMPLES = """examples:
  lepton-nlp train configs/demo_finance.yaml
  lepton-nlp train configs/classification_fpb.yaml peft.method=ia3 training.epochs=2
  lepton-nlp train configs/demo_finance.yaml --augment synonym,insert,swap,delete
  lepton-nlp augment configs/demo_finance.yaml --augment swap,delete -o augmented.jsonl
  lepton-nlp hpo configs/hpo_fpb.yaml --trials 12
  lepton-nlp continual configs/continual_banking.yaml continual.method=replay
  lepton-nlp adapt configs/transfer_bank_faqs.yaml --unlabelled questions.txt
  lepton-nlp train configs/transfer_bank_faqs.yaml model.init_from=data/models/banking77-intent
  lepton-nlp fewshot configs/fewshot_banking77.yaml --method setfit --shots 10
  lepton-nlp eval runs/demo-finance --data data/samples/finance_sentiment.csv
  lepton-nlp eval runs/demo-finance --attack typo,synonym,case --budget 1,3
  echo "Profit rose 20%" | lepton-nlp predict runs/demo-finance
  lepton-nlp predict runs/demo-finance -i news.parquet -o scored.jsonl --engine local
  lepton-nlp serve --model finance-sentiment=data/models/finance-sentiment --port 8000
  lepton-nlp export runs/demo-finance runs/demo-finance-merged --merge
  lepton-nlp check-backends runs/demo-finance --dry-run
  lepton-nlp transcribe voice-message.webm --json
"""


def _augment_overrides(args: argparse.Namespace) -> list[str]:
    """``--augment synonym,swap`` as the override it stands for, before the others."""
    methods = getattr(args, "augment", None)
    return [f"augment.methods={methods}"] if methods else []


def _cmd_train(args: argparse.Namespace) -> int:
    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    config = load_config(args.config, [*_augment_overrides(args), *args.overrides])
    result = train(config)
    if result.artifact is None:  # non-zero rank of a distributed run
        return 0
    summary = {
        split: result.metrics.get(split)
        for split in ("validation", "test")
        if result.metrics.get(split)
    }
    print(
        json.dumps(
            {"artifact": str(result.artifact), **summary, "train": result.metrics["train"]},
            indent=2,
        )
    )
    return 0


def _cmd_augment(args: argparse.Namespace) -> int:
    from lepton_nlp.config import load_config
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.augment import augment_records
    from lepton_nlp.training.trainer import load_data

    config = load_config(args.config, [*_augment_overrides(args), *args.overrides])
    if not config.augment.methods:
        raise ConfigError(
            "The config switches no augmentation on: give --augment synonym,insert,swap,delete "
            "or augment.methods=[...] (docs/augmentation.md)."
        )
    task = get_task(config.task)
    splits, _ = load_data(config, task)
    records, report = augment_records(
        splits["train"], task.record_kind, config.augment, config.model.name, config.task
    )
    added = records[report.original :]
    lines = [
        json.dumps(
            {**record, "augment_method": method, "augment_source": index}, ensure_ascii=False
        )
        for record, (index, method) in zip(added, report.sources, strict=True)
    ]
    if args.output:
        Path(args.output).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        for line in lines[: args.show]:
            print(line)
    print(
        json.dumps(report.as_dict(), indent=2), file=sys.stderr if not args.output else sys.stdout
    )
    return 0


def _cmd_hpo(args: argparse.Namespace) -> int:
    from lepton_nlp.training.hpo import run_study

    try:
        result = run_study(
            args.config,
            args.overrides,
            trials=args.trials,
            storage=args.storage,
            study_name=args.study_name,
            output_dir=args.output,
            timeout=args.timeout,
            plots=not args.no_plots,
        )
    except KeyboardInterrupt:
        return 130
    summary = {
        "study": result.study_name,
        "storage": result.storage,
        "trials_finished": result.trials_finished,
        "trials_run_now": result.trials_run,
        f"best_validation_{result.metric}": result.best_value,
        "best_trial": result.best_trial,
        "best_params": result.best_params,
        "best_config": str(result.best_config) if result.best_config else None,
        "leaderboard": str(result.leaderboard_csv),
        "plots": [str(p) for p in result.plots],
    }
    print(json.dumps(summary, indent=2))
    return 0


def _read_eval_records(args: argparse.Namespace, info) -> list[dict]:
    from lepton_nlp.config import load_config
    from lepton_nlp.data import (
        infer_encoding,
        infer_format,
        load_records,
        load_splits,
    )
    from lepton_nlp.tasks import get_task

    task = get_task(info.task_version)
    saved = info.path / "config.yaml"
    wrong = [o for o in args.overrides if not o.startswith("data.")]
    if wrong:
        raise ConfigError(
            f"eval takes data.* settings only (e.g. data.text_column=headline); got {wrong[0]!r}."
        )
    overrides = [f"training.output_dir={info.path}", *args.overrides]
    config = load_config(saved, overrides)
    data = config.data
    reader = getattr(task, "read_records", None)  # tasks with records of their own kind
    if args.data:
        given = any(o.startswith("data.format=") for o in args.overrides)
        if args.format:
            data.format = args.format
        elif not given:
            data.format = infer_format(args.data, task.record_kind, data.format)
        if not any(o.startswith("data.encoding=") for o in args.overrides):
            data.encoding = infer_encoding(args.data, data.encoding)
        try:
            return load_records(data, args.data, task.record_kind, reader)
        except DataError as exc:
            raise DataError(
                f"{exc} (read as data.format={data.format}; pass --format to choose another reader)"
            ) from None
    # No file given: the test split of the run that made the artifact (same seed, same split).
    test = load_splits(data, task.record_kind, reader)["test"]
    if not test:
        raise SystemExit("The artifact's run had no test split; pass --data FILE to evaluate on.")
    return test


def _cmd_eval(args: argparse.Namespace) -> int:
    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.inference import Predictor

    info = read_artifact(args.artifact)
    if args.attack:  # a misspelt attack fails before the model loads
        from lepton_nlp.evaluation.robustness import parse_attacks, parse_budgets

        parse_attacks(args.attack), parse_budgets(args.budget)
    records = _read_eval_records(args, info)
    predictor = Predictor.from_artifact(
        args.artifact,
        batch_size=args.batch_size,
        backend=args.backend,
        streams=args.streams,
        spelling=not args.no_spelling,
    )
    if args.attack:
        metrics = {**_robustness(args, predictor, records), "backend": predictor.backend}
    else:
        metrics = {**predictor.evaluate(records), "backend": predictor.backend}
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


def _robustness(args: argparse.Namespace, predictor, records: list[dict]) -> dict:
    """``eval --attack``: the clean metrics and those under each attack and budget."""
    from lepton_nlp.evaluation.robustness import (
        SynonymTable,
        evaluate_robustness,
        parse_attacks,
        parse_budgets,
    )

    attacks, budgets = parse_attacks(args.attack), parse_budgets(args.budget)
    synonyms = SynonymTable.from_file(args.synonyms) if args.synonyms else None
    return evaluate_robustness(predictor, records, attacks, budgets, args.seed, synonyms)


#: Exit status of a predict run that finished with some records reported bad (not predicted).
EXIT_BAD_RECORDS = 3


def _cmd_predict(args: argparse.Namespace) -> int:
    import functools

    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.batch import score_file
    from lepton_nlp.inference import Predictor

    read_artifact(args.artifact)  # a bad folder fails here, before Ray or any reading starts
    factory = functools.partial(
        Predictor.from_artifact,
        args.artifact,
        batch_size=args.batch_size,
        backend=args.backend,
        streams=args.streams,
        spelling=not args.no_spelling,
    )
    options: dict = {
        "fmt": args.format,
        "text_field": args.text_field,
        "chunk_size": args.chunk_size,
        "overwrite": args.overwrite,
        "encoding": args.encoding,
        "bad_records": args.bad_records,
    }
    if args.engine == "ray":
        options.update(
            actors=args.actors, cpus_per_actor=args.cpus_per_actor, address=args.ray_address
        )
    else:
        options["model_id"] = str(Path(args.artifact).resolve())
    summary = score_file(factory, args.input, args.output, engine=args.engine, **options)
    source = "standard input" if args.input in (None, "-") else args.input
    target = "standard output" if summary.output is None else summary.output
    if summary.rows == 0 and not summary.resumed_from:
        print(f"No records in {source}: it is empty or holds only blank lines.", file=sys.stderr)
        return 0
    resumed = f", resumed after row {summary.resumed_from}" if summary.resumed_from else ""
    print(
        f"{summary.rows} record{'s' * (summary.rows != 1)}: {summary.predicted} predicted, "
        f"{summary.bad} bad -> {target} "
        f"({summary.engine} engine, {summary.seconds:.1f} s{resumed})",
        file=sys.stderr,
    )
    if summary.bad:
        where = (
            f"as error records in {target}"
            if summary.bad_records == "inline"
            else f"in {summary.bad_records}"
        )
        print(f"Bad records ({where}, each with its line or row and 'error'):", file=sys.stderr)
        for example in summary.bad_examples:
            print(f"  {example}", file=sys.stderr)
        if summary.bad > len(summary.bad_examples):
            print(f"  ... and {summary.bad - len(summary.bad_examples)} more", file=sys.stderr)
        return EXIT_BAD_RECORDS
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from lepton_nlp.export import export_onnx_artifact, merge_artifact

    if args.format == "merged" or (args.merge and args.format is None):
        out = merge_artifact(args.artifact, args.output, overwrite=args.overwrite)
        print(f"Merged model written to {out}")
    elif args.format in ("onnx", "onnx-int8"):
        out = export_onnx_artifact(
            args.artifact,
            args.output,
            quantize=args.format == "onnx-int8",
            overwrite=args.overwrite,
        )
        print(f"ONNX model written to {out}")
    else:
        print("Choose what to export: --format merged | onnx | onnx-int8.", file=sys.stderr)
        return 2
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from lepton_nlp.serve import load_serve_settings, run_server

    models = {}
    for pair in args.model or []:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ConfigError(
                f"--model {pair!r}: write NAME=ARTIFACT_FOLDER, e.g. sentiment=runs/demo."
            )
        models[name] = path
    flags = {
        key: getattr(args, key)
        for key in (
            "host",
            "port",
            "embed",
            "api_key_file",
            "batching",
            "max_batch_size",
            "max_wait_ms",
            "max_items",
            "max_text_chars",
            "max_body_bytes",
            "max_upload_bytes",
            "insecure",
            "torch_threads",
            "device",
            "batch_size",
            "backend",
            "packing",
            "shared_base",
            "graceful_timeout_s",
        )
    }
    if args.routes:
        flags["routes"] = args.routes
    flags["log_level"] = "info" if args.verbose else "warning"
    settings = load_serve_settings(args.config, {**flags, "models": models})
    if not settings.models and not settings.embed and not settings.routes:
        raise ConfigError(
            "Nothing to serve: pass --model NAME=ARTIFACT_FOLDER (repeat it for more), --embed "
            "for sentence embeddings, --routes MODULE:ROUTER, or --config with a models: "
            "mapping. Example: lepton-nlp "
            "serve --model finance-sentiment=data/models/finance-sentiment"
        )
    print(
        f"lepton-nlp serve: loading "
        f"{', '.join([*settings.models, *settings.routes]) or settings.embed}; then "
        f"http://{settings.host}:{settings.port} (OpenAPI at /docs, metrics at /metrics)",
        file=sys.stderr,
    )
    run_server(settings)
    return 0


def _cmd_check_backends(args: argparse.Namespace) -> int:
    from lepton_nlp.artifacts import read_artifact, record_backend_check
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_records, load_splits
    from lepton_nlp.inference.int8_check import check_int8, sample_records, supports_int8_check
    from lepton_nlp.tasks import get_task

    info = read_artifact(args.artifact)
    task = get_task(info.task_version)
    if not supports_int8_check(task):
        raise SystemExit(
            f"{args.artifact} is a {info.task} model: the int8 check covers classification, NER, "
            "relation and QA models (generated text stays fp32)."
        )
    config = load_config(info.path / "config.yaml")
    reader = getattr(task, "read_records", None)
    if args.data:
        data = config.data
        if args.format:
            data.format = args.format
        records = load_records(data, args.data, task.record_kind, reader)
        splits = {"train": records}  # calibration and check records, apart
    else:
        try:
            splits = load_splits(config.data, task.record_kind, reader)
        except (OSError, ValueError) as exc:
            raise SystemExit(
                f"The data of the run that made {args.artifact} cannot be read here ({exc}); pass "
                "--data FILE with labelled records like its training data."
            ) from None
        splits = {"train": splits["train"], "validation": splits["validation"]}  # never test
    calibration, records, source = sample_records(splits, config.training.seed)
    if not calibration or not records:
        raise SystemExit("Not enough records for calibration and a check; pass a larger --data.")
    quantization, check = check_int8(
        args.artifact, calibration, records, source if not args.data else "--data", args.batch_size
    )
    print(json.dumps(check, indent=2))
    if not args.dry_run:
        record_backend_check(args.artifact, quantization, check)
        print(f"Recorded in {args.artifact}/metrics.json and quantization.json.", file=sys.stderr)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from lepton_nlp.hub import available_models

    for name, where in available_models().items():
        print(f"{name}\t{where}")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from lepton_nlp.tasks import TASKS

    for name, task in sorted(TASKS.items()):
        if name == task.name:
            print(f"{name}\t{task.version}\t{(type(task).__doc__ or '').strip()}")
    return 0


def _cmd_continual(args: argparse.Namespace) -> int:
    from lepton_nlp.training.continual import load_continual_config, run_config

    result = run_config(load_continual_config(args.sequence, args.overrides))
    summary = {split: result[split] for split in ("validation", "test") if split in result}
    out = {"method": result["method"], "tasks": result["tasks"], **summary}
    if "artifacts" in result:
        out["artifacts"] = result["artifacts"]
    print(json.dumps(out, indent=2))
    return 0


def _cmd_adapt(args: argparse.Namespace) -> int:
    from lepton_nlp.config import load_config
    from lepton_nlp.training.transfer import adapt_encoder

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"adapt.output_dir={args.output}")
    result = adapt_encoder(load_config(args.config, overrides), args.unlabelled)
    print(json.dumps({"output": str(result.output), **result.summary}, indent=2))
    return 0


def _cmd_fewshot(args: argparse.Namespace) -> int:
    from lepton_nlp.config import load_config
    from lepton_nlp.training.prompts import FewShotRunner

    config = load_config(args.config, args.overrides)
    if config.training.threads:
        import torch

        torch.set_num_threads(config.training.threads)
    result = FewShotRunner(config).run(
        method=args.method,
        shots=args.shots,
        seed=args.seed,
        output_dir=args.output,
        overwrite=True if args.overwrite else None,
    )
    print(json.dumps({"output": str(result.output), **result.report}, indent=2))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from lepton_nlp.peft_methods import METHODS

    for name, method in METHODS.items():
        merge = "mergeable" if method.mergeable else "-"
        print(f"{name}\tlr {method.learning_rate:g}\t{merge}\t{method.summary}")
    return 0


def _one_or_more(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number, 1 or more; got {value!r}")
    return count


def _add_streams_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--streams",
        type=_one_or_more,
        help="batches predicted at once, each on its share of the CPU threads (default: one "
        "per torch thread on a CPU with a torch backend, at most 4; 1 on a GPU)",
    )


def _add_spelling_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-spelling",
        action="store_true",
        help="read texts as they are, even when the artifact corrects spelling (a run with "
        "spelling.enabled; docs/adversarial.md)",
    )


def _add_backend_option(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    from lepton_nlp.config import BACKEND_CHOICES

    p.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=default,
        help="predictor backend (default auto: int8 on a CPU when the artifact's int8 check "
        "passed, else torch)",
    )


def build_parser() -> argparse.ArgumentParser:
    from lepton_nlp.config import DATA_FORMATS

    parser = argparse.ArgumentParser(
        prog="lepton-nlp",
        description="Fine-tune pretrained transformers on your own labelled data, offline, and use them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="fine-tune a model from a YAML run config",
        description="Fine-tune, evaluate on validation/test, and write an artifact folder "
        "(training.output_dir). Runs data-parallel under torchrun.",
        epilog="overrides: key.sub=value, e.g. peft.method=ia3 training.epochs=2 data.train=my.csv",
    )
    p.add_argument("config", help="YAML run config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the config")
    p.add_argument(
        "--augment",
        metavar="METHODS",
        help="augment the training split: synonym,insert,swap,delete,back_translation,"
        "paraphrase (sets augment.methods; docs/augmentation.md)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "augment",
        help="write the augmented training records a config would add (no training)",
        description="Apply the config's augment: section (or --augment METHODS) to its training "
        "split and write the new records as JSON Lines, each with augment_method and "
        "augment_source (the index of its original), then the counts: made, skipped, dropped "
        "(duplicates, label flips). See docs/augmentation.md.",
        epilog="overrides: key.sub=value, e.g. augment.probability=0.2 augment.per_example=4",
    )
    p.add_argument("config", help="YAML run config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the config")
    p.add_argument("--augment", metavar="METHODS", help="sets augment.methods, e.g. synonym,swap")
    p.add_argument("-o", "--output", help="JSONL file of the augmented records (default: print)")
    p.add_argument("--show", type=int, default=10, help="records printed without --output")
    p.set_defaults(func=_cmd_augment)

    p = sub.add_parser(
        "hpo",
        help="search hyper-parameters of a run config (Optuna)",
        description="Hyper-parameter search over the config's hpo.space (learning rate, "
        "epochs, batch size, PEFT method, rank, alpha, dropout, warmup...): TPE draws each "
        "trial's values, the core trains it, and a trial whose validation metric falls below "
        "the median of earlier trials at an evaluation is pruned. Trials are chosen on the "
        "validation split (training.metric_for_best), never on test. The study lives in a "
        "database (SQLite in the output folder by default): rerun the same command to resume "
        "after an interruption; point several machines at one --storage URL to share a study. "
        "Writes a leaderboard (CSV, JSON), best_config.yaml (train it with lepton-nlp train) "
        "and plots to hpo.output_dir (default <training.output_dir>-hpo).",
        epilog="overrides: key.sub=value, e.g. hpo.pruner=none data.max_train_samples=800",
    )
    p.add_argument("config", help="YAML run config with an hpo: section (see configs/hpo_*.yaml)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the config")
    p.add_argument(
        "--trials",
        type=_one_or_more,
        help="finished trials the study should hold (default hpo.trials); a resumed study "
        "runs only the missing ones",
    )
    p.add_argument(
        "--storage",
        help="SQLAlchemy database URL of the study (default hpo.storage, else "
        "sqlite:///<output>/study.db), e.g. postgresql+psycopg://user:pw@host/db",
    )
    p.add_argument("--study-name", help="study name in the storage (default: the run's name)")
    p.add_argument("--output", help="folder of trials, leaderboard, best config and plots")
    p.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.set_defaults(func=_cmd_hpo)

    p = sub.add_parser(
        "continual",
        help="learn a sequence of tasks one after another; write the forgetting matrix",
        description="Train the tasks of a sequence file in order (sequential, replay, ewc or "
        "one adapter per task), score every task learnt so far after each step, and write "
        "<run.training.output_dir>/continual.json. See docs/continual.md.",
        epilog="overrides: key.sub=value, e.g. continual.method=ewc continual.ewc.strength=100",
    )
    p.add_argument("sequence", help="YAML sequence file (see configs/continual_*.yaml)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the sequence file")
    p.set_defaults(func=_cmd_continual)

    from lepton_nlp.config import FEWSHOT_METHODS

    p = sub.add_parser(
        "fewshot",
        help="few-shot / zero-shot classification: prompts, SetFit, soft prompts, LoRA",
        description="Classify with K labelled examples per class (a seeded sample of the "
        "config's training split) by one method, score it on the validation and test "
        "splits, and write <output>/fewshot.json (setfit, lora and soft-prompt also write a "
        "normal artifact there). Methods: zero-shot and in-context "
        "(the instruct LLM scores each label's words after a prompt, calibrated on a "
        "content-free input), label-similarity (sentence encoder, text vs label "
        "description), setfit (contrastive encoder + logistic regression), soft-prompt "
        "(peft prompt tuning / P-tuning) and lora (the plain fine-tuning baseline). Settings "
        "live in the config's prompting: section; see docs/prompt-learning.md.",
        epilog="overrides: key.sub=value, e.g. prompting.llm.shortlist=10 training.epochs=20",
    )
    p.add_argument("config", help="YAML classification run config (see configs/fewshot_*.yaml)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the config")
    p.add_argument(
        "--method", choices=FEWSHOT_METHODS, help="the method (default prompting.method)"
    )
    p.add_argument(
        "--shots",
        type=_one_or_more,
        help="labelled examples per class (default prompting.shots)",
    )
    p.add_argument(
        "--seed", type=int, help="seed of the sample and training (default prompting.seed)"
    )
    p.add_argument("--output", help="output folder (default training.output_dir)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run there")
    p.set_defaults(func=_cmd_fewshot)

    p = sub.add_parser(
        "adapt",
        help="adapt a run's encoder to unlabelled target-domain text (before few-label training)",
        description="Continue training the encoder of a run config (model.name, or "
        "model.init_from when set) on unlabelled texts of the target domain, unsupervised "
        "(adapt.method: TSDAE or SimCSE), and write an encoder folder (adapt.output_dir, default "
        "<training.output_dir>-adapted) to start the labelled run from: "
        "`lepton-nlp train CONFIG model.init_from=FOLDER`. See docs/transfer.md.",
        epilog="overrides: key.sub=value, e.g. adapt.epochs=2 adapt.max_samples=5000",
    )
    p.add_argument("config", help="YAML run config (its adapt: section, if any, says how)")
    p.add_argument("overrides", nargs="*", help="key.sub=value changes to the config")
    p.add_argument(
        "--unlabelled",
        help="target-domain texts: .txt (one a line), .csv or .jsonl (adapt.text_column); "
        "default adapt.unlabelled",
    )
    p.add_argument("--output", help="folder of the adapted encoder (default adapt.output_dir)")
    p.set_defaults(func=_cmd_adapt)

    p = sub.add_parser(
        "eval",
        help="score an artifact on labelled data",
        description="Score an artifact with its Predictor. Without --data it re-creates the test "
        "split of the run that made it (same files, same seed).",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="data.KEY=VALUE",
        help="reader settings for --data, e.g. data.text_column=headline data.label_column=tone",
    )
    p.add_argument(
        "--data",
        help="labelled file to score (reader from the file: .csv, .jsonl, .json, a folder, "
        "a .txt's first line; else as in the run config)",
    )
    p.add_argument("--format", choices=DATA_FORMATS, help="reader for --data (default: inferred)")
    p.add_argument("--batch-size", type=int, default=64)
    _add_backend_option(p)
    _add_streams_option(p)
    _add_spelling_option(p)
    p.add_argument("--output", help="also write the metrics JSON here")
    p.add_argument(
        "--attack",
        metavar="NAMES",
        help="robustness: also score the data after seeded attacks, comma-separated: typo, "
        "swap, delete, synonym, case, punctuation, or all (docs/adversarial.md)",
    )
    p.add_argument(
        "--budget",
        default="1",
        metavar="N[,N...]",
        help="--attack: edits per record, one run per budget (default 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="--attack: seed of the edits (default 0)")
    p.add_argument(
        "--synonyms",
        metavar="FILE",
        help="--attack synonym: a JSON object word -> [synonyms] (default: nearest words in "
        "the base model's input-embedding space)",
    )
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "check-backends",
        help="calibrate int8 for an artifact and score it against fp32",
        description="Calibrate the int8 backend's activation ranges on up to 512 training "
        "records, score int8 and fp32 on the validation split (else on 2,000 other training "
        "records; never the test split), and record both in the artifact (metrics.json "
        "'backends', quantization.json, model card). backend=auto then runs int8 on CPUs when "
        "it loses at most 0.5 points. Training does this already; use it for older artifacts "
        "or other data.",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument(
        "--data",
        help="labelled file (default: the run's own training and validation data); its records "
        "are split between calibration and the check",
    )
    p.add_argument(
        "--format", choices=["csv", "jsonl", "fpb", "conll", "hf"], help="reader for --data"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dry-run", action="store_true", help="print the check, record nothing")
    p.set_defaults(func=_cmd_check_backends)

    p = sub.add_parser(
        "predict",
        help="predict JSONL, CSV, Parquet or plain lines, streaming JSONL out",
        description="Read inputs (JSON objects with 'text' or, for NER, 'tokens'; CSV or Parquet "
        "rows; or plain text, one input per line) from a file or stdin; write one JSON line per "
        "input. Extra input fields (ids) are copied to the output. A record that cannot be "
        "predicted (broken JSON, a missing, null or empty text, undecodable bytes) does not stop "
        "the run: it is reported with its line (or row) and why, see --bad-records; the summary "
        "on stderr counts them, and the exit status is 3 when there were any (0: all predicted, "
        "2: an error stopped the run).",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument("--input", "-i", help="input file (default: stdin)")
    p.add_argument("--output", "-o", help="output JSONL file (default: stdout)")
    p.add_argument(
        "--text-field",
        "--text-column",
        dest="text_field",
        default="text",
        help="field (JSON) or column (CSV, Parquet) holding the text (default: text)",
    )
    p.add_argument(
        "--bad-records",
        default="inline",
        metavar="inline|stop|FILE",
        help="where records that cannot be predicted go: inline (default: an error record "
        '{..., "line": N, "error": "..."} in the output in their place), stop (stop at the '
        "first, exit 2), or a FILE that receives those error records",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="text encoding of the input (default: utf-8)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    _add_backend_option(p)
    _add_streams_option(p)
    _add_spelling_option(p)
    p.add_argument(
        "--chunk-size", type=int, default=1024, help="lines read before predicting (bounds memory)"
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: streams, fsyncs each chunk and resumes after an interruption (rerun the "
        "same command); ray: Ray Data with an actor pool (this machine, or --ray-address)",
    )
    p.add_argument(
        "--format",
        choices=["jsonl", "csv", "parquet", "text"],
        help="input format (default: from the suffix, else from the content: JSONL when the "
        "first line is a JSON object, CSV when it is a header naming --text-field, Parquet by "
        "its magic bytes, else plain text)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT instead of resuming")
    p.add_argument("--actors", type=int, default=1, help="ray: predictor actors")
    p.add_argument("--cpus-per-actor", type=float, default=1, help="ray: CPUs per actor")
    p.add_argument(
        "--ray-address", help="ray: cluster address (auto, ray://head:10001); default: this machine"
    )
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "serve",
        help="serve models over HTTP (FastAPI, micro-batched)",
        description="Load artifacts and answer POST /v1/classify, /v1/ner, ... (one endpoint "
        "per loaded task; OpenAPI at /docs), with micro-batching of concurrent requests, "
        "request limits, API keys, /healthz, /readyz and Prometheus /metrics. API keys come "
        "from LEPTON_NLP_API_KEYS (comma-separated) or --api-key-file and are required to bind "
        "anything but loopback (unless --insecure); see docs/security.md. SIGTERM finishes in-flight requests, then stops.",
        epilog="example: lepton-nlp serve -m finance-sentiment=data/models/finance-sentiment "
        "-m ner=data/models/conll2003-ner --port 8000",
    )
    p.add_argument("--config", help="YAML serve config: models: {NAME: FOLDER}, limits, ...")
    p.add_argument(
        "--model", "-m", action="append", metavar="NAME=ARTIFACT", help="a model to serve (repeat)"
    )
    p.add_argument(
        "--embed",
        nargs="?",
        const="sentence-transformers/all-MiniLM-L6-v2",
        metavar="MODEL",
        help="also serve /v1/embed with this sentence-embedding model (default: packaged MiniLM)",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--api-key-file", help="file with one API key per line")
    p.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        help="allow binding beyond loopback without API keys (anyone who reaches the port "
        "can use the API; only behind an authenticating proxy)",
    )
    p.add_argument(
        "--no-batching",
        dest="batching",
        action="store_const",
        const=False,
        help="predict each request on its own",
    )
    p.add_argument("--max-batch-size", type=int, help="items per micro-batch (default 32)")
    p.add_argument("--max-wait-ms", type=float, help="wait for a batch to fill (default 5)")
    p.add_argument("--max-items", type=int, help="inputs per request (default 256)")
    p.add_argument("--max-text-chars", type=int, help="characters per text (default 10000)")
    p.add_argument("--max-body-bytes", type=int, help="request body size (default 2 MiB)")
    p.add_argument(
        "--max-upload-bytes", type=int, help="file upload size, mounted routes (default 25 MiB)"
    )
    p.add_argument("--torch-threads", type=int, help="torch threads (default 2)")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--batch-size", type=int, help="predictor forward-pass size (default 32)")
    _add_backend_option(p, default=None)  # None: the serve config (or its default) decides
    p.add_argument(
        "--no-packing",
        dest="packing",
        action="store_const",
        const=False,
        help="run padded batches (default: padding-free batches on BERT/RoBERTa encoders "
        "with the torch backends; same outputs, faster)",
    )
    p.add_argument(
        "--shared-base",
        action="store_const",
        const=True,
        help="load the models as adapters on one copy of their base model (saves memory)",
    )
    p.add_argument(
        "--graceful-timeout", dest="graceful_timeout_s", type=float, help="seconds (default 30)"
    )
    p.add_argument(
        "--routes",
        action="append",
        metavar="MODULE:ROUTER",
        help="also mount this FastAPI router, imported by name (repeat), e.g. "
        "apps.support.api:router",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "export",
        help="merge an adapter into its base model, or export to ONNX",
        description="--format merged (or --merge): fold a LoRA-family adapter into the base "
        "weights and write a new artifact with full weights (peft_method 'full'), loadable "
        "without peft. --format onnx / onnx-int8: write OUTPUT/model.onnx (ONNX Runtime "
        "dynamic int8 for onnx-int8) with the tokenizer and labels, for classification, NER "
        "and QA models.",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument("output", help="folder for the exported model")
    p.add_argument("--merge", action="store_true", help="same as --format merged")
    p.add_argument(
        "--format", choices=["merged", "onnx", "onnx-int8"], default=None, help="what to write"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an artifact already at OUTPUT")
    p.set_defaults(func=_cmd_export)

    sub.add_parser("models", help="list models available offline").set_defaults(func=_cmd_models)
    sub.add_parser("tasks", help="list registered tasks").set_defaults(func=_cmd_tasks)
    sub.add_parser("methods", help="list fine-tuning (PEFT) methods").set_defaults(
        func=_cmd_methods
    )
    from lepton_nlp.speech_cli import add_transcribe_parser

    add_transcribe_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lepton-nlp`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "overrides"):
        # key=value overrides may also follow the options (eval ART --data f.csv data.x=y).
        args.overrides += [x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if x not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    try:
        return args.func(args)
    except (
        ConfigError,
        DataError,
        ArtifactError,
        ModelNotFoundError,
        FileNotFoundError,
        BatchError,
    ) as exc:
        print(f"lepton-nlp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
