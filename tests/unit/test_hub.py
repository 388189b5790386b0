"""Model names: local folders, packaged copies, and a clear error offline."""

from __future__ import annotations

import pytest

from lepton_nlp.hub import MINILM, ModelNotFoundError, available_models, resolve_model


def test_local_folder_resolves_to_itself(tiny_model):
    assert resolve_model(tiny_model) == tiny_model


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))


def test_unknown_name_offline_lists_what_is_available(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("bert-base-uncased")
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and MINILM in message


def test_unknown_name_online_is_checked_once_on_the_hub(monkeypatch):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    from lepton_nlp import hub

    monkeypatch.setattr(hub, "is_offline", lambda: False)
    asked = []

    class Hub:
        def model_info(self, name, timeout):
            asked.append((name, timeout))
            if name != "org/some-model":
                request = httpx.Request("GET", f"https://hub.invalid/api/models/{name}")
                raise RepositoryNotFoundError("404", response=httpx.Response(404, request=request))

    monkeypatch.setattr(huggingface_hub, "HfApi", Hub)
    assert resolve_model("org/some-model") == "org/some-model"
    assert asked == [("org/some-model", hub.HUB_TIMEOUT_S)]  # one short request, no retries
    with pytest.raises(ModelNotFoundError, match="No model 'org/typo' on the hub"):
        resolve_model("org/typo")


def test_packaged_minilm_resolves_to_its_folder():
    from pathlib import Path

    folder = Path(resolve_model(MINILM))
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert available_models()[MINILM].startswith("installed")


def test_sentence_pooling_reads_a_sentence_transformers_folder(tiny_model, tmp_path):
    import json

    from lepton_nlp.hub import sentence_pooling

    assert sentence_pooling(resolve_model("sentence-transformers/all-MiniLM-L6-v2")) == "mean"
    assert sentence_pooling(tiny_model) is None  # a plain transformers folder
    (tmp_path / "modules.json").write_text("not json")
    assert sentence_pooling(tmp_path) is None
    modules = [{"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    both = {"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(both))
    assert sentence_pooling(tmp_path) is None  # two modes at once: none of ours
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True})
    )
    assert sentence_pooling(tmp_path) == "cls"
