"""Several adapters on one base model: one copy of the encoder, small adapters and heads.

The apps' intent, sentiment and NER models are LoRA adapters on the same MiniLM. Loading
each as its own model keeps three copies of the encoder in memory; here the encoder is
loaded once, each artifact's adapter is added to it under its own name with peft's
multi-adapter support (``add_adapter`` + ``set_peft_model_state_dict``), and each task's
head (a few KB) sits in a model skeleton whose encoder attribute *is* the shared encoder.
A request names its adapter; the shared encoder switches to that adapter for the batch.

    multi = MultiAdapterPredictor.from_artifacts({"sentiment": "data/models/finance-sentiment",
                                                  "ner": "data/models/conll2003-ner"})
    multi.predict("sentiment", ["Profit rose 10%."])
    multi["ner"].predict(["Nokia opened a plant in Oulu."])   # a Predictor view
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from lepton_nlp.artifacts import ArtifactInfo, read_artifact
from lepton_nlp.errors import MultiAdapterError
from lepton_nlp.hub import resolve_model
from lepton_nlp.inference.predictor import Predictor
from lepton_nlp.inference.spelling import SpellingCorrector
from lepton_nlp.tasks import get_task

__all__ = ["MultiAdapterError", "MultiAdapterPredictor"]

#: peft methods whose adapters live inside the base layers and can be switched per batch.
SHAREABLE = ("lora", "adalora", "loha", "lokr", "ia3", "vera", "oft", "hra", "fourierft")


class _AdapterView(torch.nn.Module):
    """A task model whose encoder is the shared one; activates its adapter for each call."""

    def __init__(self, model: torch.nn.Module, shared: Any, name: str, lock: threading.Lock):
        super().__init__()
        self.model = model
        self._shared = [shared]  # a list, so the shared PeftModel is not a submodule here
        self.adapter_name = name
        self._lock = lock

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, **inputs):
        with self._lock:
            self._shared[0].set_adapter(self.adapter_name)
            return self.model(**inputs)


class _EncoderView(torch.nn.Module):
    """The shared encoder as one task sees it: hooks put on the view stay that task's."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.shared = encoder

    @property
    def pooler(self) -> Any:
        return getattr(self.shared, "pooler", None)

    def forward(self, *args, **kwargs):
        return self.shared(*args, **kwargs)


def _adapter_state(info: ArtifactInfo) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = info.weights_dir / "adapter_model.safetensors"
    if path.is_file():
        return load_file(str(path))
    # Tensors only: a pickle that names code to run is refused (read_artifact refuses .bin
    # files already; this holds for an ArtifactInfo built by hand too).
    return torch.load(info.weights_dir / "adapter_model.bin", map_location="cpu", weights_only=True)


class MultiAdapterPredictor:
    """Predictors for several artifacts that share one loaded base model."""

    def __init__(self, predictors: dict[str, Predictor], shared: Any, base_model: str):
        self.predictors = predictors
        self.shared = shared
        self.base_model = base_model

    @classmethod
    def from_artifacts(
        cls,
        artifacts: Mapping[str, str | Path],
        batch_size: int = 32,
        base_model: str | None = None,
        packing: bool = True,
    ) -> MultiAdapterPredictor:
        """Load ``{name: artifact folder}`` onto one copy of their common base model.

        ``packing``: run padding-free batches where the encoder allows
        (:mod:`lepton_nlp.inference.packing`).

        Raises:
            MultiAdapterError: no artifacts, different base models, a method whose adapter
                cannot be switched per batch (full fine-tuning, prompt learning).
        """
        from lepton_nlp.hf_imports import import_hf

        import_hf()
        from peft import PeftConfig, get_peft_model
        from peft.utils import set_peft_model_state_dict
        from transformers import AutoModel

        if not artifacts:
            raise MultiAdapterError("Give at least one artifact: {name: folder}.")
        infos = {name: read_artifact(path) for name, path in artifacts.items()}
        # An artifact trained from another run's weights (model.init_from) carries them in
        # base/: only adapters on those very weights share them.
        bases = {
            str(info.own_base) if info.own_base is not None else info.base_model
            for info in infos.values()
        }
        if len(bases) > 1 and base_model is None:
            raise MultiAdapterError(
                f"The artifacts were trained on different base models ({sorted(bases)}); "
                "only adapters of one base model can share it. Serve them separately."
            )
        for name, info in infos.items():
            if info.peft_method not in SHAREABLE:
                raise MultiAdapterError(
                    f"Artifact {name!r} ({info.path}) uses peft.method={info.peft_method}, which "
                    f"cannot share a base model per batch; shareable: {', '.join(SHAREABLE)}. "
                    "Load it with Predictor.from_artifact instead."
                )
        base_name = base_model or next(iter(bases))
        base_path = resolve_model(base_name)
        encoder = AutoModel.from_pretrained(base_path, add_pooling_layer=True)
        encoder.eval()
        shared = None
        lock = threading.Lock()
        predictors: dict[str, Predictor] = {}
        for name, info in infos.items():
            task = get_task(info.task_version)
            config = PeftConfig.from_pretrained(str(info.weights_dir))
            # On the bare encoder: no task type, the head is not the adapter's business.
            config.task_type = None
            config.modules_to_save = None
            config.inference_mode = True
            _strip_prefix(config, encoder.base_model_prefix)
            if shared is None:
                shared = get_peft_model(encoder, config, adapter_name=name)
            else:
                shared.add_adapter(name, config)
            state = _adapter_state(info)
            model = _skeleton(task, base_path, info, encoder)
            prefix = f"base_model.model.{model.base_model_prefix}."
            adapter = {
                "base_model.model." + k[len(prefix) :]: v
                for k, v in state.items()
                if k.startswith(prefix)
            }
            head = {
                k[len("base_model.model.") :]
                .replace(".modules_to_save.default", "")
                .replace(".modules_to_save", ""): v
                for k, v in state.items()
                if not k.startswith(prefix)
            }
            result = set_peft_model_state_dict(shared, adapter, adapter_name=name)
            unexpected = [k for k in result.unexpected_keys if name in k or "lora" in k]
            if unexpected:
                raise MultiAdapterError(
                    f"Adapter {name!r} ({info.path}) does not fit the base model: unexpected "
                    f"weights {unexpected[:3]}..."
                )
            _load_head(model, head, name, info)
            view = _AdapterView(model, shared, name, lock)
            tokenizer = _tokenizer(info)
            predictors[name] = Predictor(view.eval(), tokenizer, info, batch_size=batch_size)
            predictors[name].spelling = SpellingCorrector.for_artifact(info)
        if packing:
            from lepton_nlp.inference.packing import enable_packing

            enable_packing(shared)
        return cls(predictors, shared, base_name)

    @property
    def names(self) -> list[str]:
        return list(self.predictors)

    def __getitem__(self, name: str) -> Predictor:
        if name not in self.predictors:
            raise MultiAdapterError(
                f"Unknown adapter {name!r}; loaded: {', '.join(self.predictors)}."
            )
        return self.predictors[name]

    def predict(self, name: str, inputs: Iterable[Any]) -> list[dict]:
        """Predict ``inputs`` with the adapter called ``name``."""
        return self[name].predict(inputs)


def _strip_prefix(config: Any, prefix: str) -> None:
    """Module names saved against the task model (``bert.encoder...``) -> the bare encoder's."""

    def strip(name: str) -> str:
        return name[len(prefix) + 1 :] if name.startswith(prefix + ".") else name

    for attr in ("target_modules", "exclude_modules"):
        value = getattr(config, attr, None)
        if isinstance(value, list | set | tuple):
            setattr(config, attr, type(value)(strip(n) for n in value))
    for attr in ("rank_pattern", "alpha_pattern"):
        value = getattr(config, attr, None)
        if isinstance(value, dict):
            setattr(config, attr, {strip(k): v for k, v in value.items()})


def _tokenizer(info: ArtifactInfo):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(info.path / "tokenizer"))


def _skeleton(task: Any, base_path: str, info: ArtifactInfo, encoder: torch.nn.Module):
    """The task's model with no weights of its own but the head; its encoder is ``encoder``."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = _from_config(task, base_path, info)
    prefix = model.base_model_prefix
    if not hasattr(model, prefix):
        raise MultiAdapterError(
            f"{type(model).__name__} has no encoder attribute {prefix!r}; it cannot share a base."
        )
    configure = getattr(task, "configure_encoder", None)
    if configure is not None:
        # Hooks a task puts on its encoder (pooling) go on its own view, not the shared one.
        encoder = _EncoderView(encoder)
        configure(encoder, info.spec)
    setattr(model, prefix, encoder)
    # Everything left on the meta device is the head: give it real (empty) storage.
    for module_name, module in model.named_children():
        if module_name != prefix:
            module.to_empty(device="cpu")
    return model.eval()


def _from_config(task: Any, base_path: str, info: ArtifactInfo):
    """Build the task's model class from its config only (no weights read)."""
    from transformers import AutoConfig

    spec = info.spec
    config = AutoConfig.from_pretrained(
        base_path,
        num_labels=max(1, len(spec.labels)),
        id2label=dict(enumerate(spec.labels)),
        label2id={label: i for i, label in enumerate(spec.labels)},
    )
    classes = {
        "SEQ_CLS": "AutoModelForSequenceClassification",
        "TOKEN_CLS": "AutoModelForTokenClassification",
        "QUESTION_ANS": "AutoModelForQuestionAnswering",
    }
    if task.peft_task_type not in classes:
        raise MultiAdapterError(
            f"Task {task.name} ({task.peft_task_type}) cannot share a base model here yet; "
            "load it with Predictor.from_artifact."
        )
    import transformers

    return getattr(transformers, classes[task.peft_task_type]).from_config(config)


def _load_head(model: torch.nn.Module, head: dict, name: str, info: ArtifactInfo) -> None:
    prefix = model.base_model_prefix
    expected = {k for k in model.state_dict() if not k.startswith(prefix + ".")}
    missing = expected - set(head)
    if missing:
        raise MultiAdapterError(
            f"Adapter {name!r} ({info.path}) holds no weights for the head {sorted(missing)}; "
            "it was not trained with a saved head."
        )
    model.load_state_dict(head, strict=False)
