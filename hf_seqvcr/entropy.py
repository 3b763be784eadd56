"""Matrix-based (Rényi) entropy of hidden states: the paper's measure of representation collapse.

Seq-VCR's claim is that without it the middle layers of a decoder collapse onto few directions on
multi-step arithmetic; the per-layer entropy of the token representations makes that visible
(docs/method.md §6). Following the paper the Gram matrix is taken of the representations as they are,
with no centring or row normalisation (Skean et al. offer those as variants): a shared offset
common to every token therefore lowers the entropy, which is part of what "collapse" means here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from .pause import Positions, position_mask


def matrix_entropy(reps: torch.Tensor, alpha: float = 1.0) -> float:
    """α-order matrix-based entropy of the N rows of `reps` (N×D), in nats.

    With K = Z Zᵀ and λ the eigenvalues of K / tr(K), S_α = log(Σ λ^α) / (1 − α), and α = 1 is the
    Shannon limit −Σ λ log λ. The non-zero eigenvalues of Z Zᵀ and Zᵀ Z coincide and zero
    eigenvalues add nothing for α > 0, so the smaller of the two Grams is decomposed: the cost is
    O(min(N, D)³), which keeps many tokens affordable. Eigenvalues are computed in fp64, and those
    below the round-off level (numpy's matrix-rank tolerance) count as zero: for α < 1 the power
    λ^α would otherwise turn ~1e-17 noise into spurious entropy in collapsed layers.
    """
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}; use 1.0 for the Shannon limit.")
    if reps.dim() != 2 or reps.shape[0] < 1 or reps.shape[1] < 1:
        raise ValueError(f"reps must be a 2-D (N, D) tensor with N, D >= 1, got shape {tuple(reps.shape)}.")
    z = reps.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(z).all():
        raise ValueError("reps contains NaN or inf; check the model's hidden states before measuring entropy.")
    gram = z @ z.T if z.shape[0] <= z.shape[1] else z.T @ z
    trace = torch.trace(gram)
    if trace <= 0:
        raise ValueError("reps has zero trace (all rows are zero vectors); entropy is undefined for it.")
    lam = torch.linalg.eigvalsh(gram / trace)
    lam = lam[lam > lam.max() * max(reps.shape) * torch.finfo(torch.float64).eps]
    if alpha == 1.0:
        return float(-(lam * lam.log()).sum())
    return float(torch.log((lam**alpha).sum()) / (1.0 - alpha))


def _evenly_spaced(n: int, max_tokens: int | None) -> torch.Tensor | None:
    """Deterministic subsample of n rows (None = keep all), so repeated runs measure the same tokens."""
    if max_tokens is None or n <= max_tokens:
        return None
    return torch.linspace(0, n - 1, max_tokens).round().long()


@torch.no_grad()
def layerwise_entropy(
    model: torch.nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    *,
    alpha: float = 1.0,
    positions: Positions = "answer",
    max_tokens: int | None = None,
) -> list[float]:
    """Matrix entropy of every hidden state (embeddings, then each layer) over the selected tokens.

    Token vectors are pooled over all `batches` (dicts with `input_ids`, `attention_mask` and, for
    `positions="answer"`, `labels` — the answer tokens are those with a label). `max_tokens` keeps
    an evenly spaced subset of the pooled tokens. The model runs in eval mode and is returned to
    its previous mode, so this is safe to call in the middle of training.
    """
    if positions not in ("answer", "all"):
        raise ValueError(f'positions must be "answer" or "all", got {positions!r}.')
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens!r}.")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_layer: list[list[torch.Tensor]] = []
    try:
        for batch in batches:
            mask = position_mask(batch, positions).to(device)
            if not mask.any():
                continue
            inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask") if k in batch}
            hidden = model(**inputs, output_hidden_states=True, use_cache=False).hidden_states
            if not per_layer:
                per_layer = [[] for _ in hidden]
            for store, h in zip(per_layer, hidden, strict=True):
                store.append(h[mask].float().cpu())
    finally:
        model.train(was_training)
    if not per_layer:
        raise ValueError(
            f'no tokens selected by positions="{positions}" in the given batches; check labels/attention_mask.'
        )
    layers = [torch.cat(chunks) for chunks in per_layer]
    keep = _evenly_spaced(layers[0].shape[0], max_tokens)
    return [matrix_entropy(z if keep is None else z[keep], alpha) for z in layers]
