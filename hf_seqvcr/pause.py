"""Pause tokens (Goyal et al., 2024; Seq-VCR §3): dummy tokens between question and answer, no loss on them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from .chat_template import has_foreign_chat_template, set_pause_chat_template
from .prompt import build_prompt_ids, build_target_ids, prompt_prefix_ids
from .schema import cot_target, required_columns

logger = logging.getLogger(__name__)

PAUSE_TOKEN = "<pause>"
UNBOUNDED_LENGTH = int(1e20)  # a tokenizer without a stated `model_max_length` reports about 1e30
IGNORE_INDEX = -100
Positions = Literal["answer", "all"]


def pause_token_strings(num: int, distinct: bool = False) -> list[str]:
    """`num` copies of one shared `<pause>` (the paper's setting), or `<pause_0>`…`<pause_{num-1}>`."""
    if num < 0:
        raise ValueError(f"`num_pause_tokens` must be >= 0, got {num}.")
    return [f"<pause_{i}>" for i in range(num)] if distinct else [PAUSE_TOKEN] * num


def add_pause_tokens(
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel | None,
    num: int = 1,
    *,
    distinct: bool = False,
    conversational: bool | None = None,
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel | None]:
    """Register the pause tokens as special tokens, give them embedding rows, record the count in the config, and
    set the tokenizer's chat template to the prompt the pauses belong to (`chat_template.set_pause_chat_template`).

    Special tokens are never split and are saved with the tokenizer; the count stored in `model.config` lets a
    reloaded checkpoint (and `restore_pause_settings`) append the same pauses at inference, and the chat template
    lets plain transformers (`apply_chat_template`, `pipeline`) build that prompt. `conversational` picks the
    template (default: extend the tokenizer's own chat template if it has one, else question/answer). Each new
    token's rows start at the mean of the existing rows, whether the matrix grows or had spare rows (a padded vocab).
    A tokenizer the template cannot reproduce the prompt with is left as it is, with a warning.
    """
    tokens = pause_token_strings(num, distinct)
    known = len(tokenizer)
    new = [token for token in dict.fromkeys(tokens) if token not in tokenizer.get_vocab()]
    if new:
        tokenizer.add_special_tokens({"extra_special_tokens": new}, replace_extra_special_tokens=False)
    if model is not None:
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        _mean_initialise(model, tokenizer.convert_tokens_to_ids(new), known)
        model.config.num_pause_tokens = num
        model.config.distinct_pause_embeddings = distinct
    if conversational is None:
        conversational = has_foreign_chat_template(tokenizer)
    try:
        set_pause_chat_template(tokenizer, tokens, conversational=conversational)
    except ValueError as error:  # training needs no template: say what the saved tokenizer will lack
        logger.warning("No chat template for this tokenizer (%s); the saved tokenizer keeps its own.", error)
    return tokenizer, model


@torch.no_grad()
def _mean_initialise(model: PreTrainedModel, ids: Sequence[int], known: int) -> None:
    """Rows `ids` of the input and (untied) output embeddings := the mean of the first `known` rows, the tokens the
    model was trained on: a neutral start (transformers' `mean_resizing` idea) that does not depend on whether the
    rows were grown or were spare, randomly initialised ones."""
    if not ids:
        return
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(output.weight)
    for weight in matrices:
        weight[list(ids)] = weight[:known].float().mean(dim=0).to(weight.dtype)


def pause_token_ids(tokenizer: PreTrainedTokenizerBase, num: int, distinct: bool | None = None) -> list[int]:
    """The ids to insert for `num` pauses, shared or distinct, read from the tokenizer's own vocabulary.

    `distinct=None` takes whichever set the tokenizer has, and refuses to guess when it has both.
    """
    if num == 0:
        return []
    vocab = tokenizer.get_vocab()
    present = {kind: all(token in vocab for token in pause_token_strings(num, kind)) for kind in (False, True)}
    if distinct is None:
        if all(present.values()):
            raise ValueError(
                f"The tokenizer has both the shared {PAUSE_TOKEN} and distinct <pause_i> tokens; pass "
                "`distinct_pause_embeddings` (a checkpoint's config.json says which it was trained with)."
            )
        distinct = present[True]
    if not present[distinct]:
        raise ValueError(
            f"The tokenizer has no {'distinct' if distinct else 'shared'} pause tokens for num_pause_tokens={num}; "
            f"call `add_pause_tokens(tokenizer, model, num={num}, distinct={distinct})` before training or evaluating."
        )
    return [vocab[token] for token in pause_token_strings(num, distinct)]


def max_positions(
    model_or_config: PreTrainedModel | PretrainedConfig, tokenizer: PreTrainedTokenizerBase
) -> int | None:
    """The longest sequence a model takes: its position table (`max_position_embeddings` / `n_positions`) or the
    tokenizer's `model_max_length`, whichever is smaller; None when neither states one."""
    config = getattr(model_or_config, "config", model_or_config)
    limits = [getattr(config, name, None) for name in ("max_position_embeddings", "n_positions")]
    limits.append(tokenizer.model_max_length if tokenizer.model_max_length < UNBOUNDED_LENGTH else None)
    limits = [limit for limit in limits if isinstance(limit, int) and limit > 0]
    return min(limits) if limits else None


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
    """Builds `[bos] question <eos> [pauses] target <eos>`, right-padded, with loss only on `target <eos>`.

    The target is the answer, or `cot #### answer` with `use_cot=True`. `<eos>` separates question from answer as
    in Deng et al.'s GPT-2 setup, so variable-length questions stay unambiguous without pauses too. BOS opens the
    prompt exactly when the tokenizer adds one to a text of its own (LLaMA, Mistral; not GPT-2 or the digit
    tokenizer), as in every sequence the model was pretrained on.

    Question and target are each encoded as a text of their own, so the question/answer boundary is a token
    boundary in every vocabulary: with byte-level BPE (GPT-2, LLaMA-3) the answer's first token is what the text
    alone starts with; with SentencePiece-style Metaspace (LLaMA-2, Mistral) it carries the word-start marker `▁`,
    exactly as those tokenizers encode text after a special token. Its decoded form starts with a space at most,
    which scoring ignores. `distinct_pause_embeddings` says which pause tokens to use when the tokenizer has both
    (None: the only set it has).
    """

    tokenizer: PreTrainedTokenizerBase
    num_pause_tokens: int = 0
    use_cot: bool = False
    distinct_pause_embeddings: bool | None = None
    _pause_ids: list[int] = field(init=False, repr=False)
    _prefix_ids: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer.pad_token_id is None:
            raise ValueError(
                "The tokenizer has no pad token; set one before training, e.g. "
                "`tokenizer.pad_token = tokenizer.eos_token` (padding is masked out of the loss by position)."
            )
        if self.tokenizer.eos_token_id is None:
            raise ValueError("The tokenizer has no eos token; set `tokenizer.eos_token` (it ends every answer).")
        self._pause_ids = pause_token_ids(self.tokenizer, self.num_pause_tokens, self.distinct_pause_embeddings)
        self._prefix_ids = prompt_prefix_ids(self.tokenizer)

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

    def check_lengths(self, rows: Sequence[Mapping[str, str]], limit: int | None, argument: str = "dataset") -> None:
        """Refuse, before any training, rows whose prompt and target exceed the model's `limit` positions (see
        `max_positions`): past it a forward fails with an IndexError or attends to positions it never learned."""
        if limit is None or len(rows) == 0:
            return
        rows = list(rows)

        def encode(texts: list[str]) -> list[list[int]]:  # batched
            return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

        fixed = len(self._prefix_ids) + 1 + len(self._pause_ids) + 1  # prefix, eos, pauses, the answer's eos
        questions, targets = encode([row["question"] for row in rows]), encode([self.target_text(row) for row in rows])
        lengths = [fixed + len(question) + len(target) for question, target in zip(questions, targets, strict=True)]
        too_long = sum(length > limit for length in lengths)
        if too_long:
            raise ValueError(
                f"{too_long} of {len(lengths)} rows of `{argument}` are longer than the model's {limit} positions "
                f"(longest: {max(lengths)} tokens with the prompt and eos); filter them out (e.g. `dataset.filter`) "
                "or use a model with more positions."
            )

    def prompt_ids(self, question: str) -> list[int]:
        """What the model sees before it answers: training inputs and generation prompts share this."""
        return build_prompt_ids(self.tokenizer, question, self._pause_ids, self._prefix_ids)

    def target_text(self, row: Mapping[str, str]) -> str:
        return cot_target(row) if self.use_cot else row["answer"]

    def target_ids(self, row: Mapping[str, str]) -> list[int]:
        return build_target_ids(self.tokenizer, self.target_text(row))

    def __call__(self, features: Sequence[Mapping[str, str]]) -> dict[str, torch.Tensor]:
        self.check_columns(list(features[0].keys()), argument="features")
        prompts = [self.prompt_ids(row["question"]) for row in features]
        targets = [self.target_ids(row) for row in features]
        length = max(len(p) + len(t) for p, t in zip(prompts, targets, strict=True))
        input_ids = torch.full((len(features), length), self.tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(features), length), dtype=torch.long)
        for i, (prompt, target) in enumerate(zip(prompts, targets, strict=True)):
            end = len(prompt) + len(target)
            input_ids[i, :end] = torch.tensor(prompt + target)
            labels[i, len(prompt) : end] = torch.tensor(target)
            attention_mask[i, :end] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
