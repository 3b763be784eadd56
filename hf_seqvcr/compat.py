"""The only place that relies on Trainer, peft and model internals; a test pins each against upstream.

Everything else in hf_seqvcr goes through public hooks (`compute_loss`, `log`, `train`, callbacks, ...). Each
name here exists because no public hook gives the same thing; when a transformers or peft upgrade changes one,
tests/test_compat.py fails first and says which. (Looped models rely on one more, `use_cache_slot`, which lives in
modeling_looped.py: that file is shipped with looped checkpoints and may import nothing from hf_seqvcr.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from peft import LoraModel, PeftModel
from torch import nn
from transformers import Trainer


class SaveHook:
    """Routes `Trainer._save(output_dir, state_dict)` through `self._saving_weights(output_dir, state_dict)`.

    `_save` is the one place that sees the state dict FSDP and DeepSpeed gathered (None otherwise), and every save
    (checkpoint, `save_model`, `push_to_hub`) passes through it. The class using this mixin defines
    `_saving_weights`, a context manager that may yield another state dict; the Trainer's own `_save` runs inside it.
    """

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        with self._saving_weights(output_dir, state_dict) as state_dict:
            super()._save(output_dir, state_dict)


def loss_is_scaled_for_ga(trainer: Trainer, num_items_in_batch) -> bool:
    """Whether `Trainer.training_step` leaves the loss as is (True) or divides it by the accumulation steps."""
    if trainer.loss_is_scaled_for_ga is not None:
        return trainer.loss_is_scaled_for_ga
    return bool(trainer.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
        trainer.compute_loss_func is not None
    )


def checkpoint_push_jobs(trainer: Trainer) -> list[Future]:
    """The futures of the checkpoint uploads `_push_from_checkpoint` started (the Trainer never reads their errors;
    a later push replaces the list once these are done)."""
    push = getattr(trainer, "push_in_progress", None)
    return list(push.jobs) if push is not None else []


@contextmanager
def saving_embedding_layers(model: nn.Module) -> Iterator[None]:
    """Inside the block, a peft model that trains token rows (pause tokens were added, so the vocabulary was
    resized) saves its embedding matrices too when `model.save_pretrained` is called.

    `Trainer._save` calls `save_pretrained(output_dir, state_dict=..., is_main_process=...)` with no way to pass
    peft's `save_embedding_layers`, so it is bound on the instance for the duration of the save. peft's "auto"
    looks the base vocabulary up on the Hub and, offline, assumes no resize. Other models are left untouched.
    """
    resized = isinstance(model, PeftModel) and any(
        getattr(config, "trainable_token_indices", None) for config in model.peft_config.values()
    )
    if not resized:
        yield
        return
    model.save_pretrained = functools.partial(type(model).save_pretrained, model, save_embedding_layers=True)
    try:
        yield
    finally:
        del model.save_pretrained


def lora_targets_like(model_type: str, like: str) -> None:
    """Give `model_type` (a looped model's) the LoRA targets peft picks for `like` when none are given.

    peft chooses default targets by `config.model_type` in `LoraModel.target_module_mapping`; pinned by
    tests/test_looped.py::test_lora_defaults_to_the_unlooped_models_targets.
    """
    mapping = LoraModel.target_module_mapping
    if like in mapping:
        mapping.setdefault(model_type, mapping[like])
