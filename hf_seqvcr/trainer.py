"""`SeqVCRTrainer`: the Trainer with the Seq-VCR regularizer, pause-token batches and exact-match evaluation."""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from accelerate.utils import gather_object
from torch import nn
from transformers import Trainer, set_seed
from transformers.utils.hub import hf_api

from .config import SeqVCRConfig
from .distributed import global_seq_vcr_loss
from .evaluation import normalize_answer, predict_answers, score_answers
from .lora import saving_embedding_layers
from .losses import SeqVCRLossOutput, seq_vcr_loss
from .methods import METHODS
from .model_card import final_metrics, render_model_card
from .pause import PauseDataCollator, pause_token_strings, position_mask
from .projection import PROJECTIONS_KEY, PROJECTOR_ATTRIBUTE, attach_projector, detached_projector, get_projector


class SeqVCRMixin:
    """Adds Seq-VCR to any Trainer subclass: `class MyTrainer(SeqVCRMixin, SomeTrainer)`.

    Overrides only what the method needs: `compute_loss` (regularizer on selected hidden states), `log` (its parts),
    `evaluate` (exact match by generation), saving (the projection head stays out of the published weights), and
    the Hub push (`create_model_card`: our card; `init_hf_repo`: the `hub_revision` branch).
    """

    args: SeqVCRConfig

    def __init__(self, model=None, args: SeqVCRConfig | None = None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, **kwargs):  # fmt: skip
        if not isinstance(args, SeqVCRConfig):
            raise TypeError(f"`args` must be a SeqVCRConfig, got {type(args).__name__}; build one with "
                            "`SeqVCRConfig(output_dir=..., ...)`.")  # fmt: skip
        if data_collator is None:
            if processing_class is None:
                raise ValueError("Pass the tokenizer as `processing_class` (the pause collator and exact-match "
                                 "evaluation need it), or pass your own `data_collator`.")  # fmt: skip
            data_collator = PauseDataCollator(processing_class, num_pause_tokens=args.num_pause_tokens)
        if isinstance(data_collator, PauseDataCollator):
            for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
                for split in dataset.values() if isinstance(dataset, dict) else [dataset]:
                    if getattr(split, "column_names", None) is not None:
                        data_collator.check_columns(split.column_names, argument=name)
        if args.use_seqvcr:
            set_seed(args.seed)  # the head's initial weights: the Trainer seeds only after they are drawn
            self._attach_projector(model, args)
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)  # fmt: skip
        self._seqvcr_sums: dict[str, float] = defaultdict(float)
        self._seqvcr_micro_batches = 0
        self._seqvcr_logged_step = 0
        self._saving_checkpoint = False

    @staticmethod
    def _attach_projector(model: nn.Module, args: SeqVCRConfig) -> None:
        projector = get_projector(model)
        if projector is None:
            if hasattr(model, "peft_config"):
                raise ValueError(
                    "The model is already wrapped by peft but has no Seq-VCR projection head, so the head would "
                    "not be saved. Call `hf_seqvcr.attach_projector(model, ...)` before `get_peft_model` and add "
                    f"'{PROJECTOR_ATTRIBUTE}' to `LoraConfig(modules_to_save=...)`."
                )
            projector = attach_projector(model, args.seqvcr_layers, args.seqvcr_proj_dim, args.seqvcr_proj_type)
        if not any(p.requires_grad for p in projector.parameters()):  # peft's wrapper also keeps a frozen original
            raise ValueError(f"The Seq-VCR projection head is frozen; with peft, add '{PROJECTOR_ATTRIBUTE}' to "
                             "`LoraConfig(modules_to_save=...)` so it trains.")  # fmt: skip

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (self.args.use_seqvcr and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        projector = get_projector(self.accelerator.unwrap_model(model))
        layers = list(projector.layers)
        ce, outputs = super().compute_loss(
            model, {**inputs, "output_hidden_states": layers}, True, num_items_in_batch
        )
        parts = self._regularizer(outputs[PROJECTIONS_KEY], position_mask(inputs, self.args.seqvcr_positions))
        # The Trainer divides the returned loss by the accumulation steps unless it is already normalised over the
        # whole accumulated batch; the regularizer is a per-micro-batch mean, so it needs that division either way.
        scaled_for_ga = self._loss_is_scaled_for_ga(num_items_in_batch)
        steps = self.current_gradient_accumulation_steps
        regularizer = parts.loss / steps if scaled_for_ga else parts.loss
        self._record(ce.detach() / (1 if scaled_for_ga else steps), parts, steps)
        loss = ce + regularizer
        return (loss, outputs) if return_outputs else loss

    def _regularizer(self, projections: Sequence[torch.Tensor], mask: torch.Tensor) -> SeqVCRLossOutput:
        """Seq-VCR averaged over the regularized layers, over the global batch when gathering is on."""
        loss_fn = global_seq_vcr_loss if self.args.gathers_across_processes else seq_vcr_loss
        per_layer = [
            loss_fn(
                z,
                mask,
                lambda_var=self.args.seqvcr_lambda_var,
                lambda_cov=self.args.seqvcr_lambda_cov,
                eps=self.args.seqvcr_eps,
                covariance_mode=self.args.seqvcr_covariance,
            )
            for z in projections
        ]
        return SeqVCRLossOutput(
            *(torch.stack([getattr(p, name) for p in per_layer]).mean() for name in ("loss", "variance", "covariance"))
        )

    def _loss_is_scaled_for_ga(self, num_items_in_batch) -> bool:
        """The same decision `Trainer.training_step` takes before dividing the loss by the accumulation steps."""
        if self.loss_is_scaled_for_ga is not None:
            return self.loss_is_scaled_for_ga
        return bool(self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
            self.compute_loss_func is not None
        )

    def _record(self, ce_contribution: torch.Tensor, parts: SeqVCRLossOutput, steps: int) -> None:
        """Keep what each micro-batch adds to the step's loss, so logged `ce + seqvcr` equals the logged `loss`."""
        self._seqvcr_sums["ce"] += ce_contribution.item()
        self._seqvcr_sums["seqvcr"] += parts.loss.item() / steps
        self._seqvcr_sums["seqvcr_var"] += parts.variance.item()
        self._seqvcr_sums["seqvcr_cov"] += parts.covariance.item()
        self._seqvcr_micro_batches += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._seqvcr_micro_batches:  # a training log: add the regularizer's parts
            steps = max(self.state.global_step - self._seqvcr_logged_step, 1)
            sums = torch.tensor(
                [self._seqvcr_sums[k] for k in ("ce", "seqvcr", "seqvcr_var", "seqvcr_cov")], device=self.args.device
            )
            ce, seqvcr, var, cov = (self.accelerator.reduce(sums, "mean")).tolist()
            logs.update(
                ce=ce / steps,
                seqvcr=seqvcr / steps,
                seqvcr_var=var / self._seqvcr_micro_batches,
                seqvcr_cov=cov / self._seqvcr_micro_batches,
            )
            self._seqvcr_sums.clear()
            self._seqvcr_micro_batches = 0
            self._seqvcr_logged_step = self.state.global_step
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if self.args.eval_exact_match and dataset is not None and not isinstance(dataset, dict):
            scores = self.exact_match(dataset)
            scalars = {f"{metric_key_prefix}_{k}": v for k, v in scores.items() if not isinstance(v, list)}
            self.log(scalars)
            # Lists (accuracy per answer position) go into the state's history only, so trainer_state.json has the
            # per-position curve; loggers (TensorBoard, W&B, the card) are handed scalars.
            self.state.log_history[-1].update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()
                                               if isinstance(v, list)})  # fmt: skip
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()})
        return metrics

    def exact_match(self, dataset) -> dict[str, float | list[float]]:
        """Batched greedy generation, each process on its own shard of `dataset`, scored on all of it."""
        collator = self.data_collator
        if not isinstance(collator, PauseDataCollator):
            raise ValueError("Exact-match evaluation needs the PauseDataCollator (it builds the prompts); "
                             "set `eval_exact_match=False` with a custom collator.")  # fmt: skip
        shard = dataset.shard(self.accelerator.num_processes, self.accelerator.process_index, contiguous=True)
        predictions = predict_answers(
            self.accelerator.unwrap_model(self.model),
            collator,
            shard,
            batch_size=self.args.per_device_eval_batch_size,
            max_new_tokens=self.args.eval_max_new_tokens,
        )
        pairs = gather_object(list(zip(predictions, (normalize_answer(row["answer"]) for row in shard))))
        return score_answers([p for p, _ in pairs], [r for _, r in pairs])

    def _save_checkpoint(self, model, trial) -> None:
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Checkpoints keep the projection head (resume restores it); published weights drop it unless asked.

        A peft adapter is saved with the resized embeddings (lora.py), so it reloads to the same logits.
        """
        drop_head = get_projector(self.model) is not None and not (
            self.args.keep_projection_head or self._saving_checkpoint
        )
        if drop_head and state_dict is not None:  # gathered by FSDP / DeepSpeed before `_save`
            state_dict = {k: v for k, v in state_dict.items() if PROJECTOR_ATTRIBUTE not in k.split(".")}
        model = self.accelerator.unwrap_model(self.model)
        with detached_projector(model) if drop_head else nullcontext(), saving_embedding_layers(model):
            super()._save(output_dir, state_dict)

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Also check the card can name the method, and create the `hub_revision` branch: the Trainer's uploads
        need it but never create it (every push would fail with RevisionNotFound)."""
        if getattr(self.accelerator.unwrap_model(self.model).config, "seqvcr_method", None) not in METHODS:
            raise ValueError(f"Pushing needs `model.config.seqvcr_method`, the method trained (one of {list(METHODS)}"
                             "), for the model card; set it before creating the trainer (the recipes do).")  # fmt: skip
        super().init_hf_repo(token, private)
        if self.is_world_process_zero() and self.args.hub_revision:
            token = token if token is not None else self.args.hub_token
            hf_api().create_branch(self.hub_model_id, branch=self.args.hub_revision, token=token, exist_ok=True)

    def create_model_card(self, license: str | None = None, tags: str | list[str] | None = None,
                          model_name: str | None = None, finetuned_from: str | None = None,
                          dataset: str | None = None, dataset_args: str | None = None,
                          dataset_revision: str | None = None, **_) -> None:  # fmt: skip
        """Write the card `push_to_hub` uploads: method, every Seq-VCR setting, pause tokens, data, final metrics.

        The method is `model.config.seqvcr_method`; the metrics are the last logged `eval_*`/`test_*` scores (log
        test scores with `trainer.log` before pushing). `dataset` (a Hub dataset id, None for local data),
        `dataset_args` (its config) and `dataset_revision` come through `push_to_hub(**kwargs)`; the Trainer's other
        card arguments (language, tasks, ...) are ignored.
        """
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        name_or_path = getattr(model.config, "_name_or_path", "")
        card = render_model_card(
            method=model.config.seqvcr_method,
            seqvcr_hparams={f.name: getattr(self.args, f.name) for f in dataclasses.fields(self.args)
                            if f.name.startswith("seqvcr_")},
            pause_tokens=pause_token_strings(self.args.num_pause_tokens, self.args.distinct_pause_embeddings),
            dataset_id=dataset, dataset_revision=dataset_revision, dataset_config=dataset_args,
            eval_metrics=final_metrics(self.state.log_history),
            base_model=finetuned_from or (name_or_path if name_or_path and not os.path.isdir(name_or_path) else None),
            model_id=self.hub_model_id or model_name or self.args.output_dir, license=license,
        )  # fmt: skip
        tags = [tags] if isinstance(tags, str) else tags or []
        card.data.tags += [tag for tag in tags if tag not in card.data.tags]
        card.save(os.path.join(self.args.output_dir, "README.md"))
        if hasattr(model, "create_or_update_model_card"):  # a peft adapter: peft adds its library metadata and
            model.get_base_model().add_model_tags(card.data.tags)  # replaces the tags by the base model's own
            model.create_or_update_model_card(self.args.output_dir)


class SeqVCRTrainer(SeqVCRMixin, Trainer):
    """`Trainer` + Seq-VCR + pause tokens. Takes a `SeqVCRConfig` and the tokenizer as `processing_class`."""
