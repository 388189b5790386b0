"""Import the Hugging Face libraries once per process, under one lock, before any model loads.

transformers 5 resolves its names lazily; when two threads import from it for the first time
at once (two browser sessions of the suite opening pages that load models, or two routes of
the API building their models on their first requests), one of them can get
``ImportError: cannot import name 'AutoModel' from 'transformers'`` from the half-imported
package. Every place that loads a model calls :func:`import_hf` first: the first caller
imports the packages and the names the project uses while the others wait.
"""

from __future__ import annotations

import contextlib
import importlib
import threading

__all__ = ["import_hf"]

_lock = threading.Lock()
_done = False

#: Names of transformers that model loading resolves; each resolution imports a submodule.
_TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModel",
    "AutoTokenizer",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
    "AutoModelForCausalLM",
    "PreTrainedModel",
    "PreTrainedTokenizerFast",
)
_PACKAGES = ("peft", "sentence_transformers")


def import_hf() -> None:
    """Import transformers (with :data:`_TRANSFORMERS_NAMES`), peft and sentence-transformers,
    once, serialised across threads; a no-op afterwards."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        import transformers

        for name in _TRANSFORMERS_NAMES:
            getattr(transformers, name)
        for package in _PACKAGES:
            with contextlib.suppress(ImportError):  # an optional extra, not installed
                importlib.import_module(package)
        _done = True
