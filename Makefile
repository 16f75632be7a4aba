# Two entry points: `make run` (the demo) and `make test`. Both create .venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: run test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

run: $(VENV)/.installed
	$(PY) apps/sentiment.py

# Test files run in parallel pytest workers (pytest-xdist): one per core, at
# most 4, since each holds its own TensorFlow runtime (1-3 GB).
# TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= auto

test: $(VENV)/.installed
	$(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

bench: $(VENV)/.installed
	for b in bench/[!_]*.py; do $(PY) $$b || exit $$?; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
