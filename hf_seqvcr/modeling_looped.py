"""Looped transformers (Saunshi et al., ICLR 2025) as transformers model classes that need only torch and transformers.

This file is the one home of the looping logic. hf-seqvcr imports it (`hf_seqvcr.looped` adds the library's
helpers), and `save_pretrained` copies it, unchanged, next to every looped checkpoint's `config.json`, whose
`auto_map` points at it. So `AutoModelForCausalLM.from_pretrained(checkpoint, trust_remote_code=True)` loads a
looped checkpoint where hf-seqvcr is not installed, running this same code. It must therefore import nothing but
the standard library, torch and transformers, and no relative module.

A looped model's config is a LLaMA or GPT-2 config of its own model type (`looped_llama`, `looped_gpt2`), so a plain
transformers that does not run this file refuses the checkpoint (asking for `trust_remote_code=True`) instead of
building an unlooped model with most of its layers random. `loop_layout` records the layout and `num_hidden_layers`
the effective depth; the weights hold the unique layers once (`model.layers.0 … model.layers.{u-1}`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

LAYOUT_KEY = "loop_layout"
_LAYER_LIST_NAMES = ("layers", "h")  # LLaMA-style decoders, GPT-2
SLOT_KWARG = "loop_cache_slot"  # passed to each layer call, taken off again by the layer's own pre-hook


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


def use_cache_slot(layer: nn.Module, index: int) -> None:
    """Point a decoder layer's attention at KV-cache slot `index` (a looped model gives each application its own).

    The one transformers internal looping relies on: LLaMA's and GPT-2's attention pass their `layer_idx` to
    `cache.update`; pinned by tests/test_looped.py::test_attention_picks_cache_slot_by_layer_idx.
    """
    for module in layer.modules():
        if hasattr(module, "layer_idx"):
            module.layer_idx = index


def layer_list_owner(model: nn.Module) -> tuple[nn.Module, str]:
    """The decoder and the name of its nn.ModuleList of layers (`model.layers`, GPT-2's `transformer.h`)."""
    decoder = model.get_decoder()  # PeftModel forwards this to the base model
    for name in _LAYER_LIST_NAMES:
        if isinstance(getattr(decoder, name, None), nn.ModuleList):
            return decoder, name
    raise ValueError(
        f"Cannot find the decoder layers of {type(model).__name__}: expected an nn.ModuleList named "
        f"{' or '.join(_LAYER_LIST_NAMES)} on its decoder; use a LLaMA-style or GPT-2 model."
    )


def _take_cache_slot(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of each unique layer: points it at the cache slot its caller passed as `SLOT_KWARG`.

    The slot travels with the call's arguments, so a wrapper that calls the layer again (activation checkpointing
    recomputes it in backward) gets the same slot, not the one the layer's last application left behind.
    """
    slot = kwargs.pop(SLOT_KWARG, None)
    if slot is not None:  # None: called directly, not as an application of the loop
        use_cache_slot(layer, slot)
    return args, kwargs


@dataclasses.dataclass(frozen=True)
class LayerApplication:
    """One effective layer: the unique layer `unique` of `layers`, run with cache slot `index`.

    The layer is looked up in `layers` at each call, not kept: a wrapper that replaced it there (activation
    checkpointing, FSDP1's auto-wrap) then runs on every application, as it does in an unlooped model.
    """

    layers: LoopedLayers = dataclasses.field(repr=False)
    unique: int
    index: int

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.layers.unique_layer(self.unique)(*args, **kwargs, **{SLOT_KWARG: self.index})


class LoopedLayers(nn.ModuleList):
    """Registers the unique layers (so state_dict keys stay `layers.0 … layers.{u-1}`) but reads as the sequence of
    effective applications, which is what the decoder's forward iterates or slices."""

    def __init__(self, layers: nn.ModuleList, layout: LoopLayout) -> None:
        super().__init__()
        self.layout = layout
        self.applications = [LayerApplication(self, unique, index) for index, unique in enumerate(layout.schedule)]
        for index, layer in enumerate(layers):  # not `extend`: it numbers children by len(self)
            self.add_module(str(index), layer)
            layer.register_forward_pre_hook(_take_cache_slot, with_kwargs=True)

    def unique_layer(self, unique: int) -> nn.Module:
        """The module registered now as unique layer `unique` (a wrapper, if one replaced the layer)."""
        return self._modules[str(unique)]

    def __iter__(self) -> Iterator[LayerApplication]:
        return iter(self.applications)

    def __len__(self) -> int:
        return len(self.applications)

    def __getitem__(self, index: int | slice) -> LayerApplication | list[LayerApplication]:
        return self.applications[index]

    __repr__ = nn.Module.__repr__  # the unique layers, not every application

    def extra_repr(self) -> str:
        return f"layout={self.layout}"


def loop_layers(model: nn.Module, layout: LoopLayout) -> None:
    """Replace the decoder's layers (the unique ones, in storage order) by their looped applications, and record in
    the config the layout, the effective depth (which the cache and the hidden-state outputs read) and the class
    that loads the checkpoint."""
    decoder, name = layer_list_owner(model)
    setattr(decoder, name, LoopedLayers(getattr(decoder, name), layout))
    model.config.num_hidden_layers = layout.effective_layers
    setattr(model.config, LAYOUT_KEY, dataclasses.asdict(layout))
    # The model's entry is written here, not by registering the model class: FSDP2 replaces the model's class by a
    # generated one defined in torch, whose file `save_pretrained` would otherwise ship.
    model.config.auto_map = {"AutoModelForCausalLM": f"{__name__.rpartition('.')[2]}.{type(model).__name__}"}


class LoopedLlamaConfig(LlamaConfig):
    """A LLaMA config whose `loop_layout` loops the decoder; `num_hidden_layers` is the effective depth."""

    model_type = "looped_llama"


class LoopedGPT2Config(GPT2Config):
    """A GPT-2 config whose `loop_layout` loops the decoder; `n_layer` is the effective depth."""

    model_type = "looped_gpt2"


class LoopedCausalLM:
    """Builds the unlooped model with the unique layers, then loops them (the mixin of both looped classes)."""

    def __init__(self, config: LoopedLlamaConfig | LoopedGPT2Config, *args: Any, **kwargs: Any) -> None:
        recorded = getattr(config, LAYOUT_KEY, None)
        if recorded is None:
            raise ValueError(f"A {type(config).__name__} needs `{LAYOUT_KEY}` (e.g. {{'block': 2, 'loops': 3}}).")
        layout = LoopLayout(**recorded)
        config.num_hidden_layers = layout.unique_layers
        super().__init__(config, *args, **kwargs)
        loop_layers(self, layout)


class LoopedLlamaForCausalLM(LoopedCausalLM, LlamaForCausalLM):
    config_class = LoopedLlamaConfig


class LoopedGPT2LMHeadModel(LoopedCausalLM, GPT2LMHeadModel):
    config_class = LoopedGPT2Config


LOOPED_CLASSES = {GPT2LMHeadModel: LoopedGPT2LMHeadModel, LlamaForCausalLM: LoopedLlamaForCausalLM}
"""The looped class of each unlooped class that can be looped."""

for _looped in LOOPED_CLASSES.values():  # the config's save_pretrained copies this file and adds AutoConfig to auto_map
    _looped.config_class.register_for_auto_class("AutoConfig")
