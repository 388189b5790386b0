"""Cross-domain transfer: model.init_from (start from another run's weights) and
``lepton-nlp adapt`` (unsupervised SimCSE on unlabelled text), on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lepton_nlp.artifacts import read_artifact
from lepton_nlp.cli import main
from lepton_nlp.config import load_config
from lepton_nlp.errors import ArtifactError, ConfigError
from lepton_nlp.inference import Predictor
from lepton_nlp.training import train
from lepton_nlp.training.transfer import (
    INIT_FILE,
    adapt_encoder,
    delete_words,
    read_unlabelled,
)
from tests.conftest import FIXTURES, tiny_training

TEXTS = [
    "the kettle boils quickly",
    "the kettle started leaking",
    "net sales rose to a record",
    "operating profit fell sharply",
]


def _run(tiny_model: str, out: Path, *extra: str, source: str = "csv"):
    data = (
        ["data.format=csv", f"data.train={FIXTURES / 'classification.csv'}"]
        if source == "csv"
        else ["data.format=fpb", f"data.train={FIXTURES / 'fpb_style.txt'}"]
    )
    return load_config(
        None,
        [
            "task=classification",
            *data,
            "data.validation_size=0.25",
            *tiny_training(tiny_model),
            "training.epochs=1",
            "evaluation.backend_check=false",
            f"training.output_dir={out}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def source(tiny_model, tmp_path_factory) -> Path:
    """A LoRA artifact trained on the three-label FPB-style fixture."""
    out = tmp_path_factory.mktemp("transfer") / "source"
    train(_run(tiny_model, out, source="fpb"))
    return out


def _encoder_state(model) -> dict[str, torch.Tensor]:
    encoder = getattr(model, model.base_model_prefix)
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _merged_encoder(artifact: Path) -> dict[str, torch.Tensor]:
    predictor = Predictor.from_artifact(artifact, device="cpu", backend="torch", packing=False)
    return _encoder_state(predictor.model)


def test_init_from_artifact_starts_from_its_merged_encoder_with_a_new_head(
    tiny_model, source, tmp_path
):
    from transformers import AutoModel

    config = _run(tiny_model, tmp_path / "target", f"model.init_from={source}")
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import load_data
    from lepton_nlp.training.transfer import prepare_init

    task = get_task("classification")
    _, spec = load_data(config, task)
    init = prepare_init(config, task, spec, tmp_path / "start")
    assert init.kind == "artifact" and not init.kept_head  # labels differ: a new head
    started = AutoModel.from_pretrained(init.path).state_dict()
    merged = _merged_encoder(source)
    bare = AutoModel.from_pretrained(tiny_model).state_dict()
    for name, value in merged.items():
        assert torch.allclose(started[name], value, atol=1e-6), name
    # The source's adapter really moved the encoder: starting from it is not the bare base.
    assert any(not torch.allclose(bare[k], merged[k]) for k in merged)
    assert json.loads((init.path / INIT_FILE).read_text())["task"] == "classification"


def test_transferred_artifact_is_self_contained(tiny_model, source, tmp_path):
    copy = tmp_path / "source-copy"
    shutil.copytree(source, copy)
    result = train(_run(tiny_model, tmp_path / "target", f"model.init_from={copy}"))
    info = read_artifact(result.artifact)
    assert info.own_base is not None and (info.own_base / INIT_FILE).is_file()
    assert json.loads((result.artifact / "lepton_artifact.json").read_text())["init_from"] == str(
        copy
    )
    assert "starting weights" in (result.artifact / "README.md").read_text()
    assert not (tmp_path / "target.init").exists()  # the staging folder is gone
    texts = ["the kettle boils quickly", "the kettle started leaking"]
    # fp32 both times: the run's own predictor may have chosen int8 (a timed choice).
    expected = Predictor.from_artifact(result.artifact, backend="torch").predict(texts)
    shutil.rmtree(copy)  # the source is not needed to load the new artifact
    loaded = Predictor.from_artifact(result.artifact, backend="torch").predict(texts)
    for a, b in zip(expected, loaded, strict=True):
        assert a["label"] == b["label"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    # Adapters on other starting weights cannot share one base model.
    from lepton_nlp.errors import MultiAdapterError
    from lepton_nlp.inference.multi import MultiAdapterPredictor

    with pytest.raises(MultiAdapterError, match="different base models"):
        MultiAdapterPredictor.from_artifacts({"plain": source, "transferred": result.artifact})
    # Without base/, the adapter would sit on the bare base model: other weights. (Compared
    # as weights, not scores: a barely trained tiny model's scores can agree to 1e-4.)
    bare = Predictor.from_artifact(
        result.artifact, device="cpu", backend="torch", packing=False, base_model=tiny_model
    )
    own, on_bare = _merged_encoder(result.artifact), _encoder_state(bare.model)
    assert own.keys() == on_bare.keys()
    assert any(not torch.equal(own[k], on_bare[k]) for k in own)


def test_same_task_and_labels_keep_the_source_head(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification

    source = tmp_path / "csv-source"
    train(_run(tiny_model, source, "peft.method=full"))
    config = _run(tiny_model, tmp_path / "again", f"model.init_from={source}")
    from lepton_nlp.tasks import get_task
    from lepton_nlp.training.trainer import load_data
    from lepton_nlp.training.transfer import prepare_init

    task = get_task("classification")
    _, spec = load_data(config, task)
    init = prepare_init(config, task, spec, tmp_path / "start")
    assert init.kept_head
    started = AutoModelForSequenceClassification.from_pretrained(init.path).classifier
    trained = AutoModelForSequenceClassification.from_pretrained(source / "model").classifier
    assert torch.equal(started.weight, trained.weight)


def test_init_from_errors_say_what_is_wrong(tiny_model, source, tmp_path):
    from transformers import BertConfig, BertModel

    with pytest.raises(ArtifactError, match="no such folder"):
        train(_run(tiny_model, tmp_path / "a", f"model.init_from={tmp_path / 'missing'}"))
    other = tmp_path / "wide-bert"
    BertModel(
        BertConfig(
            vocab_size=100,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).save_pretrained(other)
    with pytest.raises(ConfigError, match="different base architecture.*hidden_size"):
        train(_run(tiny_model, tmp_path / "b", f"model.init_from={other}"))
    with pytest.raises(ConfigError, match="has no encoder with a task head"):
        load_config(None, ["task=summarization", f"model.init_from={source}"])
    with pytest.raises(ConfigError, match="Did you mean model.init_from"):
        load_config(None, [f"model.init_form={source}"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArtifactError, match="neither a lepton-nlp artifact"):
        train(_run(tiny_model, tmp_path / "c", f"model.init_from={empty}"))


def test_adapt_moves_the_encoder_and_its_folder_starts_a_run(tiny_model, tmp_path):
    from transformers import AutoModel

    texts = tmp_path / "unlabelled.txt"
    lines = (FIXTURES / "classification.csv").read_text().splitlines()[1:]
    texts.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n\n")
    config = _run(
        tiny_model,
        tmp_path / "run",
        f"adapt.output_dir={tmp_path / 'adapted'}",
        "adapt.batch_size=8",
        "adapt.epochs=2",
        "adapt.learning_rate=1e-3",
        "training.progress=false",
    )
    result = adapt_encoder(config, texts)
    summary = json.loads((result.output / "adapt.json").read_text())
    assert summary["texts"] == 48 and summary["steps"] == 12 and summary["method"] == "tsdae"
    adapted = AutoModel.from_pretrained(result.output).state_dict()
    bare = AutoModel.from_pretrained(tiny_model).state_dict()
    moved = [k for k in bare if k in adapted and not torch.allclose(bare[k], adapted[k])]
    assert len(moved) > len(bare) // 2  # the encoder itself was trained
    trained = train(_run(tiny_model, tmp_path / "target", f"model.init_from={result.output}"))
    init = json.loads((read_artifact(trained.artifact).own_base / INIT_FILE).read_text())
    assert init["kind"] == "encoder" and init["adapt"]["texts"] == 48
    with pytest.raises(ConfigError, match="already holds files"):
        adapt_encoder(config, texts)


def test_adapt_cli_and_its_errors(tiny_model, tmp_path, capsys):
    texts = tmp_path / "t.jsonl"
    texts.write_text("".join(json.dumps({"body": t}) + "\n" for t in TEXTS * 3))
    assert read_unlabelled(texts, "body") == TEXTS  # repeats dropped, order kept
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {{name: {tiny_model}, max_length: 32}}\n"
        f"training: {{output_dir: {tmp_path / 'run'}, progress: false}}\n"
        "adapt: {method: simcse, text_column: body, batch_size: 4}\n"
    )
    out = tmp_path / "cli-adapted"
    assert main(["adapt", str(config), "--unlabelled", str(texts), "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output"] == str(out) and printed["texts"] == 4
    assert printed["method"] == "simcse" and printed["temperature"] == 0.05
    assert (out / "modules.json").is_file()  # also a sentence-transformers model
    code = main(["adapt", str(config), "--unlabelled", str(tmp_path / "none.txt")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="Did you mean 'simcse'"):
        load_config(None, ["adapt.method=simsce"])
    with pytest.raises(ConfigError, match="needs unlabelled target-domain text"):
        adapt_encoder(load_config(config))


def test_tsdae_noise_deletes_words_but_never_all():
    import random

    text = "net sales rose fourteen percent to a record high"
    rng = random.Random(0)
    noisy = [delete_words(text, 0.6, rng) for _ in range(200)]
    kept = [len(n.split()) for n in noisy]
    assert all(k >= 1 for k in kept)
    assert all(set(n.split()) <= set(text.split()) for n in noisy)
    assert 0.3 < sum(kept) / (200 * len(text.split())) < 0.5  # about 40% of words kept
    assert delete_words(text, 0.0, rng) == text


def test_adapt_after_transfer_starts_from_the_source_encoder(tiny_model, source, tmp_path):
    from transformers import AutoModel

    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS))
    config = _run(
        tiny_model,
        tmp_path / "run",
        f"model.init_from={source}",
        "adapt.method=simcse",
        "adapt.batch_size=4",
    )
    result = adapt_encoder(config, texts)
    assert result.summary["started_from"] == str(source) and result.summary["steps"] == 1
    adapted = AutoModel.from_pretrained(result.output).state_dict()
    merged, bare = _merged_encoder(source), AutoModel.from_pretrained(tiny_model).state_dict()

    def distance(other: dict) -> float:
        return sum(float((adapted[k] - other[k]).abs().sum()) for k in merged if k in adapted)

    assert distance(merged) < distance(bare) / 10  # one small step away from the source
    assert not list(tmp_path.glob(".run-adapted*"))  # no staging debris
