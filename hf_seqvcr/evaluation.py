"""Exact match by batched greedy generation (left-padded prompts, pauses appended, KV cache).

Scores come from the `evaluate` metric shipped in `metrics/seqvcr_exact_match` (`load_metric`), whose computation
is `score_answers`; `exact_match_compute_metrics` applies it to a Trainer-style `EvalPrediction` of token ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import evaluate
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase

from .pause import IGNORE_INDEX, PauseDataCollator
from .schema import ANSWER_MARKER

METRIC_PATH = Path(__file__).parent / "metrics" / "seqvcr_exact_match"
Scores = dict[str, float | list[float]]


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
    """Greedy continuations of `question <eos> [pauses]`, decoded as generated up to the first eos."""
    prompts = [collator.prompt_ids(q) for q in questions]
    return generate_continuations(model, collator.tokenizer, prompts, batch_size=batch_size,
                                  max_new_tokens=max_new_tokens, show_progress=show_progress)  # fmt: skip


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

    Special tokens are kept: a `<pause>` the model writes inside its answer is part of what it answered, and
    scoring a cleaned copy would count it as right.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    answers: list[str] = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc="generating", disable=not show_progress):
        batch = [list(p) for p in prompts[start : start + batch_size]]
        width = max(map(len, batch))
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, prompt in enumerate(batch):
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt)
            attention_mask[i, width - len(prompt) :] = 1
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        answers.extend(decode_generated(tokenizer, ids) for ids in output[:, width:].tolist())
    model.train(was_training)
    return answers


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
    exact = sum(p == r for p, r in zip(predictions, references))
    width = max(map(len, references))
    correct, total = [0] * width, [0] * width
    for prediction, reference in zip(predictions, references):
        for i, char in enumerate(reference):
            total[i] += 1
            correct[i] += i < len(prediction) and prediction[i] == char
    return {
        "exact_match": exact / len(references),
        "digit_accuracy": sum(correct) / max(sum(total), 1),
        "position_accuracy": [c / t for c, t in zip(correct, total)],
    }


def predict_answers(
    model: PreTrainedModel,
    collator: PauseDataCollator,
    rows: Sequence[Mapping[str, str]],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
    show_progress: bool = False,
) -> list[str]:
    """Normalised answers the model generates for `rows` (each with `question` and `answer`)."""
    rows = list(rows)
    if not rows:
        return []
    collator.check_columns(list(rows[0].keys()), argument="rows")
    if max_new_tokens is None:  # enough for the longest reference target and its eos
        max_new_tokens = max(len(collator.target_ids(row)) for row in rows)
    generated = generate_answers(
        model,
        collator,
        [row["question"] for row in rows],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        show_progress=show_progress,
    )
    return [extract_answer(text, collator.use_cot) for text in generated]


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
    predictions = predict_answers(
        model, collator, rows, batch_size=batch_size, max_new_tokens=max_new_tokens, show_progress=show_progress
    )
    references = [normalize_answer(row["answer"]) for row in rows]
    return load_metric().compute(predictions=predictions, references=references)


def load_metric() -> evaluate.EvaluationModule:
    """The exact-match metric, loaded from the copy inside the installed package (never from the Hub).

    Kept in memory: no cache files or locks, so every process of a distributed run can compute alone.
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
