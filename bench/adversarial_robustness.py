"""Training for robustness against test-set attacks on Financial PhraseBank: plain, FGM, PGD,
FreeLB, and typo augmentation.

python bench/adversarial_robustness.py [--train-samples N] [--epochs E] [--seeds 42,43]
    [--methods plain,fgm,pgd,freelb,typos] [--epsilon 0.3] [--steps 2]
    [--attacks typo,swap,delete,synonym,case,punctuation] [--budgets 3] [--split validation]
    [key.sub=value ...]

Every method trains the shipped finance-sentiment recipe (configs/classification_fpb.yaml:
all-MiniLM-L6-v2 + LoRA r=32, mean pooling) on the same split as
bench/classification_fpb.py (Sentences_50Agree, seeded stratified 64/16/20, split seed 42),
with the same training subset (the first N records of the training split), epochs and
seeds; only ``training.adversarial`` differs, or, for ``typos``, ``augment.methods=[typos]``
(one copy of each training sentence with letters mistyped, swapped or dropped, drawn from
the augmentation's seed: the same kinds of edit as three of the attacks, at other places; so
the training set doubles and the arm takes twice the steps, as FGM takes twice the
gradient passes). Training runs a fixed number of epochs and
keeps the last step (no checkpoint choice), so every method gets the same budget. Each
model is then scored on the whole test split as it is and after each attack
(lepton_nlp/evaluation/robustness.py, seed 0: the same attacked texts for every model).

``--spelling`` also scores every trained model with spelling correction in front of it
(``<method>+spelling``: lepton_nlp/inference/spelling.py, the vocabulary from the training
split's words and the model's whole words), at the settings bench/spelling_correction.py
chose on the validation split (bench/results/spelling_correction.json). ``--reuse`` scores
the final checkpoints an earlier run of the same settings left in runs/adversarial_robustness
instead of training again, and refuses any whose uncorrected figures are not exactly the
ones bench/results/adversarial_robustness.json recorded for it (so they are the models
measured there); the training figures are carried over from that file.

Nothing is chosen on test: epsilon defaults to 0.3, the value the FPB recipe chose for FGM
on validation macro-F1 (against 1.0); ``--epsilon`` and ``--steps`` change it for every
method alike, and a method named with its own sizes (``freelb-e1.0``, ``pgd-e1.0-s3``)
trains at those, beside the others. ``--split validation`` attacks the validation split
instead (``adversarial_robustness_validation[_PART].json``): that is where sizes are
chosen. Its ``--merge`` names the chosen arm by a rule fixed before any of its figures: of
the arms behind spelling correction other than plain's, the one with the highest mean
attacked gain over plain (the uncorrected baseline, as on test), among those whose clean
accuracy is at most 0.01 below plain's; ties go to the smaller epsilon. Figures are written
after each run, so an interrupted benchmark keeps what it measured.

``--merge`` joins parts run apart (other seeds, other arms): each arm's means are over the
seeds it ran, and its gains over plain are paired, over the seeds both ran
(``<arm>_seeds_vs_plain``), so an arm run on fewer seeds is compared on the same ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import ROOT, datasets_root, write_result

NAME = "adversarial_robustness"
CONFIG = "configs/classification_fpb.yaml"
METHODS = ("plain", "fgm", "pgd", "freelb", "typos")
SPLITS = ("test", "validation")
TARGET_ATTACKED_GAIN = 0.03
TARGET_CLEAN_DROP = 0.01
# arm -> scored text ("clean", "typo3", ...) -> seed (as a string, for JSON) -> accuracy
Scores = dict[str, dict[str, dict[str, float]]]


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-samples", type=int, default=240)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epsilon", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=2, help="PGD and FreeLB ascent steps")
    parser.add_argument("--attacks", default="typo,delete,swap,synonym,punctuation,case")
    parser.add_argument("--budgets", default="3")
    parser.add_argument("--attack-seed", type=int, default=0)
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="the split to attack (validation: where epsilon and steps are chosen)",
    )
    parser.add_argument(
        "--test-samples", type=int, help="score the first N records of the split only (smoke runs)"
    )
    parser.add_argument(
        "--part",
        help="write bench/results/<name>_<PART>.json instead (run methods in parallel "
        "processes, then --merge the parts)",
    )
    parser.add_argument(
        "--artifact",
        help="score this trained artifact (fp32) on the same attacks instead of training; "
        "writes <name>_<PART or artifact folder name>.json",
    )
    parser.add_argument(
        "--merge", nargs="+", metavar="PART", help="combine the parts' figures into <name>.json"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print <name>.json (--split) as a markdown table, the one in docs/adversarial.md "
        "(runs nothing)",
    )
    parser.add_argument(
        "--spelling",
        action="store_true",
        help="also score each model behind spelling correction (settings chosen on "
        "validation by bench/spelling_correction.py)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="score the final checkpoints of an earlier run instead of training (checked "
        "against the figures recorded for them)",
    )
    return parser.parse_known_args(argv)


def method_sizes(arm: str, epsilon: float, steps: int) -> tuple[str, float, int]:
    """``(method, epsilon, steps)`` of an arm: ``freelb``, or ``freelb-e1.0`` / ``pgd-e1.0-s3``
    with its own sizes (the others from ``--epsilon`` and ``--steps``)."""
    method, *sizes = arm.split("-")
    if method not in METHODS:
        sys.exit(f"--methods: unknown {arm!r}; choose from {', '.join(METHODS)}.")
    for size in sizes:
        try:
            if size.startswith("e"):
                epsilon = float(size[1:])
            elif size.startswith("s"):
                steps = int(size[1:])
            else:
                raise ValueError(size)
        except ValueError:
            sys.exit(f"--methods: {arm!r}: sizes are -e<epsilon> and -s<steps> (freelb-e1.0-s3).")
    if sizes and method in ("plain", "typos"):
        sys.exit(f"--methods: {arm!r}: {method} has no adversarial sizes.")
    return method, epsilon, steps


def result_name(split: str) -> str:
    return NAME if split == "test" else f"{NAME}_{split}"


def _overrides(args: argparse.Namespace, arm: str, seed: int, extra: list[str]) -> list[str]:
    method, epsilon, steps = method_sizes(arm, args.epsilon, args.steps)
    adversarial = "none" if method in ("plain", "typos") else method
    augment = ["augment.methods=[typos]", "augment.per_example=1"] if method == "typos" else []
    return [
        "data.train_on_validation=false",
        f"data.max_train_samples={args.train_samples}",
        f"training.epochs={args.epochs}",
        "training.eval_strategy=no",
        "training.early_stopping_patience=null",
        "training.overwrite=true",
        "training.progress=false",
        "training.report_to=[none]",
        f"training.seed={seed}",
        f"training.output_dir=runs/{NAME}/{arm}-seed{seed}",
        f"training.adversarial={adversarial}",
        f"training.adversarial_epsilon={epsilon}",
        f"training.adversarial_steps={steps}",
        "evaluation.backend_check=false",
        *augment,
        *extra,
    ]


def main(argv: list[str]) -> None:
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.evaluation.robustness import (
        EmbeddingNeighbours,
        evaluate_robustness,
        parse_attacks,
        parse_budgets,
    )

    args, extra = _arguments(argv)
    if args.markdown:
        import json

        from common import RESULTS

        path = RESULTS / f"{result_name(args.split)}.json"
        print(markdown_table(json.loads(path.read_text(encoding="utf-8"))))
        return
    if args.merge:
        merge(args.merge, args.split)
        return
    if args.artifact:
        score_artifact(args)
        return
    name = result_name(args.split)
    name = f"{name}_{args.part}" if args.part else name
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for arm in methods:
        method_sizes(arm, args.epsilon, args.steps)  # refuses what is not a method
    if args.reuse and args.split != "test":
        sys.exit("--reuse checks the figures recorded on test: use it with --split test.")
    seeds = [int(s) for s in args.seeds.split(",")]
    attacks, budgets = parse_attacks(args.attacks), parse_budgets(args.budgets)
    datasets_root()
    os.chdir(ROOT)

    base = load_config(ROOT / CONFIG, _overrides(args, "plain", seeds[0], extra))
    test = load_splits(base.data, "text")[args.split][: args.test_samples]
    synonyms = EmbeddingNeighbours.from_model(base.model.name)
    figures: dict = {
        "config": CONFIG,
        "overrides": " ".join(extra),
        "base_model": base.model.name,
        "peft_method": base.peft.method,
        "train_samples": args.train_samples,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "epsilon": args.epsilon,
        "steps": args.steps,
        "norm": base.training.adversarial_norm,
        "attacks": ",".join(f"{a}@{b}" for a in attacks for b in budgets),
        "attack_seed": args.attack_seed,
        "synonym_source": "nearest whole words in all-MiniLM-L6-v2's input embeddings "
        "(top 5, cosine >= 0.4, no stop words)",
        "split": args.split,
        f"{args.split}_examples": len(test),
        "target": f"a method raising attacked accuracy by >= {TARGET_ATTACKED_GAIN:.2f} with "
        f"clean accuracy down by <= {TARGET_CLEAN_DROP:.2f}",
    }
    spelling_settings = _spelling_settings() if args.spelling else None
    if spelling_settings is not None:
        figures["spelling_settings"] = spelling_settings
        figures["spelling_settings_source"] = "bench/results/spelling_correction.json (validation)"
    recorded = _recorded() if args.reuse else {}
    scores: Scores = {}
    for seed in seeds:
        for method in methods:
            config = load_config(ROOT / CONFIG, _overrides(args, method, seed, extra))
            started = time.perf_counter()
            tag = f"{method}_seed{seed}"
            if args.reuse:
                predictor = load_trained(config)
                figures[f"{tag}_reused"] = str(predictor.info.path)
                figures.update({k: v for k, v in recorded.items() if k.startswith(f"{tag}_train")})
                figures.update(
                    {k: v for k, v in recorded.items() if k.startswith(f"{tag}_augmented")}
                )
            else:
                predictor, train_figures = _train(config)
                figures[f"{tag}_train_seconds"] = train_figures["train_seconds"]
                figures[f"{tag}_train_steps"] = train_figures["steps"]
                figures[f"{tag}_train_loss"] = train_figures["train_loss"]
                if "augmentation" in train_figures:
                    kept = train_figures["augmentation"]
                    figures[f"{tag}_train_records"] = kept["train_after"]
                    figures[f"{tag}_augmented_records"] = kept["added"]
            arms = [(method, None)]
            if spelling_settings is not None:
                arms.append(
                    (f"{method}+spelling", _corrector(config, predictor, spelling_settings))
                )
            for arm, corrector in arms:
                predictor.spelling = corrector
                check = recorded if args.reuse and corrector is None else None
                evaluate_robustness(
                    predictor,
                    test,
                    attacks,
                    budgets,
                    args.attack_seed,
                    synonyms,
                    on_result=_recorder(name, figures, scores, arm, seed, check),
                )
            predictor.spelling = None
            figures[f"{tag}_seconds"] = round(time.perf_counter() - started, 1)
            write_result(name, figures)


def _recorder(name, figures, scores, arm, seed, check):
    """The ``on_result`` of one arm and seed: its figures into ``figures`` and ``scores``,
    written after each one (an interruption keeps them); with ``check`` (a reused
    checkpoint), a figure that differs from the one recorded for it stops the run."""
    per_method = scores.setdefault(arm, {})
    tag = f"{arm}_seed{seed}"

    def record(name_: str, result: dict) -> None:
        key = name_.replace("@", "")
        if check is not None and check.get(f"{tag}_{key}_accuracy") != result["accuracy"]:
            sys.exit(
                f"--reuse: {tag} scores {result['accuracy']} on {key}, but "
                f"bench/results/{NAME}.json recorded {check.get(f'{tag}_{key}_accuracy')}: the "
                "checkpoint is not the model measured there; run without --reuse."
            )
        figures[f"{tag}_{key}_accuracy"] = result["accuracy"]
        if name_ == "clean":
            figures[f"{tag}_clean_macro_f1"] = result["macro_f1"]
        else:
            figures[f"{tag}_{key}_prediction_flips"] = result["prediction_flips"]
            figures[f"{tag}_{key}_short_of_budget"] = result["short_of_budget"]
        per_method.setdefault(key, {})[str(seed)] = result["accuracy"]
        figures.update(_summary(scores))
        figures["scores"] = scores
        write_result(name, figures)

    return record


def _recorded() -> dict:
    import json

    from common import RESULTS

    path = RESULTS / f"{NAME}.json"  # --reuse: test only
    if not path.is_file():
        sys.exit(f"--reuse checks the checkpoints against {path}, which does not exist.")
    return json.loads(path.read_text(encoding="utf-8"))


def _spelling_settings() -> dict:
    """The settings bench/spelling_correction.py chose on the validation split."""
    import json

    from common import RESULTS

    path = RESULTS / "spelling_correction.json"
    if not path.is_file():
        sys.exit(
            f"--spelling takes its settings from {path}: run python bench/spelling_correction.py "
            "first (it chooses them on the validation split)."
        )
    chosen = json.loads(path.read_text(encoding="utf-8")).get("chosen")
    if not chosen:
        sys.exit(f"{path} chose no setting (see its chosen_reason); there is nothing to score.")
    return chosen


def _corrector(config, predictor, settings: dict):
    """The spelling corrector a run of ``config`` with these ``spelling.*`` settings would
    ship: built from the same training records (before any augmentation)."""
    import dataclasses

    from lepton_nlp.config import SpellingConfig
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import correct_spelling, load_data

    splits, _ = load_data(config, get_task(config.task))
    with_spelling = dataclasses.replace(config, spelling=SpellingConfig(enabled=True, **settings))
    corrector, _ = correct_spelling(
        with_spelling, predictor.tokenizer, [r["text"] for r in splits["train"]], {}
    )
    return corrector


def load_trained(config):
    """A Predictor over the final checkpoint that training ``config`` left in its work
    folder (``<output_dir>.work/checkpoints``), the adapter loaded onto the base model as
    training built it."""
    import json
    from pathlib import Path

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import build_model, load_data

    folder = ROOT / Path(config.training.output_dir + ".work") / "checkpoints"
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not found:
        sys.exit(f"--reuse: no checkpoint in {folder}; run without --reuse to train.")
    last = found[-1]
    state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
    if abs(state["epoch"] - config.training.epochs) > 1e-6:
        sys.exit(
            f"--reuse: {last} ends at epoch {state['epoch']}, not {config.training.epochs}; "
            "run without --reuse to train."
        )
    if config.training.threads:
        import torch

        torch.set_num_threads(config.training.threads)
    task = get_task(config.task)
    splits, spec = load_data(config, task)
    model, tokenizer, _ = build_model(config, task, spec, {"train": splits["train"]})
    outcome = set_peft_model_state_dict(model, load_file(last / "adapter_model.safetensors"))
    if outcome.unexpected_keys:
        sys.exit(f"--reuse: {last} holds weights the model has not: {outcome.unexpected_keys[:3]}")
    return _in_memory(config, task, spec, model, tokenizer, last)


def _in_memory(config, task, spec, model, tokenizer, path):
    """A Predictor over a model in memory, described as its run would describe it."""
    from lepton_nlp import __version__
    from lepton_nlp.artifacts import ArtifactInfo
    from lepton_nlp.inference import Predictor

    info = ArtifactInfo(
        path=path,
        task=task.name,
        task_version=task.version,
        base_model=config.model.name,
        peft_method=config.peft.method,
        spec=spec,
        created="in memory",
        lepton_nlp_version=__version__,
    )
    return Predictor.from_model(model, tokenizer, info, config.evaluation.batch_size)


def score_artifact(args: argparse.Namespace) -> None:
    """The attacks on an artifact already trained (the shipped finance-sentiment model was
    trained on train + validation of the same split; the test split stays unseen)."""
    from pathlib import Path

    from lepton_nlp.artifacts import read_artifact
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.evaluation.robustness import EmbeddingNeighbours, evaluate_robustness
    from lepton_nlp.inference import Predictor

    datasets_root()
    os.chdir(ROOT)
    info = read_artifact(args.artifact)
    config = load_config(info.path / "config.yaml", [f"training.output_dir={info.path}"])
    test = load_splits(config.data, "text")["test"][: args.test_samples]
    predictor = Predictor.from_artifact(args.artifact, backend="torch")
    name = f"{NAME}_{args.part or Path(args.artifact).name}"
    figures: dict = {
        "artifact": str(args.artifact),
        "adversarial": config.training.adversarial,
        "epsilon": config.training.adversarial_epsilon,
        "backend": predictor.backend,
        "attack_seed": args.attack_seed,
        "test_examples": len(test),
    }

    def record(key: str, result: dict) -> None:
        key = key.replace("@", "")
        figures[f"{key}_accuracy"] = result["accuracy"]
        figures[f"{key}_macro_f1"] = result["macro_f1"]
        for extra in ("prediction_flips", "short_of_budget"):
            if extra in result:
                figures[f"{key}_{extra}"] = result[extra]
        write_result(name, figures)

    evaluate_robustness(
        predictor,
        test,
        args.attacks,
        args.budgets,
        args.attack_seed,
        EmbeddingNeighbours.from_model(info.base_model),
        on_result=record,
    )


def _train(config) -> tuple:
    """Train as ``lepton-nlp train`` does, without its validation/test passes and artifact
    (the robustness evaluation scores the test split itself): a Predictor over the model in
    memory, and the training figures."""
    import dataclasses

    from lepton_nlp.peft_methods import default_learning_rate
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import (
        augment_train,
        build_model,
        build_trainer,
        encode_splits,
        fit,
        load_data,
    )

    if config.training.threads:
        import torch

        torch.set_num_threads(config.training.threads)
    task = get_task(config.task)
    splits, spec = load_data(config, task)
    splits = {"train": splits["train"]}  # no evaluation during training: fixed epochs
    augmentation = augment_train(config, task, splits)  # the typos arm: copies added
    rate = config.training.learning_rate or default_learning_rate(config.peft.method)
    config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, learning_rate=rate)
    )
    model, tokenizer, _ = build_model(config, task, spec, splits)
    trainer = build_trainer(
        config, task, spec, model, tokenizer, encode_splits(task, tokenizer, spec, splits)
    )
    figures = fit(trainer, config)
    if augmentation is not None:
        figures["augmentation"] = augmentation
    predictor = _in_memory(
        config, task, spec, trainer.model, tokenizer, ROOT / config.training.output_dir
    )
    return predictor, figures


def _part_seeds(name: str, part: str) -> list[int]:
    import json

    from common import RESULTS

    record = json.loads((RESULTS / f"{name}_{part}.json").read_text(encoding="utf-8"))
    return [int(s) for s in str(record["seeds"]).split(",")]


def merge(parts: list[str], split: str = "test") -> None:
    """One result from the parts: their figures, and the summary over all their runs (on
    validation, also the arm :func:`choose` picks)."""
    import json

    from common import RESULTS

    name = result_name(split)
    figures: dict = {}
    scores: Scores = {}
    commands = []
    for part in parts:
        record = json.loads((RESULTS / f"{name}_{part}.json").read_text(encoding="utf-8"))
        commands.append(record.pop("command"))
        record.pop("date"), record.pop("machine")
        part_seeds = [str(s) for s in _part_seeds(name, part)]
        for method, by_key in record.pop("scores").items():
            for key, values in by_key.items():
                by_seed = scores.setdefault(method, {}).setdefault(key, {})
                for seed, value in _by_seed(values, part_seeds, f"{part}: {method} {key}"):
                    if seed in by_seed:
                        sys.exit(f"--merge: {method} {key} seed {seed} is in two parts.")
                    by_seed[seed] = value
        figures.update({k: v for k, v in record.items() if not k.startswith(METHODS)})
        figures.update({k: v for k, v in record.items() if "_seed" in k})
    figures["part_commands"] = commands
    if any(k.endswith("_reused") for k in figures):
        # Scored from an earlier run's checkpoints: name the commands that trained them.
        earlier = json.loads((RESULTS / f"{NAME}.json").read_text(encoding="utf-8"))
        figures["trained_by"] = earlier.get("trained_by") or earlier["part_commands"]
    seeds = {s for part in parts for s in _part_seeds(name, part)}
    figures["seeds"] = ",".join(str(s) for s in sorted(seeds))
    figures["seeds_note"] = (
        "each arm's means are over the seeds it ran; its gains over plain over the seeds both "
        "ran (<arm>_seeds_vs_plain)"
    )
    figures.update(_summary(scores))
    figures["scores"] = scores
    if split == "validation":
        figures.update(choose(figures, scores))
    write_result(name, figures)


def _by_seed(values, part_seeds: list[str], what: str) -> list[tuple[str, float]]:
    """A part's scores by seed: parts written before scores carried their seeds hold one
    value per seed of the part, in the part's seed order."""
    if isinstance(values, dict):
        return list(values.items())
    if len(values) != len(part_seeds):
        sys.exit(f"--merge: {what} has {len(values)} scores for seeds {part_seeds}.")
    return list(zip(part_seeds, values, strict=True))


def choose(summary: dict, scores: dict) -> dict:
    """The rule ``--split validation`` chooses sizes by (fixed before its figures): of the
    arms behind spelling correction other than plain's, the highest mean attacked gain over
    plain, among those whose clean accuracy is at most ``TARGET_CLEAN_DROP`` below plain's;
    ties go to the smaller epsilon."""
    candidates = []
    for arm in scores:
        method, _, corrected = arm.partition("+")
        if not corrected or method == "plain" or f"{arm}_attacked_gain_vs_plain" not in summary:
            continue
        within = summary[f"{arm}_clean_delta_vs_plain"] >= -TARGET_CLEAN_DROP
        _, epsilon, _ = method_sizes(method, float(summary["epsilon"]), int(summary["steps"]))
        candidates.append((within, summary[f"{arm}_attacked_gain_vs_plain"], -epsilon, arm))
    allowed = sorted((c for c in candidates if c[0]), reverse=True)
    rule = (
        "of the arms behind spelling correction other than plain's, the highest mean attacked "
        f"gain over plain with clean accuracy at most {TARGET_CLEAN_DROP} below plain's; ties: "
        "the smaller epsilon"
    )
    return {
        "choice_rule": rule,
        "chosen": allowed[0][3] if allowed else None,
        "candidates": [c[3] for c in sorted(candidates, reverse=True)],
    }


def markdown_table(figures: dict) -> str:
    """A merged result as docs/adversarial.md shows it: per arm, accuracy clean and under
    each attack (means over the arm's seeds), the mean under attack, and the paired change
    against plain (points: clean / mean attacked, on the seeds both ran, named when they are
    not all of the arm's)."""
    scores: Scores = figures["scores"]
    attacks = [k for k in scores["plain"] if k != "clean"]
    header = ["arm", "seeds", "clean", *(a.rstrip("0123456789") for a in attacks)]
    header += ["mean attacked", "against plain: clean / attacked (points)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, by_key in scores.items():
        seeds = ",".join(sorted(by_key["clean"]))
        row = [arm, seeds, f"{figures[f'{arm}_clean_accuracy_mean']:.3f}"]
        row += [f"{figures[f'{arm}_{a}_accuracy_mean']:.3f}" for a in attacks]
        row.append(f"{figures[f'{arm}_attacked_accuracy_mean']:.3f}")
        if arm == "plain":
            row.append("-")
        else:
            clean = 100 * figures[f"{arm}_clean_delta_vs_plain"]
            gain = 100 * figures[f"{arm}_attacked_gain_vs_plain"]
            paired = figures[f"{arm}_seeds_vs_plain"]
            on = "" if paired == seeds else f" (on seeds {paired})"
            row.append(f"{clean:+.1f} / {gain:+.2f}{on}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _paired_delta(ours: dict[str, float], base: dict[str, float], seeds: list[str]) -> float:
    """Mean over ``seeds`` of ours minus the same of base (the same seeds on both sides)."""
    return statistics.fmean(ours[s] for s in seeds) - statistics.fmean(base[s] for s in seeds)


def _summary(scores: Scores) -> dict:
    """Means over each arm's seeds, the mean over attacks, and each arm against plain on the
    seeds both ran (paired: the same training data and seed, only the method differs)."""
    out: dict = {}
    for method, by_key in scores.items():
        for key, by_seed in by_key.items():
            out[f"{method}_{key}_accuracy_mean"] = round(statistics.fmean(by_seed.values()), 4)
        attacked = [statistics.fmean(v.values()) for k, v in by_key.items() if k != "clean"]
        if attacked:
            out[f"{method}_attacked_accuracy_mean"] = round(statistics.fmean(attacked), 4)
    plain = scores.get("plain")
    if not plain or "clean" not in plain:
        return out
    for method, by_key in scores.items():
        if method == "plain" or "clean" not in by_key:
            continue
        seeds = sorted(by_key["clean"].keys() & plain["clean"].keys())
        if not seeds:
            continue
        clean_delta = _paired_delta(by_key["clean"], plain["clean"], seeds)
        gains = {
            key: _paired_delta(by_seed, plain[key], seeds)
            for key, by_seed in by_key.items()
            if key != "clean"
            and key in plain
            and all(s in by_seed and s in plain[key] for s in seeds)
        }
        out[f"{method}_seeds_vs_plain"] = ",".join(seeds)
        out[f"{method}_clean_delta_vs_plain"] = round(clean_delta, 4)
        for key, gain in gains.items():
            out[f"{method}_{key}_gain_vs_plain"] = round(gain, 4)
        if gains:
            mean_gain = statistics.fmean(gains.values())
            out[f"{method}_attacked_gain_vs_plain"] = round(mean_gain, 4)
            clean_ok = clean_delta >= -TARGET_CLEAN_DROP
            out[f"{method}_target_met_on_mean_of_attacks"] = bool(
                clean_ok and mean_gain >= TARGET_ATTACKED_GAIN
            )
            out[f"{method}_target_met_on_some_attack"] = sorted(
                k for k, g in gains.items() if clean_ok and g >= TARGET_ATTACKED_GAIN
            )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
