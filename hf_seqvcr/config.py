"""`SeqVCRConfig`: the Trainer's arguments plus Seq-VCR, pause-token and exact-match evaluation settings.

The settings themselves live in `SeqVCRArguments`, a dataclass mixin that any `TrainingArguments` subclass can take
on: `SeqVCRConfig` is it over `TrainingArguments`, `SeqVCRSFTConfig` over TRL's `SFTConfig`, and a config class of
your own works the same way (`@dataclass class MyConfig(SeqVCRArguments, MyTrainingArguments)`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import get_args

from transformers import TrainingArguments

from .losses import MULTIPLICATION_LAMBDAS, OTHER_TASKS_LAMBDAS, CovarianceMode
from .pause import Positions
from .projection import ProjectionType


@dataclass
class SeqVCRArguments:
    """The Seq-VCR, pause-token, loop-regularizer and exact-match fields, to mix into a `TrainingArguments` subclass
    (list it first: `class MyConfig(SeqVCRArguments, TrainingArguments)`). Only adds fields: every default of the
    arguments class it joins stays as it was. Defaults follow the paper's multiplication setting (docs/method.md §2).
    """

    use_seqvcr: bool = field(
        default=True,
        metadata={"help": "Add the Seq-VCR regularizer to the LM loss. Off gives plain Trainer behaviour."},
    )
    seqvcr_lambda_var: float = field(
        default=MULTIPLICATION_LAMBDAS.var,
        metadata={
            "help": "λ1, weight of the variance hinge (std of each projected dim pushed up to 1). Paper: "
            f"{MULTIPLICATION_LAMBDAS.var} for multiplication, {OTHER_TASKS_LAMBDAS.var} for the other tasks."
        },
    )
    seqvcr_lambda_cov: float = field(
        default=MULTIPLICATION_LAMBDAS.cov,
        metadata={
            "help": "λ2, weight of the squared off-diagonal covariances. Paper: "
            f"{MULTIPLICATION_LAMBDAS.cov} for multiplication, {OTHER_TASKS_LAMBDAS.cov} for the other tasks."
        },
    )
    seqvcr_eps: float = field(
        default=1e-4, metadata={"help": "η added to the variance inside the square root (VICReg's value)."}
    )
    seqvcr_proj_dim: int = field(
        default=2048, metadata={"help": "Output dimension d of the projection f_proj (paper: 2048)."}
    )
    seqvcr_proj_type: str = field(
        default="linear",
        metadata={
            "help": "Projection head: 'linear' (one layer, the paper's 'projection layer') or 'mlp' "
            "(Linear-GELU-Linear, VICReg-style).",
            "choices": list(get_args(ProjectionType)),
        },
    )
    seqvcr_layers: list[int] = field(
        default_factory=lambda: [-1],
        metadata={
            "help": "Hidden states to regularize: indices into `hidden_states` (0 = embeddings, -1 = last "
            "layer, the paper's choice). Several layers are averaged, each with its own head."
        },
    )
    seqvcr_covariance: str = field(
        default="batch",
        metadata={
            "help": "'batch': one covariance across the batch per position (paper default); "
            "'batch_positions': one covariance over all batch × position vectors.",
            "choices": list(get_args(CovarianceMode)),
        },
    )
    seqvcr_positions: str = field(
        default="all",
        metadata={
            "help": "Which token positions the regularizer sees: 'all' real tokens, or only 'answer' "
            "positions (labels != -100). In 'batch' mode a position counts only if every row has one there.",
            "choices": list(get_args(Positions)),
        },
    )
    seqvcr_gather: bool | None = field(
        default=None,
        metadata={
            "help": "Gather projected states across processes (differentiably) so the covariance is over "
            "the global batch. Default: on when there is more than one process."
        },
    )
    keep_projection_head: bool = field(
        default=False,
        metadata={
            "help": "Keep the projection head in the final saved/pushed weights. Checkpoints always keep "
            "it so that resuming restores it exactly."
        },
    )
    loopreg_lambda: float = field(
        default=0.0,
        metadata={
            "help": "λ_reg of the looping-inspired regularizer (Saunshi et al., 2025): adds λ·mean_G(1 − R_G), "
            "R_G the mean cosine between weight G of layer ik+j and of layer (i+1)k+j, pulling adjacent "
            "blocks of `loopreg_block` layers toward a looped model. 0 = off; the paper: 10 (block 4, 24 layers)."
        },
    )
    loopreg_block: int = field(
        default=4,
        metadata={
            "help": "k, the block size the loop regularizer compares (the layer count must be a "
            "multiple of it, with at least two blocks)."
        },
    )
    loopreg_groups: list[str] | None = field(
        default=None,
        metadata={
            "help": "Weight names within a layer to regularize (e.g. self_attn.q_proj.weight mlp.up_proj.weight)."
            " Default: every per-layer weight matrix."
        },
    )
    loopreg_norms: bool = field(
        default=False, metadata={"help": "Also pull the layers' norm weights together (the paper leaves them out)."}
    )
    num_pause_tokens: int = field(
        default=0, metadata={"help": "Pause tokens inserted between question and answer (paper: 2)."}
    )
    distinct_pause_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Give every pause position its own token and embedding (<pause_0>, <pause_1>, …) instead "
            "of one shared <pause> (the paper's setting)."
        },
    )
    eval_exact_match: bool = field(
        default=True,
        metadata={
            "help": "At each evaluation, also generate answers greedily (batched, KV cache) and log "
            "exact match and per-digit accuracy."
        },
    )
    eval_max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Generation budget for exact-match evaluation. Default: twice the longest reference's "
            "characters + 2 (`evaluation.answer_budget`), within the model's positions."
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.seqvcr_layers, int):
            self.seqvcr_layers = [self.seqvcr_layers]
        for name in ("seqvcr_lambda_var", "seqvcr_lambda_cov"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value}; pass e.g. the paper's value.")
        if not (math.isfinite(self.seqvcr_eps) and self.seqvcr_eps > 0):
            raise ValueError(
                f"`seqvcr_eps` must be a finite number > 0, got {self.seqvcr_eps}: the variance hinge takes "
                "sqrt(var + eps), whose gradient is infinite at a dimension with zero variance (e.g. a constant first "
                "token), which turns every weight into NaN. Pass VICReg's 1e-4."
            )
        if not (math.isfinite(self.loopreg_lambda) and self.loopreg_lambda >= 0):
            raise ValueError(
                f"`loopreg_lambda` must be a finite number >= 0, got {self.loopreg_lambda}; 0 turns it off."
            )
        if self.loopreg_lambda > 0 and (self.fsdp or self.deepspeed):
            raise ValueError(
                "`loopreg_lambda` reads whole layer weights outside the forward pass, which FSDP and "
                "DeepSpeed shard; train with plain data parallelism, or set `loopreg_lambda=0`."
            )
        if self.loopreg_block < 1:
            raise ValueError(f"`loopreg_block` must be >= 1, got {self.loopreg_block} (the paper: 4).")
        if self.seqvcr_proj_dim <= 0:
            raise ValueError(f"`seqvcr_proj_dim` must be > 0, got {self.seqvcr_proj_dim} (the paper uses 2048).")
        self._check_choices()
        if not self.seqvcr_layers:
            raise ValueError("`seqvcr_layers` is empty; pass at least one index, e.g. -1 for the last layer.")
        if self.num_pause_tokens < 0:
            raise ValueError(f"`num_pause_tokens` must be >= 0, got {self.num_pause_tokens}.")
        if self.eval_max_new_tokens is not None and self.eval_max_new_tokens <= 0:
            raise ValueError(f"`eval_max_new_tokens` must be > 0, got {self.eval_max_new_tokens}.")
        super().__post_init__()
        vcr_batch = self.per_device_train_batch_size * (self.world_size if self.gathers_across_processes else 1)
        if self.use_seqvcr and self.seqvcr_covariance == "batch" and vcr_batch < 2:
            raise ValueError(
                f"Seq-VCR estimates a covariance across the batch, so `per_device_train_batch_size` must be >= 2 "
                f"(got {self.per_device_train_batch_size}, {self.world_size} process(es)); raise it, gather across "
                "processes (`seqvcr_gather`), set `seqvcr_covariance='batch_positions'`, or turn the regularizer "
                "off with `use_seqvcr=False`."
            )

    def _check_choices(self) -> None:
        """Each of our fields with `choices` in its metadata holds one of them (the CLI checks flags, this checks
        code)."""
        for spec in dataclasses.fields(SeqVCRArguments):
            choices = spec.metadata.get("choices")
            if choices and getattr(self, spec.name) not in choices:
                raise ValueError(f"`{spec.name}` must be one of {choices}, got {getattr(self, spec.name)!r}.")

    @property
    def gathers_across_processes(self) -> bool:
        """`seqvcr_gather`, defaulting to on when training runs in more than one process."""
        return self.seqvcr_gather if self.seqvcr_gather is not None else self.world_size > 1


@dataclass
class SeqVCRConfig(SeqVCRArguments, TrainingArguments):
    """Training arguments for `SeqVCRTrainer`: the Trainer's own, plus `SeqVCRArguments`."""

    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the pause collator reads the raw `question`/`answer` columns."},
    )
