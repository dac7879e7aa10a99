# Two commands do all the set-up on a fresh machine with only Python 3.11+:
#   make demo   -- creates .venv, installs the workbench, runs the demo study
#   make test   -- creates .venv, installs the workbench with dev tools, runs the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/disentangle demo

# the tests in up to 4 worker processes (2 cores: 270 s instead of 390 s; jit compiles are
# single-threaded), handed out one at a time as workers free up
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist worksteal

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
