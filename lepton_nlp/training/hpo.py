"""Hyper-parameter search over a run config: an Optuna study of pruned trials, each a train() run.

``lepton-nlp hpo CONFIG --trials N`` reads the config's ``hpo:`` section (a typed
:class:`~lepton_nlp.config.HpoConfig`), draws each trial's values from its search space with
TPE, trains the run config with those values through the core's :func:`train`, and scores the
trial on the validation split with ``training.metric_for_best`` (never on test). A trial whose
validation metric after an evaluation is worse than the median of earlier trials at the same
evaluation is stopped there (:class:`PruningCallback`). The study lives in a database (SQLite
under the output folder by default), so an interrupted search resumes where it stopped and
several machines can work on one study through a shared database URL.

The output folder holds ``trials/`` (trial artifacts), ``leaderboard.csv`` and
``leaderboard.json``, ``best_config.yaml`` (a plain run config that ``lepton-nlp train``
runs) and ``plots/`` (optimization history, parameter importances, intermediate values).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import gc
import json
import logging
import math
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from lepton_nlp.config import (
    SEARCH_PARAMETERS,
    ConfigError,
    HpoConfig,
    ParamSpec,
    RunConfig,
    SearchSpace,
    load_config,
)

__all__ = [
    "METHOD_PARAMETERS",
    "PruningCallback",
    "StudyResult",
    "baseline_params",
    "best_config_tree",
    "check_space",
    "format_leaderboard",
    "leaderboard_rows",
    "open_study",
    "run_study",
    "suggest_params",
    "trial_tree",
    "write_plots",
    "write_reports",
]

log = logging.getLogger(__name__)

#: The PEFT methods each method-specific search parameter applies to: a trial whose method
#: is another one does not draw it (TPE handles such conditional spaces).
METHOD_PARAMETERS: dict[str, frozenset[str]] = {
    "r": frozenset({"lora", "adalora", "loha", "lokr"}),
    "alpha": frozenset({"lora", "adalora", "loha", "lokr"}),
    "dropout": frozenset({"lora", "adalora", "loha", "lokr", "vera", "oft"}),
}

#: Metric key prefix of the evaluations the Trainer runs during training.
_EVAL_PREFIX = "eval_"


def _optuna():
    try:
        import optuna
    except ImportError as exc:  # the hpo extra is not installed
        raise ConfigError(
            "lepton-nlp hpo needs Optuna: pip install 'lepton-nlp[hpo]' (optuna==5.0.0)."
        ) from exc
    return optuna


class PruningCallback(TrainerCallback):
    """Report the validation metric of each evaluation to the Optuna trial; stop a trial the
    pruner judges hopeless.

    The step of a report is the evaluation's ordinal (1, 2, ...: the epoch with
    ``eval_strategy=epoch``), so trials with other batch sizes compare at the same point.
    Stopping raises ``optuna.TrialPruned`` out of the Trainer, as transformers' own Optuna
    search does: the rest of the pruned run (its last epochs, the test evaluation, the
    artifact) never runs.
    """

    def __init__(self, trial: Any, metric: str):
        self.trial = trial
        self.metric = metric
        self.evaluations = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = _EVAL_PREFIX + self.metric
        if not metrics or key not in metrics:
            return
        self.evaluations += 1
        value = float(metrics[key])
        self.trial.report(value, self.evaluations)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(
                f"pruned at evaluation {self.evaluations}: validation {self.metric}={value:.4f}"
            )


@dataclass
class StudyResult:
    """What a search session did and where its outputs are."""

    study_name: str
    storage: str
    """The storage URL, password hidden."""
    output_dir: Path
    metric: str
    direction: str
    trials_run: int
    """Trials this session finished (complete or pruned)."""
    trials_finished: int
    """Finished trials in the whole study (this session and earlier ones, all workers)."""
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config: Path | None = None
    leaderboard_csv: Path | None = None
    leaderboard_json: Path | None = None
    plots: list[Path] = field(default_factory=list)


# --- the search space ----------------------------------------------------------------------


def _applies(name: str, method: str) -> bool:
    return name not in METHOD_PARAMETERS or method in METHOD_PARAMETERS[name]


def check_space(config: RunConfig) -> None:
    """Refuse a search the run config cannot carry out.

    Raises:
        ConfigError: no validation data to choose on, or a method-specific parameter
            (``r``, ``alpha``, ``dropout``) that no searched or configured PEFT method has.
    """
    data = config.data
    if data.train_on_validation:
        raise ConfigError(
            "The search chooses on the validation split, but data.train_on_validation=true "
            "trains on it: set data.train_on_validation=false for the search (and true again "
            "for a final fit of the best config)."
        )
    if not (data.validation or data.validation_size > 0):
        raise ConfigError(
            "The search scores trials on validation data, and the config has none: set "
            "data.validation (a file) or data.validation_size (e.g. 0.15)."
        )
    space = config.hpo.space
    methods = space.peft_method.choices if space.peft_method else [config.peft.method]
    for name in METHOD_PARAMETERS:
        if getattr(space, name) and not any(_applies(name, m) for m in methods):
            raise ConfigError(
                f"hpo.space.{name} has no effect: no PEFT method of the search "
                f"({', '.join(methods)}) has it; it applies to "
                f"{', '.join(sorted(METHOD_PARAMETERS[name]))}."
            )


def _suggest(trial: Any, name: str, spec: ParamSpec, kind: str) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    whole = kind == "int" or (
        kind == "number"
        and isinstance(spec.low, int)
        and isinstance(spec.high, int)
        and (spec.step is None or isinstance(spec.step, int))
    )
    if whole:
        return trial.suggest_int(name, spec.low, spec.high, step=spec.step or 1, log=spec.log)
    return trial.suggest_float(
        name, float(spec.low), float(spec.high), step=spec.step, log=spec.log
    )


def suggest_params(trial: Any, space: SearchSpace, base_method: str) -> dict[str, Any]:
    """Draw one trial's values: every declared parameter that applies to the trial's method."""
    params: dict[str, Any] = {}
    for name, spec in space.searched().items():
        method = params.get("peft_method", base_method)
        if _applies(name, method):
            params[name] = _suggest(trial, name, spec, SEARCH_PARAMETERS[name][1])
    return params


def _config_value(config: RunConfig, name: str) -> Any:
    from lepton_nlp.peft_methods import default_learning_rate

    section, key = SEARCH_PARAMETERS[name][0].split(".")
    value = getattr(getattr(config, section), key)
    if name == "learning_rate" and value is None:
        value = default_learning_rate(config.peft.method)
    return value


def _contains(spec: ParamSpec, value: Any) -> bool:
    if spec.choices is not None:
        return value in spec.choices
    return spec.low <= value <= spec.high


def baseline_params(config: RunConfig) -> tuple[dict[str, Any], list[str]]:
    """The run config's own values of the searched parameters, and those outside the space.

    Returns:
        ``(params, outside)``: ``params`` holds the config's value of each searched parameter
        that applies to its PEFT method; ``outside`` names those whose value the space does not
        contain (then the baseline cannot be a trial of the study).
    """
    params, outside = {}, []
    for name, spec in config.hpo.space.searched().items():
        if not _applies(name, config.peft.method):
            continue
        value = _config_value(config, name)
        if SEARCH_PARAMETERS[name][1] == "number" and float(value).is_integer():
            value = int(value) if spec.choices is None or int(value) in spec.choices else value
        params[name] = value
        if not _contains(spec, value):
            outside.append(f"{name}={value}")
    return params, outside


def _set(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, last = dotted.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value


def trial_tree(base: dict, params: dict[str, Any], output_dir: str | Path | None = None) -> dict:
    """The run config (as YAML data) of one trial: ``base`` without ``hpo``, with ``params``.

    Args:
        base: the config mapping as written (paths such as ``${LEPTON_DATASETS}`` unexpanded).
        params: searched values by search-parameter name (``learning_rate``, ``r``...).
        output_dir: the trial's ``training.output_dir`` (None: keep the base's).
    """
    tree = copy.deepcopy(base)
    tree.pop("hpo", None)
    for name, value in params.items():
        _set(tree, SEARCH_PARAMETERS[name][0], value)
    if output_dir is not None:
        _set(tree, "training.output_dir", str(output_dir))
    return tree


# --- the study -----------------------------------------------------------------------------


def _direction(metric: str) -> str:
    from lepton_nlp.training.trainer import greater_is_better

    return "maximize" if greater_is_better(metric) else "minimize"


def _storage_url(hpo: HpoConfig, output_dir: Path, storage: str | None) -> str:
    url = storage or hpo.storage
    if url:
        return url
    output_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(output_dir / 'study.db').resolve()}"


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable here; the storage reports it below
        return url


def _space_description(space: SearchSpace) -> dict[str, Any]:
    return {
        name: spec.choices if spec.choices is not None else [spec.low, spec.high, spec.log]
        for name, spec in space.searched().items()
    }


def _sampler(hpo: HpoConfig, seed: int) -> Any:
    optuna = _optuna()
    if hpo.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=hpo.startup_trials)


def _pruner(hpo: HpoConfig) -> Any:
    optuna = _optuna()
    if hpo.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=hpo.pruner_startup_trials,
            n_warmup_steps=hpo.pruner_warmup_evaluations,
        )
    if hpo.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_study(config: RunConfig, url: str, study_name: str, metric: str) -> Any:
    """Create the study in ``url``'s database, or load it to resume.

    A running trial that stops sending heartbeats (its process was killed) is marked failed
    by the next trial any worker starts, and its parameters are tried once more.

    Raises:
        ConfigError: the storage holds a study of that name that optimizes another metric.
    """
    optuna = _optuna()
    hpo = config.hpo
    # Heartbeats and the retry of stale trials are "experimental" in Optuna 5: they work.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        storage = optuna.storages.RDBStorage(
            url,
            heartbeat_interval=hpo.heartbeat_seconds,
            grace_period=hpo.stale_seconds,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
        )
    except Exception as exc:
        raise ConfigError(
            f"Cannot open the study storage {_shown_url(url)} ({type(exc).__name__}: {exc}); "
            "give hpo.storage (or --storage) as an SQLAlchemy URL, e.g. sqlite:///study.db or "
            "postgresql+psycopg://user:password@host/db."
        ) from exc
    direction = _direction(metric)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction,
        pruner=_pruner(hpo),
        load_if_exists=True,
    )
    known = study.user_attrs.get("metric")
    if known is None:
        study.set_user_attr("metric", metric)
        study.set_user_attr("space", _space_description(hpo.space))
    elif known != metric or study.direction.name.lower() != direction:
        raise ConfigError(
            f"Study {study_name!r} in {_shown_url(url)} chose on {known}, not {metric}: give "
            "this search another hpo.study_name (or --study-name), or another storage."
        )
    elif study.user_attrs.get("space") != _space_description(hpo.space):
        log.warning(
            "The search space of study %r changed since it began; its earlier trials still "
            "count and guide the sampler.",
            study_name,
        )
    # Seeded with the number of trials already there: a resumed (or second) worker does not
    # redraw the random start-up points of the trials before it.
    study.sampler = _sampler(hpo, hpo.seed + len(study.trials))
    return study


def _finished_states():
    state = _optuna().trial.TrialState
    return (state.COMPLETE, state.PRUNED)


def _remove_run(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.with_name(folder.name + ".work"), ignore_errors=True)


def _objective(
    config: RunConfig, base: dict, trials_dir: Path, metric: str
) -> Callable[[Any], float]:
    from lepton_nlp.training.trainer import train

    optuna = _optuna()
    hpo = config.hpo

    def objective(trial: Any) -> float:
        params = suggest_params(trial, hpo.space, config.peft.method)
        folder = trials_dir / f"trial-{trial.number:04d}"
        tree = trial_tree(base, params, folder)
        _set(tree, "name", f"{config.name}-trial-{trial.number}")
        _set(tree, "training.overwrite", True)
        _set(tree, "training.progress", False)
        # The int8 check calibrates and scores a second model: it tells nothing about the
        # hyper-parameters, and the best config's own training runs it.
        _set(tree, "evaluation.backend_check", False)
        # Trials never score the test split: the best trial's kept folder holds no test figure.
        _set(tree, "evaluation.score_test", False)
        trial_config = load_config(tree)
        trial.set_user_attr("host", socket.gethostname())
        # Reports each evaluation (with hpo.pruner=none too: the plots and leaderboard show them).
        callbacks = [PruningCallback(trial, metric)]
        started = time.perf_counter()
        trials_dir.mkdir(parents=True, exist_ok=True)
        # The trainer's own output (loss lines, load reports, warnings) goes to the trial's
        # log, so the console shows one line per trial.
        log_file = trials_dir / f"trial-{trial.number:04d}.log"
        try:
            with (
                log_file.open("w", encoding="utf-8", buffering=1) as handle,
                contextlib.redirect_stdout(handle),
                contextlib.redirect_stderr(handle),
            ):
                result = train(trial_config, callbacks=callbacks)
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
            _remove_run(folder)
            raise
        finally:
            gc.collect()
        validation = result.metrics.get("validation") or {}
        if metric not in validation:
            raise ConfigError(
                f"The trial's validation metrics {sorted(validation)} lack {metric}: set "
                "training.metric_for_best to one of them."
            )
        # Only validation figures are kept: the search never looks at the test split.
        trial.set_user_attr("validation", dict(validation))
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        trial.set_user_attr("epochs_run", result.metrics["train"].get("epochs"))
        trial.set_user_attr("artifact", str(result.artifact))
        trial.set_user_attr("log", str(log_file))
        value = float(validation[metric])
        del result
        gc.collect()
        return value

    return objective


# --- reports -------------------------------------------------------------------------------


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if (value != 0 and abs(value) < 1e-2) else f"{value:.4g}"
    return str(value)


def leaderboard_rows(study: Any, metric: str) -> list[dict[str, Any]]:
    """One row per trial that ran: finished ones ranked best first, then failed and running ones."""
    state = _optuna().trial.TrialState
    sign = -1.0 if study.direction.name.lower() == "maximize" else 1.0
    names = study_params(study)
    ranked, rest = [], []
    for t in study.trials:
        if t.state == state.WAITING:
            continue
        row = {
            "rank": None,
            "trial": t.number,
            "state": t.state.name.lower(),
            metric: t.value,
            "evaluations": len(t.intermediate_values),
            "seconds": t.user_attrs.get("seconds"),
            "baseline": bool(t.user_attrs.get("baseline", False)),
        }
        row.update({name: t.params.get(name) for name in names})
        finished = t.state in (state.COMPLETE, state.PRUNED) and t.value is not None
        (ranked if finished else rest).append(row)
    # Complete trials first (a pruned trial's value is from an early evaluation), then pruned.
    ranked.sort(key=lambda r: (r["state"] != "complete", sign * r[metric]))
    for i, row in enumerate(ranked, 1):
        row["rank"] = i
    return ranked + sorted(rest, key=lambda r: r["trial"])


def study_params(study: Any) -> list[str]:
    """Search parameters any trial of the study drew, in the space's order."""
    drawn = {name for t in study.trials for name in t.params}
    return [name for name in SEARCH_PARAMETERS if name in drawn]


def _history(study: Any, metric: str) -> list[dict[str, Any]]:
    """Per finished trial, in order: its validation value and the best so far (complete trials)."""
    state = _optuna().trial.TrialState
    better = max if study.direction.name.lower() == "maximize" else min
    best, curve = None, []
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state not in _finished_states():
            continue
        if t.state == state.COMPLETE and t.value is not None:
            best = t.value if best is None else better(best, t.value)
        curve.append(
            {"trial": t.number, "state": t.state.name.lower(), metric: t.value, "best": best}
        )
    return curve


def format_leaderboard(rows: list[dict[str, Any]], metric: str, limit: int = 20) -> str:
    """The leaderboard as a fixed-width text table (the first ``limit`` rows)."""
    if not rows:
        return "(no trials yet)"
    columns = [c for c in rows[0] if c != "baseline"]
    table = [
        [
            ("" if r[c] is None else _format(r[c]))
            + ("*" if c == "trial" and r["baseline"] else "")
            for c in columns
        ]
        for r in rows[:limit]
    ]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more in leaderboard.csv")
    if any(r["baseline"] for r in rows):
        lines.append("* the run config's own values (baseline trial)")
    return "\n".join(lines)


def best_config_tree(base: dict, params: dict[str, Any], output_dir: str | Path) -> dict:
    """The best trial's run config: the base config with its values, without ``hpo``."""
    return trial_tree(base, params, output_dir)


def _write_best_config(
    study: Any, base: dict, output_dir: Path, metric: str, url: str
) -> Path | None:
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    tree = best_config_tree(base, best.params, output_dir / "best-model")
    load_config(tree)  # a config the search cannot train would have failed its trial already
    path = output_dir / "best_config.yaml"
    header = (
        f"# Best of {len(study.trials)} trials of study {study.study_name!r} ({_shown_url(url)}):\n"
        f"# trial {best.number}, validation {metric} = {best.value:.4f}, with "
        + ", ".join(f"{k}={_format(v)}" for k, v in best.params.items())
        + f".\n# Train it: lepton-nlp train {path}\n"
    )
    path.write_text(header + yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def write_reports(
    study: Any, base: dict, output_dir: Path, metric: str, url: str
) -> tuple[Path, Path, Path | None]:
    """Write ``leaderboard.csv``, ``leaderboard.json`` and ``best_config.yaml``."""
    rows = leaderboard_rows(study, metric)
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path = output_dir / "leaderboard.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        columns = list(rows[0]) if rows else ["rank", "trial", "state", metric]
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    best_path = _write_best_config(study, base, output_dir, metric, url)
    state = _optuna().trial.TrialState
    counts = {s.name.lower(): sum(t.state == s for t in study.trials) for s in state}
    try:
        best = study.best_trial
        best_record = {
            "trial": best.number,
            metric: best.value,
            "params": best.params,
            "validation": best.user_attrs.get("validation"),
        }
    except ValueError:
        best_record = None
    record = {
        "study": study.study_name,
        "storage": _shown_url(url),
        "metric": metric,
        "split": "validation",
        "direction": study.direction.name.lower(),
        "trials": counts,
        "best": best_record,
        "best_config": str(best_path) if best_path else None,
        "leaderboard": rows,
        "history": _history(study, metric),
    }
    json_path = output_dir / "leaderboard.json"
    json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path, best_path


def write_plots(study: Any, folder: Path) -> list[Path]:
    """Plots of the search: ``search.html`` (plotly, interactive) and PNGs (matplotlib).

    Each library is used when installed; a plot that does not apply yet (importances need
    two complete trials whose parameters differ) is left out with a log line.
    """
    optuna = _optuna()
    state = optuna.trial.TrialState
    if not any(t.state == state.COMPLETE for t in study.trials):
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names = ("optimization_history", "param_importances", "intermediate_values")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna.visualization.matplotlib is "experimental"
        if optuna.visualization.is_available():
            parts = []
            for name in names:
                try:
                    figure = getattr(optuna.visualization, f"plot_{name}")(study)
                except Exception as exc:  # e.g. importances of one trial
                    log.info("Plot %s left out: %s", name, exc)
                    continue
                parts.append(figure.to_html(full_html=False, include_plotlyjs=not parts))
            if parts:
                path = folder / "search.html"
                path.write_text(
                    "<html><head><meta charset='utf-8'><title>"
                    f"{study.study_name}</title></head><body>{''.join(parts)}</body></html>\n",
                    encoding="utf-8",
                )
                written.append(path)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
        if plt is not None:
            for name in names:
                try:
                    axes = getattr(optuna.visualization.matplotlib, f"plot_{name}")(study)
                except Exception as exc:
                    log.info("Plot %s left out: %s", name, exc)
                    continue
                figure = getattr(axes, "figure", None) or axes.flat[0].figure
                path = folder / f"{name}.png"
                figure.savefig(path, dpi=110, bbox_inches="tight")
                plt.close(figure)
                written.append(path)
    return written


def _progress_line(trial: Any, study: Any, metric: str) -> str:
    state = _optuna().trial.TrialState
    params = " ".join(f"{k}={_format(v)}" for k, v in trial.params.items())
    seconds = trial.user_attrs.get("seconds")
    took = f"  {seconds:.0f} s" if seconds is not None else ""
    try:
        best = study.best_trial
        best_text = f"  best {best.value:.4f} (trial {best.number})"
    except ValueError:
        best_text = ""
    if trial.state == state.PRUNED:
        step = trial.last_step
        value = trial.intermediate_values.get(step) if step is not None else None
        what = (
            f"pruned at evaluation {step} ({metric} {value:.4f})" if value is not None else "pruned"
        )
    elif trial.state == state.COMPLETE:
        what = f"{metric} {trial.value:.4f}"
    else:
        what = trial.state.name.lower()
    return f"trial {trial.number:>3}  {what}{best_text}  {params}{took}"


def _keep_artifacts(study: Any, trials_dir: Path, keep: str) -> None:
    if keep == "all":
        return
    state = _optuna().trial.TrialState
    try:
        best = study.best_trial.number if keep == "best" else None
    except ValueError:
        best = None
    for t in study.trials:
        if t.state == state.COMPLETE and t.number != best:
            folder = trials_dir / f"trial-{t.number:04d}"
            if folder.exists():
                _remove_run(folder)


def _requeue_interrupted(study: Any) -> None:
    """Queue again the parameters of this host's trial that Ctrl-C failed, so the resumed
    search tries them (a killed process's trial is retried through its missing heartbeat)."""
    state = _optuna().trial.TrialState
    host = socket.gethostname()
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    failed = [
        t
        for t in study.get_trials(deepcopy=False, states=(state.FAIL,))
        if t.user_attrs.get("host") == host and t.number not in retried
    ]
    if failed:
        last = max(failed, key=lambda t: t.number)
        study.enqueue_trial(last.params, user_attrs={"retry_of": last.number})


# --- the session ---------------------------------------------------------------------------


def run_study(
    source: str | Path | dict,
    overrides: list[str] | None = None,
    *,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    output_dir: str | Path | None = None,
    timeout: float | None = None,
    plots: bool = True,
    echo: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run (or resume) the hyper-parameter search that a run config's ``hpo:`` section declares.

    Args:
        source: a YAML run config path, or its mapping.
        overrides: ``key.sub=value`` changes (``hpo.*`` keys too).
        trials: finished trials the study should hold (default ``hpo.trials``); a resumed
            study runs only those missing.
        storage: database URL of the study (default ``hpo.storage``, else SQLite in the
            output folder).
        study_name: name of the study in the storage (default ``hpo.study_name``, else the
            run's name).
        output_dir: folder of trials and reports (default ``hpo.output_dir``, else
            ``<training.output_dir>-hpo``).
        timeout: start no new trial after this many seconds (default ``hpo.timeout_seconds``).
        plots: write the plots at the end.
        echo: where the progress lines go (default: standard error).

    Raises:
        ConfigError: no ``hpo:`` section, no validation data, a parameter no method has,
            a study of that name that chose on another metric, or a storage that cannot open.
    """
    from lepton_nlp.config import apply_overrides, read_yaml_file

    optuna = _optuna()
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    base = copy.deepcopy(source) if isinstance(source, dict) else read_yaml_file(source)
    base = apply_overrides(base, list(overrides or []))
    config = load_config(copy.deepcopy(base))
    if config.hpo is None:
        raise ConfigError(
            "The config has no hpo: section; add one with a search space, e.g.\n"
            "hpo:\n  space:\n    learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}\n"
            "    epochs: [1, 2, 3]\n(configs/hpo_fpb.yaml is a complete example)."
        )
    check_space(config)
    hpo = config.hpo
    metric = config.training.metric_for_best
    out = Path(output_dir or hpo.output_dir or f"{config.training.output_dir}-hpo")
    url = _storage_url(hpo, out, storage)
    name = study_name or hpo.study_name or config.name
    target = trials or hpo.trials
    timeout = timeout if timeout is not None else hpo.timeout_seconds

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(config, url, name, metric)
    finished_states = _finished_states()
    finished = len(study.get_trials(deepcopy=False, states=finished_states))
    if not study.trials and hpo.baseline_trial:
        params, outside = baseline_params(config)
        if outside:
            echo(
                f"The config's own values ({', '.join(outside)}) lie outside the search space: "
                "no baseline trial."
            )
        else:
            study.enqueue_trial(params, user_attrs={"baseline": True})
    remaining = max(0, target - finished)
    echo(
        f"Study {name!r} ({_shown_url(url)}): {finished} finished trial(s); running "
        f"{remaining} more (up to {target}), choosing on validation {metric} "
        f"({study.direction.name.lower()}). Output: {out}"
    )
    trials_dir = out / "trials"
    ran = 0

    def after_trial(study: Any, trial: Any) -> None:
        nonlocal ran
        if trial.state in finished_states:
            ran += 1
        echo(_progress_line(trial, study, metric))
        _keep_artifacts(study, trials_dir, hpo.keep_artifacts)
        write_reports(study, base, out, metric, url)

    if remaining:
        try:
            study.optimize(
                _objective(config, base, trials_dir, metric),
                n_trials=remaining,
                timeout=timeout,
                callbacks=[
                    optuna.study.MaxTrialsCallback(target, states=finished_states),
                    after_trial,
                ],
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            _requeue_interrupted(study)
            write_reports(study, base, out, metric, url)
            echo(
                f"Interrupted after {ran} finished trial(s) in this session; the study is in "
                f"{_shown_url(url)}. Run the same command again to resume."
            )
            raise
    csv_path, json_path, best_path = write_reports(study, base, out, metric, url)
    figures = write_plots(study, out / "plots") if plots else []
    rows = leaderboard_rows(study, metric)
    echo(format_leaderboard(rows, metric))
    try:
        best = study.best_trial
        best_trial, best_value, best_params = best.number, best.value, best.params
    except ValueError:
        best_trial, best_value, best_params = None, None, {}
    return StudyResult(
        study_name=name,
        storage=_shown_url(url),
        output_dir=out,
        metric=metric,
        direction=study.direction.name.lower(),
        trials_run=ran,
        trials_finished=len(study.get_trials(deepcopy=False, states=finished_states)),
        best_trial=best_trial,
        best_value=None if best_value is None or math.isnan(best_value) else best_value,
        best_params=best_params,
        best_config=best_path,
        leaderboard_csv=csv_path,
        leaderboard_json=json_path,
        plots=figures,
    )
