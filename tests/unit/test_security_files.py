"""Files from outside: names that try to leave their folder, and artifact folders that try to
run code when loaded (pickles, remote code, symlinks). Nothing here downloads or loads a model."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from lepton_nlp.artifacts import read_artifact
from lepton_nlp.errors import ArtifactError, UnsafePathError
from lepton_nlp.security import (
    check_artifact_files,
    contained_path,
    escape_markdown,
    safe_filename,
    untrusted_files,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "models" / "finance-sentiment"


class RunsCode:
    """Unpickling this creates ``marker``: the proof that a loader ran the pickle's code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_torch_file(path: Path, marker: Path) -> None:
    torch.save({"weight": RunsCode(marker)}, path)


@pytest.fixture
def artifact(tmp_path) -> Path:
    """A copy of a shipped artifact (read, never loaded as a model)."""
    folder = tmp_path / "artifact"
    shutil.copytree(SHIPPED, folder)
    return folder


# --- names that try to leave their folder -------------------------------------------------------


def test_contained_path_refuses_every_way_out(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("secret")
    (root / "out-link").symlink_to(tmp_path / "outside.txt")
    (root / "dir-link").symlink_to(tmp_path)
    (root / "in-link").symlink_to(root / "sub" / "a.txt")
    assert contained_path(root, "sub/a.txt") == (root / "sub" / "a.txt").resolve()
    assert contained_path(root, "in-link") == (root / "sub" / "a.txt").resolve()
    assert contained_path(root, "sub/../sub/a.txt") == (root / "sub" / "a.txt").resolve()
    assert contained_path(root, "new-file.txt").parent == root.resolve()  # need not exist yet
    for name in (
        "../outside.txt",
        "sub/../../outside.txt",
        "..",
        str(tmp_path / "outside.txt"),
        "/etc/passwd",
        "out-link",
        "dir-link/outside.txt",
        "a\x00b",
        "",
    ):
        with pytest.raises(UnsafePathError):
            contained_path(root, name, "file")


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\x.csv", "x.csv"),
        ("..", "upload"),
        ("...", "upload"),
        ("/", "upload"),
        (".bashrc", "bashrc"),
        ("données (1).csv", "données (1).csv"),
        ("a:b*c?.csv", "a_b_c_.csv"),
        ("line\nbreak\x00.csv", "linebreak.csv"),
        ("x" * 300 + ".jsonl", "x" * 114 + ".jsonl"),
    ],
)
def test_safe_filename_keeps_only_a_bare_name(name, stored):
    assert safe_filename(name, default="upload") == stored


def test_studio_uploads_stay_in_their_folder(tmp_path):
    from apps.studio.datafiles import save_upload
    from apps.studio.errors import StudioError

    folder = tmp_path / "staging"
    content = b"text,label\ngood,positive\nbad,negative\n"
    for name in ("../../evil.csv", str(tmp_path / "abs.csv"), "..\\evil2.csv"):
        path = save_upload(name, content, folder)
        assert path.parent == folder.resolve() and path.read_bytes() == content
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path.parent / "evil.csv").exists()
    # A symlink planted under the upload's name is not followed out of the folder.
    (folder / "planted.csv").symlink_to(tmp_path / "victim.csv")
    with pytest.raises(StudioError, match="leads outside"):
        save_upload("planted.csv", content, folder)
    assert not (tmp_path / "victim.csv").exists()


def test_an_artifacts_name_cannot_move_its_onnx_cache(artifact, tmp_path, monkeypatch):
    from lepton_nlp.inference.backends import onnx_cache

    monkeypatch.setenv("LEPTON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    info = read_artifact(artifact)
    from lepton_nlp.hub import cache_dir

    for name in ("../../../../tmp/evil", "/etc/evil", "..", "a/../../b"):
        info.name = name
        folder = onnx_cache(info)
        assert folder.is_relative_to((cache_dir() / "onnx").resolve()), (name, folder)


# --- artifact folders that try to run code ------------------------------------------------------


def test_the_payload_is_live_when_unpickled_plainly(tmp_path):
    """The control: the same bytes do run code under plain pickle, so the refusals below are
    the loaders' doing, not a harmless payload's."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(RunsCode(marker)))
    assert marker.exists()


def test_shipped_artifacts_hold_nothing_that_runs_code():
    folders = [p for p in (ROOT / "data" / "models").iterdir() if p.is_dir()]
    assert len(folders) >= 5
    for folder in folders:
        assert untrusted_files(folder) == [], folder
        read_artifact(folder)


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("adapter/adapter_model.bin", "a pickle file (.bin)"),
        ("adapter/optimizer.pt", "a pickle file (.pt)"),
        ("model.pkl", "a pickle file (.pkl)"),
        ("tokenizer/extra.joblib", "a pickle file (.joblib)"),
        ("adapter/adapter_model.safetensors", "a pickle under another name"),
        ("logs/events.data", "a pickle under another name"),
    ],
)
def test_a_pickle_in_an_artifact_is_refused_and_never_run(artifact, tmp_path, where, says):
    marker = tmp_path / "ran"
    _evil_torch_file(artifact / where, marker)
    with pytest.raises(ArtifactError, match="Refusing to load") as refused:
        read_artifact(artifact)
    assert says in str(refused.value) and where in str(refused.value)
    from lepton_nlp.inference import Predictor

    with pytest.raises(ArtifactError, match="Refusing to load"):
        Predictor.from_artifact(artifact, device="cpu")
    assert not marker.exists()


def test_a_plain_pickle_disguised_as_weights_is_refused(artifact, tmp_path):
    marker = tmp_path / "ran"
    (artifact / "adapter" / "adapter_model.safetensors").write_bytes(
        pickle.dumps(RunsCode(marker), protocol=4)
    )
    with pytest.raises(ArtifactError, match="a pickle under another name"):
        read_artifact(artifact)
    assert not marker.exists()


def test_remote_code_and_code_files_are_refused(artifact):
    config = artifact / "tokenizer" / "tokenizer_config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "auto_map": {"AutoTokenizer": ["evil.EvilTok", None]}}))
    (artifact / "tokenizer" / "evil.py").write_text("import os\nos.system('echo pwned')\n")
    found = untrusted_files(artifact)
    assert found == [
        "tokenizer/evil.py: code (.py) that a loader could import",
        "tokenizer/tokenizer_config.json: names remote code (auto_map, trust_remote_code)",
    ]
    with pytest.raises(ArtifactError, match="remote code"):
        read_artifact(artifact)


def test_symlinks_out_of_an_artifact_are_refused_and_never_zipped(artifact, tmp_path):
    from apps.studio.artifacts import artifact_zip

    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (artifact / "notes.txt").symlink_to(secret)
    with pytest.raises(ArtifactError, match="notes.txt: a symlink leading outside"):
        read_artifact(artifact)
    with pytest.raises(ArtifactError):
        artifact_zip(artifact)
    (artifact / "notes.txt").unlink()
    (artifact / "card-link.md").symlink_to(artifact / "README.md")  # inside: allowed, not zipped
    archive = artifact_zip(artifact)
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "artifact/README.md" in names and "artifact/card-link.md" not in names


def test_a_fifo_in_an_artifact_is_refused_without_blocking(artifact):
    os.mkfifo(artifact / "tokenizer" / "pipe")
    with pytest.raises(ArtifactError, match="pipe: not a regular file"):
        check_artifact_files(artifact)


def test_a_damaged_marker_is_an_artifact_error_not_a_crash(artifact):
    marker = artifact / "lepton_artifact.json"
    good = json.loads(marker.read_text())
    for text in ("[1, 2]", "not json", json.dumps({**good, "spec": "x"}), '{"format": 1}'):
        marker.write_text(text)
        with pytest.raises(ArtifactError):
            read_artifact(artifact)
    marker.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ArtifactError):
        read_artifact(artifact)


def test_loaders_underneath_refuse_pickles_too(tmp_path, artifact):
    """Past read_artifact: the loaders themselves load tensors only (weights_only), so a pickle
    reaching them is refused rather than run."""
    from peft.utils import load_peft_weights
    from transformers import AutoModel, BertConfig

    from lepton_nlp.inference.multi import _adapter_state

    marker = tmp_path / "ran"
    # The shared-base predictor's adapter reader.
    info = read_artifact(artifact)
    (artifact / "adapter" / "adapter_model.safetensors").unlink()
    _evil_torch_file(artifact / "adapter" / "adapter_model.bin", marker)
    with pytest.raises(pickle.UnpicklingError):
        _adapter_state(info)
    # peft's adapter loader.
    with pytest.raises(pickle.UnpicklingError):
        load_peft_weights(str(artifact / "adapter"), device="cpu")
    # transformers' model loader (a base model folder holding pytorch_model.bin only).
    base = tmp_path / "base"
    BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    ).save_pretrained(base)
    _evil_torch_file(base / "pytorch_model.bin", marker)
    with pytest.raises((OSError, pickle.UnpicklingError, ValueError)):
        AutoModel.from_pretrained(base)
    assert not marker.exists()


def test_escape_markdown_shows_text_as_written():
    text = "<script>x</script> ![i](http://e/x.png) [a](javascript:1) **b** :red[c] $d$ # e"
    escaped = escape_markdown(text)
    assert "<" not in escaped and "![" not in escaped and "](" not in escaped
    assert "**" not in escaped and ":red[" not in escaped and "$d$" not in escaped
    assert escaped.startswith("&lt;script&gt;") and "line\nbreak" in escape_markdown("line\nbreak")
