"""Training methods the Train page offers: a registry of choice -> form fields, run config, plain twin.

A method is one :class:`Method` entry: the fields its form shows, how its values change a
run config (``apply``), whether a config used it (``uses``), the config keys it owns (the
only keys in which a run with the method may differ from its plain twin) and how to take it
out again (``plain``, for launching the baseline). The Train page draws its "Method" area
from :func:`methods`, the Compare page matches a run to its plain twin with
:func:`plain_twins`; neither knows any method by name. A method whose config keys the core
does not have yet (``requires``) is left out of the list until it has them, so adding one
is one :func:`register` call.

Three kinds of job run a config (:func:`job_of`): ``train`` (``lepton-nlp train``), ``hpo``
(a run config with an ``hpo:`` section, ``lepton-nlp hpo``) and ``continual`` (a sequence
file ``{run, tasks, continual}``, ``lepton-nlp continual``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.studio.errors import StudioError
from lepton_nlp.config import AUGMENT_METHODS, SpellingConfig

__all__ = [
    "FIELD_KINDS",
    "JOBS",
    "NOT_SETTINGS",
    "PLAIN",
    "Field",
    "Method",
    "apply_method",
    "config_has",
    "flat_settings",
    "get_method",
    "job_of",
    "methods",
    "methods_used",
    "plain_tree",
    "register",
    "set_output_dir",
]

JOBS = ("train", "hpo", "continual", "fewshot")
"""What runs a config: the trainer, the hyper-parameter search, a continual sequence, or a
few-shot run (``lepton-nlp fewshot``)."""

FIELD_KINDS = ("choice", "multichoice", "int", "float", "bool", "run", "datasets")
"""Form fields: one of ``choices``; several of them; a whole number; a number; yes or no; a
finished run of the Studio (its model folder); an ordered list of the Studio's data sets."""

PLAIN = "plain"
"""The registry's name of plain fine-tuning (no method)."""


@dataclass(frozen=True)
class Field:
    """One input of a method's form."""

    name: str
    """The value's name (``apply`` reads ``values[name]``; the widget key ends with it)."""
    label: str
    kind: str
    """One of :data:`FIELD_KINDS`."""
    default: Any = None
    choices: tuple[Any, ...] = ()
    """``choice`` and ``multichoice``: the values offered."""
    low: float | None = None
    """``int`` and ``float``: smallest value accepted."""
    high: float | None = None
    """``int`` and ``float``: largest value accepted."""
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"Field {self.name}: kind {self.kind!r} is not one of {FIELD_KINDS}.")


@dataclass(frozen=True)
class Method:
    """One training method of the Studio."""

    name: str
    label: str
    """What the Train page calls it."""
    summary: str
    """One or two sentences under the choice: what it does and what it costs."""
    job: str
    """One of :data:`JOBS`: what runs a config with this method."""
    fields: tuple[Field, ...]
    owns: tuple[str, ...]
    """Config keys the method sets (``fnmatch`` patterns over dotted keys): a run with the
    method and its plain twin may differ in these keys only."""
    apply: Callable[[dict, dict], dict]
    """(run config tree as the Train page built it, validated values) -> the job's config tree."""
    uses: Callable[[Mapping[str, Any]], bool]
    """Flat settings (:func:`flat_settings`) -> whether the run used the method."""
    plain: Callable[[dict], dict]
    """A config tree that used the method -> the same config without it (its plain twin)."""
    requires: tuple[str, ...] = ()
    """Dotted run-config keys the core must have for the method to be offered."""
    tasks: tuple[str, ...] | None = None
    """The tasks it applies to (None: every task)."""
    check: Callable[[dict], str | None] | None = None
    """Validated values -> what is wrong across fields (None: nothing)."""
    docs: str = ""
    """The documentation page (relative to the repository root)."""

    def available(self) -> bool:
        """Whether the core has every config key the method needs."""
        return all(config_has(key) for key in self.requires)

    def applies_to(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks

    def owns_key(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.owns)

    def defaults(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(f.default) for f in self.fields}

    def validate(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """``values`` with defaults for those left out, each checked against its field.

        Raises:
            StudioError: an unknown value name (naming the nearest), a value outside its
                field's range or choices, or fields that do not fit together.
        """
        values = dict(values or {})
        names = [f.name for f in self.fields]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise StudioError(
                    f"{self.label} has no setting {key!r}.{hint} Its settings: "
                    f"{', '.join(names) or 'none'}."
                )
        out = self.defaults()
        for field in self.fields:
            if field.name in values:
                out[field.name] = _checked(self, field, values[field.name])
        problem = self.check(out) if self.check else None
        if problem:
            raise StudioError(f"{self.label}: {problem}")
        return out


def _checked(method: Method, field: Field, value: Any) -> Any:
    where = f"{method.label}, {field.label}"
    if field.kind == "choice":
        if value not in field.choices:
            raise StudioError(
                f"{where}: {value!r} is not a choice; choose one of "
                f"{', '.join(map(str, field.choices))}."
            )
        return value
    if field.kind == "multichoice":
        value = list(value or [])
        wrong = [v for v in value if v not in field.choices]
        if wrong:
            raise StudioError(
                f"{where}: {', '.join(map(str, wrong))} not among "
                f"{', '.join(map(str, field.choices))}."
            )
        return value
    if field.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StudioError(f"{where} must be a number, got {value!r}.")
        if field.kind == "int" and float(value) != int(value):
            raise StudioError(f"{where} must be a whole number, got {value!r}.")
        value = int(value) if field.kind == "int" else float(value)
        if not math.isfinite(value) or (
            (field.low is not None and value < field.low)
            or (field.high is not None and value > field.high)
        ):
            raise StudioError(
                f"{where} must be between {field.low:g} and {field.high:g}, got {value:g}."
            )
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise StudioError(f"{where} must be true or false, got {value!r}.")
        return value
    if field.kind == "run":
        if not value or not Path(str(value), "lepton_artifact.json").is_file():
            raise StudioError(
                f"{where}: choose a finished run whose model folder still exists "
                f"(got {value or 'nothing'})."
            )
        return str(value)
    # datasets: the Studio's data choices ({path, format, columns, ...}), in training order
    value = list(value or [])
    if any(not isinstance(v, Mapping) or "path" not in v for v in value):
        raise StudioError(f"{where}: each entry must be a data set of the Data page.")
    return value


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (its name must be new)."""
    if method.name in _REGISTRY:
        raise ValueError(f"A Studio method named {method.name!r} is registered already.")
    if method.job not in JOBS:
        raise ValueError(f"Method {method.name}: job {method.job!r} is not one of {JOBS}.")
    _REGISTRY[method.name] = method
    return method


def methods(available_only: bool = True, task: str | None = None) -> list[Method]:
    """The registered methods, plain fine-tuning first; by default only those the core
    supports; with ``task``, only those that apply to it."""
    return [
        m
        for m in _REGISTRY.values()
        if (m.available() or not available_only) and (task is None or m.applies_to(task))
    ]


def get_method(name: str) -> Method:
    """The method called ``name``.

    Raises:
        StudioError: no such method (naming the nearest), or one the core lacks the keys of.
    """
    method = _REGISTRY.get(name)
    if method is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise StudioError(f"No Studio method {name!r}.{hint} Choose one of {', '.join(_REGISTRY)}.")
    if not method.available():
        missing = [key for key in method.requires if not config_has(key)]
        raise StudioError(
            f"{method.label} needs the run config key(s) {', '.join(missing)}, which this "
            "version of lepton-nlp does not have."
        )
    return method


def apply_method(tree: dict, name: str, values: Mapping[str, Any] | None = None) -> dict:
    """The config tree of a job that trains ``tree`` (a run config) with method ``name``.

    ``tree`` is not changed.

    Raises:
        StudioError: an unknown or unavailable method, one that does not apply to the
            run's task, or values its fields refuse.
    """
    method = get_method(name)
    task = str(tree.get("task", ""))
    if not method.applies_to(task):
        raise StudioError(
            f"{method.label} applies to {', '.join(method.tasks or ())} runs; this run's task "
            f"is {task}. Choose another method or another task."
        )
    return method.apply(copy.deepcopy(tree), method.validate(values))


def plain_tree(tree: dict, name: str) -> dict:
    """``tree`` without method ``name``: the config of its plain twin (``tree`` unchanged)."""
    return _REGISTRY[name].plain(copy.deepcopy(tree))


def job_of(tree: Mapping[str, Any]) -> str:
    """What runs a config: ``continual`` (a sequence file), ``fewshot`` (a ``prompting:``
    section), ``hpo`` (an ``hpo:`` section) or ``train``."""
    if "tasks" in tree and "run" in tree:
        return "continual"
    if tree.get("prompting"):
        return "fewshot"
    return "hpo" if tree.get("hpo") else "train"


def set_output_dir(tree: dict, folder: str | Path) -> dict:
    """Point a job's config at ``folder`` for what it writes (the run section of a sequence)."""
    section = tree["run"] if job_of(tree) == "continual" else tree
    section.setdefault("training", {})["output_dir"] = str(folder)
    return tree


def config_has(dotted: str) -> bool:
    """Whether the core's run config has the key ``dotted`` (``model.init_from``, ``augment``)."""
    from lepton_nlp.config import RunConfig

    cls: Any = RunConfig
    for part in dotted.split("."):
        fields = (
            {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
        )
        if part not in fields:
            return False
        cls = _field_class(cls, part)
    return True


def _field_class(cls: type, name: str) -> Any:
    import typing

    hint = typing.get_type_hints(cls).get(name)
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


# --- settings: what tells two runs apart -----------------------------------------------------

NOT_SETTINGS = (
    "name",
    "description",
    "license",
    "training.output_dir",
    "training.overwrite",
    "training.progress",
    "training.report_to",
    "training.keep_checkpoints",
    "training.threads",
    "training.resume",
    "training.logging_steps",
)
"""Config keys that do not change what a run learns: where it wrote, how it logged, its name.
In a sequence file the same keys under ``run.``."""


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def flat_settings(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A job's config as ``{dotted key: value}``, with every default filled in by the core
    (so runs written before a key existed compare equal to runs that set its default), less
    :data:`NOT_SETTINGS`. A config the core no longer loads is taken as written."""
    import yaml

    from lepton_nlp.config import ConfigError, config_to_dict, load_config

    tree = copy.deepcopy(dict(tree))
    try:
        if job_of(tree) == "continual":
            from lepton_nlp.training.continual import load_continual_config

            full = dataclasses.asdict(load_continual_config(tree))
        else:
            full = config_to_dict(load_config(tree))
        # Through YAML, as the store keeps configs: tuples become lists, numbers stay numbers.
        full = yaml.safe_load(yaml.safe_dump(full, sort_keys=False))
    except (ConfigError, ValueError, KeyError, TypeError):
        full = tree
    flat = _flat(full)
    prefix = "run." if job_of(tree) == "continual" else ""
    return {
        k: v
        for k, v in flat.items()
        if not k.startswith(prefix) or k[len(prefix) :] not in NOT_SETTINGS
    }


def methods_used(flat: Mapping[str, Any]) -> list[Method]:
    """The methods a run used, from its flat settings (empty: a plain run)."""
    return [m for m in _REGISTRY.values() if m.name != PLAIN and m.uses(flat)]


# --- the methods --------------------------------------------------------------------------------


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _drop(tree: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node.get(part) or {}
    if isinstance(node, dict):
        node.pop(last, None)


register(
    Method(
        name=PLAIN,
        label="Plain fine-tuning",
        summary="The settings above and nothing else: the baseline every method is compared "
        "against.",
        job="train",
        fields=(),
        owns=(),
        apply=lambda tree, values: tree,
        uses=lambda flat: False,
        plain=lambda tree: tree,
    )
)

_ADVERSARIAL_KEYS = (
    "adversarial_epsilon",
    "adversarial_steps",
    "adversarial_alpha",
    "adversarial_norm",
    "adversarial_init",
)


def _adversarial(tree: dict, values: dict) -> dict:
    training = tree.setdefault("training", {})
    training["adversarial"] = values["method"]
    training["adversarial_epsilon"] = values["epsilon"]
    training["adversarial_norm"] = values["norm"]
    if values["method"] != "fgm":  # FGM takes one push: steps would only show as a setting
        training["adversarial_steps"] = values["steps"]
    return tree


def _no_adversarial(tree: dict) -> dict:
    training = tree.setdefault("training", {})
    training["adversarial"] = "none"
    for key in _ADVERSARIAL_KEYS:
        training.pop(key, None)
    return tree


register(
    Method(
        name="adversarial",
        label="Adversarial training",
        summary="Trains on input embeddings pushed in the direction that raises the loss, so "
        "the model holds its answer when the input changes a little. FGM costs about 1.6 to "
        "1.8 times the plain run's time; PGD and FreeLB take `steps` passes per step.",
        job="train",
        fields=(
            Field(
                "method",
                "Attack",
                "choice",
                "fgm",
                ("fgm", "pgd", "freelb"),
                help="fgm: one push per step; pgd: `steps` projected pushes; freelb: the "
                "average over `steps` ascent steps.",
            ),
            Field(
                "epsilon",
                "Epsilon",
                "float",
                0.3,
                low=1e-4,
                high=10.0,
                help="Size of the perturbation per example (the radius PGD and FreeLB stay "
                "within).",
            ),
            Field(
                "steps",
                "Steps",
                "int",
                3,
                low=1,
                high=20,
                help="PGD and FreeLB: ascent steps per training step.",
            ),
            Field(
                "norm",
                "Norm",
                "choice",
                "l2",
                ("l2", "linf"),
                help="l2: the whole perturbation of an example has length epsilon; linf: "
                "every coordinate within [-epsilon, epsilon].",
            ),
        ),
        owns=("training.adversarial", "training.adversarial_*"),
        apply=_adversarial,
        uses=lambda flat: flat.get("training.adversarial", "none") not in (None, "none"),
        plain=_no_adversarial,
        requires=("training.adversarial",),
        docs="docs/adversarial.md",
    )
)

SOFT_PROMPTS = ("prompt", "ptuning")
"""The PEFT methods that learn soft prompts."""


def _task_defaults(tree: Mapping[str, Any]) -> dict[str, Any]:
    from apps.studio.runconfig import defaults_for

    return defaults_for(str(tree.get("task", "classification")), str(tree["model"]["name"]))


def _soft_prompt(tree: dict, values: dict) -> dict:
    peft = tree.setdefault("peft", {})
    peft["method"] = values["kind"]
    peft["num_virtual_tokens"] = values["virtual_tokens"]
    tree.setdefault("training", {})["learning_rate"] = values["learning_rate"]
    return tree


def _no_soft_prompt(tree: dict) -> dict:
    defaults = _task_defaults(tree)
    peft = tree.setdefault("peft", {})
    peft["method"] = defaults["method"]
    peft.pop("num_virtual_tokens", None)
    tree.setdefault("training", {})["learning_rate"] = defaults["learning_rate"]
    return tree


register(
    Method(
        name="prompt",
        label="Prompt learning (soft prompts)",
        summary="The model stays frozen; only a few virtual token embeddings before the input "
        "(and the task head) are trained: prompt tuning, or P-tuning (a small encoder makes "
        "them). Prompts want a much higher learning rate than LoRA. The plain twin is the "
        "task's default PEFT method at its default learning rate.",
        job="train",
        fields=(
            Field(
                "kind",
                "Soft prompt",
                "choice",
                "prompt",
                SOFT_PROMPTS,
                help="prompt: trained embeddings; ptuning: embeddings produced by an MLP.",
            ),
            Field("virtual_tokens", "Virtual tokens", "int", 20, low=1, high=200),
            Field(
                "learning_rate",
                "Prompt learning rate",
                "float",
                1e-2,
                low=1e-6,
                high=1.0,
                help="Replaces the learning rate above (soft prompts usually need 1e-3 to 3e-2).",
            ),
        ),
        owns=("peft.*", "training.learning_rate"),
        apply=_soft_prompt,
        uses=lambda flat: flat.get("peft.method") in SOFT_PROMPTS,
        plain=_no_soft_prompt,
        requires=("peft.num_virtual_tokens",),
        docs="README.md#peft-methods",
    )
)

FEWSHOT_APPROACHES = ("setfit", "in-context", "zero-shot", "label-similarity")
"""The few-shot approaches the Studio offers (``prompting.method``); LoRA on the same
examples is their plain twin, soft prompts are the method above."""


def _fewshot(tree: dict, values: dict) -> dict:
    tree["prompting"] = {
        "method": values["approach"],
        "shots": values["shots"],
        "seed": int((tree.get("training") or {}).get("seed") or 0),
        "max_eval_samples": values["eval_samples"],
    }
    return tree


def _fewshot_lora(tree: dict) -> dict:
    tree["prompting"]["method"] = "lora"
    return tree


register(
    Method(
        name="fewshot",
        label="Few-shot (SetFit, LLM prompts)",
        summary="`lepton-nlp fewshot`: learns from only `shots` examples of each label, a "
        "seeded sample of the training data. setfit tunes the sentence encoder on pairs of "
        "them and fits a head on it (a model to evaluate and try); in-context and zero-shot "
        "let the packaged instruct LLM score each label's words, with the nearest examples "
        "shown or none; label-similarity compares the text with each label's name. The LLM "
        "takes about a second a text, so at most `eval_samples` validation and test texts "
        "are scored. The plain twin is LoRA fine-tuning on the same examples.",
        job="fewshot",
        fields=(
            Field(
                "approach",
                "Approach",
                "choice",
                "setfit",
                FEWSHOT_APPROACHES,
                help="setfit: a trained model; in-context / zero-shot: SmolLM2-135M-Instruct "
                "scores the label words; label-similarity: MiniLM, no training.",
            ),
            Field(
                "shots",
                "Examples per label",
                "int",
                10,
                low=1,
                high=1000,
                help="A seeded sample of this many training examples of each label.",
            ),
            Field(
                "eval_samples",
                "Texts scored",
                "int",
                200,
                low=10,
                high=100000,
                help="At most this many validation and test texts (a fixed stratified sample).",
            ),
        ),
        owns=(
            "prompting.method",
            "prompting.llm.*",
            "prompting.setfit.*",
            "prompting.label_descriptions*",
        ),
        apply=_fewshot,
        uses=lambda flat: flat.get("prompting.method") not in (None, "lora"),
        plain=_fewshot_lora,
        requires=("prompting.method",),
        tasks=("classification",),
        docs="docs/prompt-learning.md",
    )
)

HPO_PARAMETERS = ("learning_rate", "epochs", "batch_size", "r", "alpha", "dropout", "warmup_ratio")
"""What the Studio's search may vary (a subset of ``lepton_nlp.config.SEARCH_PARAMETERS``)."""


def _space(tree: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """A search space around the config's own values (so its baseline trial lies inside)."""
    training = tree.get("training") or {}
    peft = tree.get("peft") or {}
    lr = float(training.get("learning_rate") or 5e-4)
    epochs = float(training.get("epochs") or 3)
    batch = int(training.get("batch_size") or 16)
    r = int(peft.get("r") or 16)
    around = {
        "learning_rate": {"low": lr / 5, "high": lr * 5, "log": True},
        "epochs": sorted({max(1.0, epochs / 2), epochs, epochs * 2}),
        "batch_size": sorted({max(1, batch // 2), batch, batch * 2}),
        "r": sorted({max(1, r // 2), r, r * 2}),
        "alpha": sorted({8, 16, 32, 64} | {int(peft.get("alpha") or 32)}),
        "dropout": {"low": 0.0, "high": 0.3},
        "warmup_ratio": {"low": 0.0, "high": 0.2},
    }
    return {name: around[name] for name in names}


def _hpo(tree: dict, values: dict) -> dict:
    tree["hpo"] = {
        "trials": values["trials"],
        "space": _space(tree, values["space"]),
        "pruner": values["pruner"],
        "startup_trials": min(5, max(1, values["trials"] // 2)),
        "keep_artifacts": "best",
    }
    return tree


def _hpo_check(values: dict) -> str | None:
    if not values["space"]:
        return "choose at least one hyper-parameter to search."
    return None


def _no_hpo(tree: dict) -> dict:
    tree.pop("hpo", None)
    return tree


register(
    Method(
        name="hpo",
        label="Hyper-parameter search",
        summary="`lepton-nlp hpo`: trains `trials` runs with values drawn by Optuna (TPE) "
        "around the settings above, scores each on the validation split and keeps the best "
        "one's model. Trial 0 is the settings above (the plain run); test data is never "
        "scored. It costs about `trials` plain runs (fewer with pruning).",
        job="hpo",
        fields=(
            Field(
                "trials",
                "Trials",
                "int",
                6,
                low=2,
                high=200,
                help="Runs the search trains (trial 0 is the settings above).",
            ),
            Field(
                "space",
                "Search",
                "multichoice",
                ["learning_rate", "epochs"],
                HPO_PARAMETERS,
                help="Each is searched around its value above: learning rate within 5x "
                "either way (log scale), epochs, batch size and rank halved or doubled.",
            ),
            Field(
                "pruner",
                "Pruning",
                "choice",
                "median",
                ("median", "none"),
                help="median: a trial worse than the median of earlier ones after an epoch "
                "stops there.",
            ),
        ),
        owns=("hpo", "hpo.*"),
        apply=_hpo,
        uses=lambda flat: any(
            k == "hpo" or k.startswith("hpo.") for k, v in flat.items() if v is not None
        ),
        plain=_no_hpo,
        requires=("hpo",),
        check=_hpo_check,
        docs="docs/hpo.md",
    )
)

CONTINUAL_METHODS = ("sequential", "replay", "ewc", "adapters")


def _task_name(data: Mapping[str, Any], taken: set[str]) -> str:
    stem = Path(str(data["path"])).stem or "task"
    name, number = stem, 2
    while name in taken:
        name, number = f"{stem}-{number}", number + 1
    taken.add(name)
    return name


def _continual(tree: dict, values: dict) -> dict:
    run = {k: v for k, v in tree.items() if k != "data"}
    taken: set[str] = set()
    tasks = []
    for data in values["datasets"]:
        entry: dict[str, Any] = {
            "name": _task_name(data, taken),
            "data": {
                "format": data.get("format", "csv"),
                "train": str(data["path"]),
                "validation_size": data.get("validation_size", 0.2),
                "test_size": data.get("test_size", 0.1) or 0.1,
                **(data.get("columns") or {}),
            },
        }
        if values["max_train_samples"]:
            entry["max_train_samples"] = values["max_train_samples"]
        tasks.append(entry)
    continual: dict[str, Any] = {
        "method": values["method"],
        "merge_labels": values["merge_labels"],
    }
    if values["method"] == "replay":
        continual["replay"] = {"proportion": values["replay_proportion"]}
    if values["method"] == "ewc":
        continual["ewc"] = {"strength": values["ewc_strength"]}
    return {"run": run, "tasks": tasks, "continual": continual}


def _continual_check(values: dict) -> str | None:
    if len(values["datasets"]) < 2:
        return "choose at least two data sets, in the order they are learnt."
    return None


def _sequential(tree: dict) -> dict:
    merge = (tree.get("continual") or {}).get("merge_labels", False)
    tree["continual"] = {"method": "sequential", "merge_labels": merge}
    return tree


register(
    Method(
        name="continual",
        label="Continual learning",
        summary="`lepton-nlp continual`: learns the chosen classification data sets one after "
        "another and scores every task learnt so far after each step (a forgetting matrix). "
        "replay rehearses earlier examples, ewc anchors the weights that mattered, adapters "
        "trains one adapter per task. The plain twin is `sequential`: one model fine-tuned "
        "on each task in turn.",
        job="continual",
        fields=(
            Field(
                "datasets",
                "Tasks, in order",
                "datasets",
                [],
                help="Classification data sets of the Data page; each is a task.",
            ),
            Field("method", "Method", "choice", "replay", CONTINUAL_METHODS),
            Field(
                "merge_labels",
                "A label name shared by tasks is one class",
                "bool",
                False,
                help="Off: tasks that share a label name (two sentiment sets) are refused "
                "for a shared model, since their classes would silently merge.",
            ),
            Field(
                "max_train_samples",
                "Training examples per task (0: all)",
                "int",
                0,
                low=0,
                high=1_000_000,
            ),
            Field(
                "replay_proportion",
                "Replayed share of a step",
                "float",
                0.3,
                low=0.0,
                high=0.95,
                help="replay: share of each later step's examples drawn from earlier tasks.",
            ),
            Field(
                "ewc_strength",
                "EWC strength",
                "float",
                1000.0,
                low=0.0,
                high=1e7,
                help="ewc: weight of the penalty that keeps important weights in place.",
            ),
        ),
        owns=("continual.*",),
        apply=_continual,
        uses=lambda flat: flat.get("continual.method", "sequential") != "sequential",
        plain=_sequential,
        check=_continual_check,
        tasks=("classification",),
        docs="docs/continual.md",
    )
)

# The two methods below are offered when the core's run config has their keys (``requires``):
# data augmentation (``augment.methods``) and transfer from an earlier run
# (``model.init_from``).

#: The core's augmentations but back-translation, which needs two translation models named
#: in the config (``augment.translation_models``): a choice the form could not complete.
AUGMENTATIONS = tuple(m for m in AUGMENT_METHODS if m != "back_translation")


def _augment(tree: dict, values: dict) -> dict:
    _set(tree, "augment.methods", list(values["methods"]))
    return tree


def _no_augment(tree: dict) -> dict:
    _drop(tree, "augment")
    return tree


register(
    Method(
        name="augment",
        label="Data augmentation",
        summary="Adds changed copies of the training texts (synonyms, insertions, swaps, "
        "deletions, typos for robustness to misspelt input, LLM paraphrases: slow, seconds a "
        "text); validation and test stay as they are.",
        job="train",
        fields=(Field("methods", "Augmentations", "multichoice", ["synonym"], AUGMENTATIONS),),
        owns=("augment", "augment.*"),
        apply=_augment,
        uses=lambda flat: bool(flat.get("augment.methods")),
        plain=_no_augment,
        requires=("augment.methods",),
        check=lambda values: None if values["methods"] else "choose at least one augmentation.",
    )
)


def _spelling(tree: dict, values: dict) -> dict:
    _set(tree, "spelling.enabled", True)
    _set(tree, "spelling.max_distance", values["max_distance"])
    _set(tree, "spelling.min_length", values["min_length"])
    return tree


def _no_spelling(tree: dict) -> dict:
    _drop(tree, "spelling")
    return tree


register(
    Method(
        name="spelling",
        label="Spelling correction",
        summary="Puts each word the training data never holds back to the nearest frequent "
        "training word before the model reads it, in validation, test and every prediction "
        "of the model: a defence against typos that costs no training time.",
        job="train",
        fields=(
            Field(
                "max_distance",
                "Edits per word",
                "choice",
                SpellingConfig().max_distance,
                (1, 2),
                help="Most letters inserted, deleted, replaced or swapped between a word and "
                "its correction.",
            ),
            Field(
                "min_length",
                "Shortest word corrected",
                "int",
                SpellingConfig().min_length,
                low=1,
                high=20,
                help="Shorter words stay as they are (a two-letter word is one edit from many).",
            ),
        ),
        owns=("spelling", "spelling.*"),
        apply=_spelling,
        uses=lambda flat: bool(flat.get("spelling.enabled")),
        plain=_no_spelling,
        requires=("spelling.enabled",),
        tasks=("classification",),
        docs="docs/adversarial.md",
    )
)


def _transfer(tree: dict, values: dict) -> dict:
    _set(tree, "model.init_from", values["run"])
    return tree


def _no_transfer(tree: dict) -> dict:
    _drop(tree, "model.init_from")
    return tree


register(
    Method(
        name="transfer",
        label="Transfer from a previous run",
        summary="Starts from the weights a previous Studio run learnt (another domain, or "
        "another data set of the same task) instead of the base model's.",
        job="train",
        fields=(
            Field(
                "run",
                "Start from the run",
                "run",
                help="A finished run of this Studio; its model folder is the starting point.",
            ),
        ),
        owns=("model.init_from",),
        apply=_transfer,
        uses=lambda flat: bool(flat.get("model.init_from")),
        plain=_no_transfer,
        requires=("model.init_from",),
    )
)
