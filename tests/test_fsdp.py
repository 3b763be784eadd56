"""SeqVCRTrainer under FSDP2 with 2 CPU processes (tests/fsdp_worker.py): `SeqVCRMixin._save` gets the state dict
FSDP gathered, the published weights leave the projection head out, checkpoints keep it, and resuming from a
checkpoint restores it (the resumed run's next step equals the uninterrupted run's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_seqvcr.projection import PROJECTOR_ATTRIBUTE
from launch import torchrun

WORKER = Path(__file__).with_name("fsdp_worker.py")
HIDDEN, PROJ_DIM = 64, 16  # tiny_llama's width and sgd_config's seqvcr_proj_dim


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fsdp")
    torchrun(WORKER, directory)
    return directory


def _is_head(key: str) -> bool:
    return PROJECTOR_ATTRIBUTE in key.split(".")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(folder / "model.safetensors").items() if not _is_head(k)}


def _head(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The head saved in a checkpoint folder: inside model.safetensors, or in a file of its own."""
    head = {
        k.split(PROJECTOR_ATTRIBUTE + ".")[-1]: v
        for k, v in load_file(checkpoint / "model.safetensors").items()
        if _is_head(k)
    }
    separate = checkpoint / f"{PROJECTOR_ATTRIBUTE}.safetensors"
    if separate.exists():
        head |= {k.split(PROJECTOR_ATTRIBUTE + ".")[-1]: v for k, v in load_file(separate).items()}
    return head


@pytest.mark.multiprocess
def test_the_run_was_sharded(runs: Path) -> None:
    ran = json.loads((runs / "ran.json").read_text())
    assert ran == {
        "distributed_type": "DistributedType.FSDP",
        "fsdp_version": 2,
        "world_size": 2,
        "wrapped": "FSDPLlamaForCausalLM",
    }


@pytest.mark.multiprocess
def test_final_weights_drop_the_head_and_checkpoints_keep_it_whole(runs: Path) -> None:
    output = runs / "uninterrupted" / "out"
    final = load_file(output / "model.safetensors")
    assert not any(_is_head(key) for key in final)
    assert final["model.embed_tokens.weight"].shape[1] == HIDDEN  # gathered, not one process's shard
    for step in (1, 2):
        head = _head(output / f"checkpoint-{step}")
        assert [tuple(v.shape) for v in head.values()] == [(PROJ_DIM, HIDDEN)]
    torch.testing.assert_close(_weights(output / "checkpoint-2"), final, rtol=0, atol=0)


@pytest.mark.multiprocess
def test_resuming_restores_the_head(runs: Path) -> None:
    """A head not restored would be redrawn from the seed, and the resumed step 2 would differ."""
    uninterrupted, resumed = (runs / name / "out" / "checkpoint-2" for name in ("uninterrupted", "resumed"))
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 2
    torch.testing.assert_close(_head(resumed), _head(uninterrupted), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(_weights(resumed), _weights(uninterrupted), rtol=1e-6, atol=1e-7)
    (before,), (after,) = _head(uninterrupted.parent / "checkpoint-1").values(), _head(uninterrupted).values()
    assert not torch.equal(before, after)  # step 2 moved the head: the equality above is not automatic
