"""The fast inference layer: batching by token budget, backends, several adapters on one base."""

from __future__ import annotations

import json

import pytest
from conftest import classification_overrides, ner_overrides, tiny_training

from lepton_nlp.config import load_config
from lepton_nlp.inference import Predictor
from lepton_nlp.inference.backends import BackendError, check_backend
from lepton_nlp.inference.multi import MultiAdapterError, MultiAdapterPredictor
from lepton_nlp.inference.packing import packing_enabled
from lepton_nlp.inference.predictor import MAX_AUTO_STREAMS, Streams, batch_plan, default_streams
from lepton_nlp.training import train

TEXTS = [
    "great product, works well",
    "terrible, broke after a day and support never answered my three emails",
    "ok",
    "works",
    "the plant in Oslo closed",
]
NER_TEXTS = ["Anna Berg joined Halden Steel in Oslo .", "Nothing here", "Nordvik Oyj in Tampere."]


def _artifact(overrides, base_overrides, tmp_path, name, extra=()):
    config = load_config(
        None,
        [
            *overrides,
            *base_overrides,
            f"training.output_dir={tmp_path / name}",
            "training.epochs=3",
            *extra,
        ],
    )
    return train(config).artifact


@pytest.fixture(scope="module")
def artifacts(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fast")
    base = tiny_training(tiny_model)
    return {
        "sentiment": _artifact(classification_overrides(), base, tmp, "sentiment"),
        "sentiment-r4": _artifact(
            classification_overrides(), base, tmp, "sentiment-r4", ["peft.r=4", "training.seed=3"]
        ),
        "sentiment-mean": _artifact(
            classification_overrides(), base, tmp, "sentiment-mean", ["task_options.pooling=mean"]
        ),
        "ner": _artifact(ner_overrides(), base, tmp, "ner"),
        "prompt": _artifact(
            classification_overrides(), base, tmp, "prompt", ["peft.method=prompt"]
        ),
    }


def test_batch_plan_respects_size_and_token_budget():
    lengths = [5, 50, 7, 400, 9, 60, 8, 61]
    plan = batch_plan(lengths, batch_size=3, max_batch_tokens=130)
    assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
    for batch in plan:
        assert len(batch) <= 3
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 130 or len(batch) == 1  # an over-long item goes alone
    assert [3] in plan
    # Without a budget: sorted by length, full batches.
    assert batch_plan(lengths, 4, None) == [[0, 2, 6, 4], [1, 5, 7, 3]]


@pytest.mark.parametrize(
    ("name", "texts"), [("sentiment", TEXTS), ("sentiment-mean", TEXTS), ("ner", NER_TEXTS)]
)
def test_padding_free_batches_are_the_default_and_change_nothing(artifacts, name, texts):
    packed = Predictor.from_artifact(artifacts[name], backend="torch")
    padded = Predictor.from_artifact(artifacts[name], packing=False, backend="torch")
    assert packing_enabled(packed.model) and not packing_enabled(padded.model)
    for p, q in zip(packed.predict(texts), padded.predict(texts), strict=True):
        if "tags" in q:
            assert p["tags"] == q["tags"] and p["entities"] == q["entities"]
        else:
            assert p["label"] == q["label"]
            for label, score in q["scores"].items():
                assert abs(p["scores"][label] - score) <= 1e-5


def test_token_budget_does_not_change_predictions(artifacts):
    plain = Predictor.from_artifact(artifacts["sentiment"], batch_size=64, backend="torch")
    budget = Predictor.from_artifact(
        artifacts["sentiment"], batch_size=64, max_batch_tokens=24, backend="torch"
    )
    assert [p["label"] for p in plain.predict(TEXTS)] == [p["label"] for p in budget.predict(TEXTS)]


@pytest.mark.parametrize(("name", "texts"), [("sentiment", TEXTS * 5), ("ner", NER_TEXTS * 5)])
@pytest.mark.parametrize("backend", ["torch", "torch-int8"])
def test_streams_give_the_outputs_of_one_stream_in_input_order(artifacts, name, texts, backend):
    one = Predictor.from_artifact(artifacts[name], batch_size=2, backend=backend, streams=1)
    two = Predictor.from_artifact(artifacts[name], batch_size=2, backend=backend, streams=2)
    assert one.streams is None and two.streams.count == 2
    reference, side_by_side = one.predict(texts), two.predict(texts)  # 13-15 batches
    assert [p.get("label", p.get("tags")) for p in side_by_side] == [
        p.get("label", p.get("tags")) for p in reference
    ]
    for p, q in zip(reference, side_by_side, strict=True):
        if "scores" in p:
            for label, score in p["scores"].items():
                assert abs(q["scores"][label] - score) <= 1e-5


def test_streams_use_their_share_of_threads_and_leave_the_callers_alone():
    import threading

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        streams = Streams(2)
        assert streams.threads == 1
        tokenizer = {"vocab": ["a", "b"]}  # stands for a fast tokenizer (deep-copied alike)
        seen = streams.map(lambda tok, job: (torch.get_num_threads(), id(tok)), tokenizer, [1] * 6)
        assert {threads for threads, _ in seen} == {1}
        assert 1 <= len({tok for _, tok in seen}) <= 2  # one tokenizer copy per worker
        assert id(tokenizer) not in {tok for _, tok in seen}
        # Neither the caller nor a thread started afterwards inherits the workers' count.
        assert torch.get_num_threads() == 2
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [2]
    finally:
        torch.set_num_threads(before)


def test_streams_raise_a_batch_error_and_reject_zero():
    def fail(tok, job):
        raise RuntimeError(f"batch {job} failed")

    with pytest.raises(RuntimeError, match="batch 3 failed"):
        Streams(2).map(fail, {}, [3, 3])
    with pytest.raises(ValueError, match="1 or more"):
        Streams(0)


def test_default_streams_one_per_cpu_thread_for_torch_only():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert default_streams("cpu", "torch-int8") == 2
        assert default_streams("cpu", "torch") == 2
        assert default_streams("cuda", "torch") == 1
        assert default_streams("cpu", "onnx-int8") == 1  # ONNX Runtime has its own threads
        torch.set_num_threads(MAX_AUTO_STREAMS + 4)
        assert default_streams("cpu", "torch") == MAX_AUTO_STREAMS
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["sentiment", "sentiment-mean"])
@pytest.mark.parametrize(
    ("backend", "tolerance"), [("onnx", 1e-4), ("onnx-int8", 0.05), ("torch-int8", 0.05)]
)
def test_backends_agree_with_fp32(artifacts, name, backend, tolerance, tmp_path, monkeypatch):
    """Also for mean pooling (``sentiment-mean``): the exported / quantized model keeps it."""
    monkeypatch.setenv("LEPTON_CACHE", str(tmp_path / "cache"))
    reference = Predictor.from_artifact(artifacts[name], backend="torch").predict(TEXTS)
    fast = Predictor.from_artifact(artifacts[name], backend=backend).predict(TEXTS)
    for r, f in zip(reference, fast, strict=True):
        for label, p in r["scores"].items():
            assert abs(p - f["scores"][label]) <= tolerance
        margin = abs(r["scores"]["positive"] - r["scores"]["negative"])
        if margin > 2 * tolerance:
            assert r["label"] == f["label"]
    if backend.startswith("onnx"):
        # The export is cached in the user cache folder, never written into the artifact.
        assert list((tmp_path / "cache" / "onnx").rglob("*.onnx"))
        assert not list(artifacts[name].rglob("*.onnx"))


def test_onnx_backend_serves_ner_spans(artifacts, tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE", str(tmp_path / "cache"))
    reference = Predictor.from_artifact(artifacts["ner"], backend="torch").predict(NER_TEXTS)
    fast = Predictor.from_artifact(artifacts["ner"], backend="onnx").predict(NER_TEXTS)
    assert [r["tags"] for r in reference] == [f["tags"] for f in fast]


def test_unknown_backend_names_the_nearest():
    with pytest.raises(BackendError, match="Did you mean 'onnx-int8'"):
        check_backend("onnx_int8")


def test_export_onnx_cli_writes_a_loadable_model(artifacts, tmp_path):
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from lepton_nlp.cli import main

    out = tmp_path / "exported"
    assert main(["export", str(artifacts["sentiment"]), str(out), "--format", "onnx-int8"]) == 0
    meta = json.loads((out / "export.json").read_text())
    assert meta["format"] == "onnx-int8" and meta["task"] == "classification"
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = tokenizer(TEXTS, padding=True, return_tensors="np")
    feed = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}
    (logits,) = session.run(["logits"], feed)
    assert logits.shape == (len(TEXTS), len(json.loads((out / "labels.json").read_text())))
    # A second export to the same folder is refused unless asked.
    assert main(["export", str(artifacts["sentiment"]), str(out), "--format", "onnx"]) == 2


def test_several_adapters_share_one_base_and_match_each_alone(artifacts):
    multi = MultiAdapterPredictor.from_artifacts(
        {name: artifacts[name] for name in ("sentiment", "sentiment-r4", "sentiment-mean", "ner")}
    )
    for name, texts in (
        ("sentiment", TEXTS),
        ("sentiment-r4", TEXTS),
        ("sentiment-mean", TEXTS),
        ("ner", NER_TEXTS),
    ):
        alone = Predictor.from_artifact(artifacts[name], packing=False, backend="torch").predict(
            texts
        )
        shared = multi.predict(name, texts)
        for a, s in zip(alone, shared, strict=True):
            if "tags" in a:
                assert a["tags"] == s["tags"]
            else:
                assert a["label"] == s["label"]
                for label, p in a["scores"].items():
                    assert abs(p - s["scores"][label]) < 1e-4
    # Interleaved calls switch adapters correctly.
    first = multi.predict("sentiment", TEXTS)
    multi.predict("sentiment-r4", TEXTS)
    assert multi.predict("sentiment", TEXTS) == first
    # One encoder in memory: every view's encoder is the same object (a classification
    # adapter looks at it through a view of its own, so the mean-pooling hook stays on
    # sentiment-mean's view and does not change the other adapters' pooling).
    assert packing_enabled(multi.shared)  # ... and the shared encoder ran padding-free
    views = [p.model.model.bert for p in multi.predictors.values()]
    encoders = {id(getattr(view, "shared", view)) for view in views}
    assert len(encoders) == 1
    assert multi["sentiment-mean"].model.model.bert._forward_hooks
    assert not multi["sentiment"].model.model.bert._forward_hooks


def test_multi_adapter_errors_say_what_to_do(artifacts):
    multi = MultiAdapterPredictor.from_artifacts({"sentiment": artifacts["sentiment"]})
    with pytest.raises(MultiAdapterError, match="Unknown adapter 'intent'; loaded: sentiment"):
        multi.predict("intent", ["x"])
    with pytest.raises(MultiAdapterError, match="peft.method=prompt"):
        MultiAdapterPredictor.from_artifacts({"prompt": artifacts["prompt"]})
    with pytest.raises(MultiAdapterError, match="at least one"):
        MultiAdapterPredictor.from_artifacts({})
