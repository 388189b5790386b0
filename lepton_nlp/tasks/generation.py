"""Summarization and translation: source text -> generated text, with two model families.

``causal``
    A decoder-only LM (SmolLM2-135M-Instruct, or any hub causal LM) fed an instruction
    prompt (through the chat template when the tokenizer has one); the loss covers the
    target tokens only, and batched generation pads on the left.
``seq2seq`` / ``encoder-decoder``
    Any ``AutoModelForSeq2SeqLM`` (T5, BART, Marian), or an ``EncoderDecoderModel``
    warm-started from an encoder (the packaged MiniLM) when the model is a bare encoder
    (:mod:`lepton_nlp.models.encoder_decoder`, with its own target vocabulary if asked).

The two tasks share this code and differ in their default metric, prompt and lengths.
Metrics: ROUGE-1/2/L (best reference per example), BLEU and chrF (sacrebleu, all references).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from lepton_nlp.errors import ConfigError, DataError
from lepton_nlp.evaluation.generation import as_references, generation_metrics
from lepton_nlp.hub import MINILM, SMOLLM2
from lepton_nlp.models.encoder_decoder import (
    load_encoder_decoder,
    load_target_tokenizer,
    train_target_tokenizer,
)
from lepton_nlp.tasks.base import TaskSpec, register_task

__all__ = [
    "FAMILIES",
    "GenerationOptions",
    "GenerationTask",
    "SummarizationOptions",
    "TranslationOptions",
    "resolve_family",
]

FAMILIES = ("auto", "causal", "seq2seq", "encoder-decoder")

SUMMARIZATION_PROMPT = "Summarize the following text in one or two sentences.\n\n{source}"
TRANSLATION_PROMPT = (
    "Translate the following {source_language} text into {target_language}.\n\n{source}"
)

_PAIR_CSV = (
    "a CSV file with a header row, a source column and a target column (name them under Columns)"
)
_PAIR_HF = "a Hugging Face datasets folder (save_to_disk) with a source and a target column"
SUMMARIZATION_FORMATS = {
    "jsonl": "one JSON object a line with the text and its summary (name the two fields under "
    "Columns, e.g. dialogue and summary)",
    "csv": _PAIR_CSV,
    "hf": _PAIR_HF,
}
TRANSLATION_FORMATS = {
    "parallel": "two aligned plain-text files, <name>.<source language> and <name>.<target "
    "language> (e.g. news.en and news.de), one sentence a line; upload both",
    "jsonl": "one JSON object a line with the text and its translation (name the two fields "
    "under Columns, e.g. en and de)",
    "csv": _PAIR_CSV,
    "hf": _PAIR_HF,
}


@dataclass
class GenerationOptions:
    """Options of the summarization and translation tasks (``task_options`` in a run config)."""

    family: str = "auto"
    """Model family: causal (decoder-only + prompt) | seq2seq (AutoModelForSeq2SeqLM) |
    encoder-decoder (EncoderDecoderModel, warm-started from an encoder) | auto (from the model config)."""
    prompt: str | None = None
    """Input template with ``{source}`` (also ``{source_language}``, ``{target_language}``).
    None: the task's instruction for causal models, the bare source for the other families."""
    system_prompt: str | None = None
    """Causal models with a chat template: a system message (None keeps the template's default)."""
    chat_template: bool = True
    """Causal models: wrap the prompt in the tokenizer's chat template when it has one."""
    max_target_length: int = 128
    """Longest target in tokens during training (longer targets are truncated)."""
    num_beams: int = 1
    """Beam size of generation (1: greedy)."""
    max_new_tokens: int = 64
    """Most tokens generated per input."""
    length_penalty: float = 1.0
    """Beam search: exponent on the length when scoring (>1 favours longer outputs)."""
    no_repeat_ngram_size: int = 0
    """Forbid repeating any n-gram of this size (0: off)."""
    generate_options: dict[str, Any] = field(default_factory=dict)
    """Other ``transformers.GenerationConfig`` fields (e.g. ``repetition_penalty``)."""
    decoder_model: str | None = None
    """encoder-decoder warm start: the decoder's model (None: the encoder's own weights)."""
    tie_encoder_decoder: bool = False
    """encoder-decoder warm start: share encoder and decoder weights (fewer parameters)."""
    target_vocab_size: int = 0
    """encoder-decoder warm start: > 0 trains a cased WordPiece vocabulary of this size on the
    training targets for the decoder, its embeddings initialised from the encoder's pieces of
    each word. The packaged MiniLM vocabulary is lower-cased and strips accents, so without
    this its decoder cannot write German nouns or umlauts. Train with ``peft.method=full``
    (or list the decoder embeddings in ``peft.options.modules_to_save``)."""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(
                f"task_options.family={self.family!r}; choose one of {', '.join(FAMILIES)}."
            )
        if self.prompt is not None and "{source}" not in self.prompt:
            raise ConfigError(
                f"task_options.prompt={self.prompt!r} has no {{source}} placeholder for the input."
            )
        if self.prompt is not None:
            try:
                self.prompt.format(source="", source_language="", target_language="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"task_options.prompt has an unknown placeholder or stray brace ({exc!r}); "
                    "use {source}, {source_language}, {target_language}, and {{ }} for braces."
                ) from None
        if self.target_vocab_size and self.tie_encoder_decoder:
            raise ConfigError(
                "task_options.target_vocab_size gives the decoder a vocabulary of its own, so "
                "it cannot share weights with the encoder: set tie_encoder_decoder=false."
            )
        if self.target_vocab_size < 0 or 0 < self.target_vocab_size < 100:
            raise ConfigError(
                f"task_options.target_vocab_size={self.target_vocab_size}: use 0 (the model's "
                "own vocabulary) or a size of 100 or more (e.g. 4000)."
            )
        for name in ("num_beams", "max_new_tokens", "max_target_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"task_options.{name}={getattr(self, name)} must be at least 1.")
        if self.no_repeat_ngram_size < 0:
            raise ConfigError("task_options.no_repeat_ngram_size must be 0 (off) or more.")


@dataclass
class SummarizationOptions(GenerationOptions):
    """Summarization options (see :class:`GenerationOptions`)."""


@dataclass
class TranslationOptions(GenerationOptions):
    """Translation options (see :class:`GenerationOptions`)."""

    max_target_length: int = 96
    """Longest target in tokens during training (longer targets are truncated)."""
    max_new_tokens: int = 96
    """Most tokens generated per input."""
    source_language: str = "English"
    """Name of the source language for the prompt's ``{source_language}``."""
    target_language: str = "German"
    """Name of the target language for the prompt's ``{target_language}``."""


def resolve_family(model_path: str, requested: str = "auto") -> str:
    """The model family of ``model_path``: the requested one, or read from its config.

    Raises:
        ConfigError: ``seq2seq`` asked of a model that is not an encoder-decoder, or a model
            whose family cannot be told.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_MAPPING_NAMES,
    )

    config = AutoConfig.from_pretrained(model_path)
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    if requested == "seq2seq" and not is_seq2seq:
        raise ConfigError(
            f"task_options.family=seq2seq, but {model_path} ({config.model_type}) is not an "
            "encoder-decoder. Use family=encoder-decoder to warm-start one from this encoder, "
            "or family=causal for a decoder-only model."
        )
    if requested != "auto":
        return requested
    if config.model_type == "encoder-decoder":
        return "encoder-decoder"
    if is_seq2seq:
        return "seq2seq"
    architectures = config.architectures or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    if (
        config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        return "causal"
    if config.model_type in MODEL_MAPPING_NAMES:
        return "encoder-decoder"  # a bare encoder (BERT-like): warm-start an EncoderDecoderModel
    raise ConfigError(
        f"Cannot tell the model family of {model_path} ({config.model_type}); set "
        "task_options.family to causal, seq2seq or encoder-decoder."
    )


def _options(spec: TaskSpec, options_class: type) -> GenerationOptions:
    known = {f.name for f in dataclasses.fields(options_class)}
    return options_class(**{k: v for k, v in spec.options.items() if k in known})


def _references(record: dict) -> list[str]:
    if "target" not in record:
        raise DataError(f"A record has no 'target' (reference) to score against: {record!r:.200}.")
    try:
        return as_references(record["target"])
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _decoder_tokenizer(tokenizer: Any, spec: TaskSpec) -> Any:
    """The tokenizer of the targets: the run's own target vocabulary, else the model's."""
    serialized = spec.extra.get("target_tokenizer")
    return load_target_tokenizer(serialized) if serialized else tokenizer


class _PadCollator:
    """Right-pads ``input_ids`` and ``attention_mask`` with the pad id and ``labels`` with -100."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        # Decoder inputs are padded at the end, where causal attention never looks back and
        # the labels are ignored, so their pad value does not matter.
        fills = {
            "input_ids": self.pad_id,
            "attention_mask": 0,
            "labels": -100,
            "decoder_input_ids": 0,
        }
        batch = {}
        for key, fill in fills.items():
            if key not in features[0]:
                continue
            size = (
                width
                if key in ("input_ids", "attention_mask")
                else max(len(f[key]) for f in features)
            )
            batch[key] = torch.tensor(
                [list(f[key]) + [fill] * (size - len(f[key])) for f in features], dtype=torch.long
            )
        return batch


class GenerationTask:
    """Source text -> generated text (summaries, translations) with a causal or seq2seq model."""

    record_kind = "pair"
    evaluate_by_prediction = True

    def __init__(
        self,
        name: str,
        default_metric: str,
        default_prompt: str,
        options_class: type[GenerationOptions],
        *,
        data_formats: dict[str, str],
        headline_metrics: tuple[str, ...],
        base_models: tuple[str, ...],
        settings: dict[str, Any],
        model_settings: dict[str, dict[str, Any]] | None = None,
    ):
        self.name = name
        self.version = f"{name}.v1"
        self.default_metric = default_metric
        self.default_prompt = default_prompt
        self.options_class = options_class
        self.peft_task_type = "CAUSAL_LM"
        """The default; a seq2seq run records ``SEQ_2_SEQ_LM`` in ``spec.extra["peft_task_type"]``."""
        self.data_formats = data_formats
        self.headline_metrics = headline_metrics
        self.base_models = base_models
        self._settings = settings
        self._model_settings = model_settings or {}

    def training_defaults(self, base_model: str = "") -> dict[str, Any]:
        """Starting settings of a run on ``base_model`` (LoRA r=16 unless ``method`` says
        otherwise): a causal LM wants a longer prompt window, a smaller batch and LoRA where
        the encoder-decoder trains in full."""
        return {"method": "lora", **self._settings, **self._model_settings.get(base_model, {})}

    def default_options(self, max_length: int, base_model: str = "") -> dict[str, Any]:
        """Options that fit ``max_length`` and ``base_model``. MiniLM, when the task offers
        it, is warm-started as an encoder-decoder: its vocabulary is lower-cased and
        accent-stripped, so the decoder gets a cased vocabulary trained on the targets (as
        in ``configs/translation_multi30k.yaml``) and targets as long as the sources."""
        if base_model != MINILM or MINILM not in self.base_models:
            return {}
        return {
            "family": "encoder-decoder",
            "target_vocab_size": 4000,
            "max_target_length": max_length,
            "max_new_tokens": max_length,
            "no_repeat_ngram_size": 3,
        }

    # --- data ------------------------------------------------------------------------------

    def read_records(self, data: Any, path: str) -> list[dict]:
        from lepton_nlp.data.pairs import read_pair_records

        return read_pair_records(data, path)

    def metric_names(self, multi_label: bool) -> list[str]:
        """ROUGE F-measures in [0, 1]; BLEU and chrF in [0, 100] (sacrebleu)."""
        return ["rougeL", "rouge1", "rouge2", "bleu", "chrf", "loss"]

    def label_space(self, records: list[dict]) -> list[str]:
        if not records:
            raise DataError(
                "The training set is empty: give data.train a file with (source, target) pairs."
            )
        return []

    def check_records(self, records: list[dict], spec: TaskSpec, split: str) -> None:
        for i, record in enumerate(records):
            if not str(record.get("source") or "").strip():
                raise DataError(f"The {split} data, record {i}: no source text.")
            _references(record)

    # --- model -----------------------------------------------------------------------------

    def _family(self, spec: TaskSpec, model_path: str) -> str:
        if "family" not in spec.extra:
            options = _options(spec, self.options_class)
            spec.extra["family"] = resolve_family(model_path, options.family)
        return spec.extra["family"]

    def prepare_tokenizer(self, tokenizer: Any, spec: TaskSpec) -> Any:
        """Resolve the family (saved in ``spec.extra``), give the tokenizer a pad token and side."""
        family = self._family(spec, tokenizer.name_or_path)
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ConfigError(
                    f"The tokenizer of {tokenizer.name_or_path} has neither a pad nor an eos token."
                )
            tokenizer.pad_token = tokenizer.eos_token
        # Decoder-only batches are padded on the left so every prompt ends where generation starts.
        tokenizer.padding_side = "left" if family == "causal" else "right"
        if family == "encoder-decoder" and "decoder_start_token_id" not in spec.extra:
            start = (
                tokenizer.cls_token_id
                if tokenizer.cls_token_id is not None
                else tokenizer.bos_token_id
            )
            end = (
                tokenizer.sep_token_id
                if tokenizer.sep_token_id is not None
                else tokenizer.eos_token_id
            )
            if start is None or end is None:
                raise ConfigError(
                    f"Cannot warm-start an encoder-decoder from {tokenizer.name_or_path}: its "
                    "tokenizer has no [CLS]/bos token to start decoding or [SEP]/eos to stop."
                )
            spec.extra.update(decoder_start_token_id=start, eos_token_id=end)
        if family == "seq2seq" and "decoder_start_token_id" not in spec.extra:
            from transformers import AutoConfig

            # Recorded at training time (the tokenizer still sits beside the model's config).
            start = AutoConfig.from_pretrained(tokenizer.name_or_path).decoder_start_token_id
            if start is not None:
                spec.extra["decoder_start_token_id"] = start
        spec.extra["peft_task_type"] = "CAUSAL_LM" if family == "causal" else "SEQ_2_SEQ_LM"
        return tokenizer

    def prepare_spec(self, spec: TaskSpec, splits: dict[str, list[dict]], tokenizer: Any) -> None:
        """Train the decoder's own vocabulary on the training targets when the options ask."""
        options = _options(spec, self.options_class)
        if not options.target_vocab_size or "target_tokenizer" in spec.extra:
            return
        if spec.extra.get("family") != "encoder-decoder":
            raise ConfigError(
                "task_options.target_vocab_size applies to family=encoder-decoder (a decoder "
                f"warm-started from an encoder), not to this run's {spec.extra.get('family')}."
            )
        texts = [ref for record in splits["train"] for ref in _references(record)]
        serialized = train_target_tokenizer(texts, options.target_vocab_size)
        target = load_target_tokenizer(serialized)
        spec.extra.update(
            target_tokenizer=serialized,
            decoder_start_token_id=target.cls_token_id,
            eos_token_id=target.sep_token_id,
            decoder_pad_token_id=target.pad_token_id,
        )

    def load_model(self, model_path: str, spec: TaskSpec) -> Any:
        family = self._family(spec, model_path)
        if family == "causal":
            from transformers import AutoModelForCausalLM

            return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        if family == "seq2seq":
            from transformers import AutoModelForSeq2SeqLM

            return AutoModelForSeq2SeqLM.from_pretrained(model_path, dtype=torch.float32)
        return self._encoder_decoder(model_path, spec)

    def _encoder_decoder(self, model_path: str, spec: TaskSpec) -> Any:
        options = _options(spec, self.options_class)
        return load_encoder_decoder(
            model_path,
            decoder_start_token_id=spec.extra["decoder_start_token_id"],
            eos_token_id=spec.extra["eos_token_id"],
            decoder_model=options.decoder_model,
            tie_encoder_decoder=options.tie_encoder_decoder,
            target_tokenizer=spec.extra.get("target_tokenizer"),
            decoder_pad_token_id=spec.extra.get("decoder_pad_token_id"),
        )

    # --- inputs ----------------------------------------------------------------------------

    def _prompt_text(self, options: GenerationOptions, source: str, family: str) -> str:
        template = options.prompt or (self.default_prompt if family == "causal" else "{source}")
        return template.format(
            source=source,
            source_language=getattr(options, "source_language", ""),
            target_language=getattr(options, "target_language", ""),
        )

    def _render_causal(self, tokenizer: Any, text: str, options: GenerationOptions) -> list[int]:
        if options.chat_template and getattr(tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": text}]
            if options.system_prompt is not None:
                messages.insert(0, {"role": "system", "content": options.system_prompt})
            rendered = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return tokenizer(rendered, add_special_tokens=False)["input_ids"]
        return tokenizer(text)["input_ids"]

    def _causal_prompt(self, tokenizer: Any, source: str, spec: TaskSpec) -> list[int]:
        """Prompt ids of one source, the source cut (not the instruction) when too long."""
        options = _options(spec, self.options_class)
        ids = self._render_causal(tokenizer, self._prompt_text(options, source, "causal"), options)
        if len(ids) <= spec.max_length:
            return ids
        overhead = len(
            self._render_causal(tokenizer, self._prompt_text(options, "", "causal"), options)
        )
        budget = max(1, spec.max_length - overhead)
        source_ids = tokenizer(source, add_special_tokens=False)["input_ids"][:budget]
        cut = tokenizer.decode(source_ids, skip_special_tokens=True)
        return self._render_causal(tokenizer, self._prompt_text(options, cut, "causal"), options)

    def _target_ids(self, tokenizer: Any, target: str, spec: TaskSpec, family: str) -> list[int]:
        options = _options(spec, self.options_class)
        limit = options.max_target_length
        if family == "causal":
            ids = tokenizer(target, add_special_tokens=False)["input_ids"][: limit - 1]
            return [*ids, tokenizer.eos_token_id]
        target_tokenizer = _decoder_tokenizer(tokenizer, spec)
        ids = target_tokenizer(text_target=target, truncation=True, max_length=limit)["input_ids"]
        start = spec.extra.get("decoder_start_token_id")
        if start is not None and ids and ids[0] == start:
            # The model puts the start token in front itself (shifting labels right).
            ids = ids[1:]
        return ids

    def encode(self, records: list[dict], tokenizer: Any, spec: TaskSpec) -> list[dict]:
        """Tokenize pairs; a record with several references trains on the first one."""
        family = self._family(spec, tokenizer.name_or_path)
        options = _options(spec, self.options_class)
        features = []
        for record in records:
            target = _references(record)[0]
            labels = self._target_ids(tokenizer, target, spec, family)
            if family == "causal":
                prompt = self._causal_prompt(tokenizer, record["source"], spec)
                input_ids = prompt + labels
                # The loss covers the target only: the prompt's positions are ignored (-100).
                feature = {
                    "input_ids": input_ids,
                    "attention_mask": [1] * len(input_ids),
                    "labels": [-100] * len(prompt) + labels,
                }
            else:
                text = self._prompt_text(options, record["source"], family)
                encoded = tokenizer(text, truncation=True, max_length=spec.max_length)
                feature = {
                    "input_ids": encoded["input_ids"],
                    "attention_mask": encoded["attention_mask"],
                    "labels": labels,
                }
                start = spec.extra.get("decoder_start_token_id")
                if start is not None:
                    # Given explicitly (labels shifted right), as the Trainer's label
                    # smoothing takes the labels away before the model could shift them.
                    feature["decoder_input_ids"] = [start, *labels[:-1]]
            features.append(feature)
        return features

    def collator(self, tokenizer: Any) -> _PadCollator:
        return _PadCollator(tokenizer.pad_token_id)

    def compute_metrics(self, logits: Any, label_ids: Any, spec: TaskSpec) -> dict[str, float]:
        """Unused: metrics come from generated text (``evaluate_by_prediction``)."""
        return {}

    def prepare_input(self, item: Any) -> dict:
        if isinstance(item, str):
            source = item
        elif isinstance(item, dict):
            source = item.get("source", item.get("text"))
        else:
            source = None
        if not isinstance(source, str) or not source.strip():
            raise DataError(
                f"{self.name} input must be a string or {{'source': ...}} (or 'text'), got {item!r:.200}."
            )
        return {"source": source}

    def input_length(self, item: dict) -> int:
        return len(item["source"])

    # --- generation ------------------------------------------------------------------------

    def generation_config(self, model: Any, tokenizer: Any, spec: TaskSpec) -> Any:
        """The model's generation config with this run's options, deterministic (no sampling)."""
        from transformers import GenerationConfig

        options = _options(spec, self.options_class)
        base = getattr(model, "generation_config", None)
        config = copy.deepcopy(base) if base is not None else GenerationConfig()
        eos = spec.extra.get("eos_token_id", tokenizer.eos_token_id)
        config.update(
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            max_length=None,
            num_beams=options.num_beams,
            max_new_tokens=options.max_new_tokens,
            length_penalty=options.length_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            early_stopping=options.num_beams > 1,
            pad_token_id=spec.extra.get("decoder_pad_token_id", tokenizer.pad_token_id),
            eos_token_id=eos,
        )
        if "decoder_start_token_id" in spec.extra:
            config.decoder_start_token_id = spec.extra["decoder_start_token_id"]
            config.bos_token_id = spec.extra["decoder_start_token_id"]
        config.update(**options.generate_options)
        return config

    @torch.inference_mode()
    def predict_batch(
        self, model: Any, tokenizer: Any, items: list[dict], spec: TaskSpec
    ) -> list[dict]:
        family = self._family(spec, tokenizer.name_or_path)
        options = _options(spec, self.options_class)
        device = next(model.parameters()).device
        if family == "causal":
            prompts = [self._causal_prompt(tokenizer, item["source"], spec) for item in items]
            width = max(len(p) for p in prompts)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        else:
            texts = [self._prompt_text(options, item["source"], family) for item in items]
            batch = tokenizer(
                texts,
                truncation=True,
                max_length=spec.max_length,
                padding=True,
                return_tensors="pt",
            )
            input_ids, attention = batch["input_ids"], batch["attention_mask"]
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            generation_config=self.generation_config(model, tokenizer, spec),
        )
        output = output.cpu()
        width = input_ids.shape[1]
        if (
            family == "causal"
            and output.shape[1] >= width
            and torch.equal(output[:, :width], input_ids)
        ):
            # Decoder-only generate returns prompt + continuation; keep the continuation.
            output = output[:, width:]
        if "target_tokenizer" in spec.extra:
            # The run's WordPiece vocabulary: join "word ." back into "word.".
            texts = _decoder_tokenizer(tokenizer, spec).batch_decode(
                output, skip_special_tokens=True, clean_up_tokenization_spaces=True
            )
        else:
            texts = tokenizer.batch_decode(output, skip_special_tokens=True)
        return [{"generated_text": text.strip()} for text in texts]

    def evaluate_predictions(
        self, predictions: list[dict], records: list[dict], spec: TaskSpec
    ) -> dict[str, float]:
        """ROUGE-1/2/L (best of the references per example), BLEU and chrF (all references)."""
        return generation_metrics(
            [p["generated_text"] for p in predictions], [_references(r) for r in records]
        )


SUMMARIZATION = register_task(
    GenerationTask(
        "summarization",
        "rougeL",
        SUMMARIZATION_PROMPT,
        SummarizationOptions,
        data_formats=SUMMARIZATION_FORMATS,
        headline_metrics=("rouge1", "rouge2", "rougeL"),
        base_models=(SMOLLM2,),
        settings={"epochs": 1, "batch_size": 4, "learning_rate": 2e-4, "max_length": 512},
    )
)
TRANSLATION = register_task(
    GenerationTask(
        "translation",
        "bleu",
        TRANSLATION_PROMPT,
        TranslationOptions,
        data_formats=TRANSLATION_FORMATS,
        headline_metrics=("bleu", "chrf"),
        # MiniLM warm-started as an encoder-decoder reaches BLEU 10.6 on Multi30k where
        # SmolLM2, which knows little German, starts from 0.3 (README, Benchmarks).
        base_models=(MINILM, SMOLLM2),
        settings={
            "epochs": 10,
            "batch_size": 16,
            "learning_rate": 5e-4,
            "max_length": 64,
            "method": "full",
        },
        model_settings={
            SMOLLM2: {
                "epochs": 1,
                "batch_size": 4,
                "learning_rate": 2e-4,
                "max_length": 256,
                "method": "lora",
            }
        },
    )
)
