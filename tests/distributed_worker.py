"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: each rank computes the gathered Seq-VCR
loss on its shard of the inputs the test wrote, and saves what it saw to `<dir>/rank<r>.pt`."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from hf_seqvcr.distributed import gather_across_processes, global_seq_vcr_loss
from launch import end_worker


class TinyRegularizedLM(nn.Module):
    """A one-block causal transformer LM plus a projection head: returns the mean next-token CE and the projected
    last layer. Pure torch: the gradient identity under test holds for any architecture."""

    def __init__(self, vocab_size: int = 40, width: int = 16, projection: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.block = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(width, vocab_size)
        self.head = nn.Linear(width, projection)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        causal = nn.Transformer.generate_square_subsequent_mask(input_ids.shape[1], dtype=self.embed.weight.dtype)
        hidden = self.block(self.embed(input_ids), src_mask=causal, is_causal=True)
        logits = self.lm_head(hidden[:, :-1])
        ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))
        return ce, self.head(hidden)


def build_model() -> TinyRegularizedLM:
    """The same float64 weights in every process, so gradients compare to 1e-5."""
    torch.manual_seed(0)
    return TinyRegularizedLM().double()


def _loss_case(case: dict, rank: int) -> dict:
    """Gathered loss parts and this rank's gradient divided by the world size (the gather's backward sums)."""
    z = case["z"][rank].clone().requires_grad_(True)
    mask = case["mask"][rank] if case["mask"] is not None else None
    out = global_seq_vcr_loss(z, mask, **case["kwargs"])
    out.loss.backward()
    return {
        "loss": out.loss.detach(),
        "variance": out.variance.detach(),
        "covariance": out.covariance.detach(),
        "grad": z.grad / dist.get_world_size(),
    }


def _ddp_gradients(input_ids: torch.Tensor, lambda_cov: float) -> dict[str, torch.Tensor]:
    """Parameter gradients of CE + gathered Seq-VCR after DDP's averaging."""
    model = nn.parallel.DistributedDataParallel(build_model())
    ce, z = model(input_ids)
    (ce + global_seq_vcr_loss(z, lambda_cov=lambda_cov).loss).backward()
    return {name: p.grad for name, p in model.module.named_parameters()}


def _mismatch_error(rank: int) -> str:
    try:
        gather_across_processes(torch.zeros(2, 3, 4 + rank))
    except ValueError as error:
        return str(error)
    return ""


def main(directory: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    inputs = torch.load(directory / "inputs.pt")
    results = {name: _loss_case(case, rank) for name, case in inputs["loss_cases"].items()}
    results["ddp"] = _ddp_gradients(inputs["input_ids"][rank], inputs["lambda_cov"])
    results["mismatch"] = _mismatch_error(rank)
    torch.save(results, directory / f"rank{rank}.pt")
    end_worker()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
