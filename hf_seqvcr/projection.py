"""The projection f_proj whose outputs Seq-VCR regularizes; trained by the regularizer only, dropped at inference."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

PROJECTOR_ATTRIBUTE = "seqvcr_projector"
PROJECTOR_WEIGHTS_NAME = f"{PROJECTOR_ATTRIBUTE}.safetensors"  # the head's own file in a checkpoint folder
PROJECTIONS_KEY = "seqvcr_projections"
CAPTURE_ATTRIBUTE = "seqvcr_capture"
ProjectionType = Literal["linear", "mlp"]


class SeqVCRProjector(nn.Module):
    """One head per regularized hidden state, kept in fp32 because the statistics are computed in fp32.

    It runs inside the backbone's forward hook with autocast turned off, so in its own dtype whatever mixed
    precision the forward runs in. A head cast to bf16 (DeepSpeed bf16, FSDP mixed precision) gets bf16 inputs
    instead of failing on a dtype mismatch; `seq_vcr_loss` then promotes to fp32 for the statistics.
    """

    def __init__(self, hidden_size: int, layers: Sequence[int], proj_dim: int, proj_type: ProjectionType) -> None:
        super().__init__()
        self.layers = list(layers)
        self.heads = nn.ModuleList(_make_head(hidden_size, proj_dim, proj_type) for _ in self.layers)

    def forward(self, hidden_states: Sequence[torch.Tensor], layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Project `layers` (indices into `hidden_states`, negative ones from the end; default: all of
        `self.layers`), each through its own head, in the order given."""
        heads = dict(zip(self.layers, self.heads, strict=True))
        projections = []
        for layer in self.layers if layers is None else layers:
            head = heads.get(layer % len(hidden_states))
            if head is None:
                raise ValueError(
                    f"Hidden state {layer} has no Seq-VCR head (heads for {self.layers}); request only "
                    "those layers, or attach a projector for it with `seqvcr_layers`."
                )
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
                f"(embeddings + {num_hidden_states - 1} layers); use -1 for the last layer or "
                f"0..{num_hidden_states - 1}."
            )
        resolved.append(layer % num_hidden_states)
    return resolved


def attach_projector(
    model: PreTrainedModel, layers: Sequence[int], proj_dim: int, proj_type: ProjectionType
) -> SeqVCRProjector:
    """Register the projector as a submodule (so the optimizer, DDP, FSDP, peft and checkpoints all see it) and the
    hooks that feed it, and return it. Idempotent: an existing projector is returned as it is.

    The hooks sit on the backbone (`model.base_model`), not on the model's own forward, because trainers reach the
    backbone by other roads: TRL's fused LM head calls it directly and builds neither `hidden_states` nor logits.
    While the model's `ProjectionCapture` records, every training forward of the backbone that runs with gradients
    asks for the regularized hidden states, projects them inside that forward (so the graph reaches the backbone
    whatever the caller does with the outputs) and adds them to the model's output as `seqvcr_projections` (DDP
    looks for unused parameters from the output). Outside recording nothing changes.
    Attach before wrapping with peft and list `seqvcr_projector` in `modules_to_save`, so it trains.
    """
    existing = get_projector(model)
    if existing is not None:
        return existing
    hidden_size = model.config.get_text_config().hidden_size
    projector = SeqVCRProjector(hidden_size, resolve_layers(model, layers), proj_dim, proj_type)
    projector.to(model.get_input_embeddings().weight.device)
    model.add_module(PROJECTOR_ATTRIBUTE, projector)
    capture = ProjectionCapture(model)
    setattr(model, CAPTURE_ATTRIBUTE, capture)  # a plain attribute: not a submodule, never saved
    model.base_model.register_forward_pre_hook(capture.request_hidden_states, with_kwargs=True)
    model.base_model.register_forward_hook(capture.project, with_kwargs=True)
    if model.base_model is not model:
        model.register_forward_hook(capture.add_to_output)
    return projector


@dataclasses.dataclass
class CapturedForward:
    """One backbone forward seen while recording: a projection per regularized layer, with its graph, and the
    attention mask the forward was given (None without one)."""

    projections: list[torch.Tensor]
    attention_mask: torch.Tensor | None


class ProjectionCapture:
    """What the projection hooks of one model saw during `recording()`: the training forwards that ran with
    gradients, and how many ran without (a parent trainer recomputing its outputs under `no_grad`)."""

    def __init__(self, model: nn.Module) -> None:
        self._owner = model  # the head is looked up on it at each call: peft swaps in its trainable copy
        self._recording = False
        self.forwards: list[CapturedForward] = []
        self.forwards_without_grad = 0

    @contextmanager
    def recording(self) -> Iterator[ProjectionCapture]:
        self.forwards, self.forwards_without_grad, self._recording = [], 0, True
        try:
            yield self
        finally:
            self._recording = False

    def _head(self) -> nn.Module:
        return getattr(self._owner, PROJECTOR_ATTRIBUTE)

    def request_hidden_states(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        """Adds the regularized layers to the forward's `output_hidden_states` (kept as is when it asks for all)."""
        requested = kwargs.get("output_hidden_states")
        if not (self._recording and module.training) or requested is True:
            return None
        layers = _unwrapped(self._head()).layers
        selected = sorted({*layers, *(requested if isinstance(requested, list | tuple) else [])})
        return args, {**kwargs, "output_hidden_states": selected}

    def project(self, module: nn.Module, args: tuple, kwargs: dict, output: ModelOutput) -> None:
        if not (self._recording and module.training):
            return
        if not torch.is_grad_enabled():
            self.forwards_without_grad += 1
            return
        hidden_states = output.hidden_states
        # Asked for a list of layers, the forward returns None for the others, which may include the last.
        device = next(state for state in hidden_states if state is not None).device
        # The head runs in its own dtype (fp32), outside the autocast that mixed precision wraps around the forward.
        with torch.autocast(device.type, enabled=False):
            projections = self._head()(hidden_states)
        self.forwards.append(CapturedForward(projections, kwargs.get("attention_mask")))

    def add_to_output(self, module: nn.Module, args: tuple, output: Any) -> Any:
        if not (self._recording and self.forwards and isinstance(output, ModelOutput)):
            return None
        return _with_projections_field(type(output))(**output, **{PROJECTIONS_KEY: self.forwards[-1].projections})


def _unwrapped(module: nn.Module) -> nn.Module:
    """The projector itself behind peft's `modules_to_save` wrapper, which does not forward attribute lookups."""
    return getattr(module, "original_module", module)


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


def get_capture(model: nn.Module) -> ProjectionCapture | None:
    """The capture `attach_projector` made for a model, also through peft's wrappers."""
    return getattr(model, CAPTURE_ATTRIBUTE, None)


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
