"""A looped model under FSDP2, sharded per unique layer (2 CPU processes over gloo, tests/looped_fsdp_worker.py):
every application runs the sharded layer, or the activation-checkpointing wrapper sharded in its place, and the
gradients equal the unsharded model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from launch import torchrun

WORKER = Path(__file__).with_name("looped_fsdp_worker.py")
APPLICATIONS = 4  # (2⊗2)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("looped_fsdp")
    torchrun(WORKER, directory)
    return json.loads((directory / "looped_fsdp.json").read_text())


@pytest.mark.multiprocess
@pytest.mark.parametrize("arm", ["bare", "checkpointed"])
def test_sharded_looped_model_runs_every_application_and_matches_the_unsharded_gradients(results: dict, arm: str):
    got = results[arm]
    assert got["sharded"] and got["calls"] == APPLICATIONS
    assert got["loss_error"] < 1e-6
    assert got["grad_error"] < 1e-6 * got["grad_scale"]
