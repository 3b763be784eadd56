"""`load_pretrained`: a checkpoint trained with hf-seqvcr, ready to answer the way it was trained.

The published files are plain transformers (the model card shows how to use them without this package);
this helper only reads back what training recorded in `config.json` (`num_pause_tokens`, `seqvcr_method`)
so prompts get the same pauses and answers are read the same way (after `####` for the `cot` method).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .looped import LAYOUT_KEY, load_looped
from .pause import PauseDataCollator, restore_pause_settings

logger = logging.getLogger(__name__)


def load_pretrained(
    repo_or_dir: str | os.PathLike, *, revision: str | None = None, **model_kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, PauseDataCollator]:
    """Model, tokenizer and the collator that builds its prompts, from a Hub repo id or a local directory.

    A looped checkpoint (its config records `loop_layout`) comes back looped.

    `revision` (branch, tag or commit) applies to both; `model_kwargs` go to `from_pretrained` (e.g. `dtype`).
    Pass the collator to `hf_seqvcr.predict_answers` / `evaluate_exact_match`.
    """
    tokenizer = load_tokenizer(repo_or_dir, revision=revision)
    looped = getattr(AutoConfig.from_pretrained(repo_or_dir, revision=revision), LAYOUT_KEY, None) is not None
    load = load_looped if looped else AutoModelForCausalLM.from_pretrained
    model = load(repo_or_dir, revision=revision, **model_kwargs)
    return model, tokenizer, pretrained_collator(tokenizer, model.config)


def load_tokenizer(repo_or_dir: str | os.PathLike, *, revision: str | None = None) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer; one without a pad token (GPT-2, LLaMA) pads with eos, which batched generation
    left-pads with and the collator masks out of the loss, so any causal LM's tokenizer can build prompts."""
    tokenizer = AutoTokenizer.from_pretrained(repo_or_dir, revision=revision)
    if tokenizer.pad_token is None:
        logger.info("The tokenizer has no pad token; using eos (%s) for padding.", tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def pretrained_collator(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> PauseDataCollator:
    """The collator a checkpoint's ``config.json`` asks for (its pauses; CoT targets for the ``cot`` method).

    Needs only the config, so a tool can build a checkpoint's prompts, and check them, before loading weights.
    """
    return PauseDataCollator(
        tokenizer,
        num_pause_tokens=restore_pause_settings(config),
        distinct_pause_embeddings=getattr(config, "distinct_pause_embeddings", None),
        use_cot=getattr(config, "seqvcr_method", None) == "cot",
    )
