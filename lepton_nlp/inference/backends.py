"""Inference backends: the same model, run by eager torch, int8 torch, or ONNX Runtime.

A backend takes the loaded model (adapter already merged where it can be) and returns an
object the task's ``predict_batch`` can call like the model: ``model(**batch)`` giving
``.logits`` (or the task's output fields) on ``model.device``.

=============  ==============================================================================
``auto``       the default: ``torch-int8`` on a CPU when the artifact's backend check found
               int8 within 0.5 points of fp32 (:mod:`~lepton_nlp.inference.int8_check`),
               else ``torch``
``torch``      eager PyTorch, fp32 (bf16 on a GPU), LoRA-family adapters merged into the weights,
               padding-free batches (:mod:`~lepton_nlp.inference.packing`) where supported
``torch-int8`` ``torch``, then int8 quantization of every ``nn.Linear`` (CPU): int8 weights per
               output channel; activations int8 in the fixed ranges the artifact's calibration
               recorded (so a text's output never depends on the other texts in its batch),
               or per batch for an artifact without calibration
``onnx``       exported to ONNX (cached in the user cache), run by ONNX Runtime
``onnx-int8``  the ONNX model with ONNX Runtime's dynamic int8 quantization of MatMul weights
=============  ==============================================================================

Accuracy is re-measured for every backend by ``bench/inference_throughput.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from lepton_nlp.config import BACKEND_CHOICES
from lepton_nlp.errors import BackendError
from lepton_nlp.security import contained_path, safe_filename

__all__ = [
    "AUTO",
    "BACKENDS",
    "BackendError",
    "check_backend",
    "export_onnx",
    "onnx_cache",
    "prepare_backend",
    "resolve_backend",
]

log = logging.getLogger(__name__)

AUTO = "auto"
#: The backends themselves; a user may also ask for ``auto`` (``BACKEND_CHOICES``).
BACKENDS = tuple(name for name in BACKEND_CHOICES if name != AUTO)

#: Tasks whose models are plain ``model(**batch) -> logits`` functions that ONNX can hold.
ONNX_TASK_TYPES = {
    "SEQ_CLS": ("logits",),
    "TOKEN_CLS": ("logits",),
    "QUESTION_ANS": ("start_logits", "end_logits"),
}


def check_backend(name: str) -> str:
    if name not in BACKEND_CHOICES:
        import difflib

        close = difflib.get_close_matches(name, BACKEND_CHOICES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BackendError(
            f"Unknown backend {name!r}.{hint} Choose one of: {', '.join(BACKEND_CHOICES)}."
        )
    return name


def int8_available() -> bool:
    """Whether this torch build has a CPU engine for quantized Linear layers."""
    return any(e != "none" for e in torch.backends.quantized.supported_engines)


def resolve_backend(name: str, info: Any, device: str) -> str:
    """The backend ``name`` stands for with this artifact on this device.

    ``auto`` is ``torch`` on a GPU, and on a CPU ``torch-int8`` only when the artifact's
    backend check (``metrics.json`` ``backends``) found int8 within tolerance; any other
    name is itself.
    """
    check_backend(name)
    if name != AUTO:
        return name
    if not str(device).startswith("cpu"):
        return "torch"
    check = (getattr(info, "metrics", None) or {}).get("backends") or {}
    if check.get("cpu_default") == "torch-int8" and int8_available():
        return "torch-int8"
    return "torch"


def merge_adapter(model: Any) -> Any:
    """Fold a LoRA-family adapter into the base weights (no extra work per token); else as is."""
    if hasattr(model, "merge_and_unload"):
        config = getattr(model, "active_peft_config", None)
        if config is not None and not config.is_prompt_learning:
            try:
                return model.merge_and_unload()
            except (ValueError, NotImplementedError, AttributeError) as exc:
                log.info("Adapter kept unmerged (%s).", exc)
    return model


class _FixedRangeLinear(torch.nn.Module):
    """An int8 Linear whose activations are quantized in a fixed, calibrated range.

    A dynamically quantized Linear takes its activation scale from the minimum and maximum
    of the whole input, so a text's result would depend on the other texts in its batch.
    Here the scale comes from the range calibration recorded: every token is quantized the
    same way whatever else is in the batch. The kernel is fbgemm's, with the dynamic layer's
    int8 weights (per output channel) and its 7-bit activation range (``reduce_range``,
    which keeps AVX2's 16-bit sums from saturating): the calibrated range maps to 0..127.
    A value below it saturates at 0 (the range's low end); one above it still has the 8th
    bit, up to about twice the range, before it saturates at 255. Above the calibrated range
    a sum can saturate, a bounded error where an explicit clamp would cut the value to the
    range (and cost 5% more time); the backend check measures either.
    """

    def __init__(self, inner: torch.nn.Module, low: float, high: float):
        super().__init__()
        self.inner = inner  # keeps the packed weights (and shows in the module tree)
        self.low, self.high = float(min(low, 0.0)), float(max(high, 0.0))
        self.scale = max((self.high - self.low) / 127.0, 1e-8)
        self.zero_point = round(-self.low / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            rows, self.scale, self.zero_point, self.inner._packed_params._packed_params
        )
        return out.reshape(*x.shape[:-1], out.shape[-1])


def quantize_int8(
    model: torch.nn.Module, ranges: dict[str, list[float]] | None = None
) -> torch.nn.Module:
    """int8 Linear layers: weights per output channel; activations in ``ranges`` if given.

    Args:
        model: a float model (not changed: the quantized model is a copy).
        ranges: calibrated input range ``[low, high]`` per Linear module name
            (:func:`lepton_nlp.inference.int8_check.calibrate`); a layer without one, or
            no ranges at all, takes its activation range from each batch. Fixed ranges use
            fbgemm's kernels (x86); other engines (ARM's qnnpack) keep per-batch ranges.
    """
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks its quantized tensors as deprecated
        quantized = quantize_dynamic(
            model.float().cpu(), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        return quantized
    for name, module in list(quantized.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if full in (ranges or {}) and hasattr(child, "_packed_params"):
                setattr(module, child_name, _FixedRangeLinear(child, *ranges[full]))
    return quantized


class OnnxModel:
    """An ONNX Runtime session behind the call signature of a transformers model."""

    def __init__(self, path: Path, outputs: tuple[str, ...], threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = outputs
        self.device = torch.device("cpu")
        self.path = path

    def __call__(self, **batch: Any) -> SimpleNamespace:
        feed = {
            name: batch[name].detach().cpu().numpy().astype("int64")
            for name in self.inputs
            if name in batch
        }
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed and feed:
            # A task that leaves segment ids out (QA) means zeros, as the eager model does.
            feed["token_type_ids"] = feed["input_ids"] * 0
        missing = [name for name in self.inputs if name not in feed]
        if missing:
            raise BackendError(f"The ONNX model needs inputs {missing} the batch does not hold.")
        values = self.session.run(list(self.outputs), feed)
        return SimpleNamespace(
            **{name: torch.from_numpy(v) for name, v in zip(self.outputs, values, strict=True)}
        )

    def eval(self) -> OnnxModel:
        return self


def export_onnx(model: torch.nn.Module, tokenizer: Any, task: Any, path: Path) -> Path:
    """Export a (merged) transformers model to ONNX with dynamic batch and sequence axes."""
    if task.peft_task_type not in ONNX_TASK_TYPES:
        raise BackendError(
            f"ONNX export covers classification, NER and QA models; task {task.name} generates "
            "text or needs extra inputs. Use backend=torch for it."
        )
    outputs = ONNX_TASK_TYPES[task.peft_task_type]
    model = model.float().cpu().eval()
    sample = tokenizer(["an example sentence", "two"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Plain(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(**dict(zip(names, args, strict=True)))
            return tuple(getattr(out, name) for name in outputs)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes.update({name: {0: "batch"} for name in outputs})
    with torch.inference_mode():
        torch.onnx.export(
            _Plain(model),
            tuple(sample[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


def quantize_onnx(source: Path, target: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of an exported model."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp.onnx")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    os.replace(tmp, target)
    return target


def onnx_cache(info: Any, base_model: str | None = None) -> Path:
    """Where an artifact's ONNX files are kept: the user cache, keyed by artifact identity.

    Artifacts are replaced whole (never edited), so folder + creation time + base model
    identify the weights; nothing is written into the artifact itself.
    """
    import hashlib

    from lepton_nlp.hub import cache_dir

    key = f"{Path(info.path).resolve()}|{info.created}|{base_model or info.base_model}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    # The name comes from the artifact's own lepton_artifact.json: a folder name, never a path.
    name = safe_filename(info.name or Path(info.path).name, default="artifact", max_length=64)
    return contained_path(cache_dir() / "onnx", f"{name}-{digest}", "ONNX cache folder")


def prepare_backend(
    model: Any,
    tokenizer: Any,
    task: Any,
    backend: str,
    cache: Path | None = None,
    threads: int | None = None,
    packing: bool = True,
    int8_ranges: dict[str, list[float]] | None = None,
) -> Any:
    """Turn a loaded model into what ``backend`` runs.

    Args:
        model: the loaded model (a PeftModel or a plain transformers model).
        tokenizer: its tokenizer (for the ONNX export sample).
        task: the task adapter.
        backend: one of :data:`BACKENDS`.
        cache: folder where ONNX files are kept between runs (:func:`onnx_cache`, in the
            user cache); None exports to a temporary folder each time.
        threads: CPU threads for ONNX Runtime.
        packing: torch backends run padding-free batches where the architecture allows
            (:mod:`lepton_nlp.inference.packing`); the ONNX graphs are always padded.
        int8_ranges: ``torch-int8``: calibrated activation ranges per Linear layer.
    """
    from lepton_nlp.inference.packing import enable_packing

    if check_backend(backend) == AUTO:
        raise BackendError("prepare_backend needs a resolved backend; call resolve_backend first.")
    merged = merge_adapter(model)
    on_gpu = torch.cuda.is_available() and next(merged.parameters()).is_cuda
    if on_gpu and backend != "torch":
        raise BackendError(f"backend={backend} runs on the CPU; use backend=torch on a GPU.")
    if backend in ("torch", "torch-int8"):
        if backend == "torch-int8":
            ready = quantize_int8(merged, int8_ranges)  # a copy: packing goes on after
        else:
            ready = merged.to(torch.bfloat16) if on_gpu else merged
        if packing:
            enable_packing(ready)
        return ready
    if cache is None:
        import tempfile

        cache = Path(tempfile.mkdtemp(prefix="lepton-onnx-"))
    fp32 = cache / "model.onnx"
    if not fp32.is_file():
        export_onnx(merged, tokenizer, task, fp32)
    path = fp32
    if backend == "onnx-int8":
        path = cache / "model.int8.onnx"
        if not path.is_file():
            quantize_onnx(fp32, path)
    return OnnxModel(path, ONNX_TASK_TYPES[task.peft_task_type], threads)
