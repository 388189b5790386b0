"""lepton-nlp: fine-tune pretrained transformers on your own labelled data, offline and cheaply.

Modules, lowest layer first: each imports only those listed before it, none imports
``apps``, ``kg`` or streamlit, and there are no import cycles (``tests/unit/test_layering.py``
checks the last two).

- ``errors``: every exception type the package raises.
- ``security``: guards for outside input: contained paths, artifact files that could run
  code, input limits, Markdown escaping, loopback addresses.
- ``hub``: model name -> packaged offline copy, local folder, or hub id.
- ``data``: readers, dataset files -> records, and the train/validation/test splits.
- ``evaluation``: metrics as functions of predictions and references.
- ``models``: model classes the tasks build on (relation head, encoder-decoder warm start).
- ``tasks``: one adapter per task (records -> inputs, outputs -> predictions, metrics)
  and their registry.
- ``peft_methods``: PEFT method name -> peft config.
- ``config``: typed run configs (YAML, ``key.sub=value`` overrides, validation).
- ``artifacts``: the self-describing model folder.
- ``embeddings``: sentence embeddings (``SentenceEmbedder``) for serving, retrieval and
  recommendation.
- ``inference``: ``Predictor.from_artifact``, backends, several adapters on one base.
- ``training``: the run driver around the Hugging Face Trainer.
- ``export``, ``batch``, ``serve`` (HTTP API) and ``cli`` on top.

Shared services for the applications come next beside ``embeddings``: ``speech.py``
(Whisper backends: audio -> text) and ``retrieval.py`` (faiss vector search).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
