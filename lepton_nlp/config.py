"""Typed run configuration: dataclasses, YAML files and ``key.sub=value`` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lepton_nlp.data.readers import expand_path
from lepton_nlp.errors import ConfigError

__all__ = [
    "ADAPT_METHODS",
    "AUGMENT_METHODS",
    "BACKEND_CHOICES",
    "FEWSHOT_METHODS",
    "AdaptConfig",
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "EvaluationConfig",
    "HpoConfig",
    "ModelConfig",
    "ParamSpec",
    "PeftConfig",
    "PromptingConfig",
    "RunConfig",
    "SearchSpace",
    "SpellingConfig",
    "TrainingConfig",
    "apply_overrides",
    "build_dataclass",
    "build_task_options",
    "config_to_dict",
    "expand_path",
    "load_config",
]


#: Adversarial training methods (``training.adversarial``); see lepton_nlp/training/adversarial.py.
ADVERSARIAL_METHODS = ("none", "fgm", "pgd", "freelb")

#: Norms of the adversarial perturbation (``training.adversarial_norm``).
ADVERSARIAL_NORMS = ("l2", "linf")


#: Training-data augmentation methods (``augment.methods``); see lepton_nlp/training/augment.py.
AUGMENT_METHODS = (
    "synonym",
    "insert",
    "swap",
    "delete",
    "typos",
    "back_translation",
    "paraphrase",
)

#: Record kinds (a task's ``record_kind``) each augmentation method can change with labels,
#: tags and character spans kept aligned. Generated text (back-translation, paraphrase)
#: cannot keep spans, so those methods take plain-text records only.
AUGMENT_RECORD_KINDS = {
    **{m: ("text", "tokens", "qa", "relation") for m in AUGMENT_METHODS[:4]},
    # Character edits inside words: a token list keeps its length, so tags stay aligned;
    # a changed letter inside an answer or an argument would move its span's text.
    "typos": ("text", "tokens"),
    "back_translation": ("text",),
    "paraphrase": ("text",),
}

PARAPHRASE_PROMPT = (
    "Rewrite the following sentence with different words, keeping its meaning. "
    "Answer with the rewritten sentence only.\n\n{source}"
)


#: Inference backends a user may name (:mod:`lepton_nlp.inference.backends`); ``auto`` is the
#: artifact's checked choice. Here, not there, so commands and settings list them without torch.
BACKEND_CHOICES = ("auto", "torch", "torch-int8", "onnx", "onnx-int8")


DATA_FORMATS = ("csv", "jsonl", "fpb", "conll", "hf", "semeval", "squad", "parallel")


@dataclass
class DataConfig:
    """Where the records come from and how to split them."""

    format: str = "csv"
    """Reader: csv | jsonl | fpb (Financial PhraseBank ``sentence@label``) | conll | hf (a ``datasets`` folder)
    | semeval (SemEval-2010 Task 8) | squad (SQuAD JSON) | parallel (aligned ``<prefix>.<lang>`` text files)."""
    train: str | None = None
    """Path of the training file (or ``datasets`` folder). ``${LEPTON_DATASETS}`` is expanded."""
    validation: str | None = None
    """Path of the validation file; when absent, ``validation_size`` of train is held out."""
    test: str | None = None
    """Path of the test file; when absent, ``test_size`` of train is held out."""
    validation_size: float = 0.0
    """Fraction of all training records held out for validation (stratified for classification)."""
    test_size: float = 0.0
    """Fraction of all training records held out for test (stratified for classification)."""
    split_seed: int = 42
    """Seed of the held-out splits."""
    text_column: str = "text"
    """Column (csv) or field (jsonl) holding the text."""
    label_column: str = "label"
    """Column or field holding the label (a list, or ``label_separator``-joined string, for multi-label)."""
    tokens_column: str = "tokens"
    """jsonl/hf NER: field holding the list of words."""
    tags_column: str = "tags"
    """jsonl/hf NER: field holding the list of tags."""
    encoding: str = "utf-8"
    """Text encoding of the files (Financial PhraseBank's are latin-1)."""
    conll_scheme: str = "auto"
    """Tag scheme of CoNLL files: iob1 | iob2 | auto (detected); always converted to IOB2."""
    conll_tag_column: int = -1
    """Which whitespace-separated column of a CoNLL line holds the tag."""
    multi_label: bool = False
    """Classification with any number of labels per record."""
    label_separator: str = "|"
    """Separator of several labels in one csv cell (multi-label)."""
    source_column: str = "source"
    """jsonl/csv summarization and translation: field holding the input text (DialogSum: ``dialogue``)."""
    target_column: str = "target"
    """jsonl/csv summarization and translation: field holding the reference (DialogSum: ``summary``)."""
    source_lang: str = "en"
    """parallel: suffix of the source-language file (``<path>.<source_lang>``)."""
    target_lang: str = "de"
    """parallel: suffix of the target-language file (``<path>.<target_lang>``)."""
    split_group: str | None = None
    """Record field whose values stay together when splits are held out (SQuAD: ``title``, the article)."""
    hf_split: str = "train"
    """Split of a ``datasets`` DatasetDict folder used as training data."""
    max_train_samples: int | None = None
    """Use only the first N training records (after splitting): quick runs and smoke tests."""
    train_on_validation: bool = False
    """The final fit, once the settings were chosen on validation: train on training +
    validation records (the test split stays held out). Without held-out validation data
    there is no early stopping or best-checkpoint choice: the last step is kept."""

    def __post_init__(self) -> None:
        if self.train_on_validation and not (self.validation or self.validation_size > 0):
            raise ConfigError(
                "data.train_on_validation=true adds the validation records to training, but "
                "there are none: set data.validation (a file) or data.validation_size."
            )
        if self.format not in DATA_FORMATS:
            raise ConfigError(
                f"data.format={self.format!r} is not a reader; choose one of {', '.join(DATA_FORMATS)}."
            )
        for name in ("validation_size", "test_size"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"data.{name}={value} must be a fraction in [0, 1).")
        if self.validation_size + self.test_size >= 0.9:
            raise ConfigError(
                "data.validation_size + data.test_size leave under 10% for training; lower them."
            )
        if self.conll_scheme not in ("auto", "iob1", "iob2"):
            raise ConfigError(
                f"data.conll_scheme={self.conll_scheme!r}; choose auto, iob1 or iob2."
            )


@dataclass
class ModelConfig:
    """Which pretrained model to start from."""

    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    """Real hub name (resolved to the packaged copy offline), or a local folder."""
    max_length: int = 128
    """Longest input in tokens; longer inputs are truncated."""
    init_from: str | None = None
    """Start from another run's weights instead of the bare base model (intermediate-task
    transfer, docs/transfer.md): a lepton-nlp artifact folder (its encoder, with a LoRA-family
    adapter merged in; its task head too when task and labels match, else a new head), or an
    encoder folder written by ``lepton-nlp adapt``. Its base architecture must be that of
    ``name``. The new artifact carries these starting weights (``base/``)."""

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ConfigError(f"model.max_length={self.max_length} is too short; use 8 or more.")
        if self.init_from is not None and not self.init_from.strip():
            raise ConfigError(
                "model.init_from is empty; give an artifact or encoder folder, or null."
            )


@dataclass
class PeftConfig:
    """Parameter-efficient fine-tuning: one key picks the method."""

    method: str = "lora"
    """full | lora | adalora | ia3 | prefix | prompt | ptuning | loha | lokr | vera | oft | ln_tuning | hra | fourierft."""
    r: int = 16
    """Rank of LoRA-family updates (AdaLoRA: target average rank)."""
    alpha: int = 32
    """LoRA scaling numerator (``lora_alpha``)."""
    dropout: float = 0.1
    """Dropout on the adapter path."""
    target_modules: list[str] | str | None = None
    """Modules to adapt; None picks peft's default for the architecture (``all-linear`` for LoRA-family)."""
    num_virtual_tokens: int = 20
    """Virtual tokens of prefix, prompt and P-tuning."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments passed to the peft config class (checked by peft itself)."""

    def __post_init__(self) -> None:
        # Imported here, not above: it loads torch, which reading a config file need not.
        from lepton_nlp.peft_methods import check_method

        check_method(self.method)
        if self.r < 1:
            raise ConfigError(f"peft.r={self.r} must be at least 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"peft.dropout={self.dropout} must be in [0, 1).")
        if self.num_virtual_tokens < 1:
            raise ConfigError(
                f"peft.num_virtual_tokens={self.num_virtual_tokens} must be at least 1."
            )


@dataclass
class TrainingConfig:
    """The training loop (wraps the Hugging Face Trainer)."""

    output_dir: str = "runs/model"
    """Artifact folder written at the end; checkpoints and logs go to ``<output_dir>.work``."""
    overwrite: bool = False
    """Replace an artifact already in ``output_dir`` (only once the new one is complete)."""
    epochs: float = 3.0
    """Passes over the training data (upper bound when early stopping is on)."""
    max_steps: int = -1
    """Stop after this many optimizer steps (overrides epochs when > 0)."""
    batch_size: int = 32
    """Training batch size per device."""
    eval_batch_size: int = 64
    """Evaluation batch size per device."""
    group_by_length: bool = True
    """Batch training examples of similar length together (less padding, faster on CPU)."""
    gradient_accumulation_steps: int = 1
    """Accumulate gradients over this many batches before each optimizer step."""
    learning_rate: float | None = None
    """Peak learning rate; None picks a default per PEFT method (5e-5 full, 5e-4 LoRA-family, 1e-2 prompt)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_ratio: float = 0.1
    """Fraction of steps spent warming up the learning rate."""
    scheduler: str = "linear"
    """Learning-rate schedule: linear | cosine | constant_with_warmup | ..."""
    label_smoothing: float = 0.0
    """Label smoothing factor of the cross-entropy loss."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    seed: int = 42
    """Seed of weights initialisation, dropout and data order."""
    eval_strategy: str = "epoch"
    """When to evaluate (and checkpoint): epoch | steps | no."""
    eval_steps: int | None = None
    """Evaluate every N steps when ``eval_strategy=steps``."""
    logging_steps: int = 10
    """Log loss and learning rate every N steps."""
    metric_for_best: str | None = None
    """Validation metric that picks the best checkpoint and drives early stopping (task default when None)."""
    early_stopping_patience: int | None = 3
    """Evaluations without improvement before stopping; None turns early stopping off."""
    early_stopping_threshold: float = 0.0
    """Smallest improvement of ``metric_for_best`` that counts."""
    save_total_limit: int = 2
    """Checkpoints kept in the work folder (the best one is always kept)."""
    resume: bool | str = False
    """Resume: true takes the latest checkpoint in ``<output_dir>.work``, or a checkpoint path."""
    keep_checkpoints: bool = False
    """Keep ``<output_dir>.work`` (checkpoints, logs) after the artifact is written."""
    progress: bool = True
    """Show a progress bar."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Loggers: tensorboard, none, ... (TensorBoard logs land in the artifact's ``logs/``)."""
    threads: int | None = None
    """CPU threads for torch (None: torch's default)."""
    adversarial: str = "none"
    """Adversarial training on the input embeddings (docs/adversarial.md): none | fgm (one
    push along the loss gradient: 2 forward and backward passes per step) | pgd
    (``adversarial_steps`` projected pushes; the clean pass and the last push train:
    steps + 1 passes) | freelb (``adversarial_steps`` ascent steps whose gradients all
    train, each with weight 1/steps: steps passes). The FPB benchmark with FGM took 1.6 to
    1.8 times as long as without."""
    adversarial_epsilon: float = 0.3
    """Size of the perturbation: FGM's push, the radius PGD and FreeLB stay within, per
    example in ``adversarial_norm``."""
    adversarial_steps: int = 3
    """PGD and FreeLB: ascent steps per training step (at least 1)."""
    adversarial_alpha: float | None = None
    """PGD and FreeLB: size of each ascent step; None: ``adversarial_epsilon / adversarial_steps``."""
    adversarial_norm: str = "l2"
    """l2 (each example's whole perturbation, all positions together, has size at most epsilon;
    steps follow the normalised gradient) | linf (every coordinate within [-epsilon, epsilon];
    steps follow the gradient's sign)."""
    adversarial_init: float = 0.0
    """FreeLB: size of the random start (0: start from the clean embeddings); at most epsilon."""

    def __post_init__(self) -> None:
        self._check_adversarial()
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("training.epochs must be > 0 (or set training.max_steps).")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(
                "training.batch_size and training.eval_batch_size must be at least 1."
            )
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("training.gradient_accumulation_steps must be at least 1.")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ConfigError(f"training.learning_rate={self.learning_rate} must be positive.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(
                f"training.warmup_ratio={self.warmup_ratio} must be a fraction in [0, 1)."
            )
        if self.eval_strategy not in ("epoch", "steps", "no"):
            raise ConfigError(
                f"training.eval_strategy={self.eval_strategy!r}; choose epoch, steps or no."
            )
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise ConfigError("training.eval_strategy=steps needs training.eval_steps.")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(
                "training.early_stopping_patience must be at least 1, or null for off."
            )
        if self.early_stopping_patience is not None and self.eval_strategy == "no":
            raise ConfigError(
                "Early stopping needs evaluations: set training.eval_strategy=epoch or "
                "training.early_stopping_patience=null."
            )
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]

    def _check_adversarial(self) -> None:
        if self.adversarial not in ADVERSARIAL_METHODS:
            close = difflib.get_close_matches(self.adversarial, ADVERSARIAL_METHODS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"training.adversarial={self.adversarial!r} is not a method.{hint} Choose one "
                f"of {', '.join(ADVERSARIAL_METHODS)}."
            )
        if self.adversarial_epsilon <= 0:
            raise ConfigError(
                f"training.adversarial_epsilon={self.adversarial_epsilon} must be positive "
                "(the size of the perturbation, e.g. 0.3)."
            )
        if self.adversarial_steps < 1:
            raise ConfigError(
                f"training.adversarial_steps={self.adversarial_steps} must be at least 1 "
                "(PGD and FreeLB ascent steps per training step, e.g. 3)."
            )
        if self.adversarial_alpha is not None and self.adversarial_alpha <= 0:
            raise ConfigError(
                f"training.adversarial_alpha={self.adversarial_alpha} must be positive, or "
                "null for adversarial_epsilon / adversarial_steps."
            )
        if self.adversarial_norm not in ADVERSARIAL_NORMS:
            close = difflib.get_close_matches(
                self.adversarial_norm.lower(), ADVERSARIAL_NORMS, n=1, cutoff=0.4
            )
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"training.adversarial_norm={self.adversarial_norm!r} is not a norm.{hint} "
                f"Choose one of {', '.join(ADVERSARIAL_NORMS)}."
            )
        if not 0.0 <= self.adversarial_init <= self.adversarial_epsilon:
            raise ConfigError(
                f"training.adversarial_init={self.adversarial_init} must be in [0, "
                f"adversarial_epsilon={self.adversarial_epsilon}]: FreeLB's random start "
                "lies inside the epsilon ball."
            )


@dataclass
class EvaluationConfig:
    """How finished models are scored."""

    batch_size: int = 64
    """Batch size for evaluation and prediction."""
    threshold: float = 0.5
    """Multi-label classification: probability above which a label is predicted."""
    backend_check: bool = True
    """After training an encoder task: calibrate int8 on training records, then score int8
    against fp32 on the validation split (else on other training records); the artifact
    records both, and ``backend=auto`` serves int8 on CPUs when it loses at most 0.5
    points (:mod:`lepton_nlp.inference.int8_check`)."""
    score_test: bool = True
    """Score the finished model on the test split. The hyper-parameter search turns it off
    for its trials, so that no test figure exists until the chosen config is trained."""


@dataclass
class SpellingConfig:
    """Spelling correction before the model reads a text (classification only;
    :mod:`lepton_nlp.inference.spelling`, docs/adversarial.md): a defence against typos."""

    enabled: bool = False
    """Build a vocabulary from the training split's words, score validation and test on
    corrected texts, and ship it in the artifact (``spelling.json``): every Predictor of the
    artifact then corrects what it is given."""
    max_distance: int = 2
    """Most edits between a word and its correction (1 or 2; a swap of neighbours is one).
    The defaults (2, 2, model words known) are the settings bench/spelling_correction.py
    chose on Financial PhraseBank's validation split."""
    min_length: int = 2
    """Words shorter than this stay as they are."""
    model_vocabulary: bool = True
    """Also leave alone the words the model's own vocabulary holds whole (a real word the
    training data happens to lack is not "corrected" to one it has)."""
    min_count: int = 1
    """A training word becomes a correction only when seen at least this often."""

    def __post_init__(self) -> None:
        if self.max_distance not in (1, 2):
            raise ConfigError(f"spelling.max_distance={self.max_distance} must be 1 or 2.")
        if self.min_length < 1:
            raise ConfigError(f"spelling.min_length={self.min_length} must be at least 1.")
        if self.min_count < 1:
            raise ConfigError(f"spelling.min_count={self.min_count} must be at least 1.")


@dataclass
class AugmentConfig:
    """Training-data augmentation (docs/augmentation.md): new training records made from the
    training split (never validation or test) before fine-tuning, checked and counted."""

    methods: list[str] | str = field(default_factory=list)
    """Empty: off (a comma-separated string is read as a list). Any of synonym (words replaced by synonyms), insert (synonyms of words
    inserted at random places), swap (two words exchanged), delete (words dropped), the four
    lexical edits of EDA, which keep NER entities, QA answers and relation arguments intact
    and re-align their spans; typos (letters mistyped, swapped or dropped inside words, for
    robustness to misspelt input; text and NER records); back_translation (through
    ``translation_models``) and paraphrase (the instruct LLM ``llm_model``), for plain-text
    records (classification)."""
    per_example: int = 1
    """Augmented copies made of each training record, each by one method of ``methods``
    taken in turn (from a seeded start per record): the training set grows up to
    ``1 + per_example`` times."""
    probability: float = 0.1
    """Lexical edits: the share of a text's words changed (EDA's alpha); at least one edit."""
    synonyms: str = "embedding"
    """Where synonym and insert find words: ``embedding`` (nearest whole words in the input
    embeddings of ``synonym_model``, offline for any model) or a JSON file
    ``{"word": ["synonym", ...]}``."""
    synonym_model: str | None = None
    """Model whose embeddings give synonyms (None: ``model.name``)."""
    dedup: bool = True
    """Drop an augmented record whose content (lower-cased, spaces collapsed) equals an
    original or an earlier augmented record."""
    label_check: bool = False
    """Drop an augmented record whose prediction by ``label_check_model`` differs from that
    model's prediction of the original record (a label-changing edit)."""
    label_check_model: str | None = None
    """An artifact folder of the same task that judges the edits (e.g. the run trained
    without augmentation, or the model in service)."""
    seed: int = 42
    """Seed of every random choice (the same config gives the same records)."""
    translation_models: list[str] = field(default_factory=list)
    """back_translation: two models, ``[source -> pivot, pivot -> source]``: artifact folders
    of the translation task (``lepton-nlp train`` with task=translation), or hub names of
    translation models (e.g. ``Helsinki-NLP/opus-mt-en-de``) when online."""
    source_language: str = "English"
    """back_translation with an instruct LLM: the language of the records."""
    pivot_language: str = "German"
    """back_translation with an instruct LLM: the language passed through."""
    llm_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    """paraphrase: the instruct LLM (the packaged SmolLM2 offline, or any causal LM)."""
    llm_prompt: str = PARAPHRASE_PROMPT
    """paraphrase: the instruction, with ``{source}`` for the text."""
    llm_temperature: float = 0.0
    """paraphrase and LLM translation: sampling temperature; 0 decodes greedily (one
    distinct copy per record, so keep ``per_example=1``)."""
    max_new_tokens: int = 64
    """back_translation and paraphrase: longest generated text in tokens."""
    batch_size: int = 16
    """back_translation, paraphrase and label_check: texts per model call."""

    def __post_init__(self) -> None:
        if isinstance(self.methods, str):
            self.methods = [m.strip() for m in self.methods.split(",") if m.strip()]
        for method in self.methods:
            if method not in AUGMENT_METHODS:
                close = difflib.get_close_matches(method, AUGMENT_METHODS, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"augment.methods: {method!r} is not a method.{hint} Choose from "
                    f"{', '.join(AUGMENT_METHODS)} (an empty list turns augmentation off)."
                )
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"augment.methods={self.methods} names a method twice.")
        if self.per_example < 1:
            raise ConfigError(
                f"augment.per_example={self.per_example} must be at least 1 (copies per record)."
            )
        if not 0.0 < self.probability <= 1.0:
            raise ConfigError(
                f"augment.probability={self.probability} must be in (0, 1]: the share of a "
                "text's words edited (e.g. 0.1)."
            )
        if self.label_check and not self.label_check_model:
            raise ConfigError(
                "augment.label_check=true needs augment.label_check_model: an artifact folder "
                "of this task whose predictions judge the edits (e.g. the run trained without "
                "augmentation)."
            )
        if "back_translation" in self.methods and len(self.translation_models) != 2:
            raise ConfigError(
                "augment.methods has back_translation, which needs augment.translation_models: "
                "[source -> pivot, pivot -> source], e.g. two translation artifacts trained with "
                "configs/translation_multi30k.yaml (en->de, and de->en with data.source_lang=de "
                "data.target_lang=en), or hub translation models when online; got "
                f"{self.translation_models}. No pretrained translation model ships offline "
                "(MODELS.md)."
            )
        if "{source}" not in self.llm_prompt:
            raise ConfigError(
                f"augment.llm_prompt={self.llm_prompt!r} has no {{source}} placeholder for the text."
            )
        if self.llm_temperature < 0:
            raise ConfigError(f"augment.llm_temperature={self.llm_temperature} must be >= 0.")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("augment.max_new_tokens and augment.batch_size must be at least 1.")

    def check_task(self, task: str, record_kind: str) -> None:
        """Raise ConfigError for a method that cannot keep ``task``'s records aligned."""
        for method in self.methods:
            kinds = AUGMENT_RECORD_KINDS[method]
            if record_kind not in kinds:
                if record_kind == "pair":
                    why = (
                        "changing the source of a summarization or translation pair would "
                        "leave its target unfaithful"
                    )
                elif method == "typos":
                    why = (
                        "a mistyped letter inside an answer or an argument would change the "
                        "span's text; use the lexical methods (synonym, insert, swap, delete)"
                    )
                else:
                    why = (
                        "generated text cannot keep entity, answer or argument spans aligned; "
                        "use the lexical methods (synonym, insert, swap, delete)"
                    )
                raise ConfigError(
                    f"augment.methods: {method} does not apply to task={task}: {why}."
                )


#: What the hyper-parameter search (``hpo.space``) may vary: name -> (run-config key it
#: sets, value type). ``number`` takes whole numbers when the range is given in them.
SEARCH_PARAMETERS: dict[str, tuple[str, str]] = {
    "learning_rate": ("training.learning_rate", "float"),
    "epochs": ("training.epochs", "number"),
    "batch_size": ("training.batch_size", "int"),
    "warmup_ratio": ("training.warmup_ratio", "float"),
    "weight_decay": ("training.weight_decay", "float"),
    "peft_method": ("peft.method", "str"),
    "r": ("peft.r", "int"),
    "alpha": ("peft.alpha", "int"),
    "dropout": ("peft.dropout", "float"),
}

HPO_SAMPLERS = ("tpe", "random")
HPO_PRUNERS = ("median", "hyperband", "none")
HPO_KEEP_ARTIFACTS = ("best", "all", "none")


@dataclass
class ParamSpec:
    """One searched hyper-parameter: a range (``low``..``high``, optionally ``log`` or
    ``step``) or a list of ``choices``. In YAML a plain list is read as choices."""

    low: int | float | None = None
    """Lowest value of the range (inclusive)."""
    high: int | float | None = None
    """Highest value of the range (inclusive)."""
    log: bool = False
    """Sample the range on a log scale (learning rates)."""
    step: int | float | None = None
    """Spacing of the values of the range (e.g. 8 for alpha 8, 16, 24...)."""
    choices: list[Any] | None = None
    """The values to choose from, instead of a range."""

    def __post_init__(self) -> None:
        ranged = self.low is not None or self.high is not None
        if self.choices is not None:
            if ranged or self.log or self.step is not None:
                raise ConfigError(
                    "give either choices or a range (low, high, log, step), not both."
                )
            if not isinstance(self.choices, list) or not self.choices:
                raise ConfigError(
                    f"choices must be a non-empty list, got {self.choices!r}: nothing to search."
                )
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ConfigError(f"choices {self.choices} repeat a value.")
            return
        if self.low is None or self.high is None:
            raise ConfigError(
                "a range needs both low and high (e.g. {low: 1.0e-4, high: 1.0e-3, log: true}), "
                "or give a list of choices."
            )
        if not self.low < self.high:
            raise ConfigError(
                f"empty range: low={self.low} must be below high={self.high} (to fix a value, "
                "set it in the run config instead of searching it)."
            )
        if self.log and self.low <= 0:
            raise ConfigError(f"a log range needs low > 0, got low={self.low}.")
        if self.step is not None:
            if self.log:
                raise ConfigError("a range takes log or step, not both.")
            if not 0 < self.step <= self.high - self.low:
                raise ConfigError(
                    f"step={self.step} must be positive and at most high - low = "
                    f"{self.high - self.low}."
                )

    @property
    def values(self) -> list[Any]:
        """The ends of the range, or every choice: what must be valid in the run config."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


def _coerce(value: Any, kind: str, where: str) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a name, got {value!r}.")
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}.")
    if kind == "int":
        if not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}.")
        return value
    if kind == "number" and isinstance(value, int):
        return value
    try:
        return float(value)  # YAML reads 5e-4 as a string
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}.") from None


@dataclass
class SearchSpace:
    """The hyper-parameters a search varies; each a range or a list of choices (``ParamSpec``).

    Those left out keep the run config's value. ``r``, ``alpha`` and ``dropout`` only apply to
    the PEFT methods that have them (LoRA, AdaLoRA, LoHa, LoKr; dropout also VeRA and OFT):
    a trial with another method does not draw them.
    """

    learning_rate: ParamSpec | None = None
    """``training.learning_rate``; a log range suits it, e.g. {low: 1.0e-4, high: 3.0e-3, log: true}."""
    epochs: ParamSpec | None = None
    """``training.epochs``; a range of whole numbers draws whole epochs."""
    batch_size: ParamSpec | None = None
    """``training.batch_size``, e.g. [16, 32]."""
    warmup_ratio: ParamSpec | None = None
    """``training.warmup_ratio``, a fraction in [0, 1)."""
    weight_decay: ParamSpec | None = None
    """``training.weight_decay``."""
    peft_method: ParamSpec | None = None
    """``peft.method``: choices only, e.g. [lora, ia3, full]."""
    r: ParamSpec | None = None
    """``peft.r``, the adapter rank, e.g. [4, 8, 16, 32]."""
    alpha: ParamSpec | None = None
    """``peft.alpha``, the LoRA scaling numerator."""
    dropout: ParamSpec | None = None
    """``peft.dropout``, dropout on the adapter path, in [0, 1)."""

    def __post_init__(self) -> None:
        for name, (key, kind) in SEARCH_PARAMETERS.items():
            where = f"hpo.space.{name}"
            raw = getattr(self, name)
            if raw is None:
                continue
            if isinstance(raw, list):
                raw = {"choices": raw}
            if isinstance(raw, ParamSpec):
                raw = dataclasses.asdict(raw)
            if not isinstance(raw, dict):
                raise ConfigError(
                    f"{where}={raw!r}: give a range {{low: ..., high: ...}} or a list of "
                    f"choices; a fixed value belongs in the run config ({key})."
                )
            try:
                spec = build_dataclass(ParamSpec, raw, where)
            except ConfigError as exc:
                if where in str(exc):  # a misspelt or mistyped key names itself
                    raise
                raise ConfigError(f"{where}: {exc}") from None
            if kind == "str" and spec.choices is None:
                raise ConfigError(f"{where} takes a list of choices, not a range.")
            if spec.choices is not None:
                spec.choices = [_coerce(v, kind, f"{where} choice") for v in spec.choices]
            else:
                spec.low = _coerce(spec.low, kind, f"{where}.low")
                spec.high = _coerce(spec.high, kind, f"{where}.high")
                if spec.step is not None:
                    spec.step = _coerce(
                        spec.step, "int" if kind == "int" else kind, f"{where}.step"
                    )
            section, field_name = key.split(".")
            section_class = {"training": TrainingConfig, "peft": PeftConfig}[section]
            for value in spec.values:
                try:
                    section_class(**{field_name: value})
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {value!r} is not a valid {key}: {exc}") from None
            setattr(self, name, spec)

    def searched(self) -> dict[str, ParamSpec]:
        """The declared parameters, by name, in a fixed order."""
        return {name: getattr(self, name) for name in SEARCH_PARAMETERS if getattr(self, name)}


@dataclass
class HpoConfig:
    """Hyper-parameter search (``lepton-nlp hpo``): what varies, how trials are drawn and
    pruned, and where the study lives."""

    space: SearchSpace = field(default_factory=SearchSpace)
    """The searched hyper-parameters (see ``SearchSpace``)."""
    trials: int = 20
    """Finished (complete or pruned) trials the study should hold; ``--trials`` overrides it.
    A resumed study runs only the trials still missing."""
    sampler: str = "tpe"
    """tpe (Optuna's Tree-structured Parzen Estimator) | random."""
    startup_trials: int = 5
    """TPE: trials drawn at random before TPE models good and bad regions."""
    seed: int = 42
    """Seed of the sampler (give each machine of a shared study its own)."""
    pruner: str = "median"
    """Stop a trial whose validation metric, at an evaluation, is worse than the median of
    earlier trials at the same evaluation: median | hyperband | none."""
    pruner_startup_trials: int = 3
    """median: finished trials before any trial is pruned."""
    pruner_warmup_evaluations: int = 0
    """median: evaluations of a trial (epochs, with eval_strategy=epoch) before it may be pruned."""
    baseline_trial: bool = True
    """Run the config's own values as the study's first trial, so the leaderboard shows what
    the search bought over them."""
    storage: str | None = None
    """SQLAlchemy database URL of the study; None: ``sqlite:///<output_dir>/study.db``. Several
    machines work on one study through a shared URL (e.g. ``postgresql+psycopg://...``)."""
    study_name: str | None = None
    """Name of the study in the storage (default: the run's name)."""
    output_dir: str | None = None
    """Folder of trials, leaderboard, best config and plots (default ``<training.output_dir>-hpo``)."""
    keep_artifacts: str = "best"
    """Trial artifacts kept on disk: best (the best trial's, so far) | all | none."""
    heartbeat_seconds: int = 60
    """A running trial records a heartbeat this often."""
    stale_seconds: int = 180
    """A running trial without a heartbeat for this long (its process was killed) is marked
    failed, and its parameters are tried once more, by the next trial any worker starts."""
    timeout_seconds: float | None = None
    """Start no new trial after this many seconds (``--timeout``)."""

    def __post_init__(self) -> None:
        if not self.space.searched():
            raise ConfigError(
                "hpo.space declares no parameter to search; add one or more of "
                f"{', '.join(SEARCH_PARAMETERS)}, e.g. hpo.space.learning_rate: "
                "{low: 1.0e-4, high: 3.0e-3, log: true}."
            )
        if self.trials < 1:
            raise ConfigError(f"hpo.trials={self.trials} must be at least 1.")
        for key, value, valid in (
            ("sampler", self.sampler, HPO_SAMPLERS),
            ("pruner", self.pruner, HPO_PRUNERS),
            ("keep_artifacts", self.keep_artifacts, HPO_KEEP_ARTIFACTS),
        ):
            if value not in valid:
                close = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"hpo.{key}={value!r}.{hint} Choose one of {', '.join(valid)}.")
        if self.startup_trials < 0 or self.pruner_startup_trials < 0:
            raise ConfigError("hpo.startup_trials and hpo.pruner_startup_trials must be >= 0.")
        if self.pruner_warmup_evaluations < 0:
            raise ConfigError("hpo.pruner_warmup_evaluations must be >= 0.")
        if self.heartbeat_seconds < 1 or self.stale_seconds <= self.heartbeat_seconds:
            raise ConfigError(
                f"hpo.heartbeat_seconds={self.heartbeat_seconds} must be at least 1 and below "
                f"hpo.stale_seconds={self.stale_seconds}."
            )
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ConfigError(f"hpo.timeout_seconds={self.timeout_seconds} must be positive.")


#: Tasks whose model is an encoder with a task head: ``model.init_from`` can start them from
#: another run (lepton_nlp/training/transfer.py).
ENCODER_TASKS = ("classification", "ner", "relation", "qa")


def check_init_task(name: str, task: Any) -> None:
    """Refuse ``model.init_from`` for a task whose model has no encoder to start from.

    Raises:
        ConfigError: naming the tasks that take it.
    """
    if name not in ENCODER_TASKS and getattr(task, "name", name) not in ENCODER_TASKS:
        raise ConfigError(
            f"model.init_from starts a run from another run's encoder, but task={name} "
            f"(a generator) has no encoder with a task head to start from. Tasks that take "
            f"it: {', '.join(ENCODER_TASKS)}. Remove model.init_from, or point model.name at "
            "a folder holding the model you want to start from."
        )


#: Unsupervised adaptation methods (``adapt.method``); see lepton_nlp/training/transfer.py.
ADAPT_METHODS = ("tsdae", "simcse")


@dataclass
class AdaptConfig:
    """Continued training of the encoder on unlabelled target-domain text (``lepton-nlp
    adapt``), before fine-tuning on the few labelled examples. It starts from ``model.name``,
    or from ``model.init_from`` when set (transfer, then adapt)."""

    method: str = "tsdae"
    """tsdae: a denoising auto-encoder (Wang et al. 2021, through sentence-transformers'
    DenoisingAutoEncoderLoss): a decoder tied to the encoder rebuilds each text from the
    mean-pooled vector of the text with ``deletion_ratio`` of its words deleted. simcse:
    unsupervised SimCSE (Gao et al. 2021): each text its own positive under two dropout
    masks, the batch's other texts the negatives. Neither needs a pretraining head, so both
    work with encoders shipped without one (all-MiniLM-L6-v2 has no MLM head); on
    all-MiniLM-L6-v2, trained contrastively already, SimCSE's loss starts near zero and
    moves the encoder little (docs/transfer.md)."""
    unlabelled: str | None = None
    """File of target-domain texts: .txt (one a line), .csv or .jsonl (``text_column``);
    ``--unlabelled`` sets it. Labels in the file, if any, are not read."""
    text_column: str = "text"
    """Column (csv) or field (jsonl) of the texts."""
    output_dir: str | None = None
    """Folder of the adapted encoder (default ``<training.output_dir>-adapted``); usable as
    ``model.init_from`` and as a sentence-transformers model."""
    epochs: float = 1.0
    """Passes over the unlabelled texts."""
    batch_size: int | None = None
    """Texts per batch; None: the method's paper's own, 8 for tsdae, 64 for simcse (each
    text's negatives are the batch's other texts: larger is harder)."""
    learning_rate: float = 3.0e-5
    """Peak learning rate (TSDAE's and SimCSE's own for BERT-sized encoders)."""
    temperature: float = 0.05
    """simcse: softmax temperature of the contrastive loss (0.05 as in SimCSE; scale 1/t)."""
    deletion_ratio: float = 0.6
    """tsdae: share of each text's words deleted from the encoder's input (TSDAE: 0.6)."""
    max_samples: int | None = None
    """Use at most this many texts (a seeded sample)."""
    seed: int = 42
    """Seed of the sample, the batches and the dropout masks."""
    overwrite: bool = False
    """Replace a folder already at ``output_dir``."""

    def __post_init__(self) -> None:
        if self.method not in ADAPT_METHODS:
            close = difflib.get_close_matches(self.method, ADAPT_METHODS, n=1, cutoff=0.4)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"adapt.method={self.method!r} is not a method.{hint} Choose one of "
                f"{', '.join(ADAPT_METHODS)}."
            )
        if self.epochs <= 0:
            raise ConfigError(f"adapt.epochs={self.epochs} must be positive.")
        if self.batch_size is None:
            self.batch_size = {"tsdae": 8, "simcse": 64}[self.method]
        if self.batch_size < 2:
            raise ConfigError(
                f"adapt.batch_size={self.batch_size} must be at least 2: a text's negatives "
                "are the other texts of its batch."
            )
        if self.learning_rate <= 0:
            raise ConfigError(f"adapt.learning_rate={self.learning_rate} must be positive.")
        if self.temperature <= 0:
            raise ConfigError(f"adapt.temperature={self.temperature} must be positive.")
        if not 0.0 <= self.deletion_ratio < 1.0:
            raise ConfigError(
                f"adapt.deletion_ratio={self.deletion_ratio} must be in [0, 1): the share of "
                "words deleted (0.6 in TSDAE)."
            )
        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"adapt.max_samples={self.max_samples} must be at least 2.")


#: Few-shot classification methods (``prompting.method``, ``lepton-nlp fewshot --method``);
#: docs/prompt-learning.md. Stable names: the Studio and old configs refer to them.
FEWSHOT_METHODS = (
    "zero-shot",
    "in-context",
    "label-similarity",
    "setfit",
    "soft-prompt",
    "lora",
)
SOFT_PROMPT_METHODS = ("prompt", "ptuning")


def _choice(value: str, valid: tuple[str, ...], key: str) -> None:
    if value not in valid:
        close = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}={value!r} is not valid.{hint} Choose one of {', '.join(valid)}.")


@dataclass
class LlmPromptSettings:
    """zero-shot and in-context: the instruct LLM scores each label's words after a prompt."""

    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    """Causal LM (packaged SmolLM2 offline, or any hub causal LM by name, or a folder)."""
    instruction: str = "Classify the text."
    """First paragraph of every prompt."""
    template: str = "Text: {text}\nLabel:"
    """One example; ``{text}`` is replaced by the text, and the label word follows it."""
    verbalizer: dict[str, Any] = field(default_factory=dict)
    """Label -> word (or list of words) that names it; labels left out are named by their
    own name as words (``card_arrival`` -> ``card arrival``)."""
    calibrate: bool = True
    """Contextual calibration (Zhao et al. 2021): divide each label's probability by the one
    it gets after the content-free inputs."""
    content_free: list[str] = field(default_factory=lambda: ["N/A", "", "[MASK]"])
    """Content-free inputs of the calibration (their label probabilities are averaged)."""
    length_normalize: bool = False
    """Score a word by its mean log-probability per token instead of the sum."""
    demonstrations: int = 4
    """in-context: labelled examples shown before each text: the ones nearest to it (sentence
    embeddings) among the sampled few-shot examples (KATE, Liu et al. 2022)."""
    shortlist: int | None = None
    """Score only the N labels nearest to each text (zero-shot: by label-description
    similarity; in-context: by similarity to the few-shot examples), the rest never win;
    None scores every label. Cost grows with the labels scored: BANKING77's 77 labels take
    about 3 s a text on one CPU thread, 10 about 1 s."""
    batch_rows: int = 96
    """Prompt x label-word rows per forward pass (memory)."""

    def __post_init__(self) -> None:
        if "{text}" not in self.template:
            raise ConfigError(
                f"prompting.llm.template={self.template!r} has no {{text}} placeholder; write "
                "e.g. 'Text: {text}\\nLabel:'."
            )
        if self.demonstrations < 0:
            raise ConfigError(f"prompting.llm.demonstrations={self.demonstrations} must be >= 0.")
        if self.shortlist is not None and self.shortlist < 1:
            raise ConfigError(f"prompting.llm.shortlist={self.shortlist} must be >= 1, or null.")
        if self.batch_rows < 1:
            raise ConfigError(f"prompting.llm.batch_rows={self.batch_rows} must be >= 1.")
        for label, words in self.verbalizer.items():
            if not isinstance(words, str | list) or not words:
                raise ConfigError(
                    f"prompting.llm.verbalizer.{label} must be a word or a list of words, got "
                    f"{words!r}."
                )


@dataclass
class SetFitSettings:
    """setfit: contrastive fine-tuning of the sentence encoder on pairs of the few examples,
    then a logistic-regression head on its embeddings (Tunstall et al. 2022)."""

    iterations: int = 20
    """Pair rounds: each makes one same-label and one different-label pair per example."""
    max_pairs: int | None = 2000
    """At most this many pairs (a seeded sample), which bounds the training time."""
    epochs: int = 1
    """Passes over the pairs."""
    learning_rate: float = 2.0e-5
    """Encoder learning rate."""
    batch_size: int = 16
    """Pairs per step."""

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(
                "prompting.setfit.iterations, epochs and batch_size must be at least 1."
            )
        if self.max_pairs is not None and self.max_pairs < 2:
            raise ConfigError(f"prompting.setfit.max_pairs={self.max_pairs} must be >= 2, or null.")
        if self.learning_rate <= 0:
            raise ConfigError(f"prompting.setfit.learning_rate={self.learning_rate} must be > 0.")


@dataclass
class PromptingConfig:
    """Few-shot and zero-shot classification (``lepton-nlp fewshot``): the method, how many
    labelled examples per class it sees, and each method's settings."""

    method: str = "setfit"
    """zero-shot (LLM, label words, no example) | in-context (LLM, with the nearest few-shot
    examples as demonstrations) | label-similarity (sentence encoder: text vs label
    description, no example) | setfit (contrastive encoder + logistic regression) |
    soft-prompt (peft prompt tuning / P-tuning of the classifier) | lora (LoRA fine-tuning,
    the plain baseline). ``--method`` overrides it."""
    shots: int = 10
    """Labelled training examples per class (a seeded sample of the training split; a class
    with fewer keeps all it has). ``--shots`` overrides it."""
    seed: int = 0
    """Seed of the sample of examples (and of training). ``--seed`` overrides it."""
    max_eval_samples: int | None = None
    """Score on at most this many validation / test records (a fixed stratified sample,
    ``data.split_seed``): LLM scoring is slow on a CPU."""
    label_descriptions: dict[str, str] = field(default_factory=dict)
    """label-similarity (and the zero-shot shortlist): label -> description embedded for it;
    labels left out are described by their name as words."""
    soft_prompt_method: str = "prompt"
    """soft-prompt: peft method, prompt (prompt tuning) | ptuning (P-tuning). The soft prompt
    and the classifier head train; the encoder stays frozen. ``peft.num_virtual_tokens``
    sets the prompt length."""
    llm: LlmPromptSettings = field(default_factory=LlmPromptSettings)
    setfit: SetFitSettings = field(default_factory=SetFitSettings)

    def __post_init__(self) -> None:
        _choice(self.method, FEWSHOT_METHODS, "prompting.method")
        _choice(self.soft_prompt_method, SOFT_PROMPT_METHODS, "prompting.soft_prompt_method")
        if self.shots < 1:
            raise ConfigError(f"prompting.shots={self.shots} must be at least 1.")
        if self.max_eval_samples is not None and self.max_eval_samples < 1:
            raise ConfigError(
                f"prompting.max_eval_samples={self.max_eval_samples} must be >= 1, or null."
            )


@dataclass
class RunConfig:
    """One fine-tuning run: task, data, model, PEFT method, training loop and evaluation."""

    task: str = "classification"
    """Task name from the registry: classification | ner (``lepton-nlp tasks`` lists them)."""
    name: str | None = None
    """Human-readable run name (defaults to the output folder's name)."""
    description: str = ""
    """What this run is for; goes into the model card."""
    license: str = "unknown"
    """Licence of the training data; goes into the model card."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    task_options: Any = None
    """Options of the task itself (entity markers, QA windows, generation...), checked against
    the task's own options dataclass; ``lepton-nlp tasks`` lists them."""
    hpo: HpoConfig | None = None
    """Hyper-parameter search over this config (``lepton-nlp hpo``); ``lepton-nlp train``
    ignores it and trains the values written above."""
    adapt: AdaptConfig | None = None
    """Unsupervised adaptation of the encoder to unlabelled target-domain text
    (``lepton-nlp adapt``, docs/transfer.md); ``lepton-nlp train`` ignores it: point
    ``model.init_from`` at the folder it writes."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training-data augmentation (docs/augmentation.md); ``methods: []`` (the default) is off."""
    spelling: SpellingConfig = field(default_factory=SpellingConfig)
    """Spelling correction of the texts a classifier reads (docs/adversarial.md); off by
    default."""
    prompting: PromptingConfig | None = None
    """Few-shot classification over this config's data (``lepton-nlp fewshot``,
    docs/prompt-learning.md); ``lepton-nlp train`` ignores it."""

    def __post_init__(self) -> None:
        # The task registry sits below this module (tasks never import config); imported
        # here because the tasks load torch and transformers.
        from lepton_nlp.tasks import get_task

        task = get_task(self.task)  # raises a clear error for an unknown task
        self.task_options = build_task_options(task, self.task_options)
        self.augment.check_task(self.task, task.record_kind)
        if self.data.multi_label and self.task != "classification":
            raise ConfigError("data.multi_label applies to task=classification only.")
        if self.spelling.enabled and self.task != "classification":
            raise ConfigError(
                f"spelling.enabled applies to task=classification only (this config has "
                f"task={self.task}): the other tasks answer with character spans of the text "
                "as given, which a correction would move."
            )
        if self.training.metric_for_best is None:
            self.training.metric_for_best = task.default_metric
        valid = task.metric_names(self.data.multi_label)
        if self.training.metric_for_best not in valid:
            close = difflib.get_close_matches(self.training.metric_for_best, valid, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"training.metric_for_best={self.training.metric_for_best!r} is not a metric of "
                f"{self.task}{' (multi-label)' if self.data.multi_label else ''}.{hint} Choose one of: {', '.join(valid)}."
            )
        if self.name is None:
            self.name = Path(self.training.output_dir).name
        if self.model.init_from is not None:
            check_init_task(self.task, task)
        if self.adapt is not None and not isinstance(self.adapt, AdaptConfig):
            self.adapt = build_dataclass(AdaptConfig, self.adapt, "adapt")
        if self.hpo is not None and not isinstance(self.hpo, HpoConfig):
            self.hpo = build_dataclass(HpoConfig, self.hpo, "hpo")
        if self.prompting is not None and not isinstance(self.prompting, PromptingConfig):
            self.prompting = build_dataclass(PromptingConfig, self.prompting, "prompting")
        if self.prompting is not None and self.task != "classification":
            raise ConfigError(
                f"prompting applies to task=classification only (this config has task={self.task})."
            )
        if (
            self.hpo is not None
            and self.hpo.pruner != "none"
            and self.training.eval_strategy == "no"
        ):
            raise ConfigError(
                f"hpo.pruner={self.hpo.pruner} judges trials by their evaluations during "
                "training: set training.eval_strategy=epoch (or steps), or hpo.pruner=none."
            )


# --- loading -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so ``eval_strategy: no`` stays "no"."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def read_yaml_file(path: str | Path, what: str = "Config file") -> dict:
    """A YAML file (YAML 1.2 booleans) holding a mapping; empty file: ``{}``.

    Raises:
        FileNotFoundError: the file does not exist (``what`` names it in the message).
        ConfigError: the file is not valid YAML, or holds something other than a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist.")
    try:
        tree = _yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the config as UTF-8."
        ) from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {tree!r}.")
    return tree


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}.")
        (item,) = typing.get_args(hint) or (Any,)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}.")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 5e-4 as a string
        except ValueError:
            pass
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}.")
    if hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise ConfigError(
            f"{where} must be {hint.__name__}, got {value!r} ({type(value).__name__})."
        )
    return value


def build_dataclass(cls: type, data: Any, where: str = "") -> Any:
    """A config dataclass built from a mapping, nested dataclasses too, every value type-checked.

    Args:
        cls: the dataclass (``RunConfig``, a task's options, ``ServeSettings``...).
        data: the mapping (None: all defaults).
        where: the dotted key of ``data`` in the whole config, for messages (``""``: the top).

    Raises:
        ConfigError: an unknown key (naming the nearest valid one), a wrong type, or a value
            the dataclass refuses.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the config'} must be a mapping of keys, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f" Did you mean {(where + '.') if where else ''}{close[0]}?" if close else ""
            raise ConfigError(
                f"Unknown config key {dotted!r}.{hint} Valid keys here: {', '.join(names)}."
            )
        hint_type = hints[key]
        if dataclasses.is_dataclass(hint_type):
            kwargs[key] = build_dataclass(hint_type, value, dotted)
        else:
            kwargs[key] = _check_type(value, hint_type, dotted)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from exc


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a config mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"Override {item!r} is not of the form key.sub=value (e.g. training.epochs=5)."
            )
        key, raw = item.split("=", 1)
        try:
            value = _yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. "@x"): take it as a plain string
        _set_dotted(tree, key.strip(), value)
    return tree


def load_config(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> RunConfig:
    """Load and validate a run config.

    Args:
        source: a YAML file path, an already parsed mapping, or None for all defaults.
        overrides: ``key.sub=value`` strings applied on top.

    Raises:
        ConfigError: a misspelt key (naming the nearest valid one), a wrong type or an
            impossible combination.
        FileNotFoundError: the YAML file does not exist.
    """
    if source is None:
        tree: dict = {}
    elif isinstance(source, dict):
        tree = dict(source)
    elif isinstance(source, str | os.PathLike):
        tree = read_yaml_file(source)
    else:
        raise ConfigError(
            f"A run config is a mapping of settings or a YAML file's path, got {source!r:.80}."
        )
    tree = apply_overrides(tree, list(overrides or []))
    return build_dataclass(RunConfig, tree, "")


def build_task_options(task: Any, values: Any) -> Any:
    """The task's typed options (its ``options_class``) built from a mapping, or None.

    Raises:
        ConfigError: options given to a task that has none, or a misspelt option.
    """
    options_class = getattr(task, "options_class", None)
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = dataclasses.asdict(values)
    if options_class is None:
        if values:
            raise ConfigError(
                f"task={task.name} takes no task_options; remove {sorted(values)} from the config."
            )
        return None
    return build_dataclass(options_class, values or {}, "task_options")


def config_to_dict(config: RunConfig) -> dict:
    """The config as plain data (what goes into YAML and the artifact)."""
    return dataclasses.asdict(config)
