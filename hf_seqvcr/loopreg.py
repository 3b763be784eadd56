"""Looping-inspired regularizer (Saunshi et al., ICLR 2025, §4): pull an ordinary L-layer model towards (k⊗L/k).

For each weight type G (e.g. `self_attn.q_proj.weight`), R_G is the mean cosine similarity between layer ik+j and
layer (i+1)k+j over adjacent blocks of k layers (L−k pairs, weights flattened); the penalty is
λ_reg · mean_G (1 − R_G). The paper's printed Eq. 4 adds +λ·mean R_G, which would push layers apart; its stated
intent (λ → ∞ gives a looped model) and its final cosines ≥ 0.98 need this sign (docs/looped_and_oversquashing.md §2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .looped import LoopedLayers, decoder_layers


@dataclasses.dataclass(frozen=True)
class LoopRegularizerOutput:
    """`loss` to add to the task loss; `cosine` maps each weight group to its R_G (detached, for logging)."""

    loss: torch.Tensor
    cosine: dict[str, torch.Tensor]


def loop_regularizer(
    model: nn.Module,
    *,
    block: int,
    lambda_reg: float,
    groups: Sequence[str] | None = None,
    include_norms: bool = False,
) -> LoopRegularizerOutput:
    """λ_reg · mean_G (1 − R_G) over the decoder layers of `model` (a peft wrapper is looked through).

    A looped model is refused unless its layout applies every layer once (`loops == 1`, e.g. `--looped 4,1`, the
    iso-FLOP baseline of recipes/phop/), which is an ordinary model.

    `groups` selects weight names relative to a layer (default: every 2-D weight, plus norm weights with
    `include_norms`); biases are never included.
    """
    layers = decoder_layers(model)
    if isinstance(layers, LoopedLayers):
        if layers.layout.loops > 1:
            raise ValueError("`model` is already looped; the loop regularizer is for an ordinary (unlooped) model.")
        layers = list(layers.children())  # a (k⊗1) layout applies each unique layer once, in order: ordinary
    _check_arguments(len(layers), block, lambda_reg)
    available = weight_groups(layers[0], include_norms=include_norms)
    selected = available if groups is None else _select(groups, available)
    parameters = [dict(layer.named_parameters()) for layer in layers]
    cosine = {group: _mean_adjacent_block_cosine([params[group] for params in parameters], block) for group in selected}
    loss = lambda_reg * torch.stack([1 - value for value in cosine.values()]).mean()
    return LoopRegularizerOutput(loss=loss, cosine={group: value.detach() for group, value in cosine.items()})


def weight_groups(layer: nn.Module, *, include_norms: bool = False) -> list[str]:
    """The per-layer weight matrices of `layer` by name (e.g. `mlp.up_proj.weight`), and its norm weights if asked."""
    norms = {f"{name}.weight" for name, module in layer.named_modules() if type(module).__name__.endswith("Norm")}
    return [name for name, param in layer.named_parameters() if param.dim() == 2 or (include_norms and name in norms)]


def _mean_adjacent_block_cosine(weights: Sequence[torch.Tensor], block: int) -> torch.Tensor:
    """R_G: layer l against layer l+k for every l < L−k, which is every (ik+j, (i+1)k+j) pair.

    In fp32 at least: near 1, `1 − cos` of bf16 weights would be mostly rounding."""
    flat = [weight.reshape(-1).to(torch.promote_types(weight.dtype, torch.float32)) for weight in weights]
    pairs = [(flat[first], flat[first + block]) for first in range(len(flat) - block)]
    return torch.stack([F.cosine_similarity(a, b, dim=0) for a, b in pairs]).mean()


def _check_arguments(num_layers: int, block: int, lambda_reg: float) -> None:
    if lambda_reg < 0:
        raise ValueError(
            f"`lambda_reg` must be >= 0 (0 disables the penalty; the paper uses 1 or 10), got {lambda_reg}."
        )
    if block < 1:
        raise ValueError(f"`block` is the number of layers per block; use >= 1, got {block}.")
    if num_layers % block:
        raise ValueError(
            f"`block`={block} does not divide the model's {num_layers} layers; use a divisor of {num_layers}."
        )
    if num_layers // block < 2:
        raise ValueError(
            f"`block`={block} leaves a single block of the model's {num_layers} layers; the regularizer compares "
            f"adjacent blocks, so use block <= {num_layers // 2}."
        )


def _select(groups: Sequence[str], available: list[str]) -> list[str]:
    unknown = [group for group in groups if group not in available]
    if unknown or not groups:
        raise ValueError(f"`groups` must name some of the layers' weights {available}; unknown: {unknown}.")
    return list(groups)
