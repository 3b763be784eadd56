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
from .config import SeqVCRArguments
from .distributed import global_seq_vcr_loss, settle_gloo_workers
from .evaluation import Scores, load_metric, normalize_answer, predict_answers
from .looped import LAYOUT_KEY, LoopLayout
from .loopreg import LoopRegularizerOutput, loop_regularizer
from .lora import with_seqvcr_modules
from .losses import SeqVCRLossOutput, seq_vcr_loss
from .methods import method_of
from .model_card import final_metrics, framework_versions, render_model_card
from .pause import PauseDataCollator, add_pause_tokens, pause_token_ids, pause_token_strings, position_mask
from .projection import (
    PROJECTOR_ATTRIBUTE,
    PROJECTOR_WEIGHTS_NAME,
    CapturedForward,
    ProjectionCapture,
    attach_projector,
    detached_projector,
    get_capture,
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
            logger.warning(
                "%d checkpoint push(es) to %s failed; the Hub lacks these steps:\n%s",
                len(self.trainer.failed_pushes),
                self.trainer.hub_model_id,
                "\n".join(map(str, self.trainer.failed_pushes)),
            )


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
        raise ValueError(
            f"`--resume_from_checkpoint {resume_from_checkpoint}` is not a folder; pass a checkpoint "
            "folder's path, or `true` for the last checkpoint in `--output_dir`."
        )
    return str(resume_from_checkpoint)


def pause_set(tokenizer, args: SeqVCRArguments) -> bool | None:
    """Which pauses a run uses: the configured set (`distinct_pause_embeddings`) when the tokenizer has it, else
    whichever set it has (None: `pause_token_ids` finds it)."""
    tokens = pause_token_strings(args.num_pause_tokens, args.distinct_pause_embeddings)
    return args.distinct_pause_embeddings if all(t in tokenizer.get_vocab() for t in tokens) else None


def run_pause_ids(tokenizer, args: SeqVCRArguments) -> list[int]:
    """The pause ids a run inserts after each prompt ([] without pauses)."""
    return (
        pause_token_ids(tokenizer, args.num_pause_tokens, pause_set(tokenizer, args)) if args.num_pause_tokens else []
    )


def _ensure_pause_tokens(model, tokenizer, args: SeqVCRArguments) -> None:
    """Add the pause tokens `num_pause_tokens` asks for when the tokenizer has none (shared or distinct) and grow the
    model's embeddings, so the count is the one switch; a model peft already wraps cannot grow: it must bring them."""
    vocab = tokenizer.get_vocab()
    if any(all(t in vocab for t in pause_token_strings(args.num_pause_tokens, d)) for d in (False, True)):
        return
    if is_peft_model(model) or not hasattr(model, "resize_token_embeddings"):
        raise ValueError(
            f"The tokenizer has no pause tokens for num_pause_tokens={args.num_pause_tokens} and the model "
            "cannot grow its embeddings here (it is already wrapped): call `hf_seqvcr.add_pause_tokens("
            "tokenizer, model, num=...)` before wrapping it, or pass the unwrapped model with "
            "`peft_config`."
        )
    add_pause_tokens(tokenizer, model, args.num_pause_tokens, distinct=args.distinct_pause_embeddings)


def _attach_projector(model: nn.Module, args: SeqVCRArguments) -> None:
    if get_projector(model) is None and is_peft_model(model):
        raise ValueError(
            "The model is already wrapped by peft but has no Seq-VCR projection head, so the head would not be saved. "
            "Pass the base model with `peft_config=` (TRL), or call `hf_seqvcr.attach_projector(model, ...)` before "
            f"`get_peft_model` and add '{PROJECTOR_ATTRIBUTE}' to `LoraConfig(modules_to_save=...)`."
        )
    attach_projector(model, args.seqvcr_layers, args.seqvcr_proj_dim, args.seqvcr_proj_type)


def _check_trains(model: nn.Module, what: str, module: nn.Module | None, name: str) -> None:
    """Checked once the parent trainer has wrapped the model (TRL applies `peft_config` inside its constructor)."""
    if module is not None and not any(p.requires_grad for p in module.parameters()):
        raise ValueError(
            f"{what} is frozen, so it would never train; with peft, add '{name}' to "
            "`LoraConfig(modules_to_save=...)` (a `peft_config` given to the trainer gets it added)."
        )


def _check_pause_rows_train(model: nn.Module, pause_ids: Sequence[int]) -> None:
    """Under peft the pause rows train only as `trainable_token_indices` (or with the whole embedding matrix)."""
    embeddings = model.get_input_embeddings()
    if any(p.requires_grad for p in embeddings.parameters()):
        trained = getattr(embeddings, "token_adapter", None)
        indices = set(pause_ids) if trained is None else {i for layer in trained.token_indices.values() for i in layer}
        if set(pause_ids) <= indices:
            return
    raise ValueError(
        f"The pause tokens' embedding rows {sorted(set(pause_ids))} are frozen under peft; add them to "
        "`LoraConfig(trainable_token_indices=...)` (a `peft_config` given to the trainer gets them "
        "added), or wrap with `hf_seqvcr.get_lora_model`."
    )


class SeqVCRMixin(SaveHook):
    """Adds Seq-VCR and pause tokens to any Trainer subclass: `class MyTrainer(SeqVCRMixin, SomeTrainer)`.

    `args` is any `TrainingArguments` subclass that carries `SeqVCRArguments`. The regularizer does not depend on
    what the parent's `compute_loss` does with the model's outputs: the projection hooks capture the regularized
    layers during whatever forward it runs (a fused LM head, its own forward, gradient checkpointing) and the
    regularizer is added to the loss it returns; a step in which no forward with gradients was seen stops with an
    error. With `num_pause_tokens`, missing pause tokens are added to the tokenizer and the model. A collator is only
    supplied when none is given and the trainer has none of its own (`PauseDataCollator` for `question`/`answer`
    rows); a user's collator is kept.

    Overrides only what the method needs: `compute_loss`, `log` (its parts, read from the device at logging steps
    only), `evaluate` (exact match by generation), `train` (resume restores the projection head), saving (the head
    stays out of the saved weights; compat.py) and the Hub push (`create_model_card`: our card; `init_hf_repo`: the
    `hub_revision` branch). Checkpoint pushes that failed in the background are listed in `failed_pushes`.
    """

    args: SeqVCRArguments

    def __init__(
        self,
        model=None,
        args: SeqVCRArguments | None = None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        **kwargs,
    ):
        if not isinstance(args, SeqVCRArguments):
            raise TypeError(
                f"`args` must carry the Seq-VCR settings, got {type(args).__name__}; use `SeqVCRConfig` (Trainer), "
                "`SeqVCRSFTConfig` (TRL's SFTTrainer), or a class of your own that lists `SeqVCRArguments` first: "
                "`@dataclass class MyConfig(SeqVCRArguments, MyTrainingArguments)`."
            )
        tokenizer = getattr(processing_class, "tokenizer", processing_class)  # a processor holds its tokenizer
        if args.num_pause_tokens and tokenizer is None:
            raise ValueError(
                "`num_pause_tokens` needs the tokenizer, to add and insert the pause tokens: pass it as "
                "`processing_class`."
            )
        if args.num_pause_tokens:
            _ensure_pause_tokens(model, tokenizer, args)
        if data_collator is None:
            data_collator = self._default_collator(tokenizer, args)
        eval_dataset_as_given = eval_dataset
        train_dataset, eval_dataset = self._prepare_seqvcr_data(
            train_dataset, eval_dataset, tokenizer, data_collator, args
        )
        if args.use_seqvcr:
            set_seed(args.seed)  # the head's initial weights: the Trainer seeds only after they are drawn
            _attach_projector(model, args)
        if kwargs.get("peft_config") is not None:  # TRL's trainers wrap the model themselves
            kwargs["peft_config"] = with_seqvcr_modules(
                kwargs["peft_config"], run_pause_ids(tokenizer, args), args.use_seqvcr
            )
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        self._seqvcr_sums: dict[str, torch.Tensor | int] = {}
        self._exact_match_warned = False
        self._seqvcr_tokenizer = tokenizer
        self._seqvcr_eval_rows = eval_dataset_as_given
        unwrapped = self.accelerator.unwrap_model(self.model)
        if args.use_seqvcr:
            _check_trains(unwrapped, "the Seq-VCR projection head", get_projector(unwrapped), PROJECTOR_ATTRIBUTE)
        if args.num_pause_tokens and is_peft_model(unwrapped):
            _check_pause_rows_train(unwrapped, run_pause_ids(tokenizer, args))
        if args.loopreg_lambda > 0:
            if is_peft_model(self.model):
                raise ValueError(
                    "`loopreg_lambda` compares whole layer weights, which LoRA freezes (and splits into "
                    "adapter factors); drop `--use_peft` or set `loopreg_lambda=0`."
                )
            with torch.no_grad():  # a layer count, block size or group the model cannot take fails here, not mid-run
                self._loop_regularizer(self.model)
        self.failed_pushes: list[FailedPush] = []
        self.add_callback(_RunRecords(self))

    def _default_collator(self, tokenizer, args: SeqVCRArguments):
        """The collator when none is given: `PauseDataCollator`, which builds `question <eos> [pauses] answer <eos>`.
        A parent trainer that builds its own (TRL's) overrides this to return None."""
        if tokenizer is None:
            raise ValueError(
                "Pass the tokenizer as `processing_class` (the pause collator and exact-match "
                "evaluation need it), or pass your own `data_collator`."
            )
        return PauseDataCollator(
            tokenizer, num_pause_tokens=args.num_pause_tokens, distinct_pause_embeddings=pause_set(tokenizer, args)
        )

    def _prepare_seqvcr_data(self, train_dataset, eval_dataset, tokenizer, data_collator, args):
        """Check (or, in subclasses, convert) the datasets before the parent trainer sees them."""
        if isinstance(data_collator, PauseDataCollator):
            for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
                for split in dataset.values() if isinstance(dataset, dict) else [dataset]:
                    if getattr(split, "column_names", None) is not None:
                        data_collator.check_columns(split.column_names, argument=name)
        return train_dataset, eval_dataset

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        regularized = model.training and self.args.use_seqvcr
        if not (regularized or (model.training and self.args.loopreg_lambda > 0)):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # The Trainer divides the returned loss by the accumulation steps unless it is already normalised over the
        # whole accumulated batch; a regularizer is a per-micro-batch value, so it needs that division either way.
        scaled_for_ga = loss_is_scaled_for_ga(self, num_items_in_batch)
        steps = self.current_gradient_accumulation_steps
        per_step = (lambda value: value / steps) if scaled_for_ga else (lambda value: value)
        capture = get_capture(self.accelerator.unwrap_model(model)) if regularized else None
        if regularized and capture is None:
            raise RuntimeError(
                "The model has no Seq-VCR projection hooks: it was replaced after the trainer attached "
                "them. Pass the final model to the trainer."
            )
        with capture.recording() if regularized else nullcontext():
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # A parent may hand back the loss alone even when asked for the outputs: take what it gives.
        ce, outputs = result if isinstance(result, tuple) else (result, None)
        self._add_log("ce", ce.detach() / (1 if scaled_for_ga else steps))
        loss = ce
        if regularized:
            loss = loss + per_step(self._seqvcr_term(capture, inputs, steps))
        if self.args.loopreg_lambda > 0:
            loop = self._loop_regularizer(self.accelerator.unwrap_model(model))
            self._add_log("loopreg", loop.loss.detach() / steps)
            for group, cosine in loop.cosine.items():
                self._add_log(f"{LOOP_COSINE_PREFIX}{group}", cosine.detach())
            self._add_log("loop_batches", 1)
            loss = loss + per_step(loop.loss)
        return (loss, outputs) if return_outputs else loss

    def _seqvcr_term(self, capture: ProjectionCapture, inputs: dict, steps: int) -> torch.Tensor:
        """The regularizer over the forwards the parent ran with gradients (their mean when it ran several)."""
        if not capture.forwards:
            raise RuntimeError(
                "Seq-VCR saw no forward with gradients in this training step"
                + (
                    f" ({capture.forwards_without_grad} ran under `torch.no_grad()`)"
                    if capture.forwards_without_grad
                    else ""
                )
                + ", so the regularizer cannot reach the model. `compute_loss` must run the model's forward (or its "
                "backbone's) with gradients enabled, in training mode, while `SeqVCRMixin.compute_loss` is on the call "
                "stack; a trainer that computes its loss elsewhere cannot take the regularizer this way."
            )
        terms = []
        for forward in capture.forwards:
            if not all(z.requires_grad for z in forward.projections):
                raise RuntimeError(
                    "The regularized hidden states carry no gradient (the layers feeding them are all "
                    "frozen), so Seq-VCR would only train its own head; unfreeze the backbone or train "
                    "an adapter on it (LoRA)."
                )
            if self._skips_regularizer(forward.projections[0]):
                self._add_log("skipped", 1)  # the head stays in the graph (DDP expects it)
                terms.append(sum(z.sum() for z in forward.projections) * 0.0)
                continue
            parts = self._regularizer(forward.projections, self._position_mask(forward, inputs))
            self._add_log("seqvcr", parts.loss.detach() / steps)
            self._add_log("seqvcr_var", parts.variance.detach())
            self._add_log("seqvcr_cov", parts.covariance.detach())
            self._add_log("regularized", 1)
            terms.append(parts.loss)
        return torch.stack(terms).mean() if len(terms) > 1 else terms[0]

    def _position_mask(self, forward: CapturedForward, inputs: dict) -> torch.Tensor:
        """The positions `seqvcr_positions` selects in one captured forward, from the mask that forward was given
        (answer positions: from the batch's `labels`, which the backbone never sees)."""
        shape = forward.projections[0].shape[:2]
        if self.args.seqvcr_positions == "answer":
            mask = position_mask(inputs, "answer")
        elif forward.attention_mask is not None and forward.attention_mask.dim() == 2:
            mask = forward.attention_mask.bool()
        else:
            mask = torch.ones(shape, dtype=torch.bool, device=forward.projections[0].device)
        if mask.shape != shape:
            raise ValueError(
                f"Seq-VCR's position mask has shape {tuple(mask.shape)} but the forward saw "
                f"{tuple(shape)} (batch, positions); use seqvcr_positions='all'."
            )
        return mask

    def _add_log(self, name: str, value: torch.Tensor | int) -> None:
        """Sum what a logged value gets from each micro-batch on the device; `log` reads the sums, so a step that
        does not log makes no host sync."""
        self._seqvcr_sums[name] = self._seqvcr_sums.get(name, 0) + value

    def _loop_regularizer(self, model: nn.Module) -> LoopRegularizerOutput:
        return loop_regularizer(
            model,
            block=self.args.loopreg_block,
            lambda_reg=self.args.loopreg_lambda,
            groups=self.args.loopreg_groups,
            include_norms=self.args.loopreg_norms,
        )

    def _skips_regularizer(self, z: torch.Tensor) -> bool:
        """A covariance across the batch needs 2 rows, and the last micro-batch of an epoch can hold one: skip it
        rather than crash at the end of an epoch. Gathered, every process adds a row: only one process falls short."""
        processes = self.accelerator.num_processes if self.args.gathers_across_processes else 1
        if self.args.seqvcr_covariance != "batch" or z.shape[0] * processes >= 2:
            return False
        warnings.warn(  # noqa: B028 -- stacklevel 1: the line that skips, inside the training step
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

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._seqvcr_sums:  # a training log: add the regularizers' parts
            steps = max(self.state.global_step - self._seqvcr_logged_step, 1)
            keys = sorted(self._seqvcr_sums)
            sums = torch.stack(
                [torch.as_tensor(self._seqvcr_sums[k], dtype=torch.float32, device=self.args.device) for k in keys]
            )
            mean = defaultdict(float, zip(keys, self.accelerator.reduce(sums, "mean").tolist(), strict=True))
            logs["ce"] = mean["ce"] / steps
            if self.args.use_seqvcr:
                logs["seqvcr"] = mean["seqvcr"] / steps
            if mean["regularized"]:
                logs.update(
                    seqvcr_var=mean["seqvcr_var"] / mean["regularized"],
                    seqvcr_cov=mean["seqvcr_cov"] / mean["regularized"],
                )
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

    def end(self) -> None:
        """`Trainer.end` (trackers finished, process group destroyed), after gloo's worker threads have let go of the
        last collective, so that a run on several CPU processes exits 0 instead of aborting (`settle_gloo_workers`)."""
        settle_gloo_workers()
        super().end()

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Also scores exact match by greedy generation (`eval_exact_match`) on the same rows, as given (before any
        conversion the parent trainer needs)."""
        if isinstance(eval_dataset, dict):  # each set on its own, as the Trainer does, so each is converted once
            return {
                k: v
                for name, dataset in eval_dataset.items()
                for k, v in self.evaluate(dataset, ignore_keys, f"{metric_key_prefix}_{name}").items()
            }
        rows = self._eval_rows(eval_dataset)
        if eval_dataset is not None and not isinstance(eval_dataset, str):
            eval_dataset = self._prepare_seqvcr_data(
                None, eval_dataset, self._seqvcr_tokenizer, self.data_collator, self.args
            )[1]
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        scores = self.exact_match(rows) if self.args.eval_exact_match and rows is not None else None
        if scores is not None:
            scalars = {f"{metric_key_prefix}_{k}": v for k, v in scores.items() if not isinstance(v, list)}
            self.log(scalars)
            # Lists (accuracy per answer position) go into the state's history only, so trainer_state.json has the
            # per-position curve; loggers (TensorBoard, W&B, the card) are handed scalars.
            self.state.log_history[-1].update(
                {f"{metric_key_prefix}_{k}": v for k, v in scores.items() if isinstance(v, list)}
            )
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()})
        return metrics

    def _eval_rows(self, eval_dataset):
        """The evaluation rows as the user gave them; None for the dict of sets given at construction (the Trainer then
        evaluates each set by its name)."""
        if eval_dataset is None:
            eval_dataset = self._seqvcr_eval_rows
        elif isinstance(eval_dataset, str):  # the Trainer names one set of a dict given at construction
            eval_dataset = self._seqvcr_eval_rows[eval_dataset]
        return None if eval_dataset is None or isinstance(eval_dataset, dict) else eval_dataset

    def exact_match(self, dataset) -> Scores | None:
        """Batched greedy generation, each process on its own shard of `dataset`, scored on all of it; None (with one
        warning) where the rows or the collator give no prompt to generate from."""
        shard = dataset.shard(self.accelerator.num_processes, self.accelerator.process_index, contiguous=True)
        pairs = self._predict_answers(shard)
        if pairs is None:
            if not self._exact_match_warned:
                logger.warning(
                    "Exact-match evaluation is off: it needs question/answer rows with the "
                    "PauseDataCollator (or, with TRL, prompt/completion or conversational rows); set "
                    "`eval_exact_match=False` to silence this."
                )
                self._exact_match_warned = True
            return None
        pairs = gather_object(pairs)
        return load_metric().compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])

    def _predict_answers(self, rows) -> list[tuple[str, str]] | None:
        """(prediction, reference) per row, both normalised; None when these rows cannot be scored."""
        collator = self.data_collator
        if not (isinstance(collator, PauseDataCollator) and set(collator.required_columns) <= set(rows.column_names)):
            return None
        predictions = predict_answers(
            self.accelerator.unwrap_model(self.model),
            collator,
            rows,
            batch_size=self.args.per_device_eval_batch_size,
            max_new_tokens=self.args.eval_max_new_tokens,
        )
        return list(zip(predictions, (normalize_answer(row["answer"]) for row in rows), strict=True))

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
        """Also create the `hub_revision` branch: the Trainer's uploads need it but never create it (every push would
        fail with RevisionNotFound)."""
        super().init_hf_repo(token, private)
        if self.is_world_process_zero() and self.args.hub_revision:
            token = token if token is not None else self.args.hub_token
            HfApi().create_branch(self.hub_model_id, branch=self.args.hub_revision, token=token, exist_ok=True)

    def create_model_card(
        self,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        dataset: str | None = None,
        dataset_args: str | None = None,
        dataset_revision: str | None = None,
        **_,
    ) -> None:
        """Write the card `push_to_hub` uploads: method, every Seq-VCR setting, the pause tokens the collator appends,
        data, final metrics, framework versions and the method's citations.

        The method is `model.config.seqvcr_method` (the recipes record it, including chain of thought), else what the
        settings amount to (`methods.method_of`); the metrics are the last logged `eval_*`/`test_*` scores (log
        test scores with `trainer.log` before pushing). `dataset` (a Hub dataset id, None for local data),
        `dataset_args` (its config) and `dataset_revision` come through `push_to_hub(**kwargs)`; the Trainer's other
        card arguments (language, tasks, ...) are ignored.
        """
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        name_or_path = model.name_or_path
        collator = self.data_collator  # the card must name the pauses training appended, not what the config implies
        pause_tokens = (
            collator.tokenizer.convert_ids_to_tokens(list(collator.pause_ids))
            if isinstance(collator, PauseDataCollator)
            else pause_token_strings(self.args.num_pause_tokens, self.args.distinct_pause_embeddings)
        )
        card = render_model_card(
            method=getattr(model.config, "seqvcr_method", None)
            or method_of(self.args.use_seqvcr, self.args.num_pause_tokens),
            seqvcr_hparams={
                f.name: getattr(self.args, f.name)
                for f in dataclasses.fields(self.args)
                if f.name.startswith("seqvcr_")
            },
            pause_tokens=pause_tokens,
            dataset_id=dataset,
            dataset_revision=dataset_revision,
            dataset_config=dataset_args,
            eval_metrics=final_metrics(self.state.log_history),
            base_model=finetuned_from or (name_or_path if name_or_path and not os.path.isdir(name_or_path) else None),
            model_id=self.hub_model_id or model_name or self.args.output_dir,
            license=license,
            versions=framework_versions(peft=is_peft_model(model)),
            loop_layout=LoopLayout(**getattr(model.config, LAYOUT_KEY)) if hasattr(model.config, LAYOUT_KEY) else None,
            loopreg={
                f.name: getattr(self.args, f.name)
                for f in dataclasses.fields(self.args)
                if f.name.startswith("loopreg_")
            }
            if self.args.loopreg_lambda > 0
            else None,
        )
        tags = [tags] if isinstance(tags, str) else tags or []
        card.data.tags += [tag for tag in tags if tag not in card.data.tags]
        card.save(os.path.join(self.args.output_dir, "README.md"))
        if hasattr(model, "create_or_update_model_card"):  # a peft adapter: peft adds its library metadata and
            model.get_base_model().add_model_tags(card.data.tags)  # replaces the tags by the base model's own
            model.create_or_update_model_card(self.args.output_dir)


class SeqVCRTrainer(SeqVCRMixin, Trainer):
    """`Trainer` + Seq-VCR + pause tokens. Takes a `SeqVCRConfig` and the tokenizer as `processing_class`."""
