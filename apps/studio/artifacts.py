"""What the pages need from an artifact folder: its saved spec, whether it knows a data
set's labels (and which models do), and the folder as a zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from apps.studio.errors import StudioError

__all__ = ["artifact_spec", "artifact_zip", "fitting_models", "label_mismatch", "unknown_labels"]


def unknown_labels(model_labels: list[str] | set[str], labels: set[str] | None) -> list[str]:
    """The labels of the data that the model was not trained on (sorted; [] when it fits)."""
    return sorted((labels or set()) - set(model_labels))


def fitting_models(models: list[dict], task: str, labels: set[str] | None) -> list[dict]:
    """The catalogue's models of ``task`` that know every one of ``labels``."""
    fit = []
    for model in models:
        if model["task"] != task:
            continue
        try:
            known = artifact_spec(model["path"]).labels
        except StudioError:
            continue
        if not unknown_labels(known, labels):
            fit.append(model)
    return fit


def label_mismatch(
    model: dict, data_name: str, labels: set[str] | None, fitting: list[dict]
) -> str | None:
    """One line saying that ``model`` does not know the data's labels, and which models do;
    None when it knows them all."""
    known = artifact_spec(model["path"]).labels
    unknown = unknown_labels(known, labels)
    if not unknown:
        return None
    shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
    others = [m["name"] for m in fitting if m["path"] != model["path"]]
    offer = (
        f"Models whose labels fit: {', '.join(others)}."
        if others
        else "No model here knows them: train one on this data on the Train page."
    )
    return (
        f"{model['name']} does not know {len(unknown)} of the {len(labels or ())} labels in "
        f"{data_name} ({shown}); it was trained on {len(known)} others. {offer}"
    )


def artifact_spec(path: str | Path) -> Any:
    """The task spec saved in an artifact folder (labels, options), without loading the model.

    Raises:
        StudioError: the folder is gone or is not a complete artifact.
    """
    from lepton_nlp.artifacts import ArtifactError, read_artifact

    try:
        return read_artifact(path).spec
    except (ArtifactError, OSError, KeyError, ValueError) as error:
        raise StudioError(
            f"The model folder {path} cannot be read ({error}); choose another model or train "
            "it again."
        ) from None


def artifact_zip(path: str | Path) -> bytes:
    """The artifact folder as a zip (for download), without TensorBoard logs.

    Only the folder's own files go in: symlinks are left out (``read_artifact`` refuses a
    folder whose links lead outside it), so the zip never carries a file from elsewhere."""
    from lepton_nlp.artifacts import read_artifact

    info = read_artifact(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(info.path.rglob("*")):
            inside = file.relative_to(info.path)
            if any(
                (info.path / Path(*inside.parts[: i + 1])).is_symlink()
                for i in range(len(inside.parts))
            ):
                continue
            if file.is_file() and "logs" not in inside.parts:
                archive.write(file, Path(info.path.name) / inside)
    return buffer.getvalue()
