"""Shared fixtures: a tiny BERT-like model built from a config, with a tokenizer trained here.

Nothing is downloaded: the model folder is written once per test session.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


#: The texts the tiny tokenizer learns its vocabulary from: a fixed list in a fixed order, so
#: a fixture added for another test (the kg's) does not change how the unit tests tokenize.
TOKENIZER_CORPUS = (
    "classification.csv",
    "fpb_style.txt",
    "multilabel.jsonl",
    "ner_iob1.conll",
    "ner_iob2.conll",
)


def _fixture_texts() -> list[str]:
    texts = []
    for name in TOKENIZER_CORPUS:
        texts.extend((FIXTURES / name).read_text(encoding="latin-1").splitlines())
    return texts


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer, hidden-32 BERT saved to a folder, with a WordPiece tokenizer trained on the fixtures."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        _fixture_texts(), trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    return str(out)


@pytest.fixture
def base_overrides(tiny_model, tmp_path) -> list[str]:
    """Overrides that make any config a fast tiny run writing under tmp_path."""
    return [
        f"model.name={tiny_model}",
        "model.max_length=48",
        f"training.output_dir={tmp_path / 'artifact'}",
        "training.epochs=2",
        "training.batch_size=8",
        "training.progress=false",
        "training.report_to=[none]",
        "training.logging_steps=5",
    ]


def tiny_training(tiny_model: str) -> list[str]:
    """Overrides for a quick tiny run that learns something in 3 epochs (module-scoped
    fixtures, which cannot use ``base_overrides``)."""
    return [
        f"model.name={tiny_model}",
        "model.max_length=48",
        "training.batch_size=8",
        "training.progress=false",
        "training.report_to=[none]",
        "training.learning_rate=5e-3",
    ]


def classification_overrides() -> list[str]:
    return [
        "task=classification",
        "data.format=csv",
        f"data.train={FIXTURES / 'classification.csv'}",
        "data.validation_size=0.25",
    ]


def ner_overrides() -> list[str]:
    return [
        "task=ner",
        "data.format=conll",
        f"data.train={FIXTURES / 'ner_iob2.conll'}",
        "data.validation_size=0.2",
    ]


# --- the app tests (tests/apps): a studio home and database in a temporary folder ---
@pytest.fixture
def db_url(tmp_path) -> str:
    """The studio's database for one test: SQLite in its folder (tests/apps/test_store_postgres.py
    overrides this to run the same store tests on a real PostgreSQL server)."""
    return f"sqlite:///{tmp_path / 'lepton-home' / 'studio.db'}"


@pytest.fixture
def studio_home(tmp_path, monkeypatch, db_url):
    """LEPTON_HOME in a fresh temporary folder and LEPTON_DB_URL = ``db_url`` (workers inherit them)."""
    home = tmp_path / "lepton-home"
    monkeypatch.setenv("LEPTON_HOME", str(home))
    monkeypatch.setenv("LEPTON_DB_URL", db_url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def store(studio_home):
    from apps.studio.store import RunStore

    return RunStore()


@pytest.fixture(scope="session")
def tiny_artifact(tiny_model, tmp_path_factory):
    """A tiny classification artifact trained once through the CLI (serving and batch tests)."""
    from lepton_nlp.cli import main

    out = tmp_path_factory.mktemp("tiny-artifact") / "artifact"
    overrides = [
        f"model.name={tiny_model}",
        "model.max_length=48",
        f"training.output_dir={out}",
        "training.epochs=1",
        "training.batch_size=8",
        "training.progress=false",
        "training.report_to=[none]",
    ]
    config = str(ROOT / "configs" / "demo_finance.yaml")
    assert main(["train", config, *classification_overrides(), *overrides]) == 0
    return out


# --- studio runs (tests/apps) ---
CSV = Path(__file__).resolve().parent / "fixtures" / "classification.csv"


def tiny_config(
    tiny_model: str, data: Path = CSV, epochs: float = 2, early_stopping: bool = True
) -> str:
    """The studio's run config of a fast tiny classification run on ``data``."""
    from apps.studio import runconfig

    return runconfig.build_config(
        task="classification",
        data_path=data,
        fmt="csv",
        base_model=tiny_model,
        method="lora",
        epochs=epochs,
        batch_size=8,
        learning_rate=5e-3,
        max_length=48,
        validation_size=0.25,
        name="tiny",
        early_stopping=early_stopping,
    )


def wait_for(predicate, timeout: float = 180.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


# --- studio runs of the other tasks (qa, relation, summarization, translation) ---
def studio_tiny_config(task: str, model: str, output_dir: str | Path = "runs/studio") -> str:
    """The studio's run config (``runconfig.build_config``) of a fast tiny run on ``task``'s sample.

    The tiny BERT serves every task; for summarization and translation it warm-starts an
    encoder-decoder (as the unit tests do), with short outputs so validation stays quick.
    """
    from apps.studio import datafiles, runconfig

    sample = datafiles.sample_data(task)
    options = None
    if task in ("summarization", "translation"):
        options = {"max_new_tokens": 8, "max_target_length": 32}
    return runconfig.build_config(
        task=task,
        data_path=sample["path"],
        fmt=sample["format"],
        columns=sample["columns"],
        base_model=model,
        method="lora",
        epochs=1,
        batch_size=8,
        learning_rate=5e-3,
        max_length=64,
        validation_size=0.2,
        test_size=0.2,
        name=f"tiny-{task}",
        output_dir=output_dir,
        early_stopping=False,
        task_options=options,
    )


@pytest.fixture(scope="session")
def studio_artifact(tiny_model, tmp_path_factory):
    """``studio_artifact(task) -> (artifact folder, config YAML, metrics)``: a tiny run of the
    studio's config on the task's sample, trained in this process once per session."""
    import yaml

    from lepton_nlp.config import load_config
    from lepton_nlp.training import train

    built: dict[str, tuple[Path, str, dict]] = {}

    def artifact(task: str) -> tuple[Path, str, dict]:
        if task not in built:
            out = tmp_path_factory.mktemp(f"studio-{task}") / "artifact"
            config = studio_tiny_config(task, tiny_model, out)
            result = train(load_config(yaml.safe_load(config)))
            built[task] = (Path(result.artifact), config, result.metrics)
        return built[task]

    return artifact
