"""Exact match by batched greedy generation (left-padded prompts, pauses appended, KV cache, stops at eos).

Scores come from the `evaluate` metric shipped in `metrics/seqvcr_exact_match` (`load_metric`), whose computation
is `score_answers`; `exact_match_compute_metrics` applies it to a Trainer-style `EvalPrediction` of token ids.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import evaluate
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (
    EvalPrediction,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .pause import IGNORE_INDEX, PauseDataCollator, max_positions
from .schema import ANSWER_MARKER

METRIC_PATH = Path(__file__).parent / "metrics" / "seqvcr_exact_match"
Scores = dict[str, float | list[float]]
GREEDY = {"do_sample": False, "num_beams": 1}  # what every generation here passes, on top of a neutral config
DEFAULT_MAX_NEW_TOKENS = 256  # the budget for questions without a reference (generation stops at eos before)


def normalize_answer(text: str) -> str:
    """Whitespace is formatting, not content: "6 3 0 1" (Deng's digits) and "6301" are the same answer."""
    return "".join(text.split())


def extract_answer(generated: str, use_cot: bool) -> str:
    """With a chain of thought the answer is what follows the last `####`."""
    if use_cot:
        generated = generated.rsplit(ANSWER_MARKER, 1)[-1] if ANSWER_MARKER in generated else ""
    return normalize_answer(generated)


def generate_answers(
    model: PreTrainedModel,
    collator: PauseDataCollator,
    questions: Sequence[str],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 32,
    show_progress: bool = False,
) -> list[str]:
    """Greedy continuations of `[bos] question <eos> [pauses]`, decoded as generated up to the first eos."""
    prompts = [collator.prompt_ids(q) for q in questions]
    return generate_continuations(
        model,
        collator.tokenizer,
        prompts,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        show_progress=show_progress,
    )


@torch.no_grad()
def generate_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 32,
    show_progress: bool = False,
) -> list[str]:
    """Greedy continuations of token-id prompts (left-padded, batched, KV cache), decoded up to the first eos.

    Greedy whatever the checkpoint's `generation_config.json` asks for (sampling, a repetition penalty, ...): exact
    match scores what the model predicts, not a decoding strategy. Special tokens are kept: a `<pause>` the model
    writes inside its answer is part of what it answered, and scoring a cleaned copy would count it as right.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    answers: list[str] = []
    try:
        with greedy_generation(model):
            for start in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not show_progress):
                batch = [{"input_ids": list(ids)} for ids in prompts[start : start + batch_size]]
                batch = tokenizer.pad(batch, padding_side="left", return_tensors="pt").to(device)
                output = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    **GREEDY,
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id,
                )
                width = batch["input_ids"].shape[1]
                answers.extend(decode_generated(tokenizer, ids) for ids in output[:, width:].tolist())
    finally:
        model.train(was_training)
    return answers


def greedy_generation_config(tokenizer: PreTrainedTokenizerBase | None = None) -> GenerationConfig:
    """Plain greedy decoding (ending at the tokenizer's eos): what exact match measures, and what a fine-tuned
    checkpoint saves, so that `generate` and `pipeline` answer as it was evaluated whatever its base model's
    `generation_config.json` asked for (LLaMA-3's samples at temperature 0.6)."""
    special = (
        {}
        if tokenizer is None
        else {
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
    )
    return GenerationConfig(**GREEDY, **special)


@contextmanager
def greedy_generation(model: PreTrainedModel) -> Iterator[None]:
    """While generating, the model's own `generation_config` is `greedy_generation_config()`: `generate` fills every
    setting a call leaves unset from it, so a checkpoint's saved sampling or penalties would otherwise leak in."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model generates inside
    saved = getattr(target, "generation_config", None)
    if saved is None:  # not a transformers model (a stub): nothing to leak
        yield
        return
    target.generation_config = greedy_generation_config()
    try:
        yield
    finally:
        target.generation_config = saved


def decode_generated(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """`ids` decoded up to the first eos, special tokens kept; -100 (the Trainer's padding of gathered arrays)
    is dropped."""
    ids = [i for i in ids if i != IGNORE_INDEX]
    eos = tokenizer.eos_token_id
    return tokenizer.decode(ids[: ids.index(eos)] if eos in ids else ids)


def score_answers(predictions: Sequence[str], references: Sequence[str]) -> Scores:
    """Exact match, and accuracy per answer position (the paper's Fig. 6) and over all positions.

    The one implementation of the scores: the `evaluate` metric (`load_metric`) computes through it.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references.")
    if not references:
        raise ValueError("No examples to score.")
    exact = sum(p == r for p, r in zip(predictions, references, strict=True))
    width = max(map(len, references))
    correct, total = [0] * width, [0] * width
    for prediction, reference in zip(predictions, references, strict=True):
        for i, char in enumerate(reference):
            total[i] += 1
            correct[i] += i < len(prediction) and prediction[i] == char
    return {
        "exact_match": exact / len(references),
        "digit_accuracy": sum(correct) / max(sum(total), 1),
        "position_accuracy": [c / t for c, t in zip(correct, total, strict=True)],
    }


def predict_answers(
    model: PreTrainedModel,
    collator: PauseDataCollator,
    rows: Sequence[Mapping[str, str] | str],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
    show_progress: bool = False,
) -> list[str]:
    """Normalised answers the model generates greedily for `rows`: questions, or rows with a `question` field.

    Generation stops at eos. Its budget, unless `max_new_tokens` sets one, does not depend on how the reference is
    tokenized (a model may spell `700 00` as `7 0 0 0 0`): `answer_budget` of the rows' targets when they have
    them, else `DEFAULT_MAX_NEW_TOKENS`; never past the model's positions.
    """
    rows = [{"question": row} if isinstance(row, str) else row for row in rows]
    if not rows:
        return []
    if "question" not in rows[0]:
        raise ValueError(f"`rows` need a `question` field (found {list(rows[0])}), or pass the questions as strings.")
    questions = [row["question"] for row in rows]
    if max_new_tokens is None:
        has_targets = all(name in rows[0] for name in collator.required_columns)
        max_new_tokens = DEFAULT_MAX_NEW_TOKENS
        if has_targets:
            max_new_tokens = answer_budget([collator.target_text(row) for row in rows])
    limit = max_positions(model, collator.tokenizer)
    if limit is not None:
        longest = max(len(collator.prompt_ids(question)) for question in questions)
        if longest >= limit:
            raise ValueError(
                f"A prompt of {longest} tokens leaves no room to answer in the model's {limit} positions; "
                "shorten the questions or use a model with more positions."
            )
        max_new_tokens = min(max_new_tokens, limit - longest)
    generated = generate_answers(
        model, collator, questions, batch_size=batch_size, max_new_tokens=max_new_tokens, show_progress=show_progress
    )
    return [extract_answer(text, collator.use_cot) for text in generated]


def answer_budget(targets: Sequence[str]) -> int:
    """New tokens enough for any spelling of the longest target: twice its characters (a space may follow every
    character), one for a leading word marker (SentencePiece's `▁`) and one for eos. Characters, not the
    reference's tokens, so a tokenizer that groups digits cannot cut off a model that writes them one by one."""
    return 2 * max(map(len, targets)) + 2


def evaluate_exact_match(
    model: PreTrainedModel,
    collator: PauseDataCollator,
    rows: Sequence[Mapping[str, str]],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
    show_progress: bool = False,
) -> Scores:
    """Standalone evaluation: exact match, digit accuracy and per-position accuracy on `rows`."""
    if len(rows):
        collator.check_columns(list(rows[0].keys()), argument="rows")
    predictions = predict_answers(
        model, collator, rows, batch_size=batch_size, max_new_tokens=max_new_tokens, show_progress=show_progress
    )
    references = [normalize_answer(row["answer"]) for row in rows]
    return load_metric().compute(predictions=predictions, references=references)


@functools.cache
def load_metric() -> evaluate.EvaluationModule:
    """The exact-match metric, loaded once from the copy inside the installed package (never from the Hub).

    Kept in memory: no cache files or locks, so every process of a distributed run can compute alone; each
    `compute` call starts afresh, so the one instance serves every evaluation.
    """
    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


def exact_match_compute_metrics(
    tokenizer: PreTrainedTokenizerBase, *, use_cot: bool = False
) -> Callable[[EvalPrediction], Scores]:
    """A `compute_metrics` for token ids: `predictions` are what the model generated after each prompt, and
    `label_ids` the references, e.g. the `labels` of `PauseDataCollator` (-100 outside the target).

    Both are decoded up to their first eos and reduced to the answer as `predict_answers` does (after the last
    `####` with `use_cot`), then scored by the metric. `SeqVCRTrainer` needs none of this: it generates and scores
    itself with `eval_exact_match=True`; this serves generation loops of your own (the Trainer's own prediction
    loop returns logits, not generations).
    """
    metric = load_metric()

    def compute_metrics(prediction: EvalPrediction) -> Scores:
        def answers(rows: np.ndarray) -> list[str]:
            return [extract_answer(decode_generated(tokenizer, ids), use_cot) for ids in np.asarray(rows).tolist()]

        return metric.compute(predictions=answers(prediction.predictions), references=answers(prediction.label_ids))

    return compute_metrics


def exact_match_by_length(
    model: PreTrainedModel,
    collator: PauseDataCollator,
    buckets: Mapping[int, Sequence[Mapping[str, str]]],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
) -> dict[int, float]:
    """``{length: exact match}`` of greedy generation on each bucket's rows: accuracy against length (Barbero et al.
    2024, Figs. 2-4). ``buckets`` is e.g. ``data_builders.length_buckets.bucket_splits(dataset)``."""
    if not buckets:
        raise ValueError(
            "buckets is empty; pass {length: rows}, e.g. bucket_splits(load_task_dataset(directory, config))"
        )
    scores = {}
    for length, rows in buckets.items():
        bucket = evaluate_exact_match(model, collator, rows, batch_size=batch_size, max_new_tokens=max_new_tokens)
        scores[length] = float(bucket["exact_match"])
    return scores
