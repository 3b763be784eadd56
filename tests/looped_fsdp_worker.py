"""Run by tests/test_looped_fsdp.py under `torchrun --nproc_per_node 2`: a looped LLaMA (2⊗2) sharded per unique layer
with FSDP2's `fully_shard` on the CPU over gloo, bare and with torch's activation-checkpointing wrapper around each
layer (what accelerate's `fsdp_activation_checkpointing` installs: the wrapper replaces the layer in its ModuleList,
then is sharded). Both ranks see the same batch, so the sharded gradients must equal the unsharded model's in one
process. Rank 0 writes the comparison to `<dir>/looped_fsdp.json` and saves each sharded model into `<dir>/<arm>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from hf_seqvcr.looped import LoopLayout, decoder_layers, looped_from_config
from launch import end_worker
from test_looped import llama_config, prompts

LAYOUT = LoopLayout(block=2, loops=2)


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    return looped_from_config(llama_config(LAYOUT.unique_layers), LAYOUT)


def loss_and_grads(model: torch.nn.Module) -> tuple[float, dict[str, torch.Tensor]]:
    ids = prompts()
    loss = model(ids, labels=ids, use_cache=True).loss
    loss.backward()
    grads = {name.replace("._checkpoint_wrapped_module", ""): param.grad for name, param in model.named_parameters()}
    return loss.item(), {name: g.full_tensor() if isinstance(g, DTensor) else g for name, g in grads.items()}


def save(model: torch.nn.Module, directory: Path) -> None:
    """What the Trainer does for FSDP2: gather the full state dict, then `save_pretrained` on the sharded model."""
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() == 0:
        model.save_pretrained(directory, state_dict=state)


def sharded(mesh, checkpointed: bool, directory: Path) -> dict:
    model = build()
    layers = decoder_layers(model)
    if checkpointed:
        apply_activation_checkpointing(
            model, checkpoint_wrapper_fn=checkpoint_wrapper, check_fn=set(layers.children()).__contains__
        )
    calls = []
    for module in list(layers.children()):  # the layers, or the wrappers that replaced them
        module.register_forward_pre_hook(lambda *_: calls.append(1))
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    loss, grads = loss_and_grads(model)
    save(model, directory / arm_name(checkpointed))
    return {
        "loss": loss,
        "grads": grads,
        "calls": len(calls),
        "sharded": all(isinstance(p, DTensor) for p in model.parameters()),
    }


def arm_name(checkpointed: bool) -> str:
    return "checkpointed" if checkpointed else "bare"


def main(directory: Path) -> None:
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    want_loss, want = loss_and_grads(build())
    results = {}
    for arm in map(arm_name, (False, True)):
        got = sharded(mesh, checkpointed=arm == "checkpointed", directory=directory)
        results[arm] = {
            "calls": got["calls"],
            "sharded": got["sharded"],
            "loss_error": abs(got["loss"] - want_loss),
            "grad_error": max((got["grads"][name] - grad).abs().max().item() for name, grad in want.items()),
            "grad_scale": max(grad.abs().max().item() for grad in want.values()),
        }
    if dist.get_rank() == 0:
        (directory / "looped_fsdp.json").write_text(json.dumps(results))
    end_worker()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
