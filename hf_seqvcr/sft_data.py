"""Pause tokens in TRL's dataset kinds: where the pauses go in each kind of row, and the prompt a row is scored from.

The rule is the same everywhere: the pauses stand between what the model reads and what it answers, and never carry
loss. For `question`/`answer` rows that is `PauseDataCollator`'s layout (`question <eos> <pause>… answer <eos>`),
tokenized here so that TRL takes the rows as they are. In prompt/completion rows the pauses end the prompt; in
conversational rows they open every assistant turn, i.e. they follow the chat's generation prompt (the chat template
a tokenizer saves with the pauses renders them there, so inference sees what training saw). Pauses are written as
their special-token strings, which every tokenizer keeps whole, and `PauseLabelMask` takes them out of the loss
whatever the collator built. Pure functions of rows and a tokenizer: TRL itself is not imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

from .pause import IGNORE_INDEX
from .prompt import build_prompt_ids, build_target_ids, prompt_prefix_ids

RowKind = Literal["question_answer", "prompt_completion", "conversational_prompt_completion", "messages", "text"]
ASSISTANT = "assistant"


def row_kind(row: Mapping[str, Any]) -> RowKind:
    """Which of the dataset kinds a row is (TRL's, plus this project's question/answer rows)."""
    if "prompt" in row and "completion" in row:
        return "conversational_prompt_completion" if _is_chat(row["prompt"]) else "prompt_completion"
    if "messages" in row and _is_chat(row["messages"]):
        return "messages"
    if "question" in row and "answer" in row:
        return "question_answer"
    if "text" in row:
        return "text"
    raise ValueError(
        f"Rows with columns {sorted(row)} are none of the dataset kinds this trainer reads: "
        "prompt/completion (text or chat messages), `messages`, `question`/`answer`, or `text`."
    )


def _is_chat(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value)


def with_pauses(row: Mapping[str, Any], pause_text: str) -> dict[str, Any]:
    """`row` with `pause_text` (the pause tokens' strings) where the pauses go; question/answer and text rows are
    left to the caller (the first are tokenized whole, the second have no answer to put pauses before)."""
    kind = row_kind(row)
    if kind == "prompt_completion":
        return {**row, "prompt": row["prompt"] + pause_text}
    if kind == "conversational_prompt_completion":
        return {**row, "completion": _open_assistant_turns(row["completion"], pause_text)}
    if kind == "messages":
        return {**row, "messages": _open_assistant_turns(row["messages"], pause_text)}
    return dict(row)


def _open_assistant_turns(messages: Sequence[Mapping[str, Any]], pause_text: str) -> list[dict[str, Any]]:
    turns = []
    for message in messages:
        if message["role"] == ASSISTANT:
            if not isinstance(message["content"], str):
                raise ValueError(
                    "Pause tokens go before an assistant turn's text, so its `content` must be a string; "
                    f"got {type(message['content']).__name__}."
                )
            message = {**message, "content": pause_text + message["content"]}
        turns.append(dict(message))
    return turns


def question_answer_tokens(
    row: Mapping[str, str], tokenizer: PreTrainedTokenizerBase, pause_ids: Sequence[int], prefix_ids: Sequence[int]
) -> dict[str, list[int]]:
    """A question/answer row as TRL takes a tokenized row: `input_ids` and `labels` (-100 on the prompt and pauses),
    the layout `PauseDataCollator` builds for `SeqVCRTrainer` (`prefix_ids`: `prompt.prompt_prefix_ids`)."""
    prompt = build_prompt_ids(tokenizer, row["question"], pause_ids, prefix_ids)
    target = build_target_ids(tokenizer, row["answer"])
    return {"input_ids": prompt + target, "labels": [IGNORE_INDEX] * len(prompt) + target}


def scoring_prompt(
    row: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase, pause_ids: Sequence[int]
) -> tuple[list[int], str] | None:
    """The prompt the model answers at inference (token ids, pauses included) and the reference answer, for a row
    as the user gave it; None for rows with no answer to score (`text`, a chat that does not end with one)."""
    kind = row_kind(row)
    if kind == "question_answer":
        return build_prompt_ids(tokenizer, row["question"], pause_ids, prompt_prefix_ids(tokenizer)), row["answer"]
    if kind == "prompt_completion":
        return tokenizer(text=row["prompt"])["input_ids"] + list(pause_ids), row["completion"]
    if kind == "conversational_prompt_completion":
        messages, answer = row["prompt"], next((m for m in row["completion"] if m["role"] == ASSISTANT), None)
    elif kind == "messages":
        last = max((i for i, m in enumerate(row["messages"]) if m["role"] == ASSISTANT), default=None)
        messages, answer = (None, None) if last is None else (row["messages"][:last], row["messages"][last])
    else:
        return None
    if answer is None or not isinstance(answer["content"], str):
        return None
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(prompt["input_ids"]) + list(pause_ids), answer["content"]


@dataclass
class PauseLabelMask:
    """Wraps a collator so that pause tokens never carry loss, whatever labels it builds (TRL's collator trains on
    whole conversations unless `assistant_only_loss`). Masked before the Trainer counts the batch's tokens."""

    collator: Callable[[list[dict[str, Any]]], dict[str, Any]]
    pause_ids: Sequence[int]

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        if "labels" in batch:
            pauses = torch.isin(
                batch["input_ids"], torch.tensor(list(self.pause_ids), device=batch["input_ids"].device)
            )
            batch["labels"] = batch["labels"].masked_fill(pauses, IGNORE_INDEX)
        return batch
