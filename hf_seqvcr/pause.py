"""Pause tokens (Goyal et al., 2024; Seq-VCR §3): dummy tokens between question and answer, no loss on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from .schema import cot_target, required_columns

PAUSE_TOKEN = "<pause>"
IGNORE_INDEX = -100
Positions = Literal["answer", "all"]


def pause_token_strings(num: int, distinct: bool = False) -> list[str]:
    """`num` copies of one shared `<pause>` (the paper's setting), or `<pause_0>`…`<pause_{num-1}>`."""
    if num < 0:
        raise ValueError(f"`num_pause_tokens` must be >= 0, got {num}.")
    return [f"<pause_{i}>" for i in range(num)] if distinct else [PAUSE_TOKEN] * num


def add_pause_tokens(
    tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None, num: int = 1, *, distinct: bool = False
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel | None]:
    """Register the pause tokens as special tokens, grow the embeddings, and record the count in the config.

    Special tokens are never split and are saved with the tokenizer; the count stored in `model.config` lets a
    reloaded checkpoint (and `restore_pause_settings`) append the same pauses at inference.
    """
    tokens = list(dict.fromkeys(pause_token_strings(num, distinct)))
    if tokens:
        tokenizer.add_special_tokens({"extra_special_tokens": tokens}, replace_extra_special_tokens=False)
    if model is not None:
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        model.config.num_pause_tokens = num
        model.config.distinct_pause_embeddings = distinct
    return tokenizer, model


def pause_token_ids(tokenizer: PreTrainedTokenizerBase, num: int) -> list[int]:
    """The ids to insert for `num` pauses, shared or distinct, read from the tokenizer's own vocabulary."""
    if num == 0:
        return []
    vocab = tokenizer.get_vocab()
    for candidates in (pause_token_strings(num), pause_token_strings(num, distinct=True)):
        if all(token in vocab for token in candidates):
            return [vocab[token] for token in candidates]
    raise ValueError(
        f"The tokenizer has no pause tokens for num_pause_tokens={num}; call "
        f"`add_pause_tokens(tokenizer, model, num={num})` before training or evaluating."
    )


def position_mask(batch: Mapping[str, torch.Tensor], positions: Positions) -> torch.Tensor:
    """Boolean (B, T) mask of the tokens a statistic looks at: the answer tokens (those with a label) or all real ones.

    The regularizer (`seqvcr_positions`) and the entropy diagnostics select positions by the same rule.
    """
    if positions == "answer":
        if "labels" not in batch:
            raise ValueError('positions="answer" needs "labels" in every batch; use positions="all" otherwise.')
        return batch["labels"] != IGNORE_INDEX
    mask = batch.get("attention_mask")
    return torch.ones_like(batch["input_ids"], dtype=torch.bool) if mask is None else mask.bool()


def restore_pause_settings(model_or_config: PreTrainedModel | PretrainedConfig) -> int:
    """The number of pauses a checkpoint was trained with (0 for a model that never saw any), from the model or
    its config (a config alone is enough before the weights are loaded)."""
    config = getattr(model_or_config, "config", model_or_config)
    return int(getattr(config, "num_pause_tokens", 0) or 0)


@dataclass
class PauseDataCollator:
    """Builds `question <eos> [pauses] target <eos>`, right-padded, with loss only on `target <eos>`.

    The target is the answer, or `cot #### answer` with `use_cot=True`. `<eos>` separates question from answer as
    in Deng et al.'s GPT-2 setup, so variable-length questions stay unambiguous without pauses too.
    """

    tokenizer: PreTrainedTokenizerBase
    num_pause_tokens: int = 0
    use_cot: bool = False
    _pause_ids: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer.pad_token_id is None:
            raise ValueError(
                "The tokenizer has no pad token; set one before training, e.g. "
                "`tokenizer.pad_token = tokenizer.eos_token` (padding is masked out of the loss by position)."
            )
        if self.tokenizer.eos_token_id is None:
            raise ValueError("The tokenizer has no eos token; set `tokenizer.eos_token` (it ends every answer).")
        self._pause_ids = pause_token_ids(self.tokenizer, self.num_pause_tokens)

    @property
    def pause_ids(self) -> tuple[int, ...]:
        """The ids appended after each question's eos, in order (what a model card must tell users to append)."""
        return tuple(self._pause_ids)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return required_columns(self.use_cot)

    def check_columns(self, columns: Sequence[str], argument: str = "dataset") -> None:
        """Fail before training, not at the first batch, when rows lack the fields the collator reads."""
        missing = [name for name in self.required_columns if name not in columns]
        if missing:
            raise ValueError(
                f"`{argument}` rows need string fields {list(self.required_columns)}, missing {missing} "
                f"(found {list(columns)}); build the data with `data_builders` or rename its columns."
            )

    def prompt_ids(self, question: str) -> list[int]:
        """What the model sees before it answers: training inputs and generation prompts share this."""
        question_ids = self.tokenizer(question, add_special_tokens=False)["input_ids"]
        return question_ids + [self.tokenizer.eos_token_id] + self._pause_ids

    def target_text(self, row: Mapping[str, str]) -> str:
        return cot_target(row) if self.use_cot else row["answer"]

    def target_ids(self, row: Mapping[str, str]) -> list[int]:
        return self.tokenizer(self.target_text(row), add_special_tokens=False)["input_ids"] + [
            self.tokenizer.eos_token_id
        ]

    def __call__(self, features: Sequence[Mapping[str, str]]) -> dict[str, torch.Tensor]:
        self.check_columns(list(features[0].keys()), argument="features")
        prompts = [self.prompt_ids(row["question"]) for row in features]
        targets = [self.target_ids(row) for row in features]
        length = max(len(p) + len(t) for p, t in zip(prompts, targets))
        input_ids = torch.full((len(features), length), self.tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(features), length), dtype=torch.long)
        for i, (prompt, target) in enumerate(zip(prompts, targets)):
            end = len(prompt) + len(target)
            input_ids[i, :end] = torch.tensor(prompt + target)
            labels[i, len(prompt) : end] = torch.tensor(target)
            attention_mask[i, :end] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
