"""LoRA / QLoRA through peft, set up so that Seq-VCR and the pause tokens still train and the adapter reloads exactly.

peft freezes every weight it does not adapt, so an adapter for Seq-VCR also needs
- the projection head as a `modules_to_save` copy (the trainers refuse a frozen head);
- the pause rows of the resized input embedding as `trainable_token_indices` (peft replaces those rows by trained
  values); when the model ties its embeddings (`tie_word_embeddings`, as LLaMA-3.2-1B does) peft ties the output
  embedding's rows to them;
- the resized embedding matrices saved with the adapter (`compat.saving_embedding_layers`, used by the trainers'
  saves): peft's "auto" looks the base model's vocabulary up on the Hub to detect a resize and, offline, assumes
  none, which would leave the new rows of an untied output embedding random when reloaded.

`with_seqvcr_modules` adds the first two to any peft config: `SeqVCRSFTTrainer` applies it to the `peft_config` it is
given, and `get_lora_model` to its own. Wrap last: add the pause tokens and attach the projection head first.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .pause import pause_token_ids, restore_pause_settings
from .projection import PROJECTOR_ATTRIBUTE, get_projector


def lora_config(
    *, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: Sequence[str] | str | None = None
) -> LoraConfig:
    """A causal-LM LoRA adapter; `target_modules=None` lets peft pick the model family's attention projections,
    "all-linear" adapts every linear layer."""
    targets = list(target_modules) if isinstance(target_modules, list | tuple) else target_modules
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,  # peft knows the shorthand as a str
        task_type="CAUSAL_LM",
    )


def with_seqvcr_modules(config: PeftConfig, pause_ids: Sequence[int], train_projector: bool) -> PeftConfig:
    """A copy of `config` that also trains the projection head (`modules_to_save`) and the pause rows
    (`trainable_token_indices`, added to every layer a dict names); the caller's config is left as it was."""
    config = copy.deepcopy(config)
    if train_projector and PROJECTOR_ATTRIBUTE not in (config.modules_to_save or []):
        config.modules_to_save = [*(config.modules_to_save or []), PROJECTOR_ATTRIBUTE]
    pause_ids = sorted(set(pause_ids))
    if pause_ids:
        indices = config.trainable_token_indices
        if isinstance(indices, dict):
            config.trainable_token_indices = {k: sorted({*v, *pause_ids}) for k, v in indices.items()}
        else:
            config.trainable_token_indices = sorted({*(indices or []), *pause_ids})
    return config


def get_lora_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None = None,
    config: LoraConfig | None = None,
    *,
    gradient_checkpointing: bool = False,
) -> PeftModel:
    """Wraps a model that already has its pause tokens and (for Seq-VCR) its projection head attached.

    `config` defaults to `lora_config()`; the head and the pause rows (found with `tokenizer`, for the pause count the
    model records) are added to it. A 4-bit model is first made trainable by peft's
    `prepare_model_for_kbit_training` (fp32 norms, input grads).
    """
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    pauses = restore_pause_settings(model)
    if pauses and tokenizer is None:
        raise ValueError(f"The model was given {pauses} pause tokens: pass its `tokenizer` so their rows train.")
    distinct = getattr(model.config, "distinct_pause_embeddings", None)
    pause_ids = pause_token_ids(tokenizer, pauses, distinct) if pauses else []
    config = with_seqvcr_modules(config or lora_config(), pause_ids, train_projector=get_projector(model) is not None)
    return get_peft_model(model, config)
