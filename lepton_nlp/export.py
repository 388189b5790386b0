"""Export an artifact: fold a LoRA-family adapter into the base model's weights."""

from __future__ import annotations

from pathlib import Path

import yaml

from lepton_nlp.artifacts import ArtifactError, read_artifact, write_artifact
from lepton_nlp.peft_methods import METHODS

__all__ = ["merge_artifact"]


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
    predictor = Predictor.from_artifact(path, device="cpu")
    merged = predictor.model.merge_and_unload()
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
    )
