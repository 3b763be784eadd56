# One venv per checkout. torch is pinned to the CPU build on disk: a plain `torch` pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The oldest versions setup.cfg allows, in a venv of their own (tests/oldest_pins.py reads the lower bounds).
VENV_OLDEST := .venv-oldest
OLDEST_TESTS ?= -m "not slow"

.PHONY: setup demo test test-fast test-oldest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup  ## the main job: train + evaluate on the embedded default, offline, on CPU
	$(BIN)/accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/gsm8k.py

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-oldest: $(VENV_OLDEST)/.installed  ## the fast suite on torch 2.13 + the lower bound of every other dependency
	$(VENV_OLDEST)/bin/python -m pytest -q $(OLDEST_TESTS)

$(VENV_OLDEST)/.installed: setup.cfg pyproject.toml tests/oldest_pins.py
	rm -rf $(VENV_OLDEST)
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install -q --upgrade pip
	$(VENV_OLDEST)/bin/python -m pip install -q $(TORCH) $$($(PYTHON) tests/oldest_pins.py)
	$(VENV_OLDEST)/bin/python -m pip install -q --no-deps -e .
	$(VENV_OLDEST)/bin/python -m pip check
	touch $@

bench: setup
	$(BIN)/python bench/bench_regularizer.py --quick
	$(BIN)/python bench/bench_inference.py --quick
	$(BIN)/python bench/bench_data_build.py

clean:
	rm -rf $(VENV) $(VENV_OLDEST) build *.egg-info .pytest_cache
