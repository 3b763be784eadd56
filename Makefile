# One venv per checkout. torch is pinned to the CPU build on disk: a plain `torch` pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The oldest versions setup.cfg allows, in a venv of their own (tests/oldest_pins.py reads the lower bounds).
VENV_OLDEST := .venv-oldest
OLDEST_TESTS ?= -m "not slow"

.PHONY: setup demo see-it see-it-long test test-fast test-oldest lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup  ## the main job: train + evaluate on the embedded default, offline, on CPU
	$(BIN)/accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/gsm8k.py

# Vanilla vs Seq-VCR + Pause on recipes/multiplication/small_scale.yaml, one core each, then their exact match,
# entropy per layer and accuracy per answer position side by side in outputs/see-it (outputs/see-it-long). Finished
# arms are kept: a rerun only prints the summary (delete the arms' folders and the summary's to start over); an
# interrupted arm resumes from its last checkpoint.
see-it: setup  ## see the effect yourself: the small-scale cell where Seq-VCR + Pause beats vanilla (~7 min)
	$(MAKE) -j2 --no-print-directory outputs/see-it/summary.txt
	cat outputs/see-it/summary.txt

# The same cell 4x longer: seed 0 of bench/sweep.py's plan plateau (vanilla catches up in part; tests/test_sweep.py
# pins these flags to that run).
SEE_IT_LONG_FLAGS := --max_steps 16000 --eval_steps 200 --logging_steps 200
see-it-long: setup  ## the same cell at 16,000 steps: how far each arm gets (~17 CPU-minutes per arm, ~20 min on 2 cores)
	$(MAKE) -j2 --no-print-directory outputs/see-it-long/summary.txt
	cat outputs/see-it-long/summary.txt

# $(call see_it_rules,<summary folder>,<arms' folder prefix>,<extra recipe flags>,<CPU-minutes per arm>)
define see_it_rules
$(1)/summary.txt: $(2)-vanilla/results.json $(2)-seqvcr_pause/results.json
	mkdir -p $$(@D)
	$$(BIN)/seqvcr-diagnose --checkpoints $$(^D) --dataset $(2)-vanilla/_dataset --num_examples 200 --accuracy \
	    --output_dir $$(@D) --overwrite_output_dir > $$@.partial
	mv $$@.partial $$@

$(2)-%/results.json:
	@echo "training $$* (~$(4) CPU-minutes; log: $(2)-$$*.log)"
	@mkdir -p outputs
	@OMP_NUM_THREADS=1 $$(BIN)/python recipes/multiplication.py --config recipes/multiplication/small_scale.yaml \
	    --method $$* $(3) --output_dir $(2)-$$* $$(if $$(wildcard $(2)-$$*/checkpoint-*),--resume_from_checkpoint true) \
	    > $(2)-$$*.log 2>&1 || { tail -n 20 $(2)-$$*.log; exit 1; }
	@tail -n 3 $(2)-$$*.log
endef
$(eval $(call see_it_rules,outputs/see-it,outputs/multiplication-small_scale,,5))
$(eval $(call see_it_rules,outputs/see-it-long,outputs/multiplication-small_scale_16k,$(SEE_IT_LONG_FLAGS),17))

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
