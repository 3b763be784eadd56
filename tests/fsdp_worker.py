"""Run by tests/test_fsdp.py under `torchrun --nproc_per_node 2`: SeqVCRTrainer under FSDP2 with the fsdp_config of
recipes/accelerate_configs/fsdp.yaml (accelerate's `fully_shard` path) on the CPU over gloo. Trains 2 SGD steps with a
checkpoint after each and saves the final model into `<dir>/uninterrupted/out`, then resumes a second run from its
checkpoint-1 into `<dir>/resumed/out`; the test reads the saved files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml
from accelerate.state import PartialState
from accelerate.utils import DistributedType

from hf_seqvcr import SeqVCRTrainer, add_pause_tokens, build_digit_tokenizer
from tiny import addition_splits, sgd_config, tiny_llama

PAUSES = 2
SHIPPED = Path(__file__).resolve().parents[1] / "recipes" / "accelerate_configs" / "fsdp.yaml"
FSDP = dict(
    optim="adamw_torch",  # with state: torch 2.13 cannot load a FULL_STATE_DICT of state-less plain SGD on resume
    learning_rate=1e-2,  # ("Expected device to be set" in torch/distributed/checkpoint/state_dict.py)
    use_cpu=False,  # see force_fsdp_on_cpu
    fsdp=True,
    fsdp_config=yaml.safe_load(SHIPPED.read_text())["fsdp_config"],  # the settings users launch with
)


def force_fsdp_on_cpu() -> None:
    """accelerate 1.15 takes FSDP only on accelerators. With `use_cpu` it makes a MULTI_CPU (DDP) run and drops the
    FSDP plugin without a word; without it, it finds no distributed backend and transformers raises "Using fsdp only
    works in distributed training.". Here it is told that this is a multi-device gloo run whose device is the CPU,
    so its FSDP2 path runs; torch's `fully_shard` itself works on CPU tensors over gloo."""
    os.environ["ACCELERATE_TORCH_DEVICE"] = "cpu"
    PartialState._prepare_backend = lambda self, cpu=False, sagemaker_dp=False, backend=None: (
        "gloo",
        DistributedType.MULTI_GPU,
    )


def train(directory: Path, resume_from_checkpoint: Path | None = None) -> SeqVCRTrainer:
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, tiny_llama(tokenizer), PAUSES)
    args = sgd_config(
        directory,
        max_steps=2,
        save_strategy="steps",
        save_steps=1,
        per_device_train_batch_size=2,
        num_pause_tokens=PAUSES,
        **FSDP,
    )
    rows = addition_splits(digits=2, train=8, test=0)[0]
    trainer = SeqVCRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.train(resume_from_checkpoint=str(resume_from_checkpoint) if resume_from_checkpoint else None)
    trainer.save_model()
    return trainer


def main(directory: Path) -> None:
    force_fsdp_on_cpu()
    trainer = train(directory / "uninterrupted")
    train(directory / "resumed", resume_from_checkpoint=directory / "uninterrupted" / "out" / "checkpoint-1")
    if trainer.is_world_process_zero():
        ran = {
            "distributed_type": str(trainer.accelerator.distributed_type),
            "fsdp_version": trainer.accelerator.state.fsdp_plugin.fsdp_version,
            "wrapped": type(trainer.model_wrapped).__name__,
            "world_size": trainer.accelerator.num_processes,
        }
        (directory / "ran.json").write_text(json.dumps(ran))
    trainer.end()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
