"""Run by tests/test_multiprocess_trainer.py under `torchrun --nproc_per_node 2`: one SeqVCRTrainer SGD step per
setting, each process on its half of the same rows; rank 0 saves the parameter updates to `<dir>/updates.pt`.
The test computes the same steps in one process with the whole batch and compares."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from hf_seqvcr import SeqVCRSFTTrainer, SeqVCRTrainer, add_pause_tokens, attach_projector, build_digit_tokenizer
from hf_seqvcr.lora import get_lora_model
from launch import end_worker
from tiny import addition_splits, sft_config, sgd_config, tiny_llama, tiny_lora

ROWS = 4  # the global batch: 2 per process under torchrun, 4 in the single-process reference
PAUSES = 2
# Each setting: (use LoRA, config overrides, TRL's SFTTrainer). Seq-VCR on in all; "local" turns the all-gather off.
SETTINGS = {
    "gathered": (False, {}, False),
    "local": (False, {"seqvcr_gather": False}, False),
    "lora_checkpointed": (True, {"activation_checkpointing": True}, False),
    "sft": (False, {}, True),
}


def one_step_update(output_dir: Path, setting: str, per_device_batch: int) -> dict[str, torch.Tensor]:
    """Parameter change after one unclipped SGD step; λ2 is raised so the covariance term shapes the update."""
    use_lora, overrides, sft = SETTINGS[setting]
    tokenizer = build_digit_tokenizer()
    model = tiny_llama(tokenizer)
    torch.manual_seed(0)
    tokenizer, model = add_pause_tokens(tokenizer, model, PAUSES)
    args = (sft_config if sft else sgd_config)(
        output_dir,
        per_device_train_batch_size=per_device_batch,
        num_pause_tokens=PAUSES,
        seqvcr_lambda_cov=0.5,
        max_grad_norm=0.0,
        **overrides,
    )
    attach_projector(model, args.seqvcr_layers, args.seqvcr_proj_dim, args.seqvcr_proj_type)
    model.double()  # float64, so that summing in another order stays far below the compared tolerance
    if use_lora:
        model = get_lora_model(model, tokenizer, tiny_lora(), gradient_checkpointing=True)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rows = addition_splits(digits=2, train=ROWS, test=0)[0]  # equal lengths: no padding differs between layouts
    (SeqVCRSFTTrainer if sft else SeqVCRTrainer)(
        model=model, args=args, train_dataset=rows, processing_class=tokenizer
    ).train()
    return {name: p.detach() - before[name] for name, p in model.named_parameters() if p.requires_grad}


def main(directory: Path) -> None:
    updates = {setting: one_step_update(directory / setting, setting, ROWS // 2) for setting in SETTINGS}
    if torch.distributed.get_rank() == 0:
        torch.save(updates, directory / "updates.pt")
    end_worker()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
