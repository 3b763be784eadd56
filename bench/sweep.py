"""Where do the methods separate? A declarative, resumable sweep: task × depth × method × seed × λ-variant.

Each run trains through the real recipe (`recipes/<task>.py`, one process, via recipe_runs.run_recipe) with
exact-match evaluation on the validation split every `eval_steps`, then scores the saved model on the test split
(exact match, digit and per-position accuracy, every row kept for the paired bootstrap) and measures the per-layer
matrix entropy (`hf_seqvcr.entropy.layerwise_entropy`, answer tokens). One directory and one `result.json` per run:
a run whose result.json exists is skipped, a run that was interrupted is wiped and restarted, so the sweep can
run over several sittings; `touch <root>/STOP` ends a sweep cleanly after the run in progress. Several `run`
processes may share a root (one per core): each run and each data build is locked, so a worker takes the next run
nobody holds.

Seeds: run seed s builds its data with the builder's `--seed s` and trains with `--seed s` (and `data_seed s`):
data draw, initial weights and batch order vary together, as in the lead ("--seed 1" varied both) and
bench_methods.py. Methods of the same seed share the data, so comparisons are paired by (seed, test row).

    python bench/sweep.py plan --plan headline          # what it would run, what is done, estimated CPU hours
    python bench/sweep.py run --plan headline quick     # run (skips what is done); one process, one thread
    python bench/sweep.py table                         # markdown tables from whatever has finished
    python bench/sweep.py plot                          # PNG curves per setting into <root>/plots
    python bench/sweep.py overlap                       # multiplication exact match, test rows split by b × a
    python bench/sweep.py collect                       # copy finished result.json into bench/sweep_results/
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import math
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from data_builders import build_once, load_task_dataset
from data_builders.multiplication import parse_operands
from hf_seqvcr.losses import MULTIPLICATION_LAMBDAS, OTHER_TASKS_LAMBDAS
from hf_seqvcr.methods import DEFAULT_PAUSES
from recipe_runs import ROOT, run_recipe  # bench/ is on sys.path when run as a script
from sweep_stats import best_point, format_mean_std, paired_bootstrap_diff, plateaued, spearman, steps_to

DEFAULT_ROOT = ROOT / "outputs" / "sweep"
COLLECTED = ROOT / "bench" / "sweep_results"
THRESHOLDS = (0.1, 0.25, 0.5, 0.9)  # exact match on the validation rows for "steps to X %"


@dataclass(frozen=True)
class Task:
    """A generated task: builder options, training rows, and the paper's Seq-VCR λ for it (docs/method.md §2)."""

    builder: str
    options: tuple[str, ...]
    train_size: int
    lambdas: tuple[float, float]  # (λ1 variance, λ2 covariance)
    eval_size: int = 200  # validation rows (curve) and test rows (final), each


MULT, OTHER = tuple(MULTIPLICATION_LAMBDAS), tuple(OTHER_TASKS_LAMBDAS)  # docs/method.md §2
TASKS = {
    "mul2": Task("multiplication", ("--digits=2",), 6000, MULT),  # 8,100 operand pairs in all: 6,000 + 400 held out
    "mul3": Task("multiplication", ("--digits=3",), 20000, MULT),
    "mul4": Task("multiplication", ("--digits=4",), 80000, MULT),  # GPU check
    "arith2": Task("arithmetic", ("--num-operators=2", "--modulus=11"), 20000, OTHER),
    "arith3": Task("arithmetic", ("--num-operators=3", "--modulus=11"), 20000, OTHER),
    "arith4": Task("arithmetic", ("--num-operators=4", "--modulus=11"), 20000, OTHER),
    "lis": Task("lis", ("--length=12", "--max-value=20"), 20000, OTHER),
    # Issue 21 §1, "is 6,000 rows the limit?": every 2×2 pair the held-out rows leave (8,100 − 2 × 200); the builder
    # draws test, then validation, then train rows, so a seed's test and validation rows are mul2's exactly.
    "mul2all": Task("multiplication", ("--digits=2",), 7700, MULT),
}
SEQVCR_METHODS = ("seqvcr", "seqvcr_pause")
PAUSE_METHODS = ("pause", "seqvcr_pause")


@dataclass(frozen=True)
class Run:
    """One training run; every field that changes the result is in `run_id`, so equal runs of two plans are one."""

    task: str
    method: str
    seed: int
    layers: int = 4
    width: int = 128
    heads: int = 4
    steps: int = 4000
    lr: float = 1e-3
    batch: int = 32
    warmup: int = 100
    lambdas: tuple[float, float] | None = None  # None: the paper's values (docs/method.md §2)
    proj_dim: int = 256
    eval_steps: int = 100
    eval_rows: int = 200
    preset: str | None = field(default=None, compare=False)  # e.g. "gpt2-small" (GPU check); else layers × width
    bf16: bool = False
    pauses: int | None = None  # None: the method's default (2 for a pause method)
    distinct_pauses: bool = False  # one embedding per pause position instead of one shared
    seqvcr_layers: tuple[int, ...] | None = None  # None: the last hidden state (the library's default)
    covariance: str = "batch"  # or "batch_positions"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; one of {list(TASKS)}")
        regularizer_variant = self.lambdas is not None or self.seqvcr_layers or self.covariance != "batch"
        if regularizer_variant and self.method not in SEQVCR_METHODS:
            raise ValueError(f"a λ, layer or covariance variant needs a Seq-VCR method, not {self.method!r}")
        if (self.pauses is not None or self.distinct_pauses) and self.method not in PAUSE_METHODS:
            raise ValueError(
                f"a pause variant needs a pause method, not {self.method!r} (0 pauses: its pause-free "
                "twin, e.g. seqvcr for seqvcr_pause)"
            )
        if self.pauses is not None and not (1 <= self.pauses != DEFAULT_PAUSES):
            raise ValueError(
                f"pauses={self.pauses}: give 1 or more, and leave it None for the default "
                f"{DEFAULT_PAUSES} (one run id per run)"
            )

    @property
    def variants(self) -> list[tuple[str, str]]:
        """How the run departs from its method's defaults, as (run id part, table label) pairs; [] for none."""
        parts = []
        if self.lambdas:
            var, cov = self.lambdas
            parts.append((f"-lam{var:g}_{cov:g}", f"λ=({var:g}, {cov:g})"))
        if self.pauses is not None:
            parts.append((f"-pz{self.pauses}", f"{self.pauses} pauses"))
        if self.distinct_pauses:
            parts.append(("-distinct", "distinct pauses"))
        if self.seqvcr_layers:
            parts.append(
                ("-reg" + "_".join(map(str, self.seqvcr_layers)), "layers " + ",".join(map(str, self.seqvcr_layers)))
            )
        if self.covariance != "batch":
            parts.append((f"-cov{self.covariance}", f"{self.covariance} covariance"))
        return parts

    @property
    def resolved_lambdas(self) -> tuple[float, float]:
        return self.lambdas or TASKS[self.task].lambdas

    @property
    def shape(self) -> str:
        return self.preset or f"L{self.layers}d{self.width}" + (f"h{self.heads}" if self.heads != 4 else "")

    @property
    def cell(self) -> str:
        """The run without its seed: the unit that mean ± std is taken over."""
        shape = self.shape
        variant = "".join(part for part, _ in self.variants)
        bf16 = "-bf16" if self.bf16 else ""
        return (
            f"{self.task}-{shape}-{self.method}{variant}-lr{self.lr:g}-s{self.steps}-b{self.batch}-w{self.warmup}"
            f"-p{self.proj_dim}{bf16}"
        )

    @property
    def setting(self) -> str:
        """The cell without method and its variants: runs of one setting differ only by method, so they compare."""
        return f"{self.task}-{self.shape}-lr{self.lr:g}-s{self.steps}-b{self.batch}-w{self.warmup}"

    @property
    def run_id(self) -> str:
        return f"{self.cell}-seed{self.seed}"


# ---------------------------------------------------------------------------------------------------------- plans
HEADLINE_METHODS = ("vanilla", "pause", "seqvcr", "seqvcr_pause")
CONTRAST = ("vanilla", "seqvcr_pause")  # off the headline cell, CPU hours allow the two arms that bound the effect
SEEDS = (0, 1, 2)


def _seed_major(runs: list[Run]) -> list[Run]:
    """Seed 0 of every cell first: a sweep cut short still covers every cell once."""
    return sorted(runs, key=lambda r: r.seed)


def plan_headline() -> list[Run]:
    """The lead, made evidence: 2×2, tiny (4 layers, d=128), 6,000 rows, lr 1e-3, batch 32, warmup 100, 4,000 steps,
    200 test rows; four non-CoT arms, 3 seeds."""
    return _seed_major([Run("mul2", m, s) for s in SEEDS for m in HEADLINE_METHODS])


def plan_quick() -> list[Run]:
    """Candidates for the learning test's control: vanilla vs Seq-VCR + Pause within ~2 CPU-minutes per run."""
    shapes = [dict(layers=2), dict(layers=4), dict(layers=2, lr=3e-3)]
    return _seed_major(
        [
            Run("mul2", m, s, steps=1500, **shape)
            for s in (0, 1)
            for shape in shapes
            for m in ("vanilla", "seqvcr_pause")
        ]
    )


def plan_lr() -> list[Run]:
    """Learning rate tuned on vanilla only (the other methods get the winner, never their own tuning)."""
    return _seed_major([Run("mul2", "vanilla", s, lr=lr) for s in SEEDS for lr in (3e-4, 1e-3, 3e-3)])


LAMBDA_VARIANTS = ((0.1, 0.5), (1.0, 0.04), (3.0, 0.004))  # besides the default (1, 0.004) on multiplication


def plan_lambda() -> list[Run]:
    """A small λ sweep for Seq-VCR + Pause (the headline arm) on the headline setting, so a bad λ cannot decide the
    verdict (a robustness check, reported beside the default-λ headline, not a replacement for it)."""
    return _seed_major([Run("mul2", "seqvcr_pause", s, lambdas=lam) for s in SEEDS for lam in LAMBDA_VARIANTS])


def plan_depth() -> list[Run]:
    """2×2 at depth 2 and 6 (d=128; depth 4 is the headline): vanilla vs Seq-VCR + Pause."""
    return _seed_major([Run("mul2", m, s, layers=n) for s in SEEDS for n in (2, 6) for m in CONTRAST])


def plan_tasks() -> list[Run]:
    """Other tasks at depth 4: 3×3 multiplication, expressions with 2–4 operators, LIS; vanilla vs Seq-VCR + Pause."""
    tasks = ("mul3", "arith2", "arith3", "arith4", "lis")
    return _seed_major([Run(t, m, s) for s in SEEDS for t in tasks for m in CONTRAST])


def plan_gpu() -> list[Run]:
    """bench/gpu_check.sh on a lent GPU: 4×4, GPT-2-small shape from scratch, bf16, d_proj 2048, vanilla vs
    Seq-VCR + Pause (one seed: a first look at the curve, not a verdict)."""
    common = dict(
        preset="gpt2-small",
        layers=12,
        width=768,
        heads=12,
        steps=1500,
        lr=1e-4,
        batch=32,
        warmup=100,
        proj_dim=2048,
        eval_steps=250,
        bf16=True,
    )
    return [Run("mul4", m, 0, **common) for m in ("vanilla", "seqvcr_pause")]


def plan_smoke() -> list[Run]:
    """A few-second check that the whole path works (used by gpu_check.sh --cpu-smoke and the docs)."""
    return [
        Run("mul2", m, 0, layers=1, width=32, heads=2, steps=20, warmup=2, eval_steps=10, eval_rows=32)
        for m in ("vanilla", "seqvcr_pause")
    ]


PLATEAU_EVAL_STEPS = 200  # a curve point every 200 steps: 80 points at 16,000 steps, eval ~2 % of training


def plan_plateau() -> list[Run]:
    """Issue 21 §1: the headline cell run to (towards) a plateau at 16,000 steps, 3 seeds: vanilla and Seq-VCR +
    Pause first (the two arms the verdict rests on), then Pause, Seq-VCR and CoT, seed-major within each group."""

    def runs(methods: tuple[str, ...]) -> list[Run]:
        return _seed_major(
            [Run("mul2", m, s, steps=16000, eval_steps=PLATEAU_EVAL_STEPS) for s in SEEDS for m in methods]
        )

    return runs(CONTRAST) + runs(("pause", "seqvcr", "cot"))


def plan_plateau32k() -> list[Run]:
    """Issue 21 §1: vanilla and Seq-VCR + Pause at 32,000 steps, 3 seeds (a curve point every 400 steps)."""
    return _seed_major(
        [Run("mul2", m, s, steps=32000, eval_steps=2 * PLATEAU_EVAL_STEPS) for s in SEEDS for m in CONTRAST]
    )


def plan_plateau64k() -> list[Run]:
    """Issue 21 §1, "and beyond": at 32,000 steps Seq-VCR + Pause had plateaued and vanilla had not, so vanilla
    alone at 64,000 steps (a curve point every 800 steps), 3 seeds."""
    return [Run("mul2", "vanilla", s, steps=64000, eval_steps=4 * PLATEAU_EVAL_STEPS) for s in SEEDS]


ABLATION_STEPS = 8000


def plan_pauses() -> list[Run]:
    """Issue 21 §2: pause tokens 0/2/4/8 with Seq-VCR on (0 = the seqvcr arm), one shared pause embedding vs one per
    position; the headline cell at 8,000 steps, 3 seeds."""
    runs = []
    for seed in SEEDS:
        runs.append(Run("mul2", "seqvcr", seed, steps=ABLATION_STEPS))
        runs += [
            Run(
                "mul2",
                "seqvcr_pause",
                seed,
                steps=ABLATION_STEPS,
                distinct_pauses=distinct,
                pauses=None if n == DEFAULT_PAUSES else n,
            )
            for n in (2, 4, 8)
            for distinct in (False, True)
        ]
    return runs


def plan_where() -> list[Run]:
    """Issue 21 §2: where to regularize — the last hidden state (default), the middle layer (2 of 4), every layer
    (1–4, averaged), and the last with one covariance over batch × positions; seqvcr_pause, 8,000 steps, 3 seeds."""
    variants = ({}, {"seqvcr_layers": (2,)}, {"seqvcr_layers": (1, 2, 3, 4)}, {"covariance": "batch_positions"})
    return [Run("mul2", "seqvcr_pause", s, steps=ABLATION_STEPS, **v) for s in SEEDS for v in variants]


def plan_lambda_seqvcr() -> list[Run]:
    """Issue 21 §2: the λ search of `lambda` for Seq-VCR without pauses too, so both regularized arms get a search
    of equal size (the default and the same 3 variants, 4,000 steps, 3 seeds)."""
    return _seed_major([Run("mul2", "seqvcr", s, lambdas=lam) for s in SEEDS for lam in LAMBDA_VARIANTS])


def plan_rows() -> list[Run]:
    """Issue 21 §1: is 6,000 rows the limit? As the issue asks, the longest contrast budget (32,000 steps, where
    Seq-VCR + Pause levels off) once, seed 0, with every 2×2 pair the held-out rows leave (7,700): vanilla and
    Seq-VCR + Pause, on the same test rows as `plateau32k`'s seed 0, so the two pair."""
    return [Run("mul2all", m, 0, steps=32000, eval_steps=2 * PLATEAU_EVAL_STEPS) for m in CONTRAST]


def plan_mul3_wide() -> list[Run]:
    """Issue 21 §1: 3×3 with more capacity (6 layers, d=256, 8 heads; the `tasks` plan's 3×3 was 4 × 128 and
    stayed at 0 %), 8,000 steps, vanilla and Seq-VCR + Pause, 2 seeds (~2 CPU-hours per run)."""
    return _seed_major(
        [Run("mul3", m, s, layers=6, width=256, heads=8, steps=ABLATION_STEPS) for s in (0, 1) for m in CONTRAST]
    )


PLANS = {
    "headline": plan_headline,
    "quick": plan_quick,
    "lr": plan_lr,
    "lambda": plan_lambda,
    "depth": plan_depth,
    "tasks": plan_tasks,
    "gpu": plan_gpu,
    "smoke": plan_smoke,
    "plateau": plan_plateau,
    "plateau32k": plan_plateau32k,
    "plateau64k": plan_plateau64k,
    "pauses": plan_pauses,
    "where": plan_where,
    "lambda_seqvcr": plan_lambda_seqvcr,
    "rows": plan_rows,
    "mul3_wide": plan_mul3_wide,
}
# The order the background sweep runs in: one seed of the quick control (the learning test waits for it) and of the
# headline, then their other seeds, the learning rate, then the wider grid seed by seed (a sweep cut short still
# covers every cell of it once).
QUEUE = (
    "quick:0",
    "headline:0",
    "quick",
    "headline",
    "lr",
    *(f"{plan}:{seed}" for seed in SEEDS for plan in ("lambda", "depth", "tasks")),
)


# Issue 21's order: the plateau runs the verdict rests on, then the ablations seed by seed, then the costly rest.
QUEUE21 = (
    "plateau",
    *(f"{plan}:{seed}" for seed in SEEDS for plan in ("pauses", "where", "lambda_seqvcr")),
    "plateau32k",
    "plateau64k",
    "rows",
    "mul3_wide",
)
QUEUES = {"queue": QUEUE, "queue21": QUEUE21}


def resolve_plans(names: list[str]) -> list[Run]:
    """Runs of the named plans in order, duplicates dropped; 'plan:seed' keeps one seed, 'queue' is QUEUE and
    'queue21' QUEUE21."""
    runs: list[Run] = []
    for name in names:
        if name in QUEUES:
            runs += resolve_plans(list(QUEUES[name]))
            continue
        plan, _, seed = name.partition(":")
        if plan not in PLANS:
            raise SystemExit(f"unknown plan {plan!r}; one of {[*PLANS, *QUEUES]}")
        runs += [r for r in PLANS[plan]() if not seed or r.seed == int(seed)]
    seen: set[str] = set()
    return [r for r in runs if not (r.run_id in seen or seen.add(r.run_id))]


# ------------------------------------------------------------------------------------------------------- one run
def model_config(run: Run, root: Path) -> str:
    """The recipe's `model_config`: the preset when the shape is one (so 4 × 128 is exactly `tiny`), else a
    GPT-2 config.json of `layers` × `width` written once under <root>/models."""
    from hf_seqvcr.scripts.models import SCRATCH_PRESETS

    if run.preset:
        return run.preset
    for name, shape in SCRATCH_PRESETS.items():
        if (shape["n_layer"], shape["n_embd"], shape["n_head"]) == (run.layers, run.width, run.heads):
            return name
    path = root / "models" / f"L{run.layers}d{run.width}h{run.heads}" / "config.json"
    if not path.is_file():  # written whole, then renamed: a worker reading it never sees half of it
        path.parent.mkdir(parents=True, exist_ok=True)
        config = dict(model_type="gpt2", n_layer=run.layers, n_embd=run.width, n_head=run.heads, n_positions=2048)
        partial = path.with_name(f"config.json.{os.getpid()}")
        partial.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(partial, path)
    return str(path)


def builder_options(run: Run) -> list[str]:
    task = TASKS[run.task]
    return [
        *task.options,
        f"--train-size={task.train_size}",
        f"--validation-size={task.eval_size}",
        f"--test-size={task.eval_size}",
        f"--seed={run.seed}",
    ]


def dataset(run: Run, root: Path) -> Path:
    invocation = shlex.join([TASKS[run.task].builder, *builder_options(run)])
    (root / "data").mkdir(parents=True, exist_ok=True)
    with open(root / "data" / ".lock", "w") as lock:  # two workers wanting the same data: one builds, one waits
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_once(invocation, root / "data" / f"{run.task}-seed{run.seed}")


def recipe_config(run: Run, data: Path, model: str) -> dict:
    """Everything the recipe gets, written next to the run (the exact record of its budget)."""
    lam_var, lam_cov = run.resolved_lambdas
    return (
        dict(
            dataset_name=str(data),
            model_config=model,
            seed=run.seed,
            data_seed=run.seed,
            max_steps=run.steps,
            per_device_train_batch_size=run.batch,
            per_device_eval_batch_size=64,
            learning_rate=run.lr,
            warmup_steps=run.warmup,
            seqvcr_lambda_var=lam_var,
            seqvcr_lambda_cov=lam_cov,
            seqvcr_proj_dim=run.proj_dim,
            eval_strategy="steps",
            eval_steps=run.eval_steps,
            eval_exact_match=True,
            max_eval_samples=run.eval_rows,
            save_strategy="no",
            logging_steps=run.eval_steps,
            report_to="none",
            disable_tqdm=True,
            bf16=run.bf16,
        )
        | ({"num_pause_tokens": run.pauses} if run.pauses is not None else {})
        | ({"distinct_pause_embeddings": True} if run.distinct_pauses else {})
        | ({"seqvcr_layers": list(run.seqvcr_layers)} if run.seqvcr_layers else {})
        | ({"seqvcr_covariance": run.covariance} if run.covariance != "batch" else {})
    )


def curve(log_history: list[dict]) -> list[dict]:
    """The validation curve from trainer_state.json: exact match, digit and per-position accuracy per step."""
    points = []
    for entry in log_history:
        if "eval_exact_match" in entry:
            points.append(
                {
                    "step": entry["step"],
                    "exact_match": entry["eval_exact_match"],
                    "digit_accuracy": entry["eval_digit_accuracy"],
                    "position_accuracy": entry.get("eval_position_accuracy"),
                }
            )
    losses = {e["step"]: e["eval_loss"] for e in log_history if "eval_loss" in e}
    for point in points:
        point["eval_loss"] = losses.get(point["step"])
    return points


def final_scores(checkpoint: Path, data: Path, rows: int) -> dict:
    """Test-split scores of the saved model, every row kept (for the paired bootstrap), and per-layer entropy.

    The model is read back with the collator it was trained with (pauses; CoT's question → cot #### answer), so
    CoT's entropy is measured on its answer tokens with its chain of thought in context.
    """
    import torch
    from torch.utils.data import DataLoader

    from hf_seqvcr.entropy import layerwise_entropy
    from hf_seqvcr.evaluation import normalize_answer, predict_answers, score_answers
    from hf_seqvcr.pretrained import load_pretrained
    from hf_seqvcr.scripts.diagnose import load_examples

    torch.set_num_threads(1)
    model, _, collator = load_pretrained(checkpoint)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    test = load_examples(str(data), None, "test", rows)
    predictions = predict_answers(model, collator, test, batch_size=64)
    references = [normalize_answer(row["answer"]) for row in test]
    scores = score_answers(predictions, references)
    entropy = layerwise_entropy(model, DataLoader(test, batch_size=32, collate_fn=collator), positions="answer")
    return {
        **scores,
        "correct": [int(p == r) for p, r in zip(predictions, references, strict=True)],
        "predictions": predictions,
        "entropy": entropy,
    }


def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout
        return head.strip() + ("-dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def execute(run: Run, root: Path, threads: int | None) -> dict:
    """Train, score, measure; write <root>/<run_id>/result.json last and atomically (its presence = done)."""
    folder = root / run.run_id
    if folder.exists():  # an interrupted run: its partial output (and the recipe's refusal to reuse it) goes
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    data = dataset(run, root)
    config = recipe_config(run, data, model_config(run, root))
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_start, started, commit = os.getloadavg(), time.time(), git_state()  # the code the run trains with
    trained = run_recipe(
        TASKS[run.task].builder, config_path, run.method, folder / "train", folder / "train.log", threads=threads
    )
    state = json.loads((folder / "train" / "trainer_state.json").read_text())
    score_start = time.process_time()
    final = final_scores(folder / "train", data, TASKS[run.task].eval_size)
    result = {
        "run_id": run.run_id,
        "cell": run.cell,
        "setting": run.setting,
        "run": dataclasses.asdict(run),
        "lambdas": list(run.resolved_lambdas),
        "seeds": {"data": run.seed, "training": run.seed},
        "data": str(data),
        "recipe_config": config,
        "command": trained["command"],
        "git": commit,
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "nice": os.nice(0),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "load_start": list(load_start),
        "load_end": list(os.getloadavg()),
        "wall_s": trained["wall_s"],
        "cpu_s": trained["cpu_s"],
        "train_runtime": trained["train_runtime"],
        "score_cpu_s": time.process_time() - score_start,
        "train_loss": trained.get("train_loss"),
        "recipe_test": {k: trained[k] for k in ("test_exact_match", "test_digit_accuracy") if k in trained},
        "curve": curve(state["log_history"]),
        "train_log": [
            {k: e[k] for k in ("step", "loss", "ce", "seqvcr") if k in e} for e in state["log_history"] if "loss" in e
        ],
        "final": {k: final[k] for k in ("exact_match", "digit_accuracy", "position_accuracy")},
        "correct": final["correct"],
        "predictions": final["predictions"],
        "entropy": final["entropy"],
    }
    partial = folder / "result.json.partial"
    partial.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(partial, folder / "result.json")
    return result


# ------------------------------------------------------------------------------------------------------ commands
def load_results(dirs: list[Path]) -> dict[str, dict]:
    """Finished results by run id from <dir>/<run_id>/result.json and <dir>/<run_id>.json (collected copies)."""
    results: dict[str, dict] = {}
    for directory in dirs:
        for path in [*directory.glob("*/result.json"), *directory.glob("*.json")]:
            result = json.loads(path.read_text())
            results.setdefault(result["run_id"], result)
    return results


def estimate_cpu_s(run: Run, done: dict[str, dict]) -> float:
    """CPU seconds of a run: measured per step on finished runs of the same task and method at the nearest shape
    measured (the same one if it ran), scaled by layers × width² (the weights' FLOPs); else a guess from the
    headline timing (~0.07 CPU-s per step for 4 × 128 at batch 32, CoT ~2.5×)."""
    target = run.layers * run.width**2

    def size(r: dict) -> int:
        return r["run"]["layers"] * r["run"]["width"] ** 2

    def distance(r: dict) -> float:  # how many times larger or smaller, either way
        return abs(math.log(size(r) / target))

    same_task = [r for r in done.values() if (r["run"]["task"], r["run"]["method"]) == (run.task, run.method)]
    if same_task:
        nearest = min(map(distance, same_task))
        measured = [r for r in same_task if distance(r) == nearest]
        return statistics.fmean(r["cpu_s"] / r["run"]["steps"] * target / size(r) for r in measured) * run.steps + 15
    per_step = 0.07 * (run.layers / 4) * (run.width / 128) ** 1.5 * (2.5 if run.method == "cot" else 1.0)
    return per_step * run.steps * (3 if run.task == "mul3" else 1) + 15


def command_plan(args: argparse.Namespace) -> None:
    runs = resolve_plans(args.plan)
    done = load_results([args.root, COLLECTED])
    todo = [r for r in runs if r.run_id not in done]
    print("| # | run | done | CPU min (measured or estimated) |\n|---|---|---|---|")
    for i, run in enumerate(runs, 1):
        cpu = done[run.run_id]["cpu_s"] if run.run_id in done else estimate_cpu_s(run, done)
        print(f"| {i} | {run.run_id} | {'yes' if run.run_id in done else ''} | {cpu / 60:.1f} |")
    spent = sum(done[r.run_id]["cpu_s"] for r in runs if r.run_id in done) / 3600
    hours = sum(estimate_cpu_s(r, done) for r in todo) / 3600
    print(
        f"\n{len(runs)} runs, {len(runs) - len(todo)} done ({spent:.1f} CPU-hours spent), {len(todo)} to go: "
        f"~{hours:.1f} CPU-hours on one core"
    )


def claim(run: Run, root: Path):
    """An open, exclusively locked file for `run`, or None when another worker holds it (released on close/exit)."""
    (root / ".locks").mkdir(parents=True, exist_ok=True)
    handle = open(root / ".locks" / run.run_id, "w")  # noqa: SIM115 -- the lock lives as long as the returned handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def command_run(args: argparse.Namespace) -> None:
    args.root.mkdir(parents=True, exist_ok=True)
    runs = resolve_plans(args.plan)
    print(f"[{time.strftime('%H:%M:%S')}] pid {os.getpid()}, {len(runs)} runs in {args.root}", flush=True)
    failures = 0
    stop = args.root / "STOP"
    for i, run in enumerate(runs, 1):
        if (args.root / run.run_id / "result.json").is_file():
            continue
        if stop.exists():
            print(
                f"[{time.strftime('%H:%M:%S')}] {stop} exists: stopping between runs (delete it to go on)", flush=True
            )
            break
        if (held := claim(run, args.root)) is None:
            continue
        with held:
            if (args.root / run.run_id / "result.json").is_file():  # finished by another worker meanwhile
                continue
            print(
                f"[{time.strftime('%H:%M:%S')}] ({i}/{len(runs)}) {run.run_id}; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            try:
                result = execute(run, args.root, args.threads)
            except (RuntimeError, OSError, ValueError, KeyError) as error:  # one bad run must not stop a night's sweep
                failures += 1
                print(f"FAILED {run.run_id}: {error}", flush=True)
                continue
        f = result["final"]
        print(
            f"    done in {result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} CPU-s: test exact match "
            f"{f['exact_match']:.1%}, digit accuracy {f['digit_accuracy']:.1%}",
            flush=True,
        )
    print(f"[{time.strftime('%H:%M:%S')}] finished; {failures} failed", flush=True)


def _group(results: dict[str, dict]) -> dict[str, dict[str, list[dict]]]:
    """setting → cell → results (sorted by seed)."""
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in sorted(results.values(), key=lambda r: (r["setting"], r["cell"], r["run"]["seed"])):
        groups[result["setting"]][result["cell"]].append(result)
    return groups


def run_of(result: dict) -> Run:
    """The Run a result.json records (results written before a field existed get its default)."""
    fields = {f.name for f in dataclasses.fields(Run)}
    return Run(**{k: tuple(v) if isinstance(v, list) else v for k, v in result["run"].items() if k in fields})


def _seeds(runs: list[dict]) -> str:
    return ",".join(str(r["run"]["seed"]) for r in runs)


def _label(result: dict) -> str:
    run = run_of(result)
    return " ".join([run.method, *(label for _, label in run.variants)])


def _validation_curve(result: dict) -> tuple[list[int], list[float]]:
    return [p["step"] for p in result["curve"]], [p["exact_match"] for p in result["curve"]]


def _cpu_minutes(result: dict, step: int) -> float:
    """CPU-minutes a run had spent by `step`: its CPU time prorated by step (evaluation included)."""
    return result["cpu_s"] * step / result["run"]["steps"] / 60


def _steps_to_cell(results: list[dict], threshold: float) -> str:
    """Median step (reached/seeds) and the median CPU-minutes to it."""
    reached = [(steps_to(*_validation_curve(r), threshold), r) for r in results]
    hit = [(step, _cpu_minutes(r, step)) for step, r in reached if step is not None]
    if not hit:
        return f"— (0/{len(reached)})"
    return (
        f"{statistics.median(s for s, _ in hit):.0f} ({len(hit)}/{len(reached)}), "
        f"{statistics.median(m for _, m in hit):.1f} min"
    )


def _best_cell(results: list[dict]) -> str:
    """Per seed: best validation exact match % @ its first step; then how many seeds plateaued (no gain in the
    last quarter of the run)."""
    best = [best_point(*_validation_curve(r)) for r in results]
    flat = sum(plateaued(*_validation_curve(r)) for r in results)
    return " / ".join(f"{100 * v:.1f}@{s}" for v, s in best) + f" | {flat}/{len(results)}"


def _default_cell(cells: dict[str, list[dict]], method: str) -> list[dict] | None:
    for runs in cells.values():
        if runs[0]["run"]["method"] == method and not run_of(runs[0]).variants:
            return runs
    return None


def paired_ci(runs_a: list[dict] | None, runs_b: list[dict] | None) -> str | None:
    """Paired bootstrap CI of exact match a − b over the seeds both have finished, as a table row, or None."""
    if not runs_a or not runs_b:
        return None
    by_seed = {r["run"]["seed"]: r for r in runs_b}
    pairs = [(r, by_seed[r["run"]["seed"]]) for r in runs_a if r["run"]["seed"] in by_seed]
    if not pairs:
        return None
    mean, low, high = paired_bootstrap_diff([x["correct"] for x, _ in pairs], [y["correct"] for _, y in pairs])
    seeds = ",".join(str(x["run"]["seed"]) for x, _ in pairs)
    return (
        f"| {_label(runs_a[0])} − {_label(runs_b[0])} | {100 * mean:+.1f} | [{100 * low:+.1f}, {100 * high:+.1f}] "
        f"| {seeds} | {len(pairs[0][0]['correct'])} |"
    )


METHOD_CONTRASTS = (
    ("seqvcr_pause", "vanilla"),
    ("seqvcr_pause", "pause"),
    ("seqvcr", "vanilla"),
    ("pause", "vanilla"),
    ("cot", "vanilla"),
    ("seqvcr_pause", "cot"),
    ("seqvcr", "seqvcr_pause"),
)


def contrast_rows(cells: dict[str, list[dict]]) -> list[str]:
    """The methods' contrasts at their defaults, then every variant (an ablation, a λ) against its method's
    default, paired by seed."""
    pairs = [(_default_cell(cells, a), _default_cell(cells, b)) for a, b in METHOD_CONTRASTS]
    pairs += [
        (runs, _default_cell(cells, runs[0]["run"]["method"])) for runs in cells.values() if run_of(runs[0]).variants
    ]
    return [row for a, b in pairs if (row := paired_ci(a, b))]


def pause_grid(cells: dict[str, list[dict]]) -> str | None:
    """Issue 21 §2 at a glance: Seq-VCR's test exact match by pause count (0 = the seqvcr arm) × shared or
    distinct pause embeddings, mean ± std over seeds (seed count in parentheses); None without a pause variant."""
    grid: dict[tuple[int, bool], list[dict]] = {}
    for runs in cells.values():
        run = run_of(runs[0])
        if run.method == "seqvcr" and not run.variants:
            grid[0, False] = runs
        elif run.method == "seqvcr_pause" and {part for part, _ in run.variants} <= {f"-pz{run.pauses}", "-distinct"}:
            grid[run.pauses or DEFAULT_PAUSES, run.distinct_pauses] = runs
    if not any(count not in (0, DEFAULT_PAUSES) or distinct for count, distinct in grid):  # a pause variant ran
        return None

    def entry(runs: list[dict] | None) -> str:
        return f"{format_mean_std([r['final']['exact_match'] for r in runs])} ({len(runs)})" if runs else "—"

    lines = ["| pauses | shared | distinct |", "|---|---|---|"]
    for count in sorted({count for count, _ in grid}):
        lines.append(f"| {count} | {entry(grid.get((count, False)))} | {entry(grid.get((count, True)))} |")
    return "\n".join(lines)


def lambda_search(cells: dict[str, list[dict]]) -> str | None:
    """Issue 21 §2's λ search, chosen on validation and then tested once: per Seq-VCR method, every λ it ran (the
    default and its variants) by final validation exact match, the winner marked; None without a λ variant. The
    validation mean is over the seeds every λ of the method has finished, so a λ is not chosen for its lucky seeds
    while the others run. Only the marked row's test number is the search's result."""
    by_method: dict[str, dict[tuple[float, float], list[dict]]] = defaultdict(dict)
    for runs in cells.values():
        run = run_of(runs[0])
        if run.method in SEQVCR_METHODS and all(part.startswith("-lam") for part, _ in run.variants):
            by_method[run.method][run.resolved_lambdas] = runs
    lines = []
    for method, trials in by_method.items():
        if len(trials) < 2:
            continue
        shared = set.intersection(*({r["run"]["seed"] for r in runs} for runs in trials.values()))
        if not shared:
            continue
        validation = {
            lam: statistics.fmean(_validation_curve(r)[1][-1] for r in runs if r["run"]["seed"] in shared)
            for lam, runs in trials.items()
        }
        chosen = max(validation, key=validation.get)
        for lam, runs in trials.items():
            test = format_mean_std([r["final"]["exact_match"] for r in runs])
            mark = " **chosen**" if lam == chosen else ""
            lines.append(
                f"| {method} | ({lam[0]:g}, {lam[1]:g}){mark} | {100 * validation[lam]:.1f} | {test} | {len(runs)} |"
            )
    if not lines:
        return None
    return "\n".join(
        [
            "| method | λ (variance, covariance) | validation % | test % | seeds (test) |",
            "|---|---|---|---|---|",
            *lines,
        ]
    )


def command_table(args: argparse.Namespace) -> None:
    results = load_results(args.results)
    if not results:
        raise SystemExit(f"no finished runs under {', '.join(map(str, args.results))}")
    for setting, cells in _group(results).items():
        if args.setting and not any(s in setting for s in args.setting):
            continue
        print(f"\n### {setting}\n")
        print(
            "Test split (final): mean ± std over seeds, per-seed exact match listed; validation curve: steps to "
            "reach X % exact match, median over the seeds that reached it (reached/seeds), and the median "
            "CPU-minutes to it (the run's CPU time prorated by step); best validation exact match per seed @ its "
            "first step; plateaued: seeds whose best came before the last quarter of the run.\n"
        )
        thresholds = " | ".join(f"steps to {100 * t:g} %" for t in THRESHOLDS)
        print(
            f"| method | seeds | exact match % | per seed | digit acc % | per position % | {thresholds} "
            f"| best validation % @ step | plateaued | CPU min/run | load start–end |"
        )
        print("|---" * (10 + len(THRESHOLDS)) + "|")
        for runs in cells.values():
            em = [r["final"]["exact_match"] for r in runs]
            positions = zip(*(r["final"]["position_accuracy"] for r in runs), strict=True)
            loads = [x for r in runs for x in (r["load_start"][0], r["load_end"][0])]
            print(
                f"| {_label(runs[0])} | {_seeds(runs)} | {format_mean_std(em)} "
                f"| {'/'.join(f'{100 * x:.1f}' for x in em)} "
                f"| {format_mean_std([r['final']['digit_accuracy'] for r in runs])} "
                f"| {'/'.join(f'{100 * statistics.fmean(p):.0f}' for p in positions)} | "
                + " | ".join(_steps_to_cell(runs, t) for t in THRESHOLDS)
                + f" | {_best_cell(runs)}"
                + f" | {statistics.fmean(r['cpu_s'] for r in runs) / 60:.1f} | {min(loads):.1f}–{max(loads):.1f} |"
            )
        print(
            "\nMatrix entropy per layer (nats, α=1, answer tokens of the test rows; mean over seeds; 0 = embeddings):\n"
        )
        depth = max(len(r["entropy"]) for runs in cells.values() for r in runs)
        print("| method | " + " | ".join(str(i) for i in range(depth)) + " | min |\n" + "|---" * (depth + 2) + "|")
        for runs in cells.values():
            layers = [statistics.fmean(x) for x in zip(*(r["entropy"] for r in runs), strict=True)]
            print(f"| {_label(runs[0])} | " + " | ".join(f"{x:.2f}" for x in layers) + f" | {min(layers):.2f} |")
        if rows := contrast_rows(cells):
            print(
                "\nDifference in test exact match, percentage points, with a 95 % paired bootstrap CI (seeds, then "
                "test rows within each seed; 10,000 resamples): the methods at their defaults, then each variant "
                "against its method's default:\n"
            )
            print("| comparison | mean | 95 % CI | seeds | rows per seed |\n|---|---|---|---|---|")
            print("\n".join(rows))
        if search := lambda_search(cells):
            print(
                "\nλ chosen on validation (exact match at the end of training, mean over the seeds every λ of the "
                "method has finished), then tested once: the marked row's test number is the search's result.\n"
            )
            print(search)
        if grid := pause_grid(cells):
            print(
                "\nPause tokens with Seq-VCR on: test exact match %, mean ± std over seeds (seeds), by pause count "
                "(0: the seqvcr arm) and embedding (one shared `<pause>`, or one per position):\n"
            )
            print(grid)
    if not (collapse := collapse_vs_accuracy(results)):
        return
    print(
        "\n### Collapse vs accuracy across runs\n\nSpearman's ρ between a run's lowest entropy over its layers "
        "(embeddings left out) and its test exact match, per task and budget (groups of at least 4 runs, any depth, "
        "lr or λ):\n"
    )
    print(collapse)


def commuted_in_training(data: Path, rows: int) -> list[bool]:
    """Per test row (the first `rows`, as scored): is its commuted question b × a a training row?

    The builder keeps each ordered pair in one split, but a × b and b × a are different questions, so a model that
    learned commutativity can answer these rows from a training product.
    """
    splits = load_task_dataset(data)
    training = {parse_operands(question) for question in splits["train"]["question"]}
    return [parse_operands(question)[::-1] in training for question in splits["test"]["question"][:rows]]


def overlap_rows(setting: str, cells: dict[str, list[dict]], flags: dict[str, list[bool]]) -> list[str]:
    """Per cell: exact match on the test rows whose commuted question is a training row, and on the rest, pooled
    over seeds (`flags` by run id)."""
    lines = []
    for runs in cells.values():
        pooled = {True: [], False: []}
        for result in runs:
            for correct, commuted in zip(result["correct"], flags[result["run_id"]], strict=True):
                pooled[commuted].append(correct)
        shares = [
            f"{100 * statistics.fmean(hits):.1f} ({len(hits)} rows)" if hits else "— (0 rows)"
            for hits in (pooled[True], pooled[False])
        ]
        lines.append(f"| {setting} | {_label(runs[0])} | {_seeds(runs)} | {shares[0]} | {shares[1]} |")
    return lines


def command_overlap(args: argparse.Namespace) -> None:
    """Multiplication settings only; each run's data is rebuilt under <root>/data from its seed if not there."""
    results = {
        run_id: result
        for run_id, result in load_results(args.results).items()
        if TASKS[result["run"]["task"]].builder == "multiplication"
    }
    print(
        "Test exact match %, pooled over seeds, on the test rows whose commuted question (b × a for a × b) is a "
        "training row of the run's data, and on the rest:\n"
    )
    print("| setting | method | seeds | commuted question in training | not in training |\n|---|---|---|---|---|")
    for setting, cells in _group(results).items():
        if args.setting and not any(s in setting for s in args.setting):
            continue
        flags = {
            result["run_id"]: commuted_in_training(dataset(run_of(result), args.root), len(result["correct"]))
            for runs in cells.values()
            for result in runs
        }
        print("\n".join(overlap_rows(setting, cells, flags)))


def collapse_vs_accuracy(results: dict[str, dict]) -> str:
    """Does collapse track accuracy? Per task, Spearman's ρ between a run's lowest entropy over its layers (the
    embeddings left out) and its test exact match: over all runs, then within each method, where the regularizer
    does not decide the entropy by itself."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for result in results.values():
        task = f"{result['run']['task']}, {result['run']['steps']} steps"
        groups[(task, "all runs")].append(result)
        groups[(task, _label(result))].append(result)
    lines = [
        "| task | runs | ρ(min entropy, exact match) | min entropy, mean | exact match %, mean |",
        "|---|---|---|---|---|",
    ]
    for (task, label), runs in sorted(groups.items()):
        if len(runs) < 4:
            continue
        low = [min(r["entropy"][1:]) for r in runs]
        em = [r["final"]["exact_match"] for r in runs]
        rho = spearman(low, em)
        shown = "— (one side constant)" if math.isnan(rho) else f"{rho:+.2f}"
        lines.append(
            f"| {task}, {label} | {len(runs)} | {shown} | {statistics.fmean(low):.2f} | "
            f"{100 * statistics.fmean(em):.1f} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def _curve_x(result: dict, in_cpu_minutes: bool) -> list[float]:
    """A run's curve points on the x-axis: their steps, or the CPU-minutes spent by then."""
    steps = [p["step"] for p in result["curve"]]
    return [_cpu_minutes(result, s) for s in steps] if in_cpu_minutes else steps


def command_plot(args: argparse.Namespace) -> None:
    """Per setting: validation exact match against steps and against CPU-minutes, digit accuracy against steps
    (mean over seeds, a thin line per seed) and the entropy per layer at the end."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = load_results(args.results)
    out = args.output_dir or args.root / "plots"
    out.mkdir(parents=True, exist_ok=True)
    for setting, cells in _group(results).items():
        if args.setting and not any(s in setting for s in args.setting):
            continue
        fig = Figure(figsize=(17, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        step_ax, cpu_ax, digit_ax, entropy_ax = fig.subplots(1, 4)
        panels = ((step_ax, "exact_match", False), (cpu_ax, "exact_match", True), (digit_ax, "digit_accuracy", False))
        for index, runs in enumerate(cells.values()):
            color, label = f"C{index % 10}", f"{_label(runs[0])} (n={len(runs)})"
            for ax, key, in_cpu_minutes in panels:
                for r in runs:
                    ax.plot(_curve_x(r, in_cpu_minutes), [p[key] for p in r["curve"]], color=color, alpha=0.25, lw=0.8)
                xs = [statistics.fmean(x) for x in zip(*(_curve_x(r, in_cpu_minutes) for r in runs), strict=False)]
                mean = [statistics.fmean(v) for v in zip(*([p[key] for p in r["curve"]] for r in runs), strict=False)]
                ax.plot(xs, mean, color=color, lw=2, label=label)
            layers = [statistics.fmean(x) for x in zip(*(r["entropy"] for r in runs), strict=True)]
            entropy_ax.plot(range(len(layers)), layers, marker="o", color=color, label=label)
        step_ax.set(xlabel="step", ylabel="exact match (validation)", title="exact match")
        cpu_ax.set(xlabel="CPU-minutes (one core)", ylabel="exact match (validation)", title="exact match per CPU time")
        digit_ax.set(xlabel="step", ylabel="digit accuracy (validation)", title="digit accuracy")
        entropy_ax.set(xlabel="layer (0 = embeddings)", ylabel="matrix entropy (nats)", title="entropy, end (test)")
        for ax in (step_ax, cpu_ax, digit_ax, entropy_ax):
            ax.grid(alpha=0.3)
        step_ax.legend(fontsize=7)
        fig.suptitle(setting)
        fig.savefig(out / f"{setting}.png", dpi=110)
        print(f"wrote {out / f'{setting}.png'}")


def command_collect(args: argparse.Namespace) -> None:
    """Copy finished result.json files into bench/sweep_results/<run_id>.json (small JSON; models stay out)."""
    COLLECTED.mkdir(exist_ok=True)
    count = 0
    for path in sorted(args.root.glob("*/result.json")):
        target = COLLECTED / f"{path.parent.name}.json"
        if not target.exists() or target.read_bytes() != path.read_bytes():
            shutil.copyfile(path, target)
            count += 1
    print(f"{count} result(s) copied to {COLLECTED}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"run folders (default {DEFAULT_ROOT})")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "run"):
        sub = commands.add_parser(name)
        sub.add_argument(
            "--plan",
            nargs="+",
            required=True,
            metavar="PLAN",
            help=f"plans in order ({', '.join(PLANS)}, or queue = {' '.join(QUEUE)}, or "
            f"queue21 = {' '.join(QUEUE21)}); "
            "'headline:0' keeps seed 0",
        )
        if name == "run":
            sub.add_argument("--threads", type=int, default=1, help="OMP threads per training run (default 1)")
    for name in ("table", "plot", "overlap"):
        sub = commands.add_parser(name)
        sub.add_argument("--results", nargs="+", type=Path, help=f"folders to read (default: --root and {COLLECTED})")
        sub.add_argument("--setting", nargs="+", help="only settings whose name contains one of these")
        if name == "plot":
            sub.add_argument("--output-dir", type=Path, help="where the PNGs go (default: <root>/plots)")
    commands.add_parser("collect")
    args = parser.parse_args(argv)
    if getattr(args, "results", None) is None:
        args.results = [args.root, COLLECTED]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    {
        "plan": command_plan,
        "run": command_run,
        "table": command_table,
        "plot": command_plot,
        "overlap": command_overlap,
        "collect": command_collect,
    }[args.command](args)


if __name__ == "__main__":
    main()
