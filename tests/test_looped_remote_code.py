"""A looped checkpoint loads where hf-seqvcr is not installed: `save_pretrained` (and so every push) ships
modeling_looped.py, and `AutoModelForCausalLM.from_pretrained(..., trust_remote_code=True)` in a process that cannot
import hf_seqvcr gives the logits and greedy generations of `load_looped`, from a directory and from the (loopback) Hub.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from hf_seqvcr import modeling_looped
from hf_seqvcr.looped import load_looped, looped_from_config
from hub_server import USER, LoopbackHub
from test_looped import CONFIGS, MIDDLE, PLAIN, prompts

GREEDY = dict(
    max_new_tokens=6, do_sample=False, pad_token_id=0, use_cache=True, output_logits=True, return_dict_in_generate=True
)

# Run in a fresh interpreter with hf_seqvcr made unimportable (the test checks it is): loads argv[1] with
# transformers alone, trusting its code or not (argv[2]), and saves what it computes, or the refusal, to argv[3]; on
# this process's thread count (argv[4]), since a sum split over another number of threads rounds differently.
WITHOUT_HF_SEQVCR = f"""
import sys
sys.modules["hf_seqvcr"] = None  # as if hf-seqvcr were not installed
try:
    import hf_seqvcr
except ImportError:
    pass
else:
    raise SystemExit("hf_seqvcr is importable")
import torch
from transformers import AutoModelForCausalLM

source, trust, out, threads = sys.argv[1:]
torch.set_num_threads(int(threads))
try:
    flags = {{"trust_remote_code": True}} if trust == "trust" else {{}}
    model = AutoModelForCausalLM.from_pretrained(source, **flags)
except ValueError as error:
    torch.save({{"refused": str(error)}}, out)
    raise SystemExit(0)
ids = torch.load(out)
with torch.no_grad():
    logits = model(ids).logits
    generated = model.generate(ids, **{GREEDY!r})
torch.save({{"class": type(model).__module__ + "." + type(model).__name__, "logits": logits,
             "sequences": generated.sequences, "step_logits": torch.stack(generated.logits)}}, out)
"""


def without_hf_seqvcr(source: str, tmp_path: Path, *, trust: bool) -> dict:
    """What a transformers-only process computes from `source` (or the message it refuses it with)."""
    out = tmp_path / f"out-{uuid.uuid4().hex[:8]}.pt"
    torch.save(prompts(), out)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_HF_SEQVCR,
            source,
            "trust" if trust else "no",
            str(out),
            str(torch.get_num_threads()),
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return torch.load(out)


def with_hf_seqvcr(source: str) -> dict:
    model = load_looped(source)
    assert type(model).__module__ == modeling_looped.__name__  # hf-seqvcr's code: the checkpoint's never runs here
    ids = prompts()
    with torch.no_grad():
        generated = model.generate(ids, **GREEDY)
        return {
            "logits": model(ids).logits,
            "sequences": generated.sequences,
            "step_logits": torch.stack(generated.logits),
        }


def saved_looped(arch: str, layout, directory: Path) -> Path:
    torch.manual_seed(0)
    looped_from_config(CONFIGS[arch](layout.unique_layers), layout).save_pretrained(directory)
    return directory


def assert_same_model(got: dict, want: dict) -> None:
    assert got["class"].startswith("transformers_modules.")  # the checkpoint's own copy ran, not hf_seqvcr
    assert got["class"].endswith(("LoopedLlamaForCausalLM", "LoopedGPT2LMHeadModel"))
    assert torch.equal(got["logits"], want["logits"])
    assert torch.equal(got["sequences"], want["sequences"])
    assert torch.equal(got["step_logits"], want["step_logits"])


def test_the_modeling_file_imports_only_torch_and_transformers():
    tree = ast.parse(Path(modeling_looped.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))  # no relative import
    assert imported <= {"__future__", "collections", "dataclasses", "typing", "torch", "transformers"}


@pytest.mark.parametrize(("arch", "layout"), [("llama", MIDDLE), ("gpt2", PLAIN)], ids=["llama-middle", "gpt2-plain"])
def test_a_saved_directory_loads_without_hf_seqvcr(arch, layout, tmp_path):
    directory = saved_looped(arch, layout, tmp_path / "looped")
    config = json.loads((directory / "config.json").read_text())
    assert (directory / "modeling_looped.py").read_text() == Path(modeling_looped.__file__).read_text()
    assert config["model_type"] == f"looped_{arch}" and set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModelForCausalLM",
    }
    assert_same_model(without_hf_seqvcr(str(directory), tmp_path, trust=True), with_hf_seqvcr(str(directory)))


def test_without_trust_remote_code_transformers_names_the_flag(tmp_path):
    directory = saved_looped("llama", PLAIN, tmp_path / "looped")
    refused = without_hf_seqvcr(str(directory), tmp_path, trust=False)["refused"]
    assert "contains custom code" in refused and "trust_remote_code=True" in refused


def test_a_pushed_repo_loads_without_hf_seqvcr(hub: LoopbackHub, tmp_path):
    repo_id = f"{USER}/looped-{uuid.uuid4().hex[:8]}"
    torch.manual_seed(0)
    looped_from_config(CONFIGS["llama"](MIDDLE.unique_layers), MIDDLE).push_to_hub(repo_id)
    assert "modeling_looped.py" in hub.repo(repo_id).head().files
    assert_same_model(without_hf_seqvcr(repo_id, tmp_path, trust=True), with_hf_seqvcr(repo_id))
    assert "trust_remote_code=True" in without_hf_seqvcr(repo_id, tmp_path, trust=False)["refused"]
