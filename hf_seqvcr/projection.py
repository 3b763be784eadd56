"""The projection f_proj whose outputs Seq-VCR regularizes; trained by the regularizer only, dropped at inference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel

PROJECTOR_ATTRIBUTE = "seqvcr_projector"
PROJECTIONS_KEY = "seqvcr_projections"
ProjectionType = Literal["linear", "mlp"]


class SeqVCRProjector(nn.Module):
    """One head per regularized hidden state, kept in fp32 because the statistics are computed in fp32."""

    def __init__(self, hidden_size: int, layers: Sequence[int], proj_dim: int, proj_type: ProjectionType) -> None:
        super().__init__()
        self.layers = list(layers)
        self.heads = nn.ModuleList(_make_head(hidden_size, proj_dim, proj_type) for _ in self.layers)

    def forward(self, hidden_states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [head(hidden_states[layer].float()) for layer, head in zip(self.layers, self.heads)]


def _make_head(hidden_size: int, proj_dim: int, proj_type: ProjectionType) -> nn.Module:
    if proj_type == "linear":
        return nn.Linear(hidden_size, proj_dim)
    if proj_type == "mlp":  # VICReg-style expander
        return nn.Sequential(nn.Linear(hidden_size, proj_dim), nn.GELU(), nn.Linear(proj_dim, proj_dim))
    raise ValueError(f"`seqvcr_proj_type` must be 'linear' or 'mlp', got {proj_type!r}.")


def resolve_layers(model: PreTrainedModel, layers: Sequence[int]) -> list[int]:
    """Non-negative indices into `hidden_states` (0 = embeddings, L = last layer), checked against the model."""
    num_hidden_states = model.config.get_text_config().num_hidden_layers + 1
    resolved = []
    for layer in layers:
        if not -num_hidden_states <= layer < num_hidden_states:
            raise ValueError(
                f"`seqvcr_layers` contains {layer}, out of range for a model with {num_hidden_states} hidden states "
                f"(embeddings + {num_hidden_states - 1} layers); use -1 for the last layer or 0..{num_hidden_states - 1}."
            )
        resolved.append(layer % num_hidden_states)
    return resolved


def attach_projector(
    model: PreTrainedModel, layers: Sequence[int], proj_dim: int, proj_type: ProjectionType
) -> SeqVCRProjector:
    """Register the projector as a submodule so the optimizer, DDP, FSDP, peft and checkpoints all see it.

    The projection runs in a forward hook, inside the model's own forward: DDP then finds the projector's
    parameters in the forward's output graph (no "unused parameter" errors) and FSDP has them unsharded.
    It runs only in training mode when the caller selects hidden states by index, as `SeqVCRTrainer` does,
    and adds `outputs.seqvcr_projections` (one tensor per regularized layer).
    Attach before wrapping with peft and list `seqvcr_projector` in `modules_to_save`, so it trains.
    Idempotent: an existing projector is returned as it is.
    """
    existing = get_projector(model)
    if existing is not None:
        return existing
    hidden_size = model.config.get_text_config().hidden_size
    projector = SeqVCRProjector(hidden_size, resolve_layers(model, layers), proj_dim, proj_type)
    projector.to(model.get_input_embeddings().weight.device)
    model.add_module(PROJECTOR_ATTRIBUTE, projector)
    model.register_forward_hook(_project_selected_hidden_states, with_kwargs=True)
    return projector


def _project_selected_hidden_states(model: nn.Module, args: tuple, kwargs: dict, output):  # noqa: ANN001
    if model.training and isinstance(kwargs.get("output_hidden_states"), list):
        output[PROJECTIONS_KEY] = getattr(model, PROJECTOR_ATTRIBUTE)(output.hidden_states)
    return output


def get_projector(model: nn.Module) -> SeqVCRProjector | None:
    """The projector of a model, also through peft's wrappers (they forward attribute lookups)."""
    return getattr(model, PROJECTOR_ATTRIBUTE, None)
