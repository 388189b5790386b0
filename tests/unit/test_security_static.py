"""Static checks over the repository's own code and files: no loader that can run code from a
file (pickle, unsafe YAML, remote code), no shell strings, no secrets written into the
repository, and the installed packages past the fixes of their known advisories."""

from __future__ import annotations

import ast
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
#: Code that runs in the product (tests may build pickles on purpose, to prove they are refused).
CODE_FOLDERS = ("lepton_nlp", "apps", "kg", "bench")
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "_Loader"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def risky_calls(source: str, filename: str = "<code>") -> list[str]:
    """``file:line what`` of each call that could run code from a file or a string."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(
                n.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "marshal")
                for n in names
            ):
                found.append(f"{filename}:{node.lineno} imports a pickle module")
            continue
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        where = f"{filename}:{node.lineno}"
        if name in ("torch.load", "torch.jit.load") and not _is_true(
            _keyword(node, "weights_only")
        ):
            found.append(f"{where} {name} without weights_only=True")
        elif name.endswith("joblib.load") or last == "read_pickle":
            found.append(f"{where} {name} unpickles")
        elif (
            last == "load"
            and name.split(".")[0] in ("np", "numpy")
            and _is_true(_keyword(node, "allow_pickle"))
        ):
            found.append(f"{where} {name}(allow_pickle=True)")
        elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all"):
            found.append(f"{where} {name}")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                found.append(f"{where} {name} without a safe Loader")
        elif (isinstance(node.func, ast.Name) and name in ("eval", "exec", "compile")) or name in (
            "os.system",
            "os.popen",
        ):
            found.append(f"{where} {name}()")
        if _is_true(_keyword(node, "trust_remote_code")):
            found.append(f"{where} trust_remote_code=True")
        if _is_true(_keyword(node, "shell")):
            found.append(f"{where} shell=True")
        if last == "extractall" and _keyword(node, "filter") is None:
            # tarfile: filter="data" keeps members inside the folder; zipfile has no filter, so
            # a zip is extracted member by member after a contained_path check instead.
            found.append(f"{where} extractall without filter='data'")
    return found


def test_no_product_code_can_run_code_from_a_file():
    files = [p for folder in CODE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 80
    found = []
    for path in files:
        found += risky_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_yaml_loader_is_the_safe_one():
    from lepton_nlp.config import _Loader

    assert issubclass(_Loader, yaml.SafeLoader)
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("!!python/object/apply:os.system ['echo pwned']", Loader=_Loader)


def test_the_scan_finds_what_it_looks_for():
    bad = (
        "import pickle\nimport torch, yaml, joblib, numpy as np, subprocess\n"
        "torch.load(f)\n"
        "torch.load(f, weights_only=False)\n"
        "yaml.load(text)\n"
        "yaml.load(text, Loader=yaml.FullLoader)\n"
        "joblib.load(path)\n"
        "np.load(path, allow_pickle=True)\n"
        "AutoModel.from_pretrained(name, trust_remote_code=True)\n"
        "subprocess.run(cmd, shell=True)\n"
        "eval(text)\n"
        "tarfile.open(p).extractall(d)\n"
    )
    lines = [int(item.split(":")[1].split()[0]) for item in risky_calls(bad)]
    assert lines == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    good = (
        "import torch, yaml\ntorch.load(f, weights_only=True)\nyaml.safe_load(t)\n"
        "yaml.load(t, Loader=yaml.SafeLoader)\nmodel.eval()\nnp.load(p)\n"
    )
    assert risky_calls(good) == []


# --- secrets ------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "Hugging Face token": r"\bhf_[A-Za-z0-9]{30,}",
    "OpenAI key": r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}",
    "AWS access key": r"\bAKIA[0-9A-Z]{16}\b",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36,}",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "private key": r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
    "URL with a password": r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@",
    "secret assigned in code": (
        r"(?i)\b(?:password|passwd|secret|api_key|apikey|token)\s*[:=]\s*['\"]([^'\"\s]{8,})['\"]"
    ),
}
#: What a password or secret may be when written in the repository: a placeholder.
PLACEHOLDER = re.compile(
    r"(?i)^(?:\*+|password|secret|pass|pw|passw0rd|changeme|example|x+|\$\{?\w+\}?|\{\w*\}|<\w+>)$"
)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in listed:
        path = ROOT / name.decode()
        if name and path.is_file() and path.stat().st_size < 2_000_000:
            head = path.read_bytes()[:4096]
            if b"\0" not in head:
                files.append(path)
    return files


def secrets_in(text: str) -> list[str]:
    """What looks like a real secret in ``text`` (placeholders such as PASSWORD or *** are not)."""
    found = []
    for kind, pattern in SECRET_PATTERNS.items():
        for match in re.finditer(pattern, text):
            value = match.group(match.lastindex or 0)
            if match.lastindex and PLACEHOLDER.match(value):
                continue
            found.append(f"{kind}: {match.group(0)[:40]}")
    return found


def test_no_secret_is_written_into_the_repository():
    files = _tracked_text_files()
    assert len(files) > 100
    found = []
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("tests/"):
            continue  # tests hold made-up credentials on purpose (and are checked below)
        for hit in secrets_in(path.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{relative}: {hit}")
    assert found == []


def test_the_secret_scan_finds_secrets_and_spares_placeholders():
    real = [
        "HF_TOKEN=hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3f",
        "url = 'postgresql+psycopg://lepton:" + "Tr0ub4dor3@db:5432/suite'",
        'api_key = "' + "9f8e7d6c5b4a3210" + '"',
        "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
    ]
    for text in real:
        assert secrets_in(text), text
    placeholders = [
        "LEPTON_DB_URL=postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE",
        "shown as postgresql://u:***@host/db",
        "password = os.environ['LEPTON_DB_PASSWORD']",
        "token = tokenizer(text)",
    ]
    for text in placeholders:
        assert secrets_in(text) == [], text


def test_the_worker_never_prints_the_database_password(monkeypatch):
    from apps.studio import worker

    class NoRuns:
        url = "postgresql+psycopg://lepton:Tr0ub4dor3@db.example:5432/suite"

        def get(self, run_id):
            return None

    with pytest.raises(SystemExit) as stopped:
        worker.run_training(NoRuns(), 7)
    assert "No run 7" in str(stopped.value) and "Tr0ub4dor3" not in str(stopped.value)


# --- known advisories ---------------------------------------------------------------------------

#: (distribution, first fixed version, advisory): the installed version must be at least the
#: fixed one. An offline check for the advisories below only; pip-audit checks them all where
#: a vulnerability service can be reached (docs/security.md).
ADVISORY_FLOORS = [
    ("torch", "2.6.0", "CVE-2025-32434: torch.load(weights_only=True) could still run code"),
    ("transformers", "4.48.0", "CVE-2024-11392/11393/11394: deserialization in model loading"),
    ("python-multipart", "0.0.18", "CVE-2024-53981: DoS through multipart boundaries"),
    ("starlette", "0.40.0", "CVE-2024-47874: multipart form fields without size limit (DoS)"),
    ("h11", "0.16.0", "CVE-2025-43859: request smuggling through chunked bodies"),
    ("urllib3", "2.5.0", "CVE-2025-50181/50182: redirects not disabled as asked"),
    ("requests", "2.32.4", "CVE-2024-47081: .netrc credentials leaked to other hosts"),
    ("jinja2", "3.1.6", "CVE-2025-27516: sandbox escape through |attr"),
    ("tornado", "6.5.0", "CVE-2025-47287: DoS through multipart parse errors (Streamlit's server)"),
    ("setuptools", "78.1.1", "CVE-2025-47273: path traversal in PackageIndex"),
    ("pyyaml", "5.4", "CVE-2020-14343: code execution through full_load"),
    ("pyarrow", "14.0.1", "CVE-2023-47248: deserialization of untrusted IPC/Parquet data"),
    ("onnx", "1.16.0", "CVE-2024-27318/27319: path traversal and out-of-bounds read"),
    ("scikit-learn", "1.5.0", "CVE-2024-5206: tokens leaked in TfidfVectorizer.stop_words_"),
    ("nltk", "3.9", "CVE-2024-39705: unpickling of downloaded data"),
    ("tqdm", "4.66.3", "CVE-2024-34062: eval of CLI arguments"),
    ("idna", "3.7", "CVE-2024-3651: DoS through crafted domain names"),
    ("certifi", "2024.7.4", "CVE-2024-39689: GLOBALTRUST root certificates removed"),
    ("streamlit", "1.37.0", "CVE-2024-42474: path traversal in static file serving (Windows)"),
    ("gitpython", "3.1.41", "CVE-2024-22190: untrusted search path (Streamlit depends on it)"),
    ("werkzeug", "3.0.6", "CVE-2024-49766/49767: path traversal and multipart memory use"),
    ("pillow", "10.3.0", "CVE-2024-28219: buffer overflow in _imagingcms"),
    ("aiohttp", "3.10.11", "CVE-2024-52304: request smuggling through chunk extensions"),
]


def _base(version: str) -> Version:
    return Version(Version(version).base_version)


@pytest.mark.parametrize(("package", "fixed", "advisory"), ADVISORY_FLOORS)
def test_installed_packages_are_past_known_advisories(package, fixed, advisory):
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{package} is not installed")
    assert _base(installed) >= Version(fixed), f"{package} {installed}: {advisory}; upgrade"
