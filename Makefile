# The two commands: `make run` (set up and start the platform) and `make test` (set up and pass the tests).
# Both are idempotent: stamps skip what is already installed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: run test system venv horovod bench clean help

help:
	@echo "make run     set up and start the platform on http://127.0.0.1:8000 (Ctrl-C stops it)"
	@echo "make test    set up and run the test suite with its real services"
	@echo "make horovod build Horovod 0.28.1 against torch 2.13 into the venv"
	@echo "make bench NAME=...  run one benchmark (python -m bench NAME)"

system:
	@bash scripts/install-system.sh

# torch first, pinned, from the CPU wheel: a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.stamp-base: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[server,mpi]'
	@touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install -q -e '.[server,mpi,dev]'
	@touch $@

venv: $(VENV)/.stamp-base

run: system $(VENV)/.stamp-base
	@$(PY) -m deploy.platform

test: system $(VENV)/.stamp-dev horovod
	@$(PY) -m pytest $(PYTEST_ARGS)

horovod: system $(VENV)/.stamp-base
	@bash scripts/build-horovod.sh $(PY)

bench: $(VENV)/.stamp-dev
	@$(PY) -m bench $(NAME) $(ARGS)

clean:
	rm -rf var test-artifacts bench/results
