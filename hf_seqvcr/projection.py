"""The projection f_proj whose outputs Seq-VCR regularizes; trained by the regularizer only, dropped at inference."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

PROJECTOR_ATTRIBUTE = "seqvcr_projector"
PROJECTOR_WEIGHTS_NAME = f"{PROJECTOR_ATTRIBUTE}.safetensors"  # the head's own file in a checkpoint folder
PROJECTIONS_KEY = "seqvcr_projections"
ProjectionType = Literal["linear", "mlp"]


class SeqVCRProjector(nn.Module):
    """One head per regularized hidden state, kept in fp32 because the statistics are computed in fp32.

    It runs in a forward hook, after the model's forward, so outside the autocast that bf16 mixed precision wraps
    around that forward. A head cast to bf16 (DeepSpeed bf16, FSDP mixed precision) gets bf16 inputs instead of
    failing on a dtype mismatch; `seq_vcr_loss` then promotes to fp32 for the statistics.
    """

    def __init__(self, hidden_size: int, layers: Sequence[int], proj_dim: int, proj_type: ProjectionType) -> None:
        super().__init__()
        self.layers = list(layers)
        self.heads = nn.ModuleList(_make_head(hidden_size, proj_dim, proj_type) for _ in self.layers)

    def forward(self, hidden_states: Sequence[torch.Tensor], layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Project `layers` (indices into `hidden_states`, negative ones from the end; default: all of
        `self.layers`), each through its own head, in the order given."""
        heads = dict(zip(self.layers, self.heads))
        projections = []
        for layer in self.layers if layers is None else layers:
            head = heads.get(layer % len(hidden_states))
            if head is None:
                raise ValueError(f"Hidden state {layer} has no Seq-VCR head (heads for {self.layers}); request only "
                                 "those layers, or attach a projector for it with `seqvcr_layers`.")  # fmt: skip
            projections.append(head(hidden_states[layer].to(next(head.parameters()).dtype)))
        return projections


def _make_head(hidden_size: int, proj_dim: int, proj_type: ProjectionType) -> nn.Module:
    """The output layer has no bias: the statistics are centred over the batch, so a bias would never learn."""
    if proj_type == "linear":
        return nn.Linear(hidden_size, proj_dim, bias=False)
    if proj_type == "mlp":  # VICReg-style expander
        return nn.Sequential(nn.Linear(hidden_size, proj_dim), nn.GELU(), nn.Linear(proj_dim, proj_dim, bias=False))
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
    It runs only in training mode when the caller selects hidden states by index, as `SeqVCRTrainer` does with
    `output_hidden_states=projector.layers`, and adds `outputs.seqvcr_projections`: one tensor per requested layer,
    in the order requested (a layer without a head is an error).
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


def _project_selected_hidden_states(model: nn.Module, args: tuple, kwargs: dict, output: ModelOutput):
    layers = kwargs.get("output_hidden_states")
    if model.training and isinstance(layers, list):
        projections = getattr(model, PROJECTOR_ATTRIBUTE)(output.hidden_states, layers)
        output = _with_projections_field(type(output))(**output, **{PROJECTIONS_KEY: projections})
    return output


@functools.cache
def _with_projections_field(output_type: type[ModelOutput]) -> type[ModelOutput]:
    """`output_type` with a `seqvcr_projections` field. DDP (with `find_unused_parameters`) rebuilds the output from
    its fields through torch's pytree, which fails on a key set on an output class that has no field for it."""
    return dataclasses.make_dataclass(
        f"{output_type.__name__}WithSeqVCR", [(PROJECTIONS_KEY, list | None, None)], bases=(output_type,)
    )


def get_projector(model: nn.Module) -> SeqVCRProjector | None:
    """The projector of a model, also through peft's wrappers (they forward attribute lookups)."""
    return getattr(model, PROJECTOR_ATTRIBUTE, None)


@contextmanager
def detached_projector(model: nn.Module) -> Iterator[None]:
    """Takes the projector out of the module tree while the body runs, so weights saved there leave it out.

    Removing the module, rather than filtering a state dict, also works for a peft model: peft builds the adapter
    from the modules it finds (the `modules_to_save` wrapper would otherwise look up the head's keys).
    """
    owner = next((m for m in model.modules() if PROJECTOR_ATTRIBUTE in dict(m.named_children())), None)
    if owner is None:
        yield
        return
    projector = getattr(owner, PROJECTOR_ATTRIBUTE)
    delattr(owner, PROJECTOR_ATTRIBUTE)
    try:
        yield
    finally:
        owner.add_module(PROJECTOR_ATTRIBUTE, projector)
