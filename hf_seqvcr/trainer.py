"""`SeqVCRTrainer`: the Trainer with the Seq-VCR regularizer, pause-token batches and exact-match evaluation."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager, nullcontext

import torch
from accelerate.utils import gather_object, is_peft_model
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from .compat import SaveHook, checkpoint_push_jobs, loss_is_scaled_for_ga, saving_embedding_layers
from .config import SeqVCRConfig
from .distributed import global_seq_vcr_loss
from .evaluation import load_metric, normalize_answer, predict_answers
from .looped import LAYOUT_KEY, LoopLayout
from .loopreg import LoopRegularizerOutput, loop_regularizer
from .losses import SeqVCRLossOutput, seq_vcr_loss
from .methods import METHODS
from .model_card import final_metrics, framework_versions, render_model_card
from .pause import PauseDataCollator, pause_token_strings, position_mask
from .projection import (
    PROJECTIONS_KEY,
    PROJECTOR_ATTRIBUTE,
    PROJECTOR_WEIGHTS_NAME,
    attach_projector,
    detached_projector,
    get_projector,
)

logger = logging.getLogger(__name__)
LOOP_COSINE_PREFIX = "loopreg_cos/"  # + a weight group: the mean cosine between adjacent blocks, logged per group


@dataclasses.dataclass(frozen=True)
class FailedPush:
    """A checkpoint upload that failed in the background: the Hub lacks that step; `local_checkpoint` has it."""

    step: int
    reason: str
    local_checkpoint: str

    def __str__(self) -> str:
        return f"step {self.step}: {self.reason} (kept only at {self.local_checkpoint})"


class _RunRecords(TrainerCallback):
    """What the trainer learns from the Trainer's public events: the step a (resumed) run starts logging from,
    and each checkpoint push, whose error the Trainer drops; failed ones end in `trainer.failed_pushes`."""

    def __init__(self, trainer: SeqVCRMixin) -> None:
        self.trainer = trainer
        self.pushes: dict[futures.Future, tuple[int, str]] = {}

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.trainer._seqvcr_logged_step = state.global_step  # a resumed run logs from its checkpoint's step
        self.trainer._seqvcr_sums.clear()  # a window an earlier train() call never logged must not leak in
        self.pushes.clear()
        self.trainer.failed_pushes = []

    def on_save(self, args, state, control, **kwargs) -> None:
        """Runs right after the checkpoint's push started (`hub_strategy` every_save, checkpoint, ...)."""
        checkpoint = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        for job in checkpoint_push_jobs(self.trainer):
            self.pushes.setdefault(job, (state.global_step, checkpoint))

    def on_train_end(self, args, state, control, **kwargs) -> None:
        futures.wait(self.pushes)
        for job, (step, checkpoint) in self.pushes.items():
            if (error := job.exception()) is not None:
                self.trainer.failed_pushes.append(FailedPush(step, f"{type(error).__name__}: {error}", checkpoint))
        if self.trainer.failed_pushes:
            logger.warning("%d checkpoint push(es) to %s failed; the Hub lacks these steps:\n%s",
                           len(self.trainer.failed_pushes), self.trainer.hub_model_id,
                           "\n".join(map(str, self.trainer.failed_pushes)))  # fmt: skip


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint folder `resume_from_checkpoint` names: True or "true" means the last one in `output_dir`.

    Raises a ValueError naming the flag when there is none, so the recipes can check it before any expensive work.
    """
    if resume_from_checkpoint in (None, False) or str(resume_from_checkpoint).lower() == "false":
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() == "true":
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise ValueError(
                f"`--resume_from_checkpoint true` resumes from the last checkpoint in `--output_dir`, but {output_dir} "
                f"holds no {PREFIX_CHECKPOINT_DIR}-<step> folder; pass a checkpoint folder's path, or drop "
                "`--resume_from_checkpoint` to start from scratch."
            )
        return last
    if not os.path.isdir(resume_from_checkpoint):
        raise ValueError(f"`--resume_from_checkpoint {resume_from_checkpoint}` is not a folder; pass a checkpoint "
                         "folder's path, or `true` for the last checkpoint in `--output_dir`.")  # fmt: skip
    return str(resume_from_checkpoint)


class SeqVCRMixin(SaveHook):
    """Adds Seq-VCR to any Trainer subclass: `class MyTrainer(SeqVCRMixin, SomeTrainer)`.

    Overrides only what the method needs: `compute_loss` (regularizer on selected hidden states), `log` (its parts),
    `evaluate` (exact match by generation), `train` (resume restores the projection head), saving (the head stays
    out of the saved weights; compat.py) and the Hub push (`create_model_card`: our card; `init_hf_repo`: the
    `hub_revision` branch). Checkpoint pushes that failed in the background are listed in `failed_pushes`
    after training.
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
        if args.loopreg_lambda > 0:
            if is_peft_model(self.model):
                raise ValueError("`loopreg_lambda` compares whole layer weights, which LoRA freezes (and splits into "
                                 "adapter factors); drop `--use_peft` or set `loopreg_lambda=0`.")  # fmt: skip
            with torch.no_grad():  # a layer count, block size or group the model cannot take fails here, not mid-run
                self._loop_regularizer(self.model)
        self.failed_pushes: list[FailedPush] = []
        self.add_callback(_RunRecords(self))

    @staticmethod
    def _attach_projector(model: nn.Module, args: SeqVCRConfig) -> None:
        projector = get_projector(model)
        if projector is None:
            if is_peft_model(model):
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
        if not (model.training and (self.args.use_seqvcr or self.args.loopreg_lambda > 0)):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # The Trainer divides the returned loss by the accumulation steps unless it is already normalised over the
        # whole accumulated batch; a regularizer is a per-micro-batch value, so it needs that division either way.
        scaled_for_ga = loss_is_scaled_for_ga(self, num_items_in_batch)
        steps = self.current_gradient_accumulation_steps
        per_step = (lambda value: value / steps) if scaled_for_ga else (lambda value: value)  # noqa: E731
        if self.args.use_seqvcr:
            projector = get_projector(self.accelerator.unwrap_model(model))
            inputs = {**inputs, "output_hidden_states": list(projector.layers)}
        ce, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        self._seqvcr_sums["ce"] += ce.item() / (1 if scaled_for_ga else steps)
        loss = ce
        if self.args.use_seqvcr:
            projections = outputs[PROJECTIONS_KEY]
            if self._skips_regularizer(projections[0]):
                parts = None
                loss = loss + sum(z.sum() for z in projections) * 0.0  # the head stays in the graph (DDP expects it)
            else:
                parts = self._regularizer(projections, position_mask(inputs, self.args.seqvcr_positions))
                loss = loss + per_step(parts.loss)
            self._record(parts, steps)
        if self.args.loopreg_lambda > 0:
            loop = self._loop_regularizer(self.accelerator.unwrap_model(model))
            self._record_loop(loop, steps)
            loss = loss + per_step(loop.loss)
        return (loss, outputs) if return_outputs else loss

    def _loop_regularizer(self, model: nn.Module) -> LoopRegularizerOutput:
        return loop_regularizer(model, block=self.args.loopreg_block, lambda_reg=self.args.loopreg_lambda,
                                groups=self.args.loopreg_groups, include_norms=self.args.loopreg_norms)  # fmt: skip

    def _skips_regularizer(self, z: torch.Tensor) -> bool:
        """A covariance across the batch needs 2 rows, and the last micro-batch of an epoch can hold one: skip it
        rather than crash at the end of an epoch. Gathered, every process adds a row: only one process falls short."""
        processes = self.accelerator.num_processes if self.args.gathers_across_processes else 1
        if self.args.seqvcr_covariance != "batch" or z.shape[0] * processes >= 2:
            return False
        warnings.warn(
            "A training micro-batch holds a single row, too few for Seq-VCR's covariance across the batch, so the "
            "regularizer skips it (logged as `seqvcr_skipped`). The dataset size leaves a last batch of one row; "
            "set `dataloader_drop_last=True` to drop it instead."
        )
        return True

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

    def _record(self, parts: SeqVCRLossOutput | None, steps: int) -> None:
        """Keep what each micro-batch adds to the step's loss, so logged `ce + seqvcr (+ loopreg)` equals the logged
        `loss`; `parts` is None for a micro-batch the regularizer skipped."""
        if parts is None:
            self._seqvcr_sums["skipped"] += 1
            return
        self._seqvcr_sums["seqvcr"] += parts.loss.item() / steps
        self._seqvcr_sums["seqvcr_var"] += parts.variance.item()
        self._seqvcr_sums["seqvcr_cov"] += parts.covariance.item()
        self._seqvcr_sums["regularized"] += 1

    def _record_loop(self, loop: LoopRegularizerOutput, steps: int) -> None:
        self._seqvcr_sums["loopreg"] += loop.loss.item() / steps
        for group, cosine in loop.cosine.items():
            self._seqvcr_sums[f"{LOOP_COSINE_PREFIX}{group}"] += cosine.item()
        self._seqvcr_sums["loop_batches"] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._seqvcr_sums:  # a training log: add the regularizers' parts
            steps = max(self.state.global_step - self._seqvcr_logged_step, 1)
            keys = ("ce", "seqvcr", "seqvcr_var", "seqvcr_cov", "regularized", "skipped", "loopreg", "loop_batches")
            keys += tuple(sorted(k for k in self._seqvcr_sums if k.startswith(LOOP_COSINE_PREFIX)))
            sums = torch.tensor([self._seqvcr_sums[k] for k in keys], device=self.args.device)
            mean = dict(zip(keys, self.accelerator.reduce(sums, "mean").tolist()))
            logs["ce"] = mean["ce"] / steps
            if self.args.use_seqvcr:
                logs["seqvcr"] = mean["seqvcr"] / steps
            if mean["regularized"]:
                logs.update(seqvcr_var=mean["seqvcr_var"] / mean["regularized"],
                            seqvcr_cov=mean["seqvcr_cov"] / mean["regularized"])  # fmt: skip
            if mean["skipped"]:  # micro-batches over all processes
                logs["seqvcr_skipped"] = round(mean["skipped"] * self.accelerator.num_processes)
            if mean["loop_batches"]:
                logs["loopreg"] = mean["loopreg"] / steps
                logs.update({k: mean[k] / mean["loop_batches"] for k in keys if k.startswith(LOOP_COSINE_PREFIX)})
            self._seqvcr_sums.clear()
            self._seqvcr_logged_step = self.state.global_step
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None):
        """Also takes `resume_from_checkpoint="true"` (the command-line flag's string) for the last checkpoint in
        `output_dir`, and restores the projection head, which checkpoints keep in its own file."""
        resume_from_checkpoint = resolve_checkpoint(resume_from_checkpoint, self.args.output_dir)
        projector = get_projector(self.model)
        if isinstance(resume_from_checkpoint, str) and projector is not None:
            head = os.path.join(resume_from_checkpoint, PROJECTOR_WEIGHTS_NAME)
            if os.path.isfile(head):  # first: the Trainer's own load leaves parameters its weights lack as they are
                projector.load_state_dict(load_file(head))
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval)

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
        return load_metric().compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])

    @contextmanager
    def _saving_weights(self, output_dir: str, state_dict: dict | None) -> Iterator[dict | None]:
        """Saved weights leave the projection head out (unless `keep_projection_head`), so checkpoints, their Hub
        pushes and the final model hold the same tensors; a checkpoint folder (`checkpoint-<step>`) gets the head's
        own file instead, which `train` loads on resume. A peft adapter checkpoint keeps the head: peft's resume
        (`load_adapter`) fails on a `modules_to_save` module missing from the adapter.

        `state_dict` was gathered by FSDP / DeepSpeed (None otherwise). A peft adapter is saved with the resized
        embeddings (compat.py), so it reloads to the same logits.
        """
        model = self.accelerator.unwrap_model(self.model)
        checkpoint = os.path.basename(os.path.normpath(output_dir)).startswith(f"{PREFIX_CHECKPOINT_DIR}-")
        drop_head = get_projector(model) is not None and not (
            self.args.keep_projection_head or (checkpoint and is_peft_model(model))
        )
        head = {}
        if drop_head and checkpoint:
            marker = f"{PROJECTOR_ATTRIBUTE}."
            full = state_dict if state_dict is not None else model.state_dict()
            head = {k.split(marker, 1)[1]: v for k, v in full.items() if PROJECTOR_ATTRIBUTE in k.split(".")}
        if drop_head and state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if PROJECTOR_ATTRIBUTE not in k.split(".")}
        with detached_projector(model) if drop_head else nullcontext(), saving_embedding_layers(model):
            yield state_dict
        if head and self.args.should_save:
            save_file(head, os.path.join(output_dir, PROJECTOR_WEIGHTS_NAME))

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Also check the card can name the method, and create the `hub_revision` branch: the Trainer's uploads
        need it but never create it (every push would fail with RevisionNotFound)."""
        if getattr(self.accelerator.unwrap_model(self.model).config, "seqvcr_method", None) not in METHODS:
            raise ValueError(f"Pushing needs `model.config.seqvcr_method`, the method trained (one of {list(METHODS)}"
                             "), for the model card; set it before creating the trainer (the recipes do).")  # fmt: skip
        super().init_hf_repo(token, private)
        if self.is_world_process_zero() and self.args.hub_revision:
            token = token if token is not None else self.args.hub_token
            HfApi().create_branch(self.hub_model_id, branch=self.args.hub_revision, token=token, exist_ok=True)

    def create_model_card(self, license: str | None = None, tags: str | list[str] | None = None,
                          model_name: str | None = None, finetuned_from: str | None = None,
                          dataset: str | None = None, dataset_args: str | None = None,
                          dataset_revision: str | None = None, **_) -> None:  # fmt: skip
        """Write the card `push_to_hub` uploads: method, every Seq-VCR setting, the pause tokens the collator appends,
        data, final metrics, framework versions and the method's citations.

        The method is `model.config.seqvcr_method`; the metrics are the last logged `eval_*`/`test_*` scores (log
        test scores with `trainer.log` before pushing). `dataset` (a Hub dataset id, None for local data),
        `dataset_args` (its config) and `dataset_revision` come through `push_to_hub(**kwargs)`; the Trainer's other
        card arguments (language, tasks, ...) are ignored.
        """
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        name_or_path = model.name_or_path
        collator = self.data_collator  # the card must name the pauses training appended, not what the config implies
        pause_tokens = (collator.tokenizer.convert_ids_to_tokens(list(collator.pause_ids))
                        if isinstance(collator, PauseDataCollator)
                        else pause_token_strings(self.args.num_pause_tokens, self.args.distinct_pause_embeddings))
        card = render_model_card(
            method=model.config.seqvcr_method,
            seqvcr_hparams={f.name: getattr(self.args, f.name) for f in dataclasses.fields(self.args)
                            if f.name.startswith("seqvcr_")},
            pause_tokens=pause_tokens,
            dataset_id=dataset, dataset_revision=dataset_revision, dataset_config=dataset_args,
            eval_metrics=final_metrics(self.state.log_history),
            base_model=finetuned_from or (name_or_path if name_or_path and not os.path.isdir(name_or_path) else None),
            model_id=self.hub_model_id or model_name or self.args.output_dir, license=license,
            versions=framework_versions(peft=is_peft_model(model)),
            loop_layout=LoopLayout(**getattr(model.config, LAYOUT_KEY)) if hasattr(model.config, LAYOUT_KEY) else None,
            loopreg={f.name: getattr(self.args, f.name) for f in dataclasses.fields(self.args)
                     if f.name.startswith("loopreg_")} if self.args.loopreg_lambda > 0 else None,
        )  # fmt: skip
        tags = [tags] if isinstance(tags, str) else tags or []
        card.data.tags += [tag for tag in tags if tag not in card.data.tags]
        card.save(os.path.join(self.args.output_dir, "README.md"))
        if hasattr(model, "create_or_update_model_card"):  # a peft adapter: peft adds its library metadata and
            model.get_base_model().add_model_tags(card.data.tags)  # replaces the tags by the base model's own
            model.create_or_update_model_card(self.args.output_dir)


class SeqVCRTrainer(SeqVCRMixin, Trainer):
    """`Trainer` + Seq-VCR + pause tokens. Takes a `SeqVCRConfig` and the tokenizer as `processing_class`."""
