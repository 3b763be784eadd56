"""The gathered Seq-VCR loss under 2 CPU processes equals the single-process loss on the concatenated batch, and
DDP's averaged gradients of CE + gathered Seq-VCR equal the single-process gradients (hf_seqvcr/distributed.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from distributed_worker import build_model
from hf_seqvcr.distributed import gather_across_processes, global_seq_vcr_loss, settle_gloo_workers
from hf_seqvcr.losses import seq_vcr_loss
from launch import torchrun

WORKER = Path(__file__).with_name("distributed_worker.py")
WORLD_SIZE = 2
LAMBDA_COV = 0.5  # large enough that the covariance term shapes the gradients


def _right_padded_mask(rows: int, positions: int, generator: torch.Generator) -> torch.Tensor:
    lengths = torch.randint(positions // 2, positions + 1, (rows,), generator=generator)
    return torch.arange(positions) < lengths[:, None]


def _loss_cases() -> dict[str, dict]:
    """Per-rank shards: equal, unequal batch sizes, unequal sequence lengths, and the pooled covariance mode."""
    g = torch.Generator().manual_seed(0)

    def shards(rows: list[int], positions: list[int], masked: bool) -> tuple[list, list | None]:
        z = [torch.randn(n, t, 6, generator=g) * 0.7 for n, t in zip(rows, positions, strict=True)]
        mask = [_right_padded_mask(n, t, g) for n, t in zip(rows, positions, strict=True)] if masked else None
        return z, mask

    cases = {}
    for name, rows, positions, masked, kwargs in [
        ("equal", [4, 4], [5, 5], False, {}),
        ("unequal_rows_masked", [3, 5], [6, 6], True, {"lambda_cov": LAMBDA_COV}),
        ("unequal_lengths", [4, 4], [5, 7], False, {"lambda_cov": LAMBDA_COV}),
        ("batch_positions", [3, 4], [7, 5], True, {"lambda_cov": LAMBDA_COV, "covariance_mode": "batch_positions"}),
    ]:
        z, mask = shards(rows, positions, masked)
        cases[name] = {"z": z, "mask": mask, "kwargs": kwargs}
    return cases


def _pad_positions(tensor: torch.Tensor, positions: int) -> torch.Tensor:
    pad = tensor.new_zeros((tensor.shape[0], positions - tensor.shape[1], *tensor.shape[2:]))
    return torch.cat([tensor, pad], dim=1)


def _concatenated(case: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The single-process batch: shards right-padded to the longest and stacked, padding masked out."""
    positions = max(z.shape[1] for z in case["z"])
    z = torch.cat([_pad_positions(z, positions) for z in case["z"]])
    if case["mask"] is None and all(z.shape[1] == positions for z in case["z"]):
        return z, None
    masks = case["mask"] or [torch.ones(z.shape[:2], dtype=torch.bool) for z in case["z"]]
    return z, torch.cat([_pad_positions(m, positions) for m in masks])


@pytest.fixture(scope="module")
def inputs() -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "loss_cases": _loss_cases(),
        "input_ids": torch.randint(0, 40, (8, 10), generator=g).chunk(WORLD_SIZE),
        "lambda_cov": LAMBDA_COV,
    }


@pytest.fixture(scope="module")
def ranks(inputs: dict, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Launches the worker once under torchrun (gloo on loopback) and loads every rank's results."""
    directory = tmp_path_factory.mktemp("distributed")
    torch.save(inputs, directory / "inputs.pt")
    torchrun(WORKER, directory, nproc=WORLD_SIZE)
    return [torch.load(directory / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


@pytest.mark.multiprocess
@pytest.mark.parametrize("name", ["equal", "unequal_rows_masked", "unequal_lengths", "batch_positions"])
def test_gathered_loss_and_gradient_match_single_process(name: str, inputs: dict, ranks: list[dict]) -> None:
    case = inputs["loss_cases"][name]
    z, mask = _concatenated(case)
    z.requires_grad_(True)
    expected = seq_vcr_loss(z, mask, **case["kwargs"])
    expected.loss.backward()
    row = 0
    for rank, results in enumerate(ranks):
        for part in ("loss", "variance", "covariance"):
            torch.testing.assert_close(results[name][part], getattr(expected, part).detach(), rtol=1e-5, atol=0)
        rows, positions = case["z"][rank].shape[:2]
        torch.testing.assert_close(results[name]["grad"], z.grad[row : row + rows, :positions], rtol=1e-5, atol=1e-8)
        row += rows


@pytest.mark.multiprocess
def test_ddp_gradients_equal_single_process_gradients(inputs: dict, ranks: list[dict]) -> None:
    model = build_model()
    ce, z = model(torch.cat(inputs["input_ids"]))
    (ce + seq_vcr_loss(z, lambda_cov=LAMBDA_COV).loss).backward()
    for results in ranks:
        for name, parameter in model.named_parameters():
            torch.testing.assert_close(results["ddp"][name], parameter.grad, rtol=1e-5, atol=1e-9, msg=name)


@pytest.mark.multiprocess
def test_mismatched_trailing_dims_raise_on_every_rank(ranks: list[dict]) -> None:
    for results in ranks:
        assert "same shape on every rank except dim 0" in results["mismatch"]


def test_single_process_gather_is_identity() -> None:
    z = torch.randn(4, 3, 5, requires_grad=True)
    assert gather_across_processes(z) is z
    mask = torch.tensor([[1, 1, 0]] * 4)
    torch.testing.assert_close(global_seq_vcr_loss(z, mask).loss, seq_vcr_loss(z, mask).loss, rtol=0, atol=0)


def test_settling_gloo_workers_pauses_only_while_a_gloo_group_is_up(monkeypatch) -> None:
    """The pause before a gloo run exits (bench/gloo_exit.py measures what it prevents) costs nothing elsewhere."""

    def seconds() -> float:
        start = time.perf_counter()
        settle_gloo_workers(grace=0.3)
        return time.perf_counter() - start

    assert seconds() < 0.1  # no process group: one process, or NCCL's
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert seconds() >= 0.3
    finally:
        dist.destroy_process_group()
