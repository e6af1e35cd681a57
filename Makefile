# Two commands do all set-up on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# Debian packages the audio stand-ins and the ape data come from (tests use them too), and the browser the app's
# tests drive (through the playwright package, which is told to use it: `playwright install` is never needed).
SYSTEM_PACKAGES = espeak-ng fluidsynth fluid-soundfont-gm maffilter-examples chromium

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[test]"
	touch $@

.PHONY: demo test system-packages
system-packages:  ## install the Debian packages where we may (root with apt-get), else say which are missing
	@if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "seqmamba: some Debian packages are missing; install them with: sudo apt-get install $(SYSTEM_PACKAGES)"; fi

demo: $(VENV)/.installed  ## the four jobs on CPU (pretrain, fine-tune + classify, audio, digit scores) in runs/demo/
	SEQMAMBA=$(VENV)/bin/seqmamba PYTHON=$(VENV)/bin/python bash pipelines/demo.sh

test: $(VENV)/.installed  ## the test suite (CUDA tests skip without a GPU and mamba-ssm)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider
