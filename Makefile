# Two commands do all set-up on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[test]"
	touch $@

.PHONY: demo test
demo: $(VENV)/.installed  ## pretrain a DNA model on the lambda phage genome shipped in data/
	$(VENV)/bin/seqmamba pretrain --config configs/dna/lambda-demo.yaml

test: $(VENV)/.installed  ## the test suite (CUDA tests skip without a GPU and mamba-ssm)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider
