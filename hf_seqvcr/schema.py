"""The row schema the collator, the evaluation and every data builder share.

A row is three strings: `question`, `cot` (the chain of thought, possibly empty) and `answer`. Training with a
chain of thought targets `cot #### answer` (Deng et al.'s format, which took the marker from GSM8K); training
without one reads only `question` and `answer`.
"""

from __future__ import annotations

from collections.abc import Mapping

COLUMNS = ("question", "cot", "answer")  # all strings
ANSWER_ONLY_COLUMNS = ("question", "answer")
ANSWER_MARKER = "####"


def cot_target(row: Mapping[str, str]) -> str:
    """What a chain-of-thought model writes after the question: `cot #### answer`."""
    return f"{row['cot']} {ANSWER_MARKER} {row['answer']}"


def required_columns(use_cot: bool) -> tuple[str, ...]:
    return COLUMNS if use_cot else ANSWER_ONLY_COLUMNS
