# One venv per checkout. torch is pinned to the CPU build on disk: a plain `torch` pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The oldest versions setup.cfg allows, in a venv of their own (tests/oldest_pins.py reads the lower bounds).
VENV_OLDEST := .venv-oldest
OLDEST_TESTS ?= -m "not slow"

.PHONY: setup demo see-it test test-fast test-oldest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup  ## the main job: train + evaluate on the embedded default, offline, on CPU
	$(BIN)/accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/gsm8k.py

# Vanilla vs Seq-VCR + Pause on recipes/multiplication/small_scale.yaml, one core each (~6 minutes on 2 cores), then
# their entropy per layer and accuracy per answer position side by side in outputs/see-it.
SEE_IT := $(BIN)/python recipes/multiplication.py --config recipes/multiplication/small_scale.yaml --method
see-it: setup  ## see the effect yourself: the small-scale cell where Seq-VCR + Pause beats vanilla
	mkdir -p outputs; export OMP_NUM_THREADS=1; \
	$(SEE_IT) vanilla > outputs/see-it-vanilla.log 2>&1 & vanilla=$$!; \
	$(SEE_IT) seqvcr_pause; status=$$?; \
	wait $$vanilla && [ $$status = 0 ] || { tail -n 20 outputs/see-it-vanilla.log; exit 1; }
	tail -n 4 outputs/see-it-vanilla.log
	$(BIN)/seqvcr-diagnose --checkpoints outputs/multiplication-small_scale-vanilla \
	    outputs/multiplication-small_scale-seqvcr_pause --dataset outputs/multiplication-small_scale-vanilla/_dataset \
	    --num-examples 200 --accuracy --output-dir outputs/see-it

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
