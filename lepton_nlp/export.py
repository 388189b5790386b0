"""Export an artifact: fold a LoRA-family adapter into the base model's weights, or to ONNX."""

from __future__ import annotations

from pathlib import Path

import yaml

from lepton_nlp.artifacts import RANGES_FILE, read_artifact, write_artifact
from lepton_nlp.errors import ArtifactError
from lepton_nlp.inference.spelling import SPELLING_FILE
from lepton_nlp.peft_methods import METHODS

__all__ = ["export_onnx_artifact", "merge_artifact"]


def merge_artifact(path: str | Path, output: str | Path, overwrite: bool = False) -> Path:
    """Merge the adapter of the artifact at ``path`` and write a full-weights artifact at ``output``.

    Raises:
        ArtifactError: the artifact has no adapter, or its method cannot be merged (soft prompts).
    """
    from lepton_nlp.inference import Predictor

    info = read_artifact(path)
    if info.peft_method == "full":
        raise ArtifactError(
            f"{path} already holds full weights ({info.peft_method}); nothing to merge."
        )
    method = METHODS[info.peft_method]
    if not method.mergeable:
        raise ArtifactError(
            f"{info.peft_method} adapters cannot be merged into the base weights (they add "
            f"{'virtual tokens' if info.peft_method in ('prompt', 'ptuning', 'prefix') else 'layers'}); "
            "serve the artifact as it is with Predictor.from_artifact."
        )
    predictor = Predictor.from_artifact(path, device="cpu", backend="torch", packing=False)
    merged = predictor.model  # from_artifact has folded the adapter into the weights
    if hasattr(merged, "peft_config"):
        raise ArtifactError(
            f"peft could not fold the {info.peft_method} adapter of {path} into the base "
            "weights; serve the artifact as it is with Predictor.from_artifact."
        )
    config = yaml.safe_load((info.path / "config.yaml").read_text(encoding="utf-8"))
    config["description"] = (
        config.get("description") or ""
    ) + f" (LoRA-family adapter '{info.peft_method}' merged into the base weights.)"
    config["peft"]["method"] = "full"
    return write_artifact(
        output,
        model=merged,
        tokenizer=predictor.tokenizer,
        task=predictor.task,
        config=config,
        spec=info.spec,
        metrics=info.metrics,
        data_sizes={},
        overwrite=overwrite,
        # The merged weights are the ones the int8 check calibrated and scored; the spelling
        # vocabulary goes with the model that reads corrected texts.
        extra_files=[
            info.path / name
            for name in (RANGES_FILE, SPELLING_FILE)
            if (info.path / name).is_file()
        ],
    )


def export_onnx_artifact(
    path: str | Path, output: str | Path, quantize: bool = False, overwrite: bool = False
) -> Path:
    """Write ``output/model.onnx`` (int8 with ``quantize``), the tokenizer, labels and a description.

    The ONNX model takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT)
    with dynamic batch and sequence axes and returns the task's logits.

    Raises:
        ArtifactError: ``output`` exists and ``overwrite`` is off.
        BackendError: the task's model cannot be exported (text generation).
    """
    import json
    import shutil
    import tempfile

    from lepton_nlp.inference import Predictor
    from lepton_nlp.inference.backends import export_onnx, quantize_onnx

    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ArtifactError(
            f"{output} already exists and is not empty; pass --overwrite to replace it."
        )
    info = read_artifact(path)
    predictor = Predictor.from_artifact(path, device="cpu", backend="torch", packing=False)
    staging = Path(
        tempfile.mkdtemp(
            prefix=f".{output.name}.", dir=output.parent if output.parent.exists() else None
        )
    )
    try:
        fp32 = export_onnx(
            predictor.model, predictor.tokenizer, predictor.task, staging / "model.onnx"
        )
        if quantize:
            quantize_onnx(fp32, staging / "model.int8.onnx")
            fp32.unlink()
            (staging / "model.int8.onnx").rename(staging / "model.onnx")
        predictor.tokenizer.save_pretrained(staging / "tokenizer")
        (staging / "labels.json").write_text(
            json.dumps(info.spec.labels, indent=1), encoding="utf-8"
        )
        (staging / "export.json").write_text(
            json.dumps(
                {
                    "source_artifact": str(info.path),
                    "name": info.name,
                    "task": info.task,
                    "base_model": info.base_model,
                    "peft_method": info.peft_method,
                    "format": "onnx-int8" if quantize else "onnx",
                    "max_length": info.spec.max_length,
                    "metrics": info.metrics.get("test") or info.metrics.get("validation") or {},
                    # The model was scored on spelling-corrected texts: a runtime outside
                    # lepton-nlp should correct them too (lepton_nlp.inference.spelling).
                    "spelling": SPELLING_FILE if (info.path / SPELLING_FILE).is_file() else None,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        if (info.path / SPELLING_FILE).is_file():
            shutil.copy2(info.path / SPELLING_FILE, staging / SPELLING_FILE)
        if output.exists():
            shutil.rmtree(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output
