"""Inference cost of pause tokens and of a chain of thought: examples/s of batched greedy generation relative to
no pause and no CoT, on Deng et al.'s 4×4 and 5×5 multiplication (Seq-VCR reports Pause(2) 0.95 / 0.91 and
CoT 0.17 / 0.14).

The model is GPT-2-small shaped (12 layers, d_model 768) with random weights and our digit tokenizer (one token
per digit, as GPT-2 tokenizes space-separated digits; " ####" costs 4 tokens here, about 1 in GPT-2 BPE). A random
model cannot be trusted to stop at eos, so every method generates exactly its true target length (answer, or
cot + " #### " + answer, plus eos): min_new_tokens = max_new_tokens. Generation goes through
`hf_seqvcr.evaluation.generate_answers` with a `PauseDataCollator`, as exact-match evaluation does. All rows
of a format have the same lengths, so each timed call generates one batch's worth of examples and the rounds,
not more examples, average out the noise.

    python bench/bench_inference.py            # ~6 CPU-minutes (one core)
    python bench/bench_inference.py --quick    # 8 examples at batch 8, two rounds (~1 CPU-minute)
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from data_builders import from_line
from hf_seqvcr import PauseDataCollator, add_pause_tokens, build_digit_tokenizer
from hf_seqvcr.evaluation import generate_answers
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

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "implicit_cot"  # ../shared from the root
FORMATS = {"4×4": "4_by_4_mult", "5×5": "5_by_5_mult"}
BASELINE = "no pause, no CoT"
METHODS = {BASELINE: {}, "Pause(2)": {"num_pause_tokens": 2}, "CoT": {"use_cot": True}}
PAPER = {("4×4", "Pause(2)"): 0.95, ("5×5", "Pause(2)"): 0.91, ("4×4", "CoT"): 0.17, ("5×5", "CoT"): 0.14}


def load_rows(path: Path, count: int) -> list[dict[str, str]]:
    """The first `count` lines of a Deng et al. file, each `question||cot #### answer`."""
    return [from_line(line) for line in path.read_text().splitlines()[:count]]


def build_model(tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """GPT-2 small's shape (GPT2Config's defaults) over our vocabulary, randomly initialised."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


def generation(model: GPT2LMHeadModel, collator: PauseDataCollator, rows: list[dict[str, str]], batch_size: int):
    """A call that generates exactly the longest target (all targets of a format have the same length)."""
    length = max(len(collator.target_ids(row)) for row in rows)
    questions = [row["question"] for row in rows]

    def run() -> None:
        # eos suppressed until the true length is reached; passed with the call, since generate_answers decodes
        # with its own greedy config (a model's generation_config cannot change what it generates)
        model.generate = functools.partial(type(model).generate, model, min_new_tokens=length)
        generate_answers(model, collator, questions, batch_size=batch_size, max_new_tokens=length)

    return run, len(collator.prompt_ids(rows[0]["question"])), length


def measure(
    model, tokenizer, data: dict[str, list[dict[str, str]]], batch_size: int, examples: int, rounds: int, clock: Clock
) -> None:
    """Interleave every format × method at one batch size and print one table row each."""
    variants, lengths = {}, {}
    for fmt, rows in data.items():
        for method, options in METHODS.items():
            collator = PauseDataCollator(tokenizer, **options)
            variants[fmt, method], *lengths[fmt, method] = generation(model, collator, rows[:examples], batch_size)
    next(iter(variants.values()))()  # warm-up
    times = interleaved(variants, rounds, clock)
    for (fmt, method), seconds in times.items():
        normalized, low, high = paired_ratio(times[fmt, BASELINE], seconds)
        prompt, generated = lengths[fmt, method]
        paper = PAPER.get((fmt, method), 1.0)
        print(
            f"| {fmt} | {method} | {batch_size} | {prompt} | {generated} | {examples / median(seconds):.2f} "
            f"| {normalized:.3f} ({low:.3f}–{high:.3f}) | {paper:.2f} |"
        )


def parse_run(text: str) -> tuple[int, int]:
    batch_size, examples = (int(part) for part in text.split(":"))
    return batch_size, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 examples at batch 8, two rounds (~1 CPU-minute)")
    parser.add_argument(
        "--runs",
        nargs="+",
        type=parse_run,
        default=[(32, 32), (1, 4)],
        metavar="BATCH:EXAMPLES",
        help="batch sizes to measure and how many examples each timed call generates (default 32:32 1:4)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds per batch size")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="Deng et al.'s implicit_cot folder")
    add_timing_arguments(parser)
    args = parser.parse_args()
    if not all((args.data_dir / folder / "valid.txt").is_file() for folder in FORMATS.values()):
        expected = f"{args.data_dir}/{{{','.join(FORMATS.values())}}}/valid.txt"
        sys.exit(f"Deng et al.'s multiplication files are missing: expected {expected} (../shared); pass --data-dir.")
    runs, rounds = ([(8, 8)], 2) if args.quick else (args.runs, args.rounds)
    clock = apply_timing_arguments(args)
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, 2)
    model = build_model(tokenizer)
    examples = max(count for _, count in runs)
    data = {fmt: load_rows(args.data_dir / folder / "valid.txt", examples) for fmt, folder in FORMATS.items()}
    print(f"Device: {machine_note(args.clock)}.")
    print("GPT-2-small shape, random init, digit tokenizer; each method generates exactly its true target length")
    print("(min_new_tokens = max_new_tokens, eos never ends a row early). Rounds interleaved; examples/s are")
    print(f"medians ({args.clock} seconds), normalized throughput the median of per-round baseline/method time")
    print("(min–max over rounds).\n")
    print("| format | method | batch | prompt tokens | generated tokens | examples/s | normalized throughput | paper |")
    print("|---|---|---|---|---|---|---|---|")
    for batch_size, count in runs:
        measure(model, tokenizer, data, batch_size, count, rounds, clock)
    print(f"\nLoad average at the end: {load_average()}.")


if __name__ == "__main__":
    main()
