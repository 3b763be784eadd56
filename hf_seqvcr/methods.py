"""The paper's five configurations as presets over `SeqVCRConfig` (METHOD.md §5)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import SeqVCRConfig

METHOD_DESCRIPTIONS: dict[str, str] = {
    "vanilla": "plain training from question to answer, without chain of thought",
    "cot": "training on the question followed by its chain of thought and the answer",
    "pause": "training with pause tokens between question and answer",
    "seqvcr": "training with the Seq-VCR regularizer (arXiv 2411.02344) added to the cross-entropy",
    "seqvcr_pause": "training with the Seq-VCR regularizer and pause tokens between question and answer",
}
METHODS = tuple(METHOD_DESCRIPTIONS)
DEFAULT_PAUSES = 2  # the paper's Pause(2)


def uses_pauses(method: str) -> bool:
    return method in ("pause", "seqvcr_pause")


def uses_seqvcr(method: str) -> bool:
    return method in ("seqvcr", "seqvcr_pause")


def apply_method(args: SeqVCRConfig, method: str) -> tuple[SeqVCRConfig, bool]:
    """`args` with the regularizer and pauses set for `method`, and whether to train on the chain of thought.

    vanilla: question → answer; cot: question → cot #### answer; pause: pauses, no CoT; seqvcr: regularizer;
    seqvcr_pause: both. Pause methods keep a user-chosen `num_pause_tokens`, else use 2.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")
    pauses = (args.num_pause_tokens or DEFAULT_PAUSES) if uses_pauses(method) else 0
    return dataclasses.replace(args, use_seqvcr=uses_seqvcr(method), num_pause_tokens=pauses), method == "cot"
