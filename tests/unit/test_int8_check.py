"""The int8 backend check after training, fixed int8 ranges, and ``backend="auto"``."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import classification_overrides, ner_overrides, tiny_training

from lepton_nlp.artifacts import read_artifact, record_backend_check
from lepton_nlp.cli import main
from lepton_nlp.config import load_config
from lepton_nlp.inference import Predictor
from lepton_nlp.inference.backends import BackendError, resolve_backend
from lepton_nlp.inference.int8_check import CALIBRATION_RECORDS, read_ranges, sample_records
from lepton_nlp.serve.settings import ServeSettings
from lepton_nlp.training import train

TEXTS = [
    "great product, works well",
    "terrible, broke after a day and support never answered my three emails",
    "ok",
    "the plant in Oslo closed and the shares fell by a third on Monday",
]


def _train(overrides, tiny_model, folder, extra=()):
    config = load_config(
        None,
        [
            *overrides,
            *tiny_training(tiny_model),
            "training.epochs=3",
            f"training.output_dir={folder}",
            *extra,
        ],
    )
    return train(config)


@pytest.fixture(scope="module")
def checked(tiny_model, tmp_path_factory):
    """A classification artifact whose training ran the int8 check (the default)."""
    return _train(classification_overrides(), tiny_model, tmp_path_factory.mktemp("i8") / "m")


@pytest.fixture(scope="module")
def unchecked(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("i8") / "m"
    return _train(
        classification_overrides(), tiny_model, folder, ["evaluation.backend_check=false"]
    ).artifact


def _with_check(source, tmp_path, cpu_default: str):
    """A copy of an artifact whose recorded check says ``cpu_default``."""
    folder = tmp_path / f"copy-{cpu_default}"
    shutil.copytree(source, folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["backends"]["cpu_default"] = cpu_default
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_training_records_the_check_calibration_and_card(checked):
    folder = checked.artifact
    check = json.loads((folder / "metrics.json").read_text())["backends"]
    assert checked.metrics["backends"] == check
    # The run has a validation split: the check scores it, never the test split.
    assert check["checked_on"] == "validation"
    assert check["examples"] == checked.metrics["validation"]["examples"]
    assert set(check["torch"]) == set(check["torch-int8"]) >= {"accuracy", "macro_f1"}
    loss = max(100 * (check["torch"][k] - check["torch-int8"][k]) for k in check["torch"])
    assert check["int8_loss_points"] == pytest.approx(loss, abs=0.01)
    assert check["cpu_default"] == ("torch-int8" if loss <= 0.5 else "torch")
    assert 0.0 <= check["label_agreement"] <= 1.0
    # Calibration: a range for every Linear layer of the merged model, low <= 0 <= high.
    ranges = read_ranges(folder)
    model = Predictor.from_artifact(folder, backend="torch").model
    import torch

    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(ranges) == linears
    assert all(low <= high for low, high in ranges.values())
    card = (folder / "README.md").read_text()
    assert "## Inference backends" in card and f"{check['int8_loss_points']} points" in card


def test_auto_follows_the_recorded_check(checked, unchecked, tmp_path):
    for cpu_default in ("torch-int8", "torch"):
        folder = _with_check(checked.artifact, tmp_path, cpu_default)
        assert Predictor.from_artifact(folder).backend == cpu_default
    # No check recorded, or a GPU: fp32 torch.
    assert "backends" not in read_artifact(unchecked).metrics
    assert Predictor.from_artifact(unchecked).backend == "torch"
    info = read_artifact(_with_check(checked.artifact, tmp_path / "g", "torch-int8"))
    assert resolve_backend("auto", info, "cuda:0") == "torch"
    assert resolve_backend("onnx", info, "cpu") == "onnx"
    with pytest.raises(BackendError, match="Did you mean 'auto'"):
        resolve_backend("atuo", info, "cpu")


@pytest.mark.parametrize("packing", [True, False])
def test_calibrated_int8_answers_do_not_depend_on_the_batch(checked, packing):
    """Fixed activation ranges: a text scores the same alone and among others (serving,
    resumed batch jobs and Ray batch differently)."""
    predictor = Predictor.from_artifact(checked.artifact, backend="torch-int8", packing=packing)
    assert any(type(m).__name__ == "_FixedRangeLinear" for m in predictor.model.modules())
    together = predictor.predict(TEXTS)
    for text, joint in zip(TEXTS, together, strict=True):
        alone = predictor.predict([text])[0]
        assert alone["label"] == joint["label"]
        for label, score in alone["scores"].items():
            assert score == pytest.approx(joint["scores"][label], abs=1e-6)


def test_int8_stays_close_to_fp32(checked):
    fp32 = Predictor.from_artifact(checked.artifact, backend="torch").predict(TEXTS)
    int8 = Predictor.from_artifact(checked.artifact, backend="torch-int8").predict(TEXTS)
    for a, b in zip(fp32, int8, strict=True):
        for label, score in a["scores"].items():
            assert abs(score - b["scores"][label]) <= 0.05


def test_check_samples_never_touch_test_and_keep_calibration_apart():
    splits = {
        "train": [{"text": f"t{i}", "label": "a"} for i in range(CALIBRATION_RECORDS + 30)],
        "validation": [{"text": f"v{i}", "label": "a"} for i in range(40)],
        "test": [{"text": f"x{i}", "label": "a"} for i in range(40)],
    }
    calibration, records, source = sample_records(splits)
    assert source == "validation" and len(records) == 40
    assert all(r["text"].startswith("t") for r in calibration)
    assert len(calibration) == CALIBRATION_RECORDS
    calibration, records, source = sample_records({**splits, "validation": []})
    assert source == "train" and len(records) == 30
    assert not {r["text"] for r in records} & {r["text"] for r in calibration}


def test_check_backends_cli_records_a_check_on_an_older_artifact(unchecked, tmp_path, capsys):
    folder = tmp_path / "older"
    shutil.copytree(unchecked, folder)
    assert main(["check-backends", str(folder), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["checked_on"] == "validation"
    assert "backends" not in read_artifact(folder).metrics  # a dry run records nothing
    assert read_ranges(folder) is None
    assert main(["check-backends", str(folder)]) == 0
    recorded = read_artifact(folder).metrics["backends"]
    assert recorded["torch"] == printed["torch"]  # the same records, the same scores
    assert read_ranges(folder)
    assert Predictor.from_artifact(folder).backend == recorded["cpu_default"]


def test_record_backend_check_replaces_the_earlier_section(checked, tmp_path):
    folder = tmp_path / "again"
    shutil.copytree(checked.artifact, folder)
    check = json.loads((folder / "metrics.json").read_text())["backends"]
    quantization = json.loads((folder / "quantization.json").read_text())
    record_backend_check(folder, quantization, {**check, "examples": 12345})
    card = (folder / "README.md").read_text()
    assert card.count("## Inference backends") == 1 and "12345" in card
    assert card.index("## Inference backends") < card.index("## Intended use and limits")


def test_merged_export_keeps_the_calibration(checked, tmp_path):
    out = tmp_path / "merged"
    assert main(["export", str(checked.artifact), str(out), "--merge"]) == 0
    assert read_ranges(out) == read_ranges(checked.artifact)
    merged = Predictor.from_artifact(out, backend="torch-int8").predict(TEXTS)
    adapter = Predictor.from_artifact(checked.artifact, backend="torch-int8").predict(TEXTS)
    for a, b in zip(merged, adapter, strict=True):
        assert a["label"] == b["label"]


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_ner_training_runs_the_check(tiny_model, tmp_path, method):
    """Also with prompt tuning, whose Predictor wraps the model: the recorded ranges name
    the layers the int8 backend quantizes, so every one of them gets its fixed range."""
    result = _train(ner_overrides(), tiny_model, tmp_path / "ner", [f"peft.method={method}"])
    check = result.metrics["backends"]
    assert "f1" in check["torch"] and check["checked_on"] == "validation"
    assert Predictor.from_artifact(result.artifact).backend == check["cpu_default"]
    int8 = Predictor.from_artifact(result.artifact, backend="torch-int8")
    fixed = [m for m in int8.model.modules() if type(m).__name__ == "_FixedRangeLinear"]
    assert len(fixed) == len(read_ranges(result.artifact)) > 0


def test_serve_settings_default_to_auto_and_keep_shared_base_fp32():
    assert ServeSettings(models={"m": "x"}).backend == "auto"
    ServeSettings(models={"m": "x"}, shared_base=True)  # auto is fine: the shared base is fp32
    from lepton_nlp.config import ConfigError

    with pytest.raises(ConfigError, match="shared_base needs backend torch"):
        ServeSettings(models={"m": "x"}, shared_base=True, backend="torch-int8")


def test_a_failing_check_leaves_a_complete_fp32_artifact(tiny_model, tmp_path, monkeypatch, caplog):
    """Training has finished when the check runs: its failure must not lose the model."""
    from lepton_nlp.inference import int8_check

    def broken(*args, **kwargs):
        raise RuntimeError("no int8 kernels here")

    monkeypatch.setattr(int8_check, "check_int8", broken)
    result = _train(classification_overrides(), tiny_model, tmp_path / "m")
    assert "backends" not in result.metrics and read_ranges(result.artifact) is None
    assert Predictor.from_artifact(result.artifact).backend == "torch"
    assert "lepton-nlp check-backends" in caplog.text and "no int8 kernels here" in caplog.text


def test_fixed_range_int8_saturates_out_of_range_inputs_row_by_row():
    """Below its calibrated range a value counts as the range's low end; above it the
    kernel keeps the 8th bit (closer to fp32 than a clamp would be); either way a row's
    output never depends on the other rows."""
    import torch

    from lepton_nlp.inference.backends import quantize_int8

    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        pytest.skip("fixed int8 ranges use fbgemm's kernel (x86 only)")
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(64, 16))
    int8 = quantize_int8(layer, {"0": [-1.0, 1.0]})
    x = torch.rand(6, 64) * 2 - 1  # inside the range
    x[1, :8] = -5.0  # far below it
    x[2, :8] = 1.5  # above it, within the 8th bit
    x[3] = 40.0  # far above it everywhere: saturates
    together = int8(x)
    for i in range(len(x)):
        assert torch.allclose(int8(x[i : i + 1])[0], together[i], atol=1e-6)
    below = x[1:2].clone()
    below[0, :8] = -1.0
    assert torch.allclose(together[1], int8(below)[0], atol=1e-6)
    with torch.no_grad():
        above_error = (together[2] - layer(x[2:3])[0]).abs().max()
        clamped_error = (layer(x[2:3].clamp(-1, 1))[0] - layer(x[2:3])[0]).abs().max()
    assert above_error < 0.6 * clamped_error  # measured: 0.068 against 0.193
