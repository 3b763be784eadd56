# One venv per checkout. torch is pinned to the CPU build on disk: a plain `torch` pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: setup demo test test-fast bench clean

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

bench: setup
	$(BIN)/python bench/bench_regularizer.py --quick
	$(BIN)/python bench/bench_inference.py --quick
	$(BIN)/python bench/bench_data_build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
