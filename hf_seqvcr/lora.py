"""LoRA / QLoRA through peft, set up so that Seq-VCR and the pause tokens still train and the adapter reloads exactly.

Wrap last: add the pause tokens and attach the projection head first, then `get_lora_model`. peft then
- trains the head as a `modules_to_save` copy (`get_peft_model` freezes every weight it does not adapt, and
  `SeqVCRTrainer` refuses a frozen head);
- trains only the pause rows of the resized input embedding (`trainable_token_indices`, which replaces those rows by
  trained values); when the model ties its embeddings (`tie_word_embeddings`, as LLaMA-3.2-1B does) peft ties the
  output embedding's rows to them;
- is told to save the resized embedding matrices with the adapter (`compat.saving_embedding_layers`, used by
  `SeqVCRTrainer`'s saves): peft's "auto" looks the base model's vocabulary up on the Hub to detect a resize and,
  offline, assumes none, which would leave the new rows of an untied output embedding random when reloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel

from .projection import PROJECTOR_ATTRIBUTE, get_projector


class LoraSettings(Protocol):
    """The LoRA fields of the pipeline's `ModelArguments` (`--lora_r`, …), or anything else that has them."""

    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: list[str] | None
    load_in_4bit: bool


def lora_config(model_args: LoraSettings, pause_ids: Sequence[int], train_projector: bool) -> LoraConfig:
    """The adapter: LoRA on `--lora_target_modules`, plus the head (when attached) and the pause-token rows."""
    targets = model_args.lora_target_modules
    return LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,  # peft knows the shorthand as a str
        modules_to_save=[PROJECTOR_ATTRIBUTE] if train_projector else None,
        trainable_token_indices=sorted(set(pause_ids)) or None,
        task_type="CAUSAL_LM",
    )


def get_lora_model(
    model: PreTrainedModel, model_args: LoraSettings, pause_ids: Sequence[int], *, gradient_checkpointing: bool
) -> PeftModel:
    """Wraps a model that already has its pause tokens and (for Seq-VCR) its projection head attached.

    A 4-bit model is first made trainable by peft's `prepare_model_for_kbit_training` (fp32 norms, input grads).
    """
    if model_args.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    config = lora_config(model_args, pause_ids, train_projector=get_projector(model) is not None)
    return get_peft_model(model, config)
