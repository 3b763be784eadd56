"""Seq-VCR statistics over the global batch under data parallelism (VICReg's differentiable all-gather), and a
clean exit from a gloo run (`settle_gloo_workers`).

Each process holds only its shard of the batch, and a covariance does not decompose over shards, so the
projected states are gathered from every process and the loss is computed on the full batch on every rank.

Gradient scaling. Every rank r computes the same loss R(Z) of the gathered Z = [z_1; ...; z_W]. The gather's
backward sums the gradients that all W ranks computed for rank r's slice, so rank r receives W·∂R/∂z_r and its
parameter gradient is W·J_rᵀ ∂R/∂z_r (J_r = ∂z_r/∂θ; the other slices are constants on rank r). DDP (also FSDP,
DeepSpeed) averages over ranks: (1/W)·Σ_r W·J_rᵀ ∂R/∂z_r = Σ_r J_rᵀ ∂R/∂z_r = ∂R/∂θ, the single-process
gradient on the concatenated batch, with equal or unequal shard sizes. So the trainer adds the regularizer
exactly as without gathering: never multiplied by the process count (unlike the cross-entropy under
`average_tokens_across_devices`), and divided by `current_gradient_accumulation_steps` exactly when the Trainer
does not divide the loss itself (its `loss_is_scaled_for_ga` condition in `training_step`: `num_items_in_batch`
given to a model that accepts loss kwargs, or a `compute_loss_func`).
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .losses import SeqVCRLossOutput, seq_vcr_loss


class _AllGather(torch.autograd.Function):
    """Concatenates equally shaped tensors from all ranks; backward sums each slice's gradient over the ranks.

    Written on public collectives rather than `torch.distributed.nn.functional.all_gather` (deprecated in
    torch 2.13) or `_functional_collectives.all_gather_single` (private, differentiable only in recent torch):
    the summing backward is what the scaling argument in the module docstring relies on, so it is spelled out here.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        chunks = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(chunks, tensor.contiguous())
        return torch.cat(chunks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        summed = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(summed)  # every rank's loss depends on every slice
        return summed.chunk(dist.get_world_size())[dist.get_rank()]


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _pad_dim(tensor: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Appends zeros along `dim` up to `size`; differentiable, and works for bool masks too."""
    missing = size - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


def gather_across_processes(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenates `tensor` along dim 0 over all ranks, keeping the autograd graph to this rank's slice.

    Ranks may hold different numbers of rows (a last, smaller batch); every other dimension must agree.
    Identity when torch.distributed is not initialised or has a single process. Every rank must call it.
    """
    if not _is_distributed():
        return tensor
    shapes = _AllGather.apply(torch.tensor([tensor.shape], device=tensor.device)).tolist()
    if any(shape[1:] != list(tensor.shape[1:]) for shape in shapes):
        raise ValueError(
            f"`tensor` must have the same shape on every rank except dim 0, got {shapes}; "
            "pad every rank's batch to the same sequence length (or use `global_seq_vcr_loss`, which pads positions)."
        )
    rows = [shape[0] for shape in shapes]
    gathered = _AllGather.apply(_pad_dim(tensor, 0, max(rows)))
    if min(rows) == max(rows):
        return gathered
    return torch.cat([chunk[:n] for chunk, n in zip(gathered.chunk(len(rows)), rows, strict=True)])


def global_seq_vcr_loss(z: torch.Tensor, mask: torch.Tensor | None = None, **loss_kwargs) -> SeqVCRLossOutput:
    """`seq_vcr_loss` on the batch of all ranks, identical on every rank; add it to the loss unscaled (module doc).

    Shorter sequences are right-padded to the longest across ranks and masked out (a missing `mask` counts
    every local position as real), so positions are compared as in one right-padded global batch.
    `loss_kwargs` go to `seq_vcr_loss`.
    """
    if not _is_distributed():
        return seq_vcr_loss(z, mask, **loss_kwargs)
    if mask is not None and mask.shape != z.shape[:2]:
        raise ValueError(f"`mask` must have shape {tuple(z.shape[:2])} (batch, positions), got {tuple(mask.shape)}.")
    if mask is None:
        mask = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
    length = torch.tensor(z.shape[1], device=z.device)
    dist.all_reduce(length, op=dist.ReduceOp.MAX)
    positions = int(length)
    z_all = gather_across_processes(_pad_dim(z, 1, positions))
    mask_all = gather_across_processes(_pad_dim(mask, 1, positions))
    return seq_vcr_loss(z_all, mask_all, **loss_kwargs)


GLOO_EXIT_GRACE_SECONDS = 0.2


def settle_gloo_workers(grace: float = GLOO_EXIT_GRACE_SECONDS) -> None:
    """Waits `grace` seconds, the GIL released, when a gloo process group is up; call it after the last collective.

    A gloo worker thread frees a finished collective's tensors after the caller has moved on, and freeing a tensor
    that Python has seen takes the GIL. Once the interpreter has begun to finalize, taking the GIL ends the thread
    inside a C++ destructor and the process aborts (SIGABRT, "terminate called without an active exception") after
    its work is done. `destroy_process_group` prevents it only when it frees the group, whose destructor joins the
    threads; a DDP or FSDP model keeps the group alive. The pause lets the threads finish while Python is whole:
    `python bench/gloo_exit.py` measures how often each ending aborts. No-op for one process or NCCL.
    """
    if dist.is_available() and dist.is_initialized() and "gloo" in str(dist.get_backend()):
        time.sleep(grace)
