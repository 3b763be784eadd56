"""Looped transformers (Saunshi et al., ICLR 2025): a block of k layers applied L times, weights stored once.

`(k⊗L)` embeds once, applies the same k layers L times with the residual stream passed straight from one loop to
the next (no loop embedding, no re-injection, fixed L), then the final norm and head once. Middle looping puts
unique layers before and after the looped block: `LoopLayout(prefix=4, block=4, loops=4, suffix=4)` is the paper's
"(4⊗1, 4, 1)", 12 distinct layers at depth 24.

Each effective layer application gets its own KV-cache slot, as the definition implies
(docs/looped_and_oversquashing.md §1): attention in loop t sees the loop-t keys and values of earlier positions,
so `generate()` with the cache matches a full forward. The config reports the effective depth at run time
(`num_hidden_layers`), so the cache, the hidden-state outputs (effective depth + 1 states) and Seq-VCR's layer
indices all see every application. Each
application looks its layer up in the decoder's ModuleList when it runs, so a wrapper installed there (torch's
activation checkpointing, FSDP) runs on every application, and passes the cache slot with the call, so a
recomputation in backward uses the same slot.

Checkpoints hold only the unique layers (`model.layers.0 … model.layers.{u-1}`); `config.json` records
`num_hidden_layers` = the effective depth and `loop_layout`. The model classes and the looping itself live in
`modeling_looped.py`, which needs only torch and transformers and which `save_pretrained` copies into every looped
checkpoint: `AutoModelForCausalLM.from_pretrained(checkpoint, trust_remote_code=True)` loads one without hf-seqvcr,
and with hf-seqvcr imported (`load_looped`, `load_pretrained`) no remote code is needed, since this module
registers the same classes with the Auto classes. Without either, transformers refuses the checkpoint's unknown
model type and says to pass `trust_remote_code=True`; it never builds an unlooped model with random layers.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from .compat import lora_targets_like
from .modeling_looped import (
    LAYOUT_KEY,
    LOOPED_CLASSES,
    LoopedLayers,
    LoopLayout,
    layer_list_owner,
    loop_layers,
)

SUPPORTED_MODEL_TYPES = tuple(unlooped.config_class.model_type for unlooped in LOOPED_CLASSES)
EARLIER_CONFIGS = {unlooped.config_class: looped.config_class for unlooped, looped in LOOPED_CLASSES.items()}

for _unlooped, _looped in LOOPED_CLASSES.items():  # the library's own copy, so no remote code is needed here
    AutoConfig.register(_looped.config_class.model_type, _looped.config_class, exist_ok=True)
    AutoModelForCausalLM.register(_looped.config_class, _looped, exist_ok=True)
    lora_targets_like(_looped.config_class.model_type, _unlooped.config_class.model_type)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder's list of layers (`model.layers` for LLaMA-style, `transformer.h` for GPT-2), through peft too.

    On a looped model it is a `LoopedLayers`: iterating it yields the effective applications, its children
    (`.children()`, the state_dict) are the unique layers.
    """
    decoder, name = layer_list_owner(model)
    return getattr(decoder, name)


def _check_model_type(config: PretrainedConfig) -> None:
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"Looping supports model types {', '.join(SUPPORTED_MODEL_TYPES)}; got {config.model_type!r}. "
            "Use a LLaMA or GPT-2 config."
        )


def _check_layer_count(config: PretrainedConfig, layout: LoopLayout) -> None:
    if config.num_hidden_layers != layout.unique_layers:
        raise ValueError(
            f"`layout` {layout} has {layout.unique_layers} unique layers but the config has num_hidden_layers="
            f"{config.num_hidden_layers}; set num_hidden_layers={layout.unique_layers} (the effective depth "
            f"{layout.effective_layers} comes from the loops)."
        )


def loop_model(model: PreTrainedModel, layout: LoopLayout) -> PreTrainedModel:
    """Loop `model` in place (and return it); its config must have `num_hidden_layers == layout.unique_layers`.

    The model and its config become instances of the looped classes (same modules and weights), so that
    `save_pretrained` ships the looping code with the checkpoint.
    """
    if isinstance(decoder_layers(model), LoopedLayers):
        raise ValueError("`model` is already looped; loop a freshly built or loaded unlooped model.")
    _check_model_type(model.config)
    if type(model) not in LOOPED_CLASSES:
        raise ValueError(
            f"Looping needs a {' or '.join(c.__name__ for c in LOOPED_CLASSES)}; got "
            f"{type(model).__name__}. Load the model with AutoModelForCausalLM."
        )
    _check_layer_count(model.config, layout)
    model.__class__ = LOOPED_CLASSES[type(model)]
    model.config.__class__ = model.config_class
    loop_layers(model, layout)
    return model


def looped_from_config(config: PretrainedConfig, layout: LoopLayout, **from_config_kwargs: Any) -> PreTrainedModel:
    """A freshly initialised looped causal LM; `config.num_hidden_layers` counts the unique layers."""
    _check_model_type(config)
    _check_layer_count(config, layout)
    model = AutoModelForCausalLM.from_config(copy.deepcopy(config), **from_config_kwargs)
    return loop_model(model, layout)


def load_looped(repo_or_dir: str | os.PathLike, *, revision: str | None = None, **model_kwargs: Any) -> PreTrainedModel:
    """A looped checkpoint saved with `save_pretrained`; `model_kwargs` go to `from_pretrained` (e.g. `dtype`).

    It runs hf-seqvcr's own looping code, not the copy saved in the checkpoint.
    """
    config = AutoConfig.from_pretrained(repo_or_dir, revision=revision)
    if getattr(config, LAYOUT_KEY, None) is None:
        raise ValueError(
            f"{repo_or_dir} has no `{LAYOUT_KEY}` in its config.json, so it is not a looped checkpoint; load it "
            "with AutoModelForCausalLM.from_pretrained, or loop it with loop_model."
        )
    if type(config) in EARLIER_CONFIGS:  # saved before looped models had classes of their own (model_type llama, gpt2)
        config.__class__ = EARLIER_CONFIGS[type(config)]
    return AutoModelForCausalLM.from_pretrained(repo_or_dir, revision=revision, config=config, **model_kwargs)
