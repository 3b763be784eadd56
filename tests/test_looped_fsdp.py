"""A looped model under FSDP2, sharded per unique layer (2 CPU processes over gloo, tests/looped_fsdp_worker.py):
every application runs the sharded layer, or the activation-checkpointing wrapper sharded in its place, and the
gradients equal the unsharded model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_seqvcr import modeling_looped
from hf_seqvcr.looped import load_looped
from launch import torchrun
from looped_fsdp_worker import build
from test_looped import prompts

WORKER = Path(__file__).with_name("looped_fsdp_worker.py")
APPLICATIONS = 4  # (2⊗2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("looped_fsdp")
    torchrun(WORKER, directory)
    return directory


@pytest.fixture(scope="module")
def results(runs: Path) -> dict:
    return json.loads((runs / "looped_fsdp.json").read_text())


@pytest.mark.multiprocess
@pytest.mark.parametrize("arm", ["bare", "checkpointed"])
def test_sharded_looped_model_runs_every_application_and_matches_the_unsharded_gradients(results: dict, arm: str):
    got = results[arm]
    assert got["sharded"] and got["calls"] == APPLICATIONS
    assert got["loss_error"] < 1e-6
    assert got["grad_error"] < 1e-6 * got["grad_scale"]


@pytest.mark.multiprocess
@pytest.mark.parametrize("arm", ["bare", "checkpointed"])
def test_a_sharded_looped_model_saves_its_own_code_and_reloads(runs: Path, arm: str):
    """FSDP2 swaps the model's class for a generated FSDP one (defined in torch); the saved code is still ours."""
    saved = runs / arm
    config = json.loads((saved / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "modeling_looped.LoopedLlamaConfig",
        "AutoModelForCausalLM": "modeling_looped.LoopedLlamaForCausalLM",
    }
    assert (saved / "modeling_looped.py").read_text() == Path(modeling_looped.__file__).read_text()
    reloaded = load_looped(saved)
    reference = build()
    ids = prompts()
    torch.testing.assert_close(reloaded(ids).logits, reference(ids).logits, rtol=0, atol=1e-6)
