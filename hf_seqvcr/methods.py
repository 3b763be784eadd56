"""The paper's five configurations as presets over `SeqVCRConfig` (docs/method.md §7)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
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


def uses_cot(method: str) -> bool:
    return method == "cot"


def apply_method(args: SeqVCRConfig, method: str, *, given: Collection[str] = ()) -> SeqVCRConfig:
    """`args` with the regularizer and pauses that `method` implies: the method is the one source of truth.

    vanilla: question → answer; cot: question → cot #### answer; pause: pauses, no CoT; seqvcr: regularizer;
    seqvcr_pause: both. `given` names the settings the user chose explicitly (flags, config file): a pause method
    keeps a chosen `num_pause_tokens` (else 2); a chosen `use_seqvcr` or `num_pause_tokens` that contradicts the
    method is an error rather than silently overridden.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}, got {method!r}.")
    if "use_seqvcr" in given and args.use_seqvcr != uses_seqvcr(method):
        raise ValueError(
            f"--use_seqvcr {args.use_seqvcr} contradicts --method {method}, which trains "
            f"{'with' if uses_seqvcr(method) else 'without'} the regularizer; drop --use_seqvcr (the method decides) "
            "or pick another --method."
        )
    if "num_pause_tokens" in given and bool(args.num_pause_tokens) != uses_pauses(method):
        raise ValueError(
            f"--num_pause_tokens {args.num_pause_tokens} contradicts --method {method}, which trains "
            f"{'with' if uses_pauses(method) else 'without'} pause tokens; drop --num_pause_tokens or pick "
            f"{'a method without pauses' if not args.num_pause_tokens else 'pause or seqvcr_pause'}."
        )
    chosen = "num_pause_tokens" in given and uses_pauses(method)
    pauses = args.num_pause_tokens if chosen else DEFAULT_PAUSES if uses_pauses(method) else 0
    return dataclasses.replace(args, use_seqvcr=uses_seqvcr(method), num_pause_tokens=pauses)


def method_of(use_seqvcr: bool, num_pause_tokens: int) -> str:
    """The method a run's settings amount to, for a model that does not record one (chain of thought is a property
    of the data, so it never comes out of the settings alone)."""
    if use_seqvcr:
        return "seqvcr_pause" if num_pause_tokens else "seqvcr"
    return "pause" if num_pause_tokens else "vanilla"
