"""The prompt a model answers after: `[prefix] question <eos> [pauses]`, one layout for training, evaluation and the
chat template. The prefix follows the model's own convention: the BOS its tokenizer adds to a text, or nothing."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


def prompt_prefix_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The ids the tokenizer itself puts before a single text (its post-processor decides): LLaMA's and Mistral's
    BOS, none for GPT-2 or the digit tokenizer. Every prompt starts with them, as every pretraining sequence did."""
    probe = "0"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    start = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), None)
    if start is None:
        raise ValueError(
            f"{type(tokenizer).__name__} changes a text's own ids when it adds its special tokens "
            f"({plain} → {full}), so prompts cannot be built from parts."
        )
    return full[:start]


def build_prompt_ids(
    tokenizer: PreTrainedTokenizerBase, question: str, pause_ids: Sequence[int], prefix_ids: Sequence[int]
) -> list[int]:
    """`[prefix] question <eos> [pauses]` (`prefix_ids` from `prompt_prefix_ids`): what a model sees before it
    answers, in training, evaluation and the chat template alike. The question is encoded as a text of its own."""
    question_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    return [*prefix_ids, *question_ids, tokenizer.eos_token_id, *pause_ids]


def build_target_ids(tokenizer: PreTrainedTokenizerBase, target: str) -> list[int]:
    """`target <eos>`, the target encoded as a text of its own: what a model learns to write after the prompt."""
    return [*tokenizer(target, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
