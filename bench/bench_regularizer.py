"""Cost of the Seq-VCR regularizer on CPU: the loss alone (literal d×d covariance vs our Gram form), then a full
training step (vanilla CE vs CE + projection + Seq-VCR, Gram and literal).

The goal is Seq-VCR (ours) within 3 % of a vanilla step at GPT-2-small shape. The step is written out in torch
(forward, projection, loss, backward, AdamW) rather than run through the Trainer, whose own overhead would blur
the ratio. Variants run interleaved and ratios are medians of per-round ratios (see bench/timing.py). A shared
machine moves whole steps by more than 3 %, so our regularizer's part (projection, loss, backward into the
hidden states, AdamW on the head) is also timed alone, over more calls, and set against the vanilla step.

    python bench/bench_regularizer.py            # ~6 CPU-minutes (one core)
    python bench/bench_regularizer.py --quick    # smaller shapes, fewer rounds (~40 CPU-seconds)
    python bench/bench_regularizer.py --gpu      # a lent GPU: the GPT-2-small step in bf16 autocast, wall clock
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from hf_seqvcr.losses import seq_vcr_loss
from hf_seqvcr.projection import SeqVCRProjector, resolve_layers
from timing import (  # bench/ is on sys.path when run as a script
    Clock,
    add_timing_arguments,
    apply_timing_arguments,
    interleaved,
    load_average,
    machine_note,
    median,
    paired_ratio,
)

METHODS = {"literal": "covariance", "ours": "gram"}
PART_ROUNDS = 10


@dataclass(frozen=True)
class LossShape:
    batch: int
    seq_len: int
    dim: int
    repeats: int


@dataclass(frozen=True)
class StepShape:
    """A model and batch to time training steps on; GPT2Config's defaults (vocab 50257) are GPT-2 small's."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    batch: int
    seq_len: int
    proj_dim: int
    repeats: int


FULL = (
    [LossShape(16, 24, 256, 7), LossShape(32, 48, 2048, 3)],
    [
        StepShape("4 layers, d_model 256", 4, 256, 4, batch=32, seq_len=48, proj_dim=2048, repeats=3),
        StepShape("GPT-2 small, 12 layers, d_model 768", 12, 768, 12, batch=32, seq_len=48, proj_dim=2048, repeats=3),
    ],
)
# GPU: the paper's shape only, in bf16 autocast; many rounds, since one step is milliseconds.
GPU = (
    [LossShape(32, 48, 2048, 20)],
    [StepShape("GPT-2 small, 12 layers, d_model 768", 12, 768, 12, batch=32, seq_len=48, proj_dim=2048, repeats=30)],
)
QUICK = (
    [LossShape(16, 24, 256, 5), LossShape(32, 48, 512, 3)],
    [StepShape("4 layers, d_model 256", 4, 256, 4, batch=16, seq_len=24, proj_dim=512, repeats=3)],
)


def autocast(device: str, bf16: bool):
    """bf16 autocast on `device` when asked, else nothing."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def synchronized(clock: Clock, device: str) -> Clock:
    """On a GPU the clock waits for queued kernels first, so a timed call includes its own work and no other."""
    if torch.device(device).type != "cuda":
        return clock

    def read() -> float:
        torch.cuda.synchronize(device)
        return clock()

    return read


def time_loss_alone(shape: LossShape, clock: Clock, device: str = "cpu") -> None:
    """Forward+backward of the loss on random projections by both methods, after checking they agree."""
    z = torch.randn(shape.batch, shape.seq_len, shape.dim, device=device, requires_grad=True)
    values = {name: seq_vcr_loss(z, method=method) for name, method in METHODS.items()}
    for part in ("loss", "covariance"):
        literal, ours = (getattr(values[name], part).item() for name in ("literal", "ours"))
        assert abs(ours - literal) <= 1e-4 * abs(literal), f"{part}: Gram {ours} != literal {literal}"

    def run(method: str):
        return lambda: seq_vcr_loss(z, method=method).loss.backward()

    variants = {name: run(method) for name, method in METHODS.items()}
    for variant in variants.values():
        variant()  # warm-up
    times = interleaved(variants, shape.repeats, clock)
    ratio, low, high = paired_ratio(times["literal"], times["ours"])
    print(
        f"| B={shape.batch}, T={shape.seq_len}, d={shape.dim} | {median(times['literal']):.4f} "
        f"| {median(times['ours']):.4f} | {ratio:.0f}× ({low:.0f}–{high:.0f}) | {values['ours'].loss.item():.6f} |"
    )


def time_training_step(shape: StepShape, clock: Clock, device: str = "cpu", bf16: bool = False) -> None:
    """ms per step of vanilla, ours and literal on one model, one projection head and one AdamW over both.

    The vanilla step leaves the head's gradients at None, so AdamW skips the head there, as it would in a
    run without Seq-VCR. With `bf16` the forward runs under bf16 autocast (weights and AdamW in fp32, as the
    Trainer's `--bf16` does); the Seq-VCR statistics are computed in fp32 either way (losses.py).
    """
    config = GPT2Config(n_layer=shape.n_layer, n_embd=shape.n_embd, n_head=shape.n_head)
    model = GPT2LMHeadModel(config).to(device).train()
    layers = resolve_layers(model, [-1])
    projector = SeqVCRProjector(config.n_embd, layers, shape.proj_dim, "linear").to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *projector.parameters()], lr=1e-5)
    input_ids = torch.randint(config.vocab_size, (shape.batch, shape.seq_len), device=device)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}

    def step(method: str | None):
        def run() -> None:
            with autocast(device, bf16):
                if method is None:
                    loss = model(**batch).loss
                else:
                    outputs = model(**batch, output_hidden_states=layers)
                    (z,) = projector(outputs.hidden_states)
                    loss = outputs.loss + seq_vcr_loss(z, batch["attention_mask"].bool(), method=method).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return run

    variants = {"vanilla": step(None), **{name: step(method) for name, method in METHODS.items()}}
    variants["ours"]()  # warm-up; allocates AdamW's state for the model and the head
    for variant in variants.values():
        variant()  # warm-up of each (kernel selection on a GPU)
    times = interleaved(variants, shape.repeats, clock)
    part = time_regularizer_part(shape, projector, config.n_embd, clock, device, bf16)
    vanilla = median(times["vanilla"])
    ours, ours_low, ours_high = paired_ratio(times["ours"], times["vanilla"])
    literal, _, _ = paired_ratio(times["literal"], times["vanilla"])
    ms = {name: 1000 * median(seconds) for name, seconds in times.items()}
    print(
        f"| {shape.name}; B={shape.batch}, T={shape.seq_len}, d_proj={shape.proj_dim} | {ms['vanilla']:.0f} "
        f"| {ms['ours']:.0f} | {ms['literal']:.0f} | {100 * (ours - 1):+.1f} % ({100 * (ours_low - 1):+.1f} to "
        f"{100 * (ours_high - 1):+.1f}) | {literal:.2f}× | {1000 * part:.0f} ms = {100 * part / vanilla:.1f} % |"
    )


def time_regularizer_part(
    shape: StepShape,
    projector: SeqVCRProjector,
    hidden_size: int,
    clock: Clock,
    device: str = "cpu",
    bf16: bool = False,
) -> float:
    """Median seconds of what our Seq-VCR adds to a step, alone: short enough to repeat `PART_ROUNDS` times."""
    hidden = torch.randn(shape.batch, shape.seq_len, hidden_size, device=device, requires_grad=True)  # last layer
    (head,) = projector.heads
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-5)

    def part() -> None:
        with autocast(device, bf16):
            z = head(hidden)
        seq_vcr_loss(z, method="gram").loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        hidden.grad = None

    part()  # warm-up
    return median(interleaved({"ours": part}, PART_ROUNDS, clock)["ours"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small shapes and few rounds (~40 CPU-seconds)")
    size.add_argument("--gpu", action="store_true", help="the paper's shape on cuda, bf16 autocast, wall clock")
    parser.add_argument("--device", default=None, help="default: cuda with --gpu, else cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward (implied by --gpu)")
    add_timing_arguments(parser)
    args = parser.parse_args()
    device = args.device or ("cuda" if args.gpu else "cpu")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {device}: torch sees no CUDA device here")
    if args.gpu:
        args.clock = "wall"  # CPU time of the host thread says nothing about GPU work
    bf16 = args.bf16 or args.gpu
    clock = synchronized(apply_timing_arguments(args), device)
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    loss_shapes, step_shapes = GPU if args.gpu else QUICK if args.quick else FULL
    where = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else machine_note(args.clock)
    print(f"Device: {where}; {'bf16 autocast' if bf16 else 'fp32'}, {args.clock} clock.")
    print("Rounds interleaved; times are medians, ratios medians of per-round ratios (min–max over rounds).")
    print("\nSeq-VCR loss alone, forward+backward, seconds:\n")
    print("| shape | literal d×d | Gram (ours) | literal/ours | loss value |\n|---|---|---|---|---|")
    for shape in loss_shapes:
        time_loss_alone(shape, clock, device)
    print("\nFull training step (forward, loss, backward, AdamW), ms/step; last column: our Seq-VCR part")
    print(f"(projection, loss, backward, AdamW on the head) alone, median of {PART_ROUNDS} calls, share of vanilla:\n")
    print(
        "| config | vanilla | ours | literal | ours/vanilla − 1 (range) | literal/vanilla | ours part alone "
        "|\n|---|---|---|---|---|---|---|"
    )
    for shape in step_shapes:
        time_training_step(shape, clock, device, bf16)
    print(f"\nLoad average at the end: {load_average()}.")


if __name__ == "__main__":
    main()
