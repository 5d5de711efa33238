# Gauntlet developer entry points. `make run` and `make test` set up .venv on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Each `make run` is a new campaign in its own directory.
RUN_OUT ?= runs/$(shell date +%Y%m%d-%H%M%S)
RUN_TIME ?= 2m

.PHONY: setup run test test-slow lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU wheel of torch 2.13.0 is pinned: an unpinned torch pulls gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0 tensorflow-cpu
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gauntlet fuzz --time $(RUN_TIME) --out $(RUN_OUT)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check generators fuzz verify tests benchmarks
	$(VENV)/bin/mypy generators fuzz

bench: $(STAMP)
	$(PY) benchmarks/generation.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
