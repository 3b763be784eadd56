"""The paper's five configurations as presets over `SeqVCRConfig` (METHOD.md §5)."""

from __future__ import annotations

import dataclasses

from .config import SeqVCRConfig

METHODS = ("vanilla", "cot", "pause", "seqvcr", "seqvcr_pause")
DEFAULT_PAUSES = 2  # the paper's Pause(2)


def apply_method(args: SeqVCRConfig, method: str) -> tuple[SeqVCRConfig, bool]:
    """`args` with the regularizer and pauses set for `method`, and whether to train on the chain of thought.

    vanilla: question → answer; cot: question → cot #### answer; pause: pauses, no CoT; seqvcr: regularizer;
    seqvcr_pause: both. Pause methods keep a user-chosen `num_pause_tokens`, else use 2.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")
    pauses = (args.num_pause_tokens or DEFAULT_PAUSES) if "pause" in method else 0
    use_seqvcr = method.startswith("seqvcr")
    return dataclasses.replace(args, use_seqvcr=use_seqvcr, num_pause_tokens=pauses), method == "cot"
