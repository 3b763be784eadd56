"""Cost of Seq-VCR inside TRL's SFTTrainer: a training step (forward, loss, backward) of plain `SFTTrainer` against
`SeqVCRSFTTrainer` with the regularizer on, on the same prompt/completion rows, model and batch.

Both trainers run their own `training_step` on one prepared batch, interleaved round by round (bench/timing.py), so
the ratio is the regularizer's cost (hooks, projection head, Gram-form statistics, their backward, the logged sums)
over TRL's step with its fused LM head. The optimizer step is left out: it is the same for both arms (plus the head's
few parameters) and would only dilute the ratio. A third arm adds 2 pause tokens, which lengthen every row.

    python bench/bench_sft.py            # GPT-2-like, 4 layers, d=256, batch 32 (~2 CPU-minutes)
    python bench/bench_sft.py --quick    # 2 layers, d=64, batch 8 (~20 CPU-seconds)
"""

from __future__ import annotations

import argparse
import copy
import random
import tempfile

from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging
from trl import SFTConfig, SFTTrainer

from hf_seqvcr import SeqVCRSFTConfig, SeqVCRSFTTrainer, build_digit_tokenizer
from timing import add_timing_arguments, apply_timing_arguments, interleaved, machine_note, median, paired_ratio


def rows(count: int, seed: int = 0) -> Dataset:
    """3×3 multiplications as prompt/completion text, digits space-separated as in the project's builders."""
    rng = random.Random(seed)
    pairs = [(rng.randrange(100, 1000), rng.randrange(100, 1000)) for _ in range(count)]
    return Dataset.from_list(
        [{"prompt": f"{' '.join(str(a))} * {' '.join(str(b))}", "completion": " ".join(str(a * b))} for a, b in pairs]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller model and batch, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 20, quick 8)")
    add_timing_arguments(parser)
    args = parser.parse_args()
    clock = apply_timing_arguments(args)
    hf_logging.set_verbosity_error()
    layers, width, batch = (2, 64, 8) if args.quick else (4, 256, 32)
    rounds = args.rounds or (8 if args.quick else 20)
    tokenizer = build_digit_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer) + 8,
        n_embd=width,
        n_layer=layers,
        n_head=4,
        n_positions=64,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    data = rows(batch)
    common = dict(
        per_device_train_batch_size=batch,
        use_cpu=True,
        bf16=False,
        report_to=[],
        disable_tqdm=True,
        gradient_checkpointing=False,
        save_strategy="no",
    )
    with tempfile.TemporaryDirectory() as out:
        arms = {
            "SFTTrainer": SFTTrainer(
                model=GPT2LMHeadModel(config),
                args=SFTConfig(out, **common),
                train_dataset=data,
                processing_class=copy.deepcopy(tokenizer),
            ),
            "SeqVCRSFTTrainer": SeqVCRSFTTrainer(
                model=GPT2LMHeadModel(config),
                args=SeqVCRSFTConfig(out, **common),
                train_dataset=data,
                processing_class=copy.deepcopy(tokenizer),
            ),
            "SeqVCRSFTTrainer + 2 pauses": SeqVCRSFTTrainer(
                model=GPT2LMHeadModel(config),
                args=SeqVCRSFTConfig(out, num_pause_tokens=2, **common),
                train_dataset=data,
                processing_class=copy.deepcopy(tokenizer),
            ),
        }
        steps = {}
        for name, trainer in arms.items():
            trainer.current_gradient_accumulation_steps = 1  # what `train()` sets before its first step
            trainer.model.train()
            inputs = next(iter(trainer.get_train_dataloader()))
            steps[name] = lambda trainer=trainer, inputs=inputs: trainer.training_step(trainer.model, inputs)
            steps[name]()  # warm-up
        times = interleaved(steps, rounds, clock)
    print(f"{layers} layers, d={width}, batch {batch}, {rounds} rounds; {machine_note(args.clock)}")
    base = times["SFTTrainer"]
    for name, seconds in times.items():
        ratio, low, high = paired_ratio(seconds, base)
        print(f"| {name} | {median(seconds) * 1000:.1f} ms | ×{ratio:.3f} (rounds: {low:.3f}–{high:.3f}) |")


if __name__ == "__main__":
    main()
