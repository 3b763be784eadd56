"""Draw examples with distinct questions, so splits cut from one stream of draws never share a question."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection

from datasets import Dataset

from .splits import make_split

Example = tuple[str, str, str]
"""(question, cot, answer)"""

# The real space of a generator can be far smaller than the bound checked before drawing (brackets and
# values collide); give up with a clear message instead of looping forever.
_MAX_DRAWS_PER_ROW = 50
_MIN_DRAW_BUDGET = 10_000


def draw_distinct(
    draw: Callable[[random.Random], Example], count: int, seed: int | str, *, exclude: Collection[str] = ()
) -> Dataset:
    """``count`` examples from ``draw``, keeping the first example for each question, in draw order.

    Questions in ``exclude`` (those of splits drawn by an earlier call) are never kept, so several streams can
    make disjoint splits. A string ``seed`` (e.g. ``"0:test_n24"``) names one of several independent streams.
    """
    rng = random.Random(seed)
    seen = set(exclude)
    questions: list[str] = []
    cots: list[str] = []
    answers: list[str] = []
    budget = _MAX_DRAWS_PER_ROW * count + _MIN_DRAW_BUDGET
    draws = 0
    while len(questions) < count:
        if draws == budget:
            raise ValueError(
                f"found only {len(questions):,} distinct questions in {draws:,} draws, fewer than the "
                f"{count:,} requested; lower --train-size (or make the task larger)"
            )
        draws += 1
        question, cot, answer = draw(rng)
        if question not in seen:
            seen.add(question)
            questions.append(question)
            cots.append(cot)
            answers.append(answer)
    return make_split(questions, cots, answers)
