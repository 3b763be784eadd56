"""Pins the Trainer and peft internals hf_seqvcr/compat.py relies on, so an upgrade that changes one fails here, and
checks that no other module reaches for internals."""

from __future__ import annotations

import inspect
import re
import uuid
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from huggingface_hub.errors import HfHubHTTPError
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback, TrainingArguments

from data_builders.compat import max_shard_bytes
from hf_seqvcr import SeqVCRMixin, build_digit_tokenizer
from hf_seqvcr.compat import SaveHook, checkpoint_push_jobs, loss_is_scaled_for_ga
from hub_server import USER, LoopbackHub
from tiny import tiny_gpt2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tokenizer():
    return build_digit_tokenizer()


def plain_trainer(tmp_path, model, **overrides) -> Trainer:
    args = TrainingArguments(tmp_path / "out", report_to="none", use_cpu=True, disable_tqdm=True, **overrides)
    return Trainer(model=model, args=args)


def test_trainer_save_takes_an_output_dir_and_a_state_dict_and_writes_that_state_dict(tmp_path, tokenizer):
    """`SaveHook._save` overrides `Trainer._save`; a state dict handed to it (FSDP / DeepSpeed) is what gets written."""

    def parameters(method):
        return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]

    assert parameters(Trainer._save) == parameters(SaveHook._save)
    assert [name for name, _, default in parameters(Trainer._save) if default is None] == ["output_dir", "state_dict"]
    model = tiny_gpt2(tokenizer)
    trainer = plain_trainer(tmp_path, model)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("transformer.h.1.")}
    expected = kept.keys() - {"lm_head.weight"}  # tied to the input embedding
    trainer._save(str(tmp_path / "filtered"), state_dict=kept)
    assert load_file(tmp_path / "filtered" / "model.safetensors").keys() == expected


def test_save_model_goes_through_save_and_the_models_own_save_pretrained(tmp_path, tokenizer, monkeypatch):
    """`saving_embedding_layers` binds `save_pretrained` on the peft model instance for `_save` to call, and passes
    peft's `save_embedding_layers`."""
    assert "save_embedding_layers" in inspect.signature(PeftModel.save_pretrained).parameters
    model = get_peft_model(tiny_gpt2(tokenizer), LoraConfig(r=2, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    trainer = plain_trainer(tmp_path, model)
    calls = []
    monkeypatch.setattr(trainer, "_save", lambda output_dir=None, state_dict=None: calls.append(("_save", output_dir)))
    trainer.save_model(str(tmp_path / "a"))
    monkeypatch.undo()
    model.save_pretrained = lambda output_dir, **kwargs: calls.append(("save_pretrained", output_dir))
    trainer.save_model(str(tmp_path / "b"))
    assert calls == [("_save", str(tmp_path / "a")), ("save_pretrained", str(tmp_path / "b"))]


class FixedLoss(Trainer):
    """`compute_loss` returns 6 (with a graph), so what `training_step` backpropagates shows its scaling."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return model.transformer.wte.weight.sum() * 0.0 + 6.0


@pytest.mark.parametrize("class_setting", [None, True, False])
@pytest.mark.parametrize("accepts_loss_kwargs", [True, False])
@pytest.mark.parametrize("num_items_in_batch", [None, 8])
@pytest.mark.parametrize("compute_loss_func", [None, lambda outputs, labels, num_items_in_batch=None: 0.0])
def test_loss_is_scaled_for_ga_agrees_with_what_training_step_does(
    tmp_path, tokenizer, class_setting, accepts_loss_kwargs, num_items_in_batch, compute_loss_func
):
    model = tiny_gpt2(tokenizer)
    trainer = FixedLoss(model=model, args=TrainingArguments(tmp_path, report_to="none", use_cpu=True))
    trainer.loss_is_scaled_for_ga = class_setting
    trainer.model_accepts_loss_kwargs = accepts_loss_kwargs
    trainer.compute_loss_func = compute_loss_func
    trainer.current_gradient_accumulation_steps = 3
    backpropagated = []
    trainer.accelerator.backward = lambda loss, **kwargs: backpropagated.append(loss.item())
    trainer.training_step(model, {"input_ids": torch.tensor([[1, 2]])}, num_items_in_batch)
    assert backpropagated in ([6.0], [2.0])
    assert loss_is_scaled_for_ga(trainer, num_items_in_batch) == (backpropagated == [6.0])


def test_resume_load_leaves_parameters_missing_from_the_checkpoint_untouched(tmp_path, tokenizer):
    """`train` loads the head from its own file before the Trainer loads weights that lack it."""
    model = tiny_gpt2(tokenizer)
    trainer = plain_trainer(tmp_path, model)
    other = tiny_gpt2(tokenizer, seed=1).state_dict()
    save_file(
        {k: v for k, v in other.items() if k != "transformer.ln_f.weight" and k != "lm_head.weight"},
        tmp_path / "model.safetensors",
    )
    with torch.no_grad():
        model.transformer.ln_f.weight.fill_(3.0)
    trainer._load_from_checkpoint(str(tmp_path))
    assert torch.equal(model.transformer.wte.weight, other["transformer.wte.weight"])
    assert torch.equal(model.transformer.ln_f.weight, torch.full_like(model.transformer.ln_f.weight, 3.0))


def test_checkpoint_pushes_are_futures_whose_errors_the_trainer_drops(hub: LoopbackHub, tmp_path, tokenizer):
    """`checkpoint_push_jobs` reads, in `on_save`, the futures `_push_from_checkpoint` started; a failed one does not
    stop training (the reason `SeqVCRMixin` reports them)."""
    repo_id = f"{USER}/compat-{uuid.uuid4().hex[:8]}"
    seen = []

    class Jobs(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            seen.append(checkpoint_push_jobs(trainer))

    ids = tokenizer(["1 2 * 3 4"] * 2).input_ids
    args = TrainingArguments(
        tmp_path,
        push_to_hub=True,
        hub_model_id=repo_id,
        hub_strategy="every_save",
        save_steps=1,
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(
        model=tiny_gpt2(tokenizer),
        args=args,
        callbacks=[Jobs()],
        train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}),
    )
    hub.fail_next_commits(repo_id, 1)
    trainer.train()
    ((job,),) = seen
    assert isinstance(job.exception(timeout=60), HfHubHTTPError) and job.exception().response.status_code == 500
    assert set(hub.repo(repo_id).head().files) == {".gitattributes"}


def test_only_compat_reaches_for_trainer_and_peft_internals():
    private_overrides = [
        name
        for name in vars(SeqVCRMixin)
        if name.startswith("_") and not name.startswith("__") and hasattr(Trainer, name)
    ]
    assert private_overrides == []
    assert [name for name in vars(SaveHook) if hasattr(Trainer, name) and not name.startswith("__")] == ["_save"]
    internals = {
        "transformers' shared HfApi": r"\bhf_api\b",
        "config._name_or_path": r"\b_name_or_path\b",
        "peft_config as a peft test": r"hasattr\([^)]*peft_config",
        "a rebound save_pretrained": r"\.save_pretrained\s*=",
        "the Trainer's push bookkeeping": r"push_in_progress",
        "a private Trainer override": r"def _(save|save_checkpoint|load_from_checkpoint|push_from_checkpoint)\b",
        "attention's cache slot": r"\.layer_idx\s*=(?!=)",
    }
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sorted((ROOT / "hf_seqvcr").rglob("*.py"))
        if path.name != "compat.py"
        for what, pattern in internals.items()
        if re.search(pattern, path.read_text())
        and (path.name, what) != ("modeling_looped.py", "attention's cache slot")  # shipped in checkpoints: standalone
    ]
    assert found == []
    reaching = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "data_builders").rglob("*.py"))
        if path.name != "compat.py" and re.search(r"from datasets\.(config|utils)\b", path.read_text())
    ]
    assert reaching == []


def test_the_builders_shard_like_push_to_hub():
    """data_builders/compat.py: `push_to_hub` (max_shard_size None) shards at `datasets.config.MAX_SHARD_SIZE`."""
    assert inspect.signature(Dataset.push_to_hub).parameters["max_shard_size"].default is None
    assert max_shard_bytes() == 500 * 10**6
