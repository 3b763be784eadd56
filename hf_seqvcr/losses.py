"""The Seq-VCR regularizer (Arefin et al., ICLR 2025, Eq. 3) as a pure function of projected states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

CovarianceMode = Literal["batch", "batch_positions"]
CovarianceMethod = Literal["auto", "gram", "covariance"]


class Lambdas(NamedTuple):
    """The weights (λ1 of the variance hinge, λ2 of the covariance term) of one task family."""

    var: float
    cov: float


# The paper's λ per task family (Arefin et al. 2025; docs/method.md, "λ per task"); its batch sizes: 32 and 128.
MULTIPLICATION_LAMBDAS = Lambdas(var=1.0, cov=0.004)
OTHER_TASKS_LAMBDAS = Lambdas(var=0.1, cov=0.5)  # arithmetic expressions, LIS, GSM8K


@dataclass
class SeqVCRLossOutput:
    """The weighted total and its two unweighted parts, so each can be logged on its own."""

    loss: torch.Tensor
    variance: torch.Tensor
    covariance: torch.Tensor


def seq_vcr_loss(
    z: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    lambda_var: float = MULTIPLICATION_LAMBDAS.var,
    lambda_cov: float = MULTIPLICATION_LAMBDAS.cov,
    eps: float = 1e-4,
    covariance_mode: CovarianceMode = "batch",
    method: CovarianceMethod = "auto",
) -> SeqVCRLossOutput:
    """Variance hinge plus off-diagonal covariance of `z` (batch, positions, dim), without an invariance term.

    `covariance_mode="batch"` computes one covariance across the batch at every position and averages over the
    positions (the paper's default); `"batch_positions"` pools all valid token vectors into one covariance.
    `mask` (batch, positions) marks real tokens: in batch mode a position counts only when every row has a real
    token there, so no statistic mixes padding in. Statistics run in fp32 (or wider) whatever the model dtype.
    `method` picks how the squared off-diagonal sum is formed: through the n×n Gram matrix of the centred
    samples (cheap when n < d) or the literal d×d covariance; `"auto"` takes the cheaper one. Same value.
    """
    if z.dim() != 3:
        raise ValueError(f"`z` must have shape (batch, positions, dim), got {tuple(z.shape)}.")
    if mask is not None and mask.shape != z.shape[:2]:
        raise ValueError(f"`mask` must have shape {tuple(z.shape[:2])} (batch, positions), got {tuple(mask.shape)}.")
    if method not in ("auto", "gram", "covariance"):
        raise ValueError(f"`method` must be 'auto', 'gram' or 'covariance', got {method!r}.")
    z = z.to(torch.promote_types(z.dtype, torch.float32))
    if covariance_mode == "batch":
        if z.shape[0] < 2:
            raise ValueError(
                f"Seq-VCR needs a batch of at least 2 to estimate a covariance across the batch, got {z.shape[0]}; "
                "raise the per-device batch size or use covariance_mode='batch_positions'."
            )
        if mask is not None:
            z = z[:, mask.bool().all(dim=0)]
        groups = z.transpose(0, 1)  # (positions, batch, dim): one covariance per position
    elif covariance_mode == "batch_positions":
        vectors = z[mask.bool()] if mask is not None else z.reshape(-1, z.shape[-1])
        if vectors.shape[0] < 2:
            raise ValueError(f"Seq-VCR needs at least 2 valid token vectors, got {vectors.shape[0]}.")
        groups = vectors.unsqueeze(0)
    else:
        raise ValueError(f"`covariance_mode` must be 'batch' or 'batch_positions', got {covariance_mode!r}.")

    if groups.shape[0] == 0:  # no position is valid in every row: nothing to regularize, keep the graph
        zero = z.sum() * 0.0
        return SeqVCRLossOutput(loss=zero, variance=zero, covariance=zero)
    variance, covariance = _variance_covariance(groups, eps=eps, method=method)
    return SeqVCRLossOutput(
        loss=lambda_var * variance + lambda_cov * covariance, variance=variance, covariance=covariance
    )


def _variance_covariance(
    groups: torch.Tensor, *, eps: float, method: CovarianceMethod
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean std hinge and Σ_g Σ_{k≠k'} C_g[k,k']² / (G·d) for G groups of n samples of dimension d.

    ‖C‖_F² = ‖Zcᵀ Zc‖_F² / (n−1)² = ‖Zc Zcᵀ‖_F² / (n−1)², so the n×n Gram matrix gives the same number as
    the d×d covariance in O(n²d) instead of O(nd²). The Gram form subtracts the diagonal from ‖C‖_F², which is
    exact enough while n < d (the off-diagonal mass dominates); "auto" takes the literal form otherwise.
    """
    num_groups, n, d = groups.shape
    centred = groups - groups.mean(dim=1, keepdim=True)
    var = centred.pow(2).sum(dim=1) / (n - 1)  # (G, d): the covariance diagonals
    variance = torch.relu(1.0 - torch.sqrt(var + eps)).mean()
    use_gram = method == "gram" or (method == "auto" and n < d)
    if use_gram:
        frobenius_sq = (centred @ centred.transpose(1, 2)).pow(2).sum(dim=(1, 2)) / (n - 1) ** 2
        off_diagonal_sq = frobenius_sq - var.pow(2).sum(dim=1)
    else:  # the diagonal is zeroed, not subtracted: when n ≫ d it dwarfs the rest and the difference loses fp32 digits
        covariance_matrix = centred.transpose(1, 2) @ centred / (n - 1)
        off_diagonal = covariance_matrix.masked_fill(torch.eye(d, dtype=torch.bool, device=groups.device), 0.0)
        off_diagonal_sq = off_diagonal.pow(2).sum(dim=(1, 2))
    covariance = off_diagonal_sq.sum() / (num_groups * d)
    return variance, covariance
