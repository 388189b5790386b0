"""Threads that load models for the first time at once in a fresh process: transformers 5's
lazy names failed one of them (``cannot import name 'AutoModel'``) until model loading went
through :func:`lepton_nlp.hf_imports.import_hf` (found by the concurrent browser sessions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, threading
from lepton_nlp.hf_imports import import_hf

errors = []
start = threading.Barrier(3)

def first_use(statement):
    start.wait()
    try:
        import_hf()
        exec(statement, {})
    except Exception as error:
        errors.append(repr(error))

statements = (
    "from sentence_transformers import SentenceTransformer",
    "from transformers import AutoTokenizer, AutoModelForTokenClassification",
    "from peft import PeftModel",
)
threads = [threading.Thread(target=first_use, args=(s,)) for s in statements]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(errors))
"""


def test_first_imports_from_several_threads_all_succeed():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
