# One venv per checkout. torch is pinned to the CPU build on disk: a plain `torch` pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The oldest versions setup.cfg allows, in a venv of their own (tests/oldest_pins.py reads the lower bounds).
VENV_OLDEST := .venv-oldest
OLDEST_TESTS ?= -m "not slow"

.PHONY: setup demo see-it test test-fast test-oldest lint bench clean

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
# their exact match, entropy per layer and accuracy per answer position side by side in outputs/see-it. Finished
# arms are kept: a rerun only prints the summary (delete outputs/*small_scale* and outputs/see-it to start over);
# an interrupted arm resumes from its last checkpoint.
SEE_IT := outputs/multiplication-small_scale
see-it: setup  ## see the effect yourself: the small-scale cell where Seq-VCR + Pause beats vanilla
	$(MAKE) -j2 --no-print-directory outputs/see-it/summary.txt
	cat outputs/see-it/summary.txt

outputs/see-it/summary.txt: $(SEE_IT)-vanilla/results.json $(SEE_IT)-seqvcr_pause/results.json
	mkdir -p $(@D)
	$(BIN)/seqvcr-diagnose --checkpoints $(^D) --dataset $(SEE_IT)-vanilla/_dataset --num_examples 200 --accuracy \
	    --output_dir $(@D) --overwrite_output_dir > $@.partial
	mv $@.partial $@

$(SEE_IT)-%/results.json:
	@echo "training $* (~5 CPU-minutes; log: $(SEE_IT)-$*.log)"
	@mkdir -p outputs
	@OMP_NUM_THREADS=1 $(BIN)/python recipes/multiplication.py --config recipes/multiplication/small_scale.yaml \
	    --method $* $(if $(wildcard $(SEE_IT)-$*/checkpoint-*),--resume_from_checkpoint true) \
	    > $(SEE_IT)-$*.log 2>&1 || { tail -n 20 $(SEE_IT)-$*.log; exit 1; }
	@tail -n 3 $(SEE_IT)-$*.log

test: setup
	$(BIN)/python -m pytest -q

lint: setup  ## ruff with the rules of pyproject.toml; read-only (the fix is `ruff check --fix .` and `ruff format .`)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-oldest: $(VENV_OLDEST)/.installed  ## the fast suite on the lower bound of every dependency (torch's is $(TORCH))
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
