"""Looped transformers (Saunshi et al., ICLR 2025): a block of k layers applied L times, weights stored once.

`(k⊗L)` embeds once, applies the same k layers L times with the residual stream passed straight from one loop to
the next (no loop embedding, no re-injection, fixed L), then the final norm and head once. Middle looping puts
unique layers before and after the looped block: `LoopLayout(prefix=4, block=4, loops=4, suffix=4)` is the paper's
"(4⊗1, 4, 1)", 12 distinct layers at depth 24.

Each effective layer application gets its own KV-cache slot, as the definition implies (RELATED_METHODS A.2):
attention in loop t sees the loop-t keys and values of earlier positions, so `generate()` with the cache matches
a full forward. The config reports the effective depth at run time (`num_hidden_layers`), so the cache, the
hidden-state outputs (effective depth + 1 states) and Seq-VCR's layer indices all see every application.

Checkpoints hold only the unique layers (`model.layers.0 … model.layers.{u-1}`); `config.json` records
`num_hidden_layers` = the effective depth and `loop_layout`. Load them with `load_looped`. A plain
`AutoModelForCausalLM.from_pretrained` cannot know about looping: it builds an unlooped model of the effective
depth, fills its first u layers with the unique layers in storage order, leaves the rest randomly initialised and
reports them as missing keys. It never silently returns a smaller (k⊗1)-style model.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from .compat import use_cache_slot

LAYOUT_KEY = "loop_layout"
SUPPORTED_MODEL_TYPES = ("gpt2", "llama")
_LAYER_LIST_NAMES = ("layers", "h")  # LLaMA-style decoders, GPT-2


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopLayout:
    """`prefix` unique layers, a `block` of layers applied `loops` times, then `suffix` unique layers."""

    block: int
    loops: int
    prefix: int = 0
    suffix: int = 0

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ValueError(f"`block` is the number of layers in the looped block; use >= 1, got {self.block}.")
        if self.loops < 1:
            raise ValueError(f"`loops` is how often the block is applied; use >= 1, got {self.loops}.")
        for name, value in (("prefix", self.prefix), ("suffix", self.suffix)):
            if value < 0:
                raise ValueError(f"`{name}` counts unique layers around the loop; use 0 for none, got {value}.")

    @property
    def unique_layers(self) -> int:
        """Distinct layers, i.e. the parameter count of the iso-param baseline."""
        return self.prefix + self.block + self.suffix

    @property
    def effective_layers(self) -> int:
        """Layer applications per forward, i.e. the depth (and FLOPs, KV cache) of the iso-FLOP baseline."""
        return self.prefix + self.block * self.loops + self.suffix

    @property
    def schedule(self) -> tuple[int, ...]:
        """The unique layer index each effective layer applies, in order."""
        looped = tuple(range(self.prefix, self.prefix + self.block))
        return (*range(self.prefix), *looped * self.loops, *range(self.prefix + self.block, self.unique_layers))

    def __str__(self) -> str:
        looped = f"({self.block}⊗{self.loops})"
        return looped if not (self.prefix or self.suffix) else f"{self.prefix} + {looped} + {self.suffix}"


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder's list of layers (`model.layers` for LLaMA-style, `transformer.h` for GPT-2), through peft too.

    On a looped model it is a `LoopedLayers`: iterating it yields the effective applications, its children
    (`.children()`, the state_dict) are the unique layers.
    """
    decoder, name = _layer_list_owner(model)
    return getattr(decoder, name)


def _layer_list_owner(model: nn.Module) -> tuple[nn.Module, str]:
    decoder = model.get_decoder()  # PeftModel forwards this to the base model
    for name in _LAYER_LIST_NAMES:
        if isinstance(getattr(decoder, name, None), nn.ModuleList):
            return decoder, name
    raise ValueError(
        f"Cannot find the decoder layers of {type(model).__name__}: expected an nn.ModuleList named "
        f"{' or '.join(_LAYER_LIST_NAMES)} on its decoder; use a LLaMA-style or GPT-2 model."
    )


@dataclasses.dataclass(frozen=True)
class LayerApplication:
    """One effective layer: a shared layer run with its own cache slot."""

    layer: nn.Module
    index: int

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        use_cache_slot(self.layer, self.index)
        return self.layer(*args, **kwargs)


class LoopedLayers(nn.ModuleList):
    """Registers the unique layers (so state_dict keys stay `layers.0 … layers.{u-1}`) but reads as the sequence of
    effective applications, which is what the decoder's forward iterates or slices."""

    def __init__(self, layers: nn.ModuleList, layout: LoopLayout) -> None:
        super().__init__()
        self.layout = layout
        self.applications = [LayerApplication(layers[unique], index) for index, unique in enumerate(layout.schedule)]
        for index, layer in enumerate(layers):  # not `extend`: it numbers children by len(self)
            self.add_module(str(index), layer)

    def __iter__(self) -> Iterator[LayerApplication]:
        return iter(self.applications)

    def __len__(self) -> int:
        return len(self.applications)

    def __getitem__(self, index: int | slice) -> LayerApplication | list[LayerApplication]:
        return self.applications[index]

    __repr__ = nn.Module.__repr__  # the unique layers, not every application

    def extra_repr(self) -> str:
        return f"layout={self.layout}"


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
    """Loop `model` in place (and return it); its config must have `num_hidden_layers == layout.unique_layers`."""
    _check_model_type(model.config)
    decoder, name = _layer_list_owner(model)
    if isinstance(getattr(decoder, name), LoopedLayers):
        raise ValueError("`model` is already looped; loop a freshly built or loaded unlooped model.")
    _check_layer_count(model.config, layout)
    setattr(decoder, name, LoopedLayers(getattr(decoder, name), layout))
    model.config.num_hidden_layers = layout.effective_layers
    setattr(model.config, LAYOUT_KEY, dataclasses.asdict(layout))
    return model


def looped_from_config(config: PretrainedConfig, layout: LoopLayout, **from_config_kwargs: Any) -> PreTrainedModel:
    """A freshly initialised looped causal LM; `config.num_hidden_layers` counts the unique layers."""
    _check_model_type(config)
    _check_layer_count(config, layout)
    model = AutoModelForCausalLM.from_config(copy.deepcopy(config), **from_config_kwargs)
    return loop_model(model, layout)


def load_looped(
    repo_or_dir: str | os.PathLike, *, revision: str | None = None, **model_kwargs: Any
) -> PreTrainedModel:
    """A looped checkpoint saved with `save_pretrained`; `model_kwargs` go to `from_pretrained` (e.g. `dtype`)."""
    config = AutoConfig.from_pretrained(repo_or_dir, revision=revision)
    recorded = getattr(config, LAYOUT_KEY, None)
    if recorded is None:
        raise ValueError(
            f"{repo_or_dir} has no `{LAYOUT_KEY}` in its config.json, so it is not a looped checkpoint; load it "
            "with AutoModelForCausalLM.from_pretrained, or loop it with loop_model."
        )
    layout = LoopLayout(**recorded)
    config.num_hidden_layers = layout.unique_layers
    model = AutoModelForCausalLM.from_pretrained(repo_or_dir, revision=revision, config=config, **model_kwargs)
    return loop_model(model, layout)
