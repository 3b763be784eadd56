"""Does Seq-VCR do what it claims to the layer it regularizes? The mechanism test's arms, over several seeds.

One seed trains a tiny GPT-2 (2 layers, d=64) from scratch on 2×2 multiplication for a few hundred steps, through
the public API only (`SeqVCRTrainer`, `SeqVCRConfig`, the digit tokenizer, `data_builders.multiplication`), once per
arm: vanilla, Seq-VCR at the paper's multiplication λ (docs/method.md §2), and three broken regularizers that
must NOT show the effect:
λ = 0 ("off"), the projection head's input detached from the backbone ("detached": the head still trains, the
backbone gets no gradient from the regularizer), and λ × 1e-3 ("mis-scaled"). Then on the held-out test rows, at
the regularized hidden state (the last one, the default `seqvcr_layers`):

- entropy: matrix entropy (`hf_seqvcr.matrix_entropy`, α=1) of all real tokens' vectors, in nats;
- correlation: per position, the correlation matrix of the hidden states across the test rows (the regularizer's
  "batch" statistic is a covariance across the batch per position), the mean of its squared off-diagonal entries,
  averaged over positions (0 = decorrelated dimensions, 1 = all dimensions multiples of one);
- projected correlation: the same through the projection head (for Seq-VCR arms the trained head; for vanilla the
  head Seq-VCR would have started from, drawn with the run's seed), the outputs the covariance term acts on;
- covariance share: Σ_{i≠j} C_ij² / Σ_ij C_ij² of the hidden states' covariance, reported only: unnormalized by
  each dimension's variance, a few high-variance dimensions decide it and the effect shows less there.

tests/test_mechanism.py trains one seed of these arms and asserts the margins this script measured (the pinned
numbers and this script's output are in bench/RESULTS.md).

    python bench/bench_mechanism.py                 # seeds 0-4, all arms (~3 CPU-minutes at load 2)
    python bench/bench_mechanism.py --seeds 0 1 --arms vanilla seqvcr
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import GPT2Config, GPT2LMHeadModel, set_seed

from data_builders import multiplication
from hf_seqvcr import (
    PauseDataCollator,
    SeqVCRConfig,
    SeqVCRTrainer,
    attach_projector,
    build_digit_tokenizer,
    get_projector,
    matrix_entropy,
)
from hf_seqvcr.losses import MULTIPLICATION_LAMBDAS

STEPS = 300
BATCH = 32
TRAIN_ROWS = 2000
TEST_ROWS = 200
PROJ_DIM = 128
ARMS = ("vanilla", "seqvcr", "off", "detached", "misscaled")
CONTROLS = ("off", "detached", "misscaled")  # broken regularizers: each must look like vanilla


@dataclasses.dataclass(frozen=True)
class Measured:
    entropy: float  # matrix entropy of the regularized hidden state, nats
    correlation: float  # its mean squared off-diagonal correlation
    projected_correlation: float  # the same after the projection head (what the covariance term acts on)
    covariance_share: float  # its covariance's off-diagonal share (reported, not asserted)


def _detach_inputs(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)


def _config(arm: str, seed: int, output_dir: str) -> SeqVCRConfig:
    scale = {"off": 0.0, "misscaled": 1e-3}.get(arm, 1.0)
    return SeqVCRConfig(
        output_dir=output_dir,
        use_seqvcr=arm != "vanilla",
        seqvcr_lambda_var=MULTIPLICATION_LAMBDAS.var * scale,
        seqvcr_lambda_cov=MULTIPLICATION_LAMBDAS.cov * scale,
        seqvcr_proj_dim=PROJ_DIM,
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        learning_rate=1e-3,
        warmup_steps=10,
        weight_decay=0.0,
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=STEPS,
        disable_tqdm=True,
        eval_exact_match=False,
    )


def _model(tokenizer, seed: int) -> GPT2LMHeadModel:
    set_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def _position_covariances(states: torch.Tensor) -> torch.Tensor:
    """(T, D, D): at every position, the covariance of the (B, T, D) states across the B rows."""
    z = states.double() - states.double().mean(dim=0)
    return torch.einsum("btd,bte->tde", z, z) / (z.shape[0] - 1)


def offdiag_correlation(states: torch.Tensor) -> float:
    """Mean squared off-diagonal correlation across rows, averaged over positions: 0 = decorrelated dimensions,
    1 = every dimension a multiple of one. Dimensions that never vary (a position where every row holds the same
    token can be constant after a layer norm) are left out."""
    values = []
    for cov in _position_covariances(states):
        std = torch.diagonal(cov).sqrt()
        live = std > 1e-8 * std.max().clamp_min(1e-300)
        if live.sum() < 2:
            continue
        rho = cov[live][:, live] / (std[live, None] * std[None, live])
        d = rho.shape[0]
        values.append(float(((rho**2).sum() - d) / (d * (d - 1))))
    return statistics.fmean(values)


def offdiag_share(states: torch.Tensor) -> float:
    """Mean over positions of Σ_{i≠j} C_ij² / Σ C_ij²: the covariance's off-diagonal share, unnormalized by each
    dimension's variance (so a few high-variance dimensions dominate it)."""
    cov = _position_covariances(states)
    total = (cov**2).sum(dim=(1, 2))
    diagonal = (torch.diagonal(cov, dim1=1, dim2=2) ** 2).sum(dim=1)
    keep = total > 0
    return float(((total - diagonal)[keep] / total[keep]).mean())


@torch.no_grad()
def _measure(model: GPT2LMHeadModel, collator: PauseDataCollator, test, seed: int) -> Measured:
    batch = next(iter(DataLoader(test, batch_size=len(test), collate_fn=collator)))
    mask = batch["attention_mask"].bool()
    if not mask.all():
        raise ValueError("the test rows must share one length, so every position has a covariance across all rows")
    model.eval()
    hidden_states = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
    ).hidden_states
    hidden = hidden_states[-1]
    projector = get_projector(model)
    if projector is None:  # vanilla: the head Seq-VCR would have started from (same seed, same draw)
        set_seed(seed)
        projector = attach_projector(model, [-1], PROJ_DIM, "linear")
    (projected,) = projector(hidden_states)  # the last hidden state, through its head
    return Measured(
        matrix_entropy(hidden[mask]), offdiag_correlation(hidden), offdiag_correlation(projected), offdiag_share(hidden)
    )


def train_and_measure(arm: str, seed: int) -> Measured:
    """Train one arm of one seed from scratch and measure its regularized (last) hidden state on the test rows."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; one of {ARMS}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the numbers this script printed are the numbers the test gets
    try:
        return _train_and_measure(arm, seed)
    finally:
        torch.set_num_threads(threads)  # the test runs inside pytest: leave the process as it was


def _train_and_measure(arm: str, seed: int) -> Measured:
    tokenizer = build_digit_tokenizer()
    data = multiplication.build(digits=2, train_size=TRAIN_ROWS, validation_size=1, test_size=TEST_ROWS, seed=seed)
    model = _model(tokenizer, seed)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = SeqVCRTrainer(
            model=model, args=_config(arm, seed, output_dir), train_dataset=data["train"], processing_class=tokenizer
        )
        if arm == "detached":  # the head's input cut from the graph: only the head learns from the regularizer
            for layer in get_projector(model).modules():
                if isinstance(layer, nn.Linear) and layer.in_features == model.config.n_embd:
                    layer.register_forward_pre_hook(_detach_inputs)
        trainer.train()
    return _measure(model, PauseDataCollator(tokenizer), data["test"], seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="fixed seed list")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS, help="arms to train per seed")
    args = parser.parse_args()
    results: dict[str, list[Measured]] = {arm: [] for arm in args.arms}
    print(
        "| seed | arm | entropy (nats) | off-diag. correlation² | projected off-diag. correlation² | covariance "
        "off-diag. share | CPU s |\n|---|---|---|---|---|---|---|"
    )
    for seed in args.seeds:
        for arm in args.arms:
            start = time.process_time()
            m = train_and_measure(arm, seed)
            results[arm].append(m)
            print(
                f"| {seed} | {arm} | {m.entropy:.3f} | {m.correlation:.4f} | {m.projected_correlation:.4f} | "
                f"{m.covariance_share:.3f} | {time.process_time() - start:.1f} |",
                flush=True,
            )
    if "vanilla" not in results:
        return
    print("\nPaired differences arm − vanilla, per seed (min / mean / max):\n")
    print("| arm | Δ entropy | Δ correlation² | Δ projected correlation² | Δ covariance share |\n|---|---|---|---|---|")
    for arm, measured in results.items():
        if arm == "vanilla":
            continue
        cells = []
        for field in dataclasses.fields(Measured):
            diffs = [
                getattr(m, field.name) - getattr(v, field.name)
                for m, v in zip(measured, results["vanilla"], strict=True)
            ]
            cells.append(f"{min(diffs):+.3f} / {statistics.fmean(diffs):+.3f} / {max(diffs):+.3f}")
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
